#!/usr/bin/env python3
"""PyTorch's decode alone of the real taef2 decoder (bench-taesd's taef2 regime).

    taef2_peer.py --weights taef2_decoder.safetensors --latents REAL.npy
                  [--batch 16] [--ref EGRESSD.y4m]

The network is taesd.py's Decoder with use_midblock_gn=True (the flux_2
variant: 32 latent channels, the GroupNorm pool branch on Blocks 3-5) from
tests/gpu/taesd_torch_check.py, the real weights loaded with
load_state_dict(strict=True); fp16, channels_last, cudnn.benchmark on,
inference_mode, eager.  Timed as tests/bench/bench_taesd.py times TAESD: the
network alone on --batch frames of the real latents (repeated when there are
fewer), CUDA events, median of 7 (time_fn).  Then every real latent frame is
decoded, turned into I420 as egressd quantises (peers.py's to_i420) and
compared with the first frames of egressd's y4m of the same latents (--ref):
both fp16 (egressd's Hopper kernel against cuDNN), a code or two apart.

Prints "TORCH size=taef2 eager=F compile=-" (tests/bench/lib.sh reads it)
and "PEERCHECK mode=decode vs egressd: ...".  Exit 0, 1 on error, 77 without
PyTorch or CUDA.
"""
import argparse
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    print("taef2_peer: %s, skipped" % e)
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "gpu"))
from bench_taesd import time_fn  # noqa: E402
from peers import read_y4m_frames, to_i420  # noqa: E402
from taesd_torch_check import Decoder, load_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--latents", required=True, help="the real latents, [N, 32, h, w] .npy")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ref", help="egressd's y4m of the same latents (its first N frames are compared)")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("taef2_peer: no CUDA device, skipped")
        return 77
    torch.backends.cudnn.benchmark = True
    sd = load_safetensors(a.weights)
    lat = np.load(a.latents)
    n, c, lh, lw = lat.shape
    net = Decoder(c, use_midblock_gn=True)
    net.load_state_dict(sd, strict=True)
    net = net.cuda().half().to(memory_format=torch.channels_last).eval()

    def upload(x):
        return torch.from_numpy(np.ascontiguousarray(x)).cuda().half().contiguous(memory_format=torch.channels_last)
    reps = (a.batch + n - 1) // n
    x = upload(np.concatenate([lat] * reps)[:a.batch])
    with torch.inference_mode():
        ms = time_fn(lambda: net(x), 10)
        fps = a.batch * 1000.0 / ms
        print("taef2_peer: %s, torch %s: taef2 %dx%d, batch %d: %.2f ms a batch, %.1f frames/s (fp16 channels_last, "
              "eager, the network alone)" % (torch.cuda.get_device_name(0), torch.__version__, 8 * lw, 8 * lh,
                                            a.batch, ms, fps), flush=True)
        print("TORCH size=taef2 eager=%.1f compile=-" % fps, flush=True)
        if not a.ref:
            return 0
        mine = torch.cat([to_i420(net(upload(lat[i:i + a.batch]))) for i in range(0, n, a.batch)]).cpu().numpy()
    h0, ref = read_y4m_frames(a.ref, n)
    if ref.shape != mine.shape:
        print("PEERCHECK mode=decode vs egressd: frame shapes differ: PyTorch %s, egressd %s" % (mine.shape, ref.shape))
        return 1
    d = np.abs(mine.astype(np.int16) - ref.astype(np.int16))
    print("PEERCHECK mode=decode vs egressd: %d frames (the real latents), max |diff| %d, %.2f%% of bytes differ, "
          "mean |diff| %.4f" % (n, d.max(), 100.0 * (d > 0).mean(), d.mean()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
