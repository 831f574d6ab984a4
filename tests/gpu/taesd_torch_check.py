#!/usr/bin/env python3
"""Cross-check egressd's TAESD decoder against PyTorch.

    taesd_torch_check.py DIR      (DIR written by: test_taesd_gpu --dump DIR)

The network is built from torch.nn layers exactly as the public taesd.py
builds its Decoder, and the safetensors weights are loaded with
load_state_dict(strict=True), so a wrong tensor name fails here too.  For each
case (plain and flux_2, taesd.py's Decoder(use_midblock_gn=True) with the
GroupNorm pool branch on Blocks 3, 4, 5): egressd's CPU fp32 output vs
PyTorch fp32 (TF32 off): rel err <= 1e-4;
egressd's GPU fp16 output vs PyTorch fp32: rel err <= 1e-2.  PyTorch's own
fp16 channels_last error is printed for scale.  Exit 0 pass, 1 fail, 77 skip.
"""
import json
import struct
import sys

try:
    import numpy as np
    import torch
    import torch.nn as nn
except ImportError as e:
    print("taesd_torch_check: %s, skipped" % e)
    sys.exit(77)


# ---- taesd.py, as published ----
def conv(n_in, n_out, **kwargs):
    return nn.Conv2d(n_in, n_out, 3, padding=1, **kwargs)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, n_in, n_out, use_midblock_gn=False):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = nn.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()
        self.pool = None
        if use_midblock_gn:     # flux_2: 1x1 up to 4x channels, GroupNorm(4), ReLU, 1x1 back
            n_gn = n_in * 4
            self.pool = nn.Sequential(nn.Conv2d(n_in, n_gn, 1, bias=False), nn.GroupNorm(4, n_gn), nn.ReLU(),
                                      nn.Conv2d(n_gn, n_in, 1, bias=False))

    def forward(self, x):
        if self.pool is not None:
            x = x + self.pool(x)
        return self.fuse(self.conv(x) + self.skip(x))


def Decoder(latent_channels=4, use_midblock_gn=False):
    gn = {"use_midblock_gn": use_midblock_gn}
    return nn.Sequential(
        Clamp(), conv(latent_channels, 64), nn.ReLU(),
        Block(64, 64, **gn), Block(64, 64, **gn), Block(64, 64, **gn), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), Block(64, 64), Block(64, 64), nn.Upsample(scale_factor=2), conv(64, 64, bias=False),
        Block(64, 64), conv(64, 3),
    )
# ---- end of taesd.py ----


def load_safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    sd = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        dt = {"F16": np.float16, "F32": np.float32}[e["dtype"]]
        b, en = e["data_offsets"]
        sd[name] = torch.from_numpy(np.frombuffer(data[b:en], dtype=dt).reshape(e["shape"]).astype(np.float32))
    return sd


def rel(a, b):
    a = a.double()
    b = b.double()
    return ((a - b).norm() / b.norm()).item()


def build(weights, channels, variant, dev):
    net = Decoder(channels, use_midblock_gn=variant == "flux_2")
    net.load_state_dict(load_safetensors(weights), strict=True)
    return net.to(dev).eval()


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    if not torch.cuda.is_available():
        print("taesd_torch_check: no CUDA, skipped")
        return 77
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    cases = json.load(open(sys.argv[1] + "/cases.json"))
    bad = 0
    for c in cases:
        n, C, h, w = c["n"], c["c"], c["h"], c["w"]
        lat = torch.from_numpy(np.fromfile(c["latents"], dtype="<f4").reshape(n, C, h, w))
        cpu = torch.from_numpy(np.fromfile(c["cpu"], dtype="<f4").reshape(n, 3, 8 * h, 8 * w))
        gpu = torch.from_numpy(np.fromfile(c["gpu"], dtype="<f4").reshape(n, 3, 8 * h, 8 * w))
        variant = c.get("variant", "plain")
        net = build(c["weights"], C, variant, "cuda")
        with torch.inference_mode():
            ref = net(lat.cuda()).cpu()
            net16 = net.half().to(memory_format=torch.channels_last)
            t16 = net16(lat.cuda().half().to(memory_format=torch.channels_last)).float().cpu()
        e_cpu, e_gpu, e_t16 = rel(cpu, ref), rel(gpu, ref), rel(t16, ref)
        ok = e_cpu <= 1e-4 and e_gpu <= 1e-2
        bad += not ok
        print("TORCHCHECK %s C=%d %dx%d n=%d: egressd cpu fp32 vs torch fp32 %.2e (<=1e-4) | egressd gpu fp16 vs torch fp32 "
              "%.2e (<=1e-2) | torch fp16 vs torch fp32 %.2e  %s" % (variant, C, 8 * w, 8 * h, n, e_cpu, e_gpu, e_t16,
                                                                     "ok" if ok else "FAIL"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
