#!/usr/bin/env python3
"""Independent numpy implementation of egressd's latent2rgb decoder and its
y4m colour conversion, used as the oracle for the integration tests.

It follows the definition in daemon/frame.h (not the C code): float32
arithmetic, one rounding per add/multiply in the documented order, bilinear
x8 with half-pixel centres, BT.601 limited-range I420 in integers.

  l2r_ref.py LATENTS.npy y4m|png OUT.raw [--weights w0,w1,...] [--bias b0,b1,b2]
             [--preset sd15|wan21] [--layout tchw|bcthw|btchw]

writes every frame back to back: I420 planes (y4m) or RGB24 (png).  5-D
latents are read as the job key layout says (default: 4-D tchw, 5-D
bcthw, batch 1 only).  The presets are typed in here from their published
sources, independently of daemon/decode/l2r_preset.c.
"""
import argparse
import sys

import numpy as np

SD_W = np.array([[0.3512, 0.2297, 0.3227],
                 [0.3250, 0.4974, 0.2350],
                 [-0.2829, 0.1762, 0.2721],
                 [-0.2120, -0.2616, -0.7177]], dtype=np.float32)
F = np.float32

# Wan 2.1 latent -> RGB factors and bias as ../shared/data/README.md lists them
# (the widely used set, ComfyUI's latent_formats.py Wan21)
WAN21_W = np.array([[-0.1299, -0.1692, 0.2932], [0.0671, 0.0406, 0.0442], [0.3568, 0.2548, 0.1747],
                    [0.0372, 0.2344, 0.1420], [0.0313, 0.0189, -0.0328], [0.0296, -0.0956, -0.0665],
                    [-0.3477, -0.4059, -0.2925], [0.0166, 0.1902, 0.1975], [-0.0412, 0.0267, -0.1364],
                    [-0.1293, 0.0740, 0.1636], [0.0680, 0.3019, 0.1128], [0.0032, 0.0581, 0.0639],
                    [-0.1251, 0.0927, 0.1699], [0.0060, -0.0633, 0.0005], [0.3477, 0.2275, 0.2950],
                    [0.1984, 0.0913, 0.1861]], dtype=np.float32)
WAN21_B = np.array([-0.1835, -0.0868, -0.3360], dtype=np.float32)
PRESETS = {"sd15": (SD_W, np.zeros(3, dtype=np.float32)), "wan21": (WAN21_W, WAN21_B)}


def src_index(n_out, n_in):
    o = np.arange(n_out)
    num = 2 * o - 7                      # source coordinate = num / 16
    i0 = np.clip(num // 16, 0, n_in - 1)
    frac = (num % 16).astype(np.float32) * F(0.0625)
    frac[num <= 0] = 0
    i0[num <= 0] = 0
    edge = (num // 16) >= n_in - 1
    i0[edge] = n_in - 1
    frac[edge] = 0
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, frac


def decode(lat, w, b):
    c, h, wd = lat.shape
    lin = np.empty((h, wd, 3), dtype=np.float32)
    for k in range(3):
        a = np.full((h, wd), b[k], dtype=np.float32)
        for ch in range(c):
            a = a + lat[ch] * w[ch, k]   # two roundings, like the C code
        lin[:, :, k] = a
    y0, y1, fy = src_index(8 * h, h)
    x0, x1, fx = src_index(8 * wd, wd)
    fx = fx[None, :, None]
    fy = fy[:, None, None]
    v00 = lin[y0][:, x0]
    v01 = lin[y0][:, x1]
    v10 = lin[y1][:, x0]
    v11 = lin[y1][:, x1]
    top = v00 + (v01 - v00) * fx
    bot = v10 + (v11 - v10) * fx
    v = top + (bot - top) * fy
    v = np.where(v > F(-1), v, F(-1))    # NaN -> -1 too
    v = np.minimum(v, F(1))
    t = (v + F(1)) * F(127.5)
    t = t + F(0.5)
    return t.astype(np.int32).astype(np.uint8)


def to_i420(rgb):
    r, g, bl = (rgb[:, :, i].astype(np.int32) for i in range(3))
    y = ((66 * r + 129 * g + 25 * bl + 128) >> 8) + 16
    def mean(p):
        return (p[0::2, 0::2] + p[0::2, 1::2] + p[1::2, 0::2] + p[1::2, 1::2] + 2) >> 2
    R, G, B = mean(r), mean(g), mean(bl)
    u = ((-38 * R - 74 * G + 112 * B + 128) >> 8) + 128
    v = ((112 * R - 94 * G - 18 * B + 128) >> 8) + 128
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()]).astype(np.uint8)


def as_tchw(lat, layout):
    """[frames, channels, h, w] from a 4-D or 5-D array, as egressd reads it"""
    layout = layout or ("tchw" if lat.ndim == 4 else "bcthw")
    if lat.ndim != (4 if layout == "tchw" else 5):
        sys.exit("layout %s does not fit shape %s" % (layout, lat.shape))
    if lat.ndim == 5 and lat.shape[0] != 1:
        sys.exit("batch of %d: egressd decodes one video per job" % lat.shape[0])
    if layout == "bcthw":
        return lat[0].transpose(1, 0, 2, 3)
    return lat[0] if layout == "btchw" else lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("latents")
    ap.add_argument("format", choices=["y4m", "png"])
    ap.add_argument("out")
    ap.add_argument("--weights")
    ap.add_argument("--bias")
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--layout", choices=["tchw", "bcthw", "btchw"])
    a = ap.parse_args()
    lat = as_tchw(np.load(a.latents).astype(np.float32), a.layout)
    c = lat.shape[1]
    w = SD_W if not a.weights else np.array([float(x) for x in a.weights.split(",")], dtype=np.float32).reshape(c, 3)
    b = np.zeros(3, dtype=np.float32) if not a.bias else np.array([float(x) for x in a.bias.split(",")], dtype=np.float32)
    if a.preset:
        w, b = PRESETS[a.preset]
        if w.shape[0] != c:
            sys.exit("preset %s is for %d channels; the latents have %d" % (a.preset, w.shape[0], c))
    with open(a.out, "wb") as f:
        for fr in lat:
            rgb = decode(fr, w, b)
            f.write((to_i420(rgb) if a.format == "y4m" else rgb).tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
