#!/usr/bin/env bash
# GPU: egressd's TAESD (CPU fp32 reference and GPU fp16 path) against an
# independent PyTorch build of the same network from torch.nn layers, same
# safetensors, same latents: rel err <= 1e-4 (CPU fp32), <= 1e-2 (GPU fp16).
set -u
EGR_BIN=${EGR_BIN:-build/t}
nvidia-smi -L >/dev/null 2>&1 || { echo "no GPU"; exit 77; }
python3 -c 'import torch' 2>/dev/null || { echo "no PyTorch"; exit 77; }
d=$(mktemp -d /tmp/egr-taesd-torch.XXXXXX)
trap 'rm -rf "$d"' EXIT
"$EGR_BIN/tests/gpu/test_taesd_gpu" --dump "$d" || exit 1
python3 tests/gpu/taesd_torch_check.py "$d"
