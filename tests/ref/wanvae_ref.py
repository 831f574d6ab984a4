#!/usr/bin/env python3
"""Independent numpy (float64) Wan VAE decoder, the CI oracle for daemon/decode/wanvae.c.

    wanvae_ref.py WEIGHTS.safetensors LATENTS.f32 T H W OUT.f32

LATENTS.f32: raw little-endian float32 [T][C][H][W] (C from the weights), the
latents as diffusers' AutoencoderKLWan.decode takes them.  OUT.f32 receives
the decoded video [F][3][H*s][W*s] float32, clamped to [-1, 1], where
F = 1 + 4 (T - 1) and s = 8 (16 with 2x2 patches).

Written from diffusers' module definitions (WanDecoder3d, WanResidualBlock,
WanAttentionBlock, WanResample, WanUpBlock / WanResidualUpBlock, DupUp3D,
unpatchify), not from egressd's C; the safetensors file is parsed here with
the json module, and the network's layout is read from the tensor names (a
block has what its names say it has), not from a configuration.

The video is decoded twice:
  whole:   all frames at once; every causal conv sees the full sequence with
           two zero frames in front; at each time upsampler the first frame
           (from the first latent frame) passes untouched and the rest go
           through the time conv; DupUp3D drops its first factor_t - 1 frames.
  chunked: latent frame by latent frame with a port of _decode's feat_cache
           bookkeeping (CACHE_T = 2, the "Rep" marker, first_chunk).
The two must agree to 1e-9 (relative), else exit 1: this checks the whole-video
reading of diffusers' cache rules.  The whole decode is written out.
Exit 77 when numpy is missing (the caller skips).
"""
import json
import os
import sys

try:
    import numpy as np
except ImportError:
    sys.exit(77)


def _bf16(buf):
    return (np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


DTYPES = {"F32": lambda b: np.frombuffer(b, dtype="<f4"), "F16": lambda b: np.frombuffer(b, dtype="<f2"),
          "BF16": _bf16}


def read_weights(path):
    """name -> float64 array, for every tensor of a safetensors file."""
    blob = open(path, "rb").read()
    hlen = int.from_bytes(blob[:8], "little")
    meta = json.loads(blob[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    W = {}
    for name, e in meta.items():
        if name != "__metadata__":
            lo, hi = e["data_offsets"]
            W[name] = DTYPES[e["dtype"]](blob[base + lo:base + hi]).astype(np.float64).reshape(e["shape"])
    return W


# ---- layers; activations are [C, T, H, W] ----

def conv(x, w, b, past=None):
    """WanCausalConv3d / Conv2d per frame.  w [O, I, kt, k, k]: time padding kt - 1
    zero frames on the past side (minus the frames `past` supplies), spatial k // 2."""
    kt, k = w.shape[2], w.shape[3]
    pt = kt - 1
    if past is not None and pt > 0:
        x = np.concatenate([past, x], axis=1)
        pt -= past.shape[1]
    p = k // 2
    xp = np.pad(x, ((0, 0), (pt, 0), (p, p), (p, p)))
    t, h, wd = xp.shape[1] - kt + 1, x.shape[2], x.shape[3]
    y = np.zeros((w.shape[0], t, h, wd))
    for a in range(kt):
        for dy in range(k):
            for dx in range(k):
                y += np.tensordot(w[:, :, a, dy, dx], xp[:, a:a + t, dy:dy + h, dx:dx + wd], axes=(1, 0))
    return y + b[:, None, None, None]


def conv2d(x, w, b):
    return conv(x, w[:, :, None], b)


def rms(x, gamma):
    """WanRMS_norm: F.normalize over channels (eps 1e-12) * sqrt(C) * gamma."""
    n = np.sqrt((x * x).sum(axis=0, keepdims=True))
    return x / np.maximum(n, 1e-12) * np.sqrt(x.shape[0]) * gamma.reshape(-1, 1, 1, 1)


def silu(x):
    return x / (1.0 + np.exp(-x))


class Net:
    def __init__(self, W):
        self.W = W

    def has(self, name):
        return name + ".weight" in self.W or name + ".gamma" in self.W

    def wb(self, name):
        return self.W[name + ".weight"], self.W[name + ".bias"]


def resnet(net, ctx, pre, x):
    if net.has(pre + ".conv_shortcut"):
        h = conv(x, *net.wb(pre + ".conv_shortcut"))
    else:
        h = x
    y = silu(rms(x, net.W[pre + ".norm1.gamma"]))
    y = ctx.conv(y, *net.wb(pre + ".conv1"))
    y = silu(rms(y, net.W[pre + ".norm2.gamma"]))
    y = ctx.conv(y, *net.wb(pre + ".conv2"))
    return y + h


def attention(net, x):
    pre = "decoder.mid_block.attentions.0"
    c, t, h, w = x.shape
    out = np.empty_like(x)
    for f in range(t):
        fr = x[:, f:f + 1]
        qkv = conv2d(rms(fr, net.W[pre + ".norm.gamma"]), *net.wb(pre + ".to_qkv"))
        qkv = qkv.reshape(3 * c, h * w).T           # [HW, 3C]
        q, k, v = qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:]
        s = q @ k.T / np.sqrt(c)
        s = np.exp(s - s.max(axis=1, keepdims=True))
        o = (s / s.sum(axis=1, keepdims=True)) @ v   # [HW, C]
        o = o.T.reshape(c, 1, h, w)
        out[:, f:f + 1] = conv2d(o, *net.wb(pre + ".proj")) + fr
    return out


def interleave(y):
    """[2C, t] -> [C, 2t]: channel half k of frame j becomes frame 2j + k."""
    c2, t, h, w = y.shape
    return y.reshape(2, c2 // 2, t, h, w).transpose(1, 2, 0, 3, 4).reshape(c2 // 2, 2 * t, h, w)


def dup_up(x, out_c, ft, first):
    """DupUp3D(in, out, factor_t=ft, factor_s=2)."""
    c, t, h, w = x.shape
    y = np.repeat(x, out_c * ft * 4 // c, axis=0)
    y = y.reshape(out_c, ft, 2, 2, t, h, w).transpose(0, 4, 1, 5, 2, 6, 3).reshape(out_c, t * ft, 2 * h, 2 * w)
    return y[:, ft - 1:] if first else y


def up_block(net, ctx, i, x):
    pre = "decoder.up_blocks.%d" % i
    up = pre + (".upsampler" if net.has(pre + ".upsampler.resample.1") else ".upsamplers.0")
    residual = up.endswith(".upsampler")
    x_in = x
    j = 0
    while net.has("%s.resnets.%d.conv1" % (pre, j)):
        x = resnet(net, ctx, "%s.resnets.%d" % (pre, j), x)
        j += 1
    if not net.has(up + ".resample.1"):
        return x
    temporal = net.has(up + ".time_conv")
    if temporal:
        x = ctx.time_up(x, *net.wb(up + ".time_conv"))
    w, b = net.wb(up + ".resample.1")
    x = conv2d(x.repeat(2, axis=2).repeat(2, axis=3), w, b)    # nearest(-exact) x2, then conv
    if residual:
        x = x + dup_up(x_in, x.shape[0], 2 if temporal else 1, ctx.first)
    return x


def decoder(net, ctx, x):
    x = ctx.conv(x, *net.wb("decoder.conv_in"))
    x = resnet(net, ctx, "decoder.mid_block.resnets.0", x)
    x = attention(net, x)
    x = resnet(net, ctx, "decoder.mid_block.resnets.1", x)
    i = 0
    while net.has("decoder.up_blocks.%d.resnets.0.conv1" % i):
        x = up_block(net, ctx, i, x)
        i += 1
    x = silu(rms(x, net.W["decoder.norm_out.gamma"]))
    return ctx.conv(x, *net.wb("decoder.conv_out"))


class Whole:
    """The whole video at once."""
    first = True

    def conv(self, x, w, b):
        return conv(x, w, b)

    def time_up(self, x, w, b):
        if x.shape[1] == 1:
            return x
        return np.concatenate([x[:, :1], interleave(conv(x[:, 1:], w, b))], axis=1)


class Chunked:
    """diffusers' feat_cache: one slot per cached conv, in call order."""

    def __init__(self):
        self.cache = []
        self.idx = 0
        self.first = True

    def _slot(self):
        if self.idx == len(self.cache):
            self.cache.append(None)
        self.idx += 1
        return self.idx - 1

    def conv(self, x, w, b):
        i = self._slot()
        prev = self.cache[i]
        keep = x[:, -2:]
        if keep.shape[1] < 2 and prev is not None:
            keep = np.concatenate([prev[:, -1:], keep], axis=1)
        y = conv(x, w, b, past=prev)
        self.cache[i] = keep
        return y

    def time_up(self, x, w, b):
        i = self._slot()
        prev = self.cache[i]
        if prev is None:
            self.cache[i] = "Rep"
            return x
        rep = isinstance(prev, str)
        keep = x[:, -2:]
        if keep.shape[1] < 2:
            keep = np.concatenate([np.zeros_like(keep) if rep else prev[:, -1:], keep], axis=1)
        y = conv(x, w, b, past=None if rep else prev)
        self.cache[i] = keep
        return interleave(y)


def unpatchify(x, p):
    if p == 1:
        return x
    c, f, h, w = x.shape
    return x.reshape(c // (p * p), p, p, f, h, w).transpose(0, 3, 4, 2, 5, 1).reshape(c // (p * p), f, h * p, w * p)


def decode(net, z, chunked):
    """z [C, T, h, w] -> [3, F, H, W] clamped."""
    x = conv(z, *net.wb("post_quant_conv"))
    if chunked:
        ctx = Chunked()
        outs = []
        for i in range(x.shape[1]):
            ctx.idx = 0
            ctx.first = i == 0
            outs.append(decoder(net, ctx, x[:, i:i + 1]))
        out = np.concatenate(outs, axis=1)
    else:
        out = decoder(net, Whole(), x)
    p = int(round(np.sqrt(out.shape[0] // 3)))
    return np.clip(unpatchify(out, p), -1.0, 1.0)


def main():
    if len(sys.argv) != 7:
        sys.stderr.write(__doc__)
        return 2
    wpath, lpath, t, h, w, opath = sys.argv[1:7]
    t, h, w = int(t), int(h), int(w)
    net = Net(read_weights(wpath))
    c = net.W["post_quant_conv.weight"].shape[0]
    lat = np.fromfile(lpath, dtype="<f4").astype(np.float64).reshape(t, c, h, w).transpose(1, 0, 2, 3)
    whole = decode(net, lat, False)
    chunk = decode(net, lat, True)
    err = np.linalg.norm(whole - chunk) / max(np.linalg.norm(chunk), 1e-300)
    if whole.shape != chunk.shape or not err <= 1e-9:
        sys.stderr.write("wanvae_ref: whole-video decode differs from diffusers' chunked loop: shapes %s %s, rel %g\n"
                         % (whole.shape, chunk.shape, err))
        return 1
    whole.transpose(1, 0, 2, 3).astype("<f4").tofile(opath)
    if "EGR_WANVAE_STATS" in os.environ:
        sys.stderr.write("out %s mean %.4f std %.4f frac inside (-0.98, 0.98) %.3f, whole vs chunked %.1e\n" % (
            whole.shape, whole.mean(), whole.std(), (np.abs(whole) < 0.98).mean(), err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
