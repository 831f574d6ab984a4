#!/usr/bin/env python3
"""Independent numpy (float64) TAEHV decoder, the CI oracle for daemon/decode/taehv.c.

    taehv_ref.py WEIGHTS.safetensors MODEL LATENTS.f32 T C H W OUT.f32 [TIME SPACE]

MODEL: wan21 wan22 hunyuan hunyuan15 ltx2 cogvideox opensora.  LATENTS.f32:
raw little-endian float32 [T][C][H][W] (TAEHV's NTCHW, N = 1).  OUT.f32
receives decode_video's output, [T_out][3][H_out][W_out] float32 (pixel-
shuffled, clamped to [0, 1], the first frames trimmed).  TIME / SPACE: the
decoder_time_upscale / decoder_space_upscale arguments as three 0/1 digits
("011"), each digit overriding the default ('-' keeps it).

Written from madebyollin/taehv's taehv.py, not from egressd's plan: the
model's checkpoint file name goes through TAEHV.__init__'s name rules, the
decoder is the nn.Sequential applied as apply_model_with_memblocks_parallel
does (whole sequence, layer by layer, MemBlock memory = the input shifted one
step in time), the state dict goes through patch_tgrow_layers.  The
safetensors file is parsed with the json module (taesd_ref.py's parser, not
egressd's).
Exit 77 when numpy is missing (the caller skips).
"""
import os
import sys

try:
    import numpy as np
except ImportError:
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taesd_ref import load_safetensors  # noqa: E402  (json-module safetensors parser, F16/F32)

# egressd's model names -> the public checkpoint each one stands for
CHECKPOINT = {"wan21": "taew2_1", "wan22": "taew2_2", "hunyuan": "taehv", "hunyuan15": "taehv1_5",
              "ltx2": "taeltx_2", "cogvideox": "taecvx", "opensora": "taeos1_3"}


class Cfg:
    """TAEHV.__init__'s decoder-side settings for a checkpoint path."""

    def __init__(self, checkpoint_path, decoder_time_upscale=(False, True, True),
                 decoder_space_upscale=(True, True, True), patch_size=1, latent_channels=16):
        self.patch_size = patch_size
        self.latent_channels = latent_channels
        if len(decoder_time_upscale) == 2:
            decoder_time_upscale = (False, *decoder_time_upscale)
        self.is_cogvideox = "taecvx" in checkpoint_path
        if "taew2_2" in checkpoint_path:
            self.patch_size, self.latent_channels = 2, 48
        if "taehv1_5" in checkpoint_path:
            self.patch_size, self.latent_channels = 2, 32
        if "taeltx" in checkpoint_path:
            self.patch_size, self.latent_channels, decoder_time_upscale = 4, 128, (True, True, True)
        assert "_super" not in checkpoint_path
        self.time_up = decoder_time_upscale
        self.space_up = decoder_space_upscale


def decoder_layers(cfg):
    """The decoder's nn.Sequential as (kind, args) in index order."""
    n_f = [256, 128, 64, 64]
    L = [("clamp",), ("conv", cfg.latent_channels, n_f[0], True), ("relu",)]
    for s in range(3):
        L += [("mem", n_f[s])] * 3
        L += [("up", 2 if cfg.space_up[s] else 1), ("tgrow", n_f[s], 2 if cfg.time_up[s] else 1),
              ("conv", n_f[s], n_f[s + 1], False)]
    L += [("relu",), ("conv", n_f[3], 3 * cfg.patch_size ** 2, True)]
    return L


def expected_state(cfg):
    """name -> shape of the decoder's state dict."""
    sd = {}
    for i, l in enumerate(decoder_layers(cfg)):
        if l[0] == "conv":
            sd[f"decoder.{i}.weight"] = (l[2], l[1], 3, 3)
            if l[3]:
                sd[f"decoder.{i}.bias"] = (l[2],)
        elif l[0] == "mem":
            for j, cin in ((0, 2 * l[1]), (2, l[1]), (4, l[1])):
                sd[f"decoder.{i}.conv.{j}.weight"] = (l[1], cin, 3, 3)
                sd[f"decoder.{i}.conv.{j}.bias"] = (l[1],)
        elif l[0] == "tgrow":
            sd[f"decoder.{i}.conv.weight"] = (l[1] * l[2], l[1], 1, 1)
    return sd


def patch_tgrow_layers(cfg, sd):
    want = expected_state(cfg)
    for i, l in enumerate(decoder_layers(cfg)):
        if l[0] == "tgrow":
            key = f"decoder.{i}.conv.weight"
            if sd[key].shape[0] > want[key][0]:
                sd[key] = sd[key][-want[key][0]:]   # the last-timestep output channels
    for key, shape in want.items():
        assert sd[key].shape == shape, (key, sd[key].shape, shape)
    return sd


def conv3x3(x, w, b):
    """x [T,Cin,H,W], w [Cout,Cin,3,3], zero padding 1 (cross-correlation, as torch)."""
    t, cin, h, wd = x.shape
    xp = np.zeros((t, cin, h + 2, wd + 2))
    xp[:, :, 1:-1, 1:-1] = x
    out = np.empty((t, w.shape[0], h, wd))
    for f in range(t):
        cols = np.empty((cin, 3, 3, h, wd))
        for ky in range(3):
            for kx in range(3):
                cols[:, ky, kx] = xp[f, :, ky:ky + h, kx:kx + wd]
        out[f] = np.tensordot(w, cols, axes=([1, 2, 3], [0, 1, 2]))
    if b is not None:
        out += b[None, :, None, None]
    return out


def relu(x):
    return np.maximum(x, 0.0)


def decode_video(cfg, W, x):
    """x [T,C,H,W] -> [T_out,3,H*,W*]"""
    T = x.shape[0]
    for i, l in enumerate(decoder_layers(cfg)):
        k = l[0]
        if k == "clamp":
            x = np.tanh(x / 3) * 3
        elif k == "relu":
            x = relu(x)
        elif k == "conv":
            x = conv3x3(x, W[f"decoder.{i}.weight"], W.get(f"decoder.{i}.bias"))
        elif k == "mem":
            # memory: the input one step back in time, zeros first (F.pad(...)[:, :T])
            past = np.concatenate([np.zeros_like(x[:1]), x[:-1]], 0)
            p = f"decoder.{i}.conv."
            y = relu(conv3x3(np.concatenate([x, past], 1), W[p + "0.weight"], W[p + "0.bias"]))
            y = relu(conv3x3(y, W[p + "2.weight"], W[p + "2.bias"]))
            y = conv3x3(y, W[p + "4.weight"], W[p + "4.bias"])
            x = relu(y + x)
        elif k == "up":
            x = x.repeat(l[1], axis=2).repeat(l[1], axis=3)
        elif k == "tgrow":
            w = W[f"decoder.{i}.conv.weight"][:, :, 0, 0]
            y = np.einsum("oc,tchw->tohw", w, x)
            x = y.reshape(-1, l[1], *y.shape[2:])   # [T*stride, C, H, W]
    # postprocess_output_frames: pixel_shuffle, clamp_(0, 1)
    p = cfg.patch_size
    nt, c, h, w = x.shape
    x = x.reshape(nt, c // (p * p), p, p, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(nt, c // (p * p), h * p, w * p)
    x = np.clip(x, 0, 1)
    if cfg.is_cogvideox and T % 2 == 0:
        return x
    t_upscale = 2 ** sum(1 for l in decoder_layers(cfg) if l[0] == "tgrow" and l[2] == 2)
    return x[t_upscale - 1:]


def switches(s, default):
    if s is None:
        return default
    return tuple(default[k] if s[k] == "-" else s[k] == "1" for k in range(3))


def main():
    if len(sys.argv) not in (9, 11):
        sys.stderr.write(__doc__)
        return 2
    wpath, model, lpath, t, c, h, w, opath = sys.argv[1:9]
    t, c, h, w = int(t), int(c), int(h), int(w)
    time_s = sys.argv[9] if len(sys.argv) == 11 else None
    space_s = sys.argv[10] if len(sys.argv) == 11 else None
    base = Cfg(CHECKPOINT[model])
    cfg = Cfg(CHECKPOINT[model], switches(time_s, (False, True, True)), switches(space_s, (True, True, True)))
    assert cfg.latent_channels == c == base.latent_channels
    W = patch_tgrow_layers(cfg, {k: v for k, v in load_safetensors(wpath).items() if k.startswith("decoder.")})
    lat = np.fromfile(lpath, dtype="<f4").astype(np.float64).reshape(t, c, h, w)
    out = decode_video(cfg, W, lat).astype("<f4")
    out.tofile(opath)
    if "EGR_TAEHV_STATS" in os.environ:
        sys.stderr.write("%s: out %s mean %.4f std %.4f min %.4f max %.4f frac in (0,1) %.3f\n" % (
            model, out.shape, out.mean(), out.std(), out.min(), out.max(), ((out > 0) & (out < 1)).mean()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
