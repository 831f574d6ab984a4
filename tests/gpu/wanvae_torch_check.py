#!/usr/bin/env python3
"""Cross-check egressd's Wan VAE decoder against diffusers' AutoencoderKLWan.

    wanvae_torch_check.py EGR_BIN_DIR      (needs EGR_BIN_DIR/egressd-mkwanvae)

For each case: egressd-mkwanvae writes seeded random weights (diffusers
layout: post_quant_conv.* and decoder.*) and decodes seeded latents with
egressd's fp32 CPU decoder, once latent frame by latent frame and once in a
single feed (the two must be bit-identical); diffusers' AutoencoderKLWan is
built with the same configuration, loads the same safetensors
(load_state_dict: no unexpected key, only encoder.* / quant_conv.* missing),
and decodes the same latents with vae.decode on the GPU in fp32 with TF32 off
(its own _decode: latent frame by latent frame with feat_cache).  Checks:
frame count exact (1 + 4 (T - 1)), egressd cpu fp32 vs diffusers fp32 rel err
<= 1e-3.  Then egressd's GPU decoder (bf16; EGR_BIN_DIR/tests/gpu/test_wanvae_gpu
--decode), fed 1 and T latent frames at a time, against diffusers fp32: its
error must stay within 1.25x diffusers' own bf16-vs-fp32 error (both printed).

Cases use reduced widths (decoder_base_dim 16) so the CPU side takes seconds;
EGR_WANVAE_FULL=1 adds the real widths (96 for Wan 2.1, 256 for Wan 2.2 5B)
at tiny latent sizes (the CPU decoder then takes a minute or two).
Exit 0 pass, 1 fail, 77 skip (no CUDA, torch or diffusers).
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    from diffusers import AutoencoderKLWan
    from safetensors.torch import load_file
except ImportError as e:
    print("wanvae_torch_check: %s, skipped" % e)
    sys.exit(77)

# (name, egressd preset, decoder_base_dim, latent frames, latent h, latent w, seed)
CASES = [
    ("wan2.1 dim16", "2.1", 16, 3, 6, 8, 1),
    ("wan2.2 dim16", "2.2", 16, 3, 4, 6, 2),
    ("wan2.1 dim16 T=1", "2.1", 16, 1, 5, 7, 3),
    ("wan2.1 dim96 (real widths)", "2.1", 96, 2, 4, 4, 6),
]
FULL = [
    ("wan2.1 dim96 (real widths)", "2.1", 96, 2, 2, 3, 4),
    ("wan2.2 dim256 (real widths)", "2.2", 256, 2, 1, 2, 5),
]


def build_diffusers(preset, dim, z_dim):
    """AutoencoderKLWan as the Wan 2.1 / Wan 2.2 5B configs build it, at width dim."""
    residual = preset == "2.2"
    patch = 2 if residual else None
    kw = dict(base_dim=dim, decoder_base_dim=dim, z_dim=z_dim, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
              attn_scales=[], temperal_downsample=[False, True, True], dropout=0.0, is_residual=residual,
              latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim, patch_size=patch,
              scale_factor_temporal=4, scale_factor_spatial=16 if residual else 8)
    # Released diffusers take in/out_channels already multiplied by patch^2 (the Wan 2.2
    # config says 12); some revisions multiply themselves.  Take whichever gives 12.
    ch = 12 if residual else 3
    vae = AutoencoderKLWan(in_channels=ch, out_channels=ch, **kw)
    if vae.decoder.conv_out.out_channels != ch:
        vae = AutoencoderKLWan(in_channels=3, out_channels=3, **kw)
    assert vae.decoder.conv_out.out_channels == ch, "cannot build a %d-channel conv_out" % ch
    return vae


def load_weights(vae, path):
    sd = load_file(path)
    missing, unexpected = vae.load_state_dict(sd, strict=False)
    bad = [k for k in missing if not (k.startswith("encoder.") or k.startswith("quant_conv."))]
    if unexpected or bad:
        raise RuntimeError("state dict mismatch: unexpected %s, missing decoder keys %s" % (unexpected[:5], bad[:5]))
    return len(sd)


def run(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stdout))


def rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def egressd_decode(mk, d, preset, dim, t, h, w, seed, z_dim):
    wpath = os.path.join(d, "w.safetensors")
    run([mk, "-o", wpath, "--config", preset, "--dim", str(dim), "--seed", str(seed), "--dtype", "f32"])
    rng = np.random.default_rng(seed)
    lat = rng.standard_normal((t, z_dim, h, w)).astype("<f4")    # [T][C][h][w]
    lpath = os.path.join(d, "lat.f32")
    lat.tofile(lpath)
    outs = []
    for chunk in (1, t):
        opath = os.path.join(d, "out%d.f32" % chunk)
        run([mk, "--decode", wpath, "--latents", lpath, "--frames", str(t), "--size", "%dx%d" % (h, w),
             "--chunk", str(chunk), "-o", opath])
        outs.append(np.fromfile(opath, dtype="<f4"))
    return wpath, lat, outs


def egressd_gpu_decode(tool, d, wpath, t, h, w):
    """egressd's GPU decoder on the latents egressd_decode wrote: feeds of 1 and of t"""
    outs = []
    for chunk in (1, t):
        opath = os.path.join(d, "gpu%d.f32" % chunk)
        run([tool, "--decode", wpath, "--latents", os.path.join(d, "lat.f32"), "--frames", str(t), "--size",
             "%dx%d" % (h, w), "--chunk", str(chunk), "-o", opath])
        outs.append(np.fromfile(opath, dtype="<f4"))
    return outs


def check_case(mk, gpu_tool, d, case):
    name, preset, dim, t, h, w, seed = case
    z_dim = 48 if preset == "2.2" else 16
    wpath, lat, (ours, ours_whole) = egressd_decode(mk, d, preset, dim, t, h, w, seed, z_dim)
    vae = build_diffusers(preset, dim, z_dim)
    nt = load_weights(vae, wpath)
    vae = vae.to("cuda", torch.float32).eval()
    z = torch.from_numpy(np.ascontiguousarray(lat.transpose(1, 0, 2, 3)))[None].cuda()    # [1, C, T, h, w]
    with torch.no_grad():
        ref = vae.decode(z).sample.float().cpu().numpy()[0]        # [3, F, H, W]
        ref16 = vae.to(torch.bfloat16).decode(z.bfloat16()).sample.float().cpu().numpy()[0]
    c, f, hh, ww = ref.shape
    frames_ok = f == 1 + 4 * (t - 1) and ours.size == f * 3 * hh * ww
    ok = frames_ok and np.array_equal(ours, ours_whole)
    e_cpu = rel(ours.reshape(f, 3, hh, ww), ref.transpose(1, 0, 2, 3)) if frames_ok else float("inf")
    ok = ok and e_cpu <= 1e-3
    e16 = rel(ref16, ref)
    print("TORCHCHECK %s: %d tensors, %d latent frames %dx%d -> %d frames %dx%d | egressd cpu fp32 vs diffusers "
          "fp32 %.2e (<=1e-3) | one feed == frame by frame: %s | diffusers bf16 vs fp32 %.2e  %s"
          % (name, nt, t, w, h, f, ww, hh, e_cpu, np.array_equal(ours, ours_whole), e16,
             "ok" if ok else "FAIL"))
    if gpu_tool and frames_ok:
        refT = ref.transpose(1, 0, 2, 3)
        errs = [rel(g.reshape(f, 3, hh, ww), refT) if g.size == ours.size else float("inf")
                for g in egressd_gpu_decode(gpu_tool, d, wpath, t, h, w)]
        gok = all(e <= 1.25 * e16 for e in errs)
        print("TORCHCHECK %s: egressd gpu bf16 vs diffusers fp32 %.2e (feeds of 1), %.2e (one feed) | diffusers "
              "bf16 vs fp32 %.2e | ratio %.2f (<=1.25)  %s"
              % (name, errs[0], errs[1], e16, max(errs) / e16, "ok" if gok else "FAIL"))
        ok = ok and gok
    return ok


def main(argv):
    mk = os.path.join(argv[1], "egressd-mkwanvae") if len(argv) == 2 else None
    gpu_tool = os.path.join(argv[1], "tests", "gpu", "test_wanvae_gpu") if mk else None
    if gpu_tool and not os.access(gpu_tool, os.X_OK):
        print("wanvae_torch_check: %s missing: the GPU decoder is not checked" % gpu_tool)
        gpu_tool = None
    if not mk:
        sys.stderr.write(__doc__)
        return 2
    if not torch.cuda.is_available():
        print("wanvae_torch_check: CUDA unavailable, skipped")
        return 77
    if not os.access(mk, os.X_OK):
        print("wanvae_torch_check: %s missing" % mk)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cases = CASES + (FULL if os.environ.get("EGR_WANVAE_FULL") == "1" else [])
    bad = 0
    with tempfile.TemporaryDirectory(prefix="egr-wanvae-torch.") as d:
        for case in cases:
            try:
                bad += not check_case(mk, gpu_tool, d, case)
            except Exception as e:     # one broken case must not hide the others
                print("TORCHCHECK %s: error: %s  FAIL" % (case[0], e))
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
