#!/usr/bin/env python3
"""Independent numpy (float64) TAESD decoder, the CI oracle for daemon/taesd.c.

    taesd_ref.py WEIGHTS.safetensors LATENTS.f32 C H W OUT.f32 [NFRAMES]

LATENTS.f32: raw little-endian float32 [NFRAMES][C][H][W]; OUT.f32 receives
the raw decoder output [NFRAMES][3][8H][8W] as float32.  The safetensors file
is parsed here with the json module (not egressd's parser), and the network is
written from taesd.py's definition, not from egressd's plan.  The flux_2
variant (taef2) is used when the file has pool tensors: Blocks 3, 4, 5 first
do x = x + pool(x), pool = Conv1x1(64->256, no bias), GroupNorm(4 groups,
eps 1e-5, affine), ReLU, Conv1x1(256->64, no bias).
Exit 77 when numpy is missing (the caller skips).
"""
import json
import struct
import sys

try:
    import numpy as np
except ImportError:
    sys.exit(77)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    hdr = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        dt = {"F16": "<f2", "F32": "<f4"}[e["dtype"]]
        b, en = e["data_offsets"]
        out[name] = np.frombuffer(data[b:en], dtype=dt).astype(np.float64).reshape(e["shape"])
    return out


def conv3x3(x, w, b):
    """x [Cin,H,W], w [Cout,Cin,3,3], zero padding 1 (cross-correlation, as torch)."""
    cin, h, wd = x.shape
    xp = np.zeros((cin, h + 2, wd + 2))
    xp[:, 1:-1, 1:-1] = x
    cols = np.empty((cin, 3, 3, h, wd))
    for ky in range(3):
        for kx in range(3):
            cols[:, ky, kx] = xp[:, ky:ky + h, kx:kx + wd]
    y = np.tensordot(w, cols, axes=([1, 2, 3], [0, 1, 2]))
    if b is not None:
        y = y + b[:, None, None]
    return y


def relu(x):
    return np.maximum(x, 0.0)


def conv1x1(x, w):
    """x [Cin,H,W], w [Cout,Cin,1,1], no bias."""
    return np.tensordot(w[:, :, 0, 0], x, axes=([1], [0]))


def group_norm(x, groups, gamma, beta, eps=1e-5):
    """torch.nn.GroupNorm on one image: statistics per group over its channels and all pixels."""
    c = x.shape[0]
    g = x.reshape(groups, c // groups, *x.shape[1:])
    mean = g.mean(axis=(1, 2, 3), keepdims=True)
    var = g.var(axis=(1, 2, 3), keepdims=True)      # biased, as torch
    y = ((g - mean) / np.sqrt(var + eps)).reshape(x.shape)
    return y * gamma[:, None, None] + beta[:, None, None]


def decode(W, x):
    def conv(name, t, bias=True):
        return conv3x3(t, W[name + ".weight"], W[name + ".bias"] if bias else None)

    def pool(i, t):
        p = f"{i}.pool."
        y = conv1x1(t, W[p + "0.weight"])
        y = relu(group_norm(y, 4, W[p + "1.weight"], W[p + "1.bias"]))
        return conv1x1(y, W[p + "3.weight"])

    def block(i, t):
        if f"{i}.pool.0.weight" in W:     # flux_2: x = x + pool(x), then the Block
            t = t + pool(i, t)
        p = f"{i}.conv."
        y = relu(conv(p + "0", t))
        y = relu(conv(p + "2", y))
        y = conv(p + "4", y)
        return relu(y + t)

    def up(t):
        return t.repeat(2, axis=1).repeat(2, axis=2)

    x = np.tanh(x / 3.0) * 3.0          # 0 Clamp
    x = relu(conv("1", x))              # 1, 2
    for i in (3, 4, 5):
        x = block(i, x)
    x = conv("7", up(x), bias=False)    # 6, 7
    for i in (8, 9, 10):
        x = block(i, x)
    x = conv("12", up(x), bias=False)   # 11, 12
    for i in (13, 14, 15):
        x = block(i, x)
    x = conv("17", up(x), bias=False)   # 16, 17
    x = block(18, x)
    return conv("19", x)                # raw output; users clamp(0, 1)


def main():
    if len(sys.argv) not in (7, 8):
        sys.stderr.write(__doc__)
        return 2
    wpath, lpath, c, h, w, opath = sys.argv[1:7]
    c, h, w = int(c), int(h), int(w)
    n = int(sys.argv[7]) if len(sys.argv) == 8 else 1
    W = load_safetensors(wpath)
    lat = np.fromfile(lpath, dtype="<f4").astype(np.float64).reshape(n, c, h, w)
    out = np.stack([decode(W, lat[i]) for i in range(n)]).astype("<f4")
    out.tofile(opath)
    if "EGR_TAESD_STATS" in __import__("os").environ:
        sys.stderr.write("out mean %.4f std %.4f min %.4f max %.4f frac in [0,1] %.3f\n" % (
            out.mean(), out.std(), out.min(), out.max(), ((out >= 0) & (out <= 1)).mean()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
