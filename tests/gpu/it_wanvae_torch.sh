#!/usr/bin/env bash
# GPU: egressd's Wan VAE decoder (fp32 CPU reference) against diffusers'
# AutoencoderKLWan with the same seeded weights and latents, fp32, TF32 off:
# rel err <= 1e-3, exact frame counts, both configurations (Wan 2.1, Wan 2.2
# 5B).  Needs torch and diffusers (carried as wheels); skipped without them.
set -u
EGR_BIN=${EGR_BIN:-build/t}
nvidia-smi -L >/dev/null 2>&1 || { echo "no GPU"; exit 77; }
python3 -c 'import torch, diffusers, safetensors' 2>/dev/null || { echo "no torch/diffusers/safetensors"; exit 77; }
python3 tests/gpu/wanvae_torch_check.py "$EGR_BIN"
