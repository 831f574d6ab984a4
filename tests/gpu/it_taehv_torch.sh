#!/usr/bin/env bash
# GPU: egressd's TAEHV decoders (fp32 CPU stream and bf16 GPU path) against an
# independent PyTorch build of the public TAEHV decoder from torch.nn layers,
# same seeded safetensors, same latents: rel err < 1e-4 (CPU fp32 vs PyTorch
# fp32, TF32 off), < 2e-2 (GPU bf16), exact frame counts (trim rules included).
set -u
EGR_BIN=${EGR_BIN:-build/t}
nvidia-smi -L >/dev/null 2>&1 || { echo "no GPU"; exit 77; }
python3 -c 'import torch, numpy, safetensors' 2>/dev/null || { echo "no torch/numpy/safetensors"; exit 77; }
[ -x "$EGR_BIN/tests/gpu/test_taehv_gpu" ] || { echo "$EGR_BIN/tests/gpu/test_taehv_gpu missing (make VARIANT=test gpu-tests-bin)"; exit 1; }
python3 tests/gpu/taehv_torch_check.py "$EGR_BIN"
