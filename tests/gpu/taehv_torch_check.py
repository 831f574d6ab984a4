#!/usr/bin/env python3
"""Cross-check egressd's TAEHV decoders (fp32 CPU stream, bf16 GPU) against PyTorch.

    taehv_torch_check.py EGR_BIN_DIR
        (needs EGR_BIN_DIR/egressd-mktaehv and EGR_BIN_DIR/tests/gpu/test_taehv_gpu)

The PyTorch side is an independent build of TAEHV's decoder from torch.nn
layers, following the public architecture (madebyollin/taehv, taehv.py, MIT):
the decoder nn.Sequential with the same indices (so the state dict's
"decoder.N." names load with strict=True), MemBlock(x, past) =
ReLU(conv(cat[x, past]) + x) with past the previous frame at the block's own
depth (zeros first), TGrow = 1x1 conv whose output channels [j*n, (j+1)*n)
become time step j, decode_video's parallel mode, pixel_shuffle, clamp(0, 1)
and the frame trim (cogvideox: none for an even latent count).

For each case: egressd-mktaehv writes seeded random weights (f32, with the
encoder tensors) and decodes seeded latents with egressd's fp32 CPU stream,
one latent frame a feed; test_taehv_gpu --decode decodes them on the GPU (two
latent frames a feed); PyTorch decodes them on the GPU in fp32 with TF32 off.
Checks: frame counts exact (T * t_upscale - trim), CPU fp32 vs PyTorch fp32
rel err < 1e-4, GPU bf16 vs PyTorch fp32 rel err < 2e-2.  PyTorch's own bf16
decode vs its fp32 is printed for scale.  Exit 0 pass, 1 fail, 77 skip.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from safetensors.torch import load_file
except ImportError as e:
    print("taehv_torch_check: %s, skipped" % e)
    sys.exit(77)

# model: (latent channels, patch, decoder_time_upscale, cogvideox)
MODELS = {
    "wan21": (16, 1, (False, True, True), False),
    "wan22": (48, 2, (False, True, True), False),
    "hunyuan": (16, 1, (False, True, True), False),
    "hunyuan15": (32, 2, (False, True, True), False),
    "ltx2": (128, 4, (True, True, True), False),
    "cogvideox": (16, 1, (False, True, True), True),
    "opensora": (16, 1, (False, True, True), False),
}

# (model, latent frames, latent h, latent w, seed)
CASES = [
    ("wan21", 5, 6, 8, 11),
    ("wan22", 4, 6, 8, 12),
    ("hunyuan15", 3, 4, 6, 13),
    ("ltx2", 3, 4, 6, 14),
    ("cogvideox", 4, 6, 8, 15),
    ("cogvideox", 5, 6, 8, 16),
]


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


def conv3(cin, cout, bias=True):
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


class MemBlock(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.conv = nn.Sequential(conv3(2 * n, n), nn.ReLU(), conv3(n, n), nn.ReLU(), conv3(n, n))
        self.skip = nn.Identity()
        self.act = nn.ReLU()

    def forward(self, x, past):
        return self.act(self.conv(torch.cat([x, past], 1)) + self.skip(x))


class TGrow(nn.Module):
    def __init__(self, n, stride):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(n, n * stride, 1, bias=False)

    def forward(self, x):
        t, c, h, w = x.shape
        return self.conv(x).reshape(t * self.stride, c, h, w)


def build_decoder(channels, patch, time_up):
    nf = [256, 128, 64, 64]
    layers = [Clamp(), conv3(channels, nf[0]), nn.ReLU()]
    for k in range(3):
        layers += [MemBlock(nf[k]), MemBlock(nf[k]), MemBlock(nf[k]), nn.Upsample(scale_factor=2),
                   TGrow(nf[k], 2 if time_up[k] else 1), conv3(nf[k], nf[k + 1], bias=False)]
    layers += [nn.ReLU(), conv3(nf[3], 3 * patch * patch)]
    return nn.Sequential(*layers)


def load_decoder(dec, path):
    sd = load_file(path)
    want = dec.state_dict()
    dsd = {}
    for k, v in sd.items():
        if not k.startswith("decoder."):
            continue
        name = k[len("decoder."):]
        if name in want and v.shape[0] > want[name].shape[0] and name.endswith(".conv.weight") and v.ndim == 4 \
                and v.shape[2] == 1:
            v = v[-want[name].shape[0]:]  # TGrow: the last time step's rows (patch_tgrow_layers)
        dsd[name] = v.float()
    dec.load_state_dict(dsd, strict=True)
    return sum(1 for k in sd if k.startswith("encoder."))


@torch.no_grad()
def decode_video(dec, x, patch, cog, trim):
    """x [T, C, h, w] -> frames [F, 3, H, W], as decode_video(parallel=True)."""
    t = x.shape[0]
    for layer in dec:
        if isinstance(layer, MemBlock):
            past = torch.cat([torch.zeros_like(x[:1]), x[:-1]], 0)
            x = layer(x, past)
        else:
            x = layer(x)
    if patch > 1:
        x = F.pixel_shuffle(x, patch)
    x = x.clamp(0, 1)
    return x if (cog and t % 2 == 0) else x[trim:]


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stdout))


def rel(a, ref):
    a = a.astype(np.float64)
    ref = ref.astype(np.float64)
    return float(np.sqrt(((a - ref) ** 2).sum() / max((ref ** 2).sum(), 1e-30))), float(np.abs(a - ref).max())


def one_case(bindir, tmp, case):
    model, t, h, w, seed = case
    channels, patch, time_up, cog = MODELS[model]
    tup = 2 ** sum(time_up)
    up = 8 * patch
    wpath = os.path.join(tmp, "w_%s_%d.safetensors" % (model, seed))
    lpath = os.path.join(tmp, "lat_%s_%d.f32" % (model, seed))
    cpath = os.path.join(tmp, "cpu_%s_%d.f32" % (model, seed))
    gpath = os.path.join(tmp, "gpu_%s_%d.f32" % (model, seed))
    run([os.path.join(bindir, "egressd-mktaehv"), "-o", wpath, "-m", model, "--seed", str(seed), "--dtype", "f32",
         "--encoder"])
    lat = np.random.default_rng(seed).standard_normal((t, channels, h, w)).astype(np.float32)
    lat.tofile(lpath)
    run([os.path.join(bindir, "egressd-mktaehv"), "--decode", wpath, "-m", model, "--latents", lpath, "--frames",
         str(t), "--size", "%dx%d" % (h, w), "-o", cpath])
    run([os.path.join(bindir, "tests", "gpu", "test_taehv_gpu"), "--decode", model, wpath, lpath, str(t),
         "%dx%d" % (h, w), gpath, "2"])

    dec = build_decoder(channels, patch, time_up)
    nenc = load_decoder(dec, wpath)
    dec = dec.cuda().eval()
    x = torch.from_numpy(lat).cuda()
    ref = decode_video(dec, x, patch, cog, tup - 1).cpu().numpy()
    bf = decode_video(dec.to(torch.bfloat16), x.to(torch.bfloat16), patch, cog, tup - 1).float().cpu().numpy()
    expect = t * tup if (cog and t % 2 == 0) else t * tup - (tup - 1)
    shape = (3, h * up, w * up)
    cpu = np.fromfile(cpath, dtype=np.float32)
    gpu = np.fromfile(gpath, dtype=np.float32)
    fs = int(np.prod(shape))
    ok = True
    for name, arr in (("torch", ref), ("cpu", cpu), ("gpu", gpu)):
        n = arr.size // fs if name != "torch" else arr.shape[0]
        if n != expect or (name != "torch" and arr.size % fs):
            print("FAIL %s T=%d: %s has %d frames (%d floats), expected %d" % (model, t, name, n, arr.size, expect))
            ok = False
    if not ok:
        return False
    ref = ref.reshape(-1)
    ec, mc = rel(cpu, ref)
    eg, mg = rel(gpu, ref)
    eb, mb = rel(bf.reshape(-1), ref)
    print("taehv torch check: %-9s T=%d lat %dx%d -> %d frames %dx%d (%d encoder tensors loaded beside): "
          "cpu fp32 vs torch fp32 rel %.2e (max abs %.2e); egressd gpu bf16 vs torch fp32 rel %.2e (max abs %.2e); "
          "torch bf16 vs fp32 rel %.2e" % (model, t, w, h, expect, w * up, h * up, nenc, ec, mc, eg, mg, eb))
    if not ec < 1e-4:
        print("FAIL %s T=%d: cpu vs torch rel err %.3e >= 1e-4" % (model, t, ec))
        ok = False
    if not eg < 2e-2:
        print("FAIL %s T=%d: gpu vs torch rel err %.3e >= 2e-2" % (model, t, eg))
        ok = False
    return ok


def main():
    if not torch.cuda.is_available():
        print("taehv_torch_check: no CUDA device for torch, skipped")
        return 77
    if len(sys.argv) != 2:
        print(__doc__)
        return 64
    ok = True
    # fp32 means fp32: no TF32 in cuDNN's convs
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    with tempfile.TemporaryDirectory(prefix="egr-taehv-torch.") as tmp:
        for case in CASES:
            try:
                ok = one_case(sys.argv[1], tmp, case) and ok
            except RuntimeError as e:
                print("FAIL %s: %s" % (case[0], e))
                ok = False
    print("taehv_torch_check: %s" % ("pass" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
