#!/usr/bin/env python3
"""diffusers' AutoencoderKLWan as the peer of egressd's Wan VAE decoder (make bench-wan).

    wan_peers.py run --tsv ROWS.tsv --case ID --config 2.1|2.2 --dim N
                     --weights W.safetensors --latents L.npy --out DIR
                     [--modes decode,naive,copy] [--reps 2] [--warm 3]
                     [--workers 4] [--host-buffers 2] [--fps 16]
                     [--ref EGRESSD.y4m] [--check-frames 16] [--deadline-s S]
    wan_peers.py table RESDIR      RESDIR/wan.tsv (+ wan_cases.tsv) ->
                                   RESDIR/extra.md (the table) and
                                   RESDIR/summary.txt (targets judged)

run: AutoencoderKLWan built as tests/gpu/wanvae_torch_check.py's
build_diffusers builds it (the Wan 2.1 or the Wan 2.2 5B configuration at
decoder width --dim), the same seeded safetensors egressd decodes loaded into
it (no unexpected key, only encoder.* / quant_conv.* missing), then bf16 on
the GPU with the encoder dropped (decode never runs it: the peak memory is
the decoder's, like egressd's).  The latents are the .npy egressd decodes
([1, C, T, h, w], cast to bf16).  cudnn.benchmark on; one untimed warm-up
decode of --warm latent frames.  Modes:

  decode  vae.decode(z) alone, timed with torch.cuda.synchronize(), best of
          --reps (fewer when --deadline-s is short)
  naive   what a script does with it: vae.decode(z), then 8 frames at a time
          to I420 on the GPU, .cpu(), written to a y4m file; fsync at the end
  copy    the copy-stream recipe: diffusers' _decode loop unrolled (clear_cache,
          post_quant_conv, vae.decoder on one latent frame at a time with
          feat_cache, first_chunk for frame 0, unpatchify, clamp) on a compute
          stream; each latent frame's frames to I420 in one of 2 device
          buffers, copied on a side stream into one of --host-buffers pinned
          buffers, CUDA events as the only barriers, --workers writer threads
          (os.pwritev at the frames' offsets); fsync at the end

The y4m bytes are egressd's (header, I420 BT.601 limited, v = (x + 1) / 2
quantised as egr_wanvae_quant_u8; tests/bench/peers.py's to_i420).  Each mode
appends one row to --tsv (columns of tests/bench/bench-wan.sh): frames/s and
torch.cuda.max_memory_allocated over the mode; "skipped" rows (no torch, no
CUDA, no diffusers, the deadline) say why.  With --ref, the written frames
are compared with egressd's (WANPEERCHECK lines: both bf16, a few codes
apart).  Exit 0, 1 when a mode failed, 77 when everything was skipped.

table: standard library only (re-table a run's files anywhere).
"""
import argparse
import concurrent.futures
import csv
import inspect
import os
import sys
import time

COLS = ["case", "impl", "kind", "chunk", "status", "latent_frames", "frames", "frames_per_s", "wall_s",
        "peak_gib", "kernel_util", "detail"]
MODES = ("decode", "naive", "copy")
GIB = 1024.0 ** 3


def add_row(tsv, **kw):
    with open(tsv, "a") as fh:
        fh.write("\t".join(str(kw.get(c, "")).replace("\t", " ").replace("\n", " ") for c in COLS) + "\n")


def skip_all(a, why, status="skipped"):
    print("wan_peers: %s: diffusers rows %s" % (why, status), flush=True)
    for m in a.modes.split(","):
        add_row(a.tsv, case=a.case, impl="diffusers", kind=m, status=status, detail=why)
    return 77 if status == "skipped" else 1


# ---------------------------------------------------------------------------
# run


def load_stack(a):
    """torch, the peer helpers, the model: (torch, helpers dict, vae) or raises ImportError."""
    import numpy as np  # noqa: F401
    import torch
    import diffusers  # noqa: F401
    import safetensors  # noqa: F401
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    sys.path.insert(0, os.path.join(here, "..", "gpu"))
    import peers
    import wanvae_torch_check as wtc
    from diffusers.models.autoencoders import autoencoder_kl_wan as akw
    h = dict(to_i420=peers.to_i420, y4m_header=peers.y4m_header, pwritev_all=peers.pwritev_all,
             finish=peers.finish, read_y4m_frames=peers.read_y4m_frames, TAG=peers.TAG,
             unpatchify=getattr(akw, "unpatchify", None), diffusers=diffusers.__version__)
    return torch, h, wtc


def build(torch, wtc, a):
    z_dim = 48 if a.config == "2.2" else 16
    with torch.device("cuda"):	# random init on the GPU: seconds, not a minute of CPU
        vae = wtc.build_diffusers(a.config, a.dim, z_dim)
    wtc.load_weights(vae, a.weights)
    vae.encoder = None		# clear_cache() counts from _cached_conv_counts, decode never runs it
    vae.quant_conv = None
    vae = vae.to("cuda", torch.bfloat16).eval()	# anything the device context left on the CPU too
    torch.cuda.empty_cache()
    return vae


def frames_i420(torch, h, out):
    """[1, 3, f, H, W] in [-1, 1] -> [f, H*W*3/2] uint8, egressd's quantiser and colour."""
    return h["to_i420"]((out[0].transpose(0, 1).float() + 1.0) * 0.5)


def timed(torch, fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    r = fn()
    torch.cuda.synchronize()
    return r, time.perf_counter() - t0


def mode_decode(torch, h, vae, z, ctx):
    best, nf = None, 0
    for r in range(ctx["reps"]):
        if r and ctx["left"]() < 1.3 * best:
            ctx["notes"].append("best of %d (the deadline left no room for another)" % r)
            break
        out, dt = timed(torch, lambda: vae.decode(z).sample)
        nf = out.shape[2]
        del out
        best = dt if best is None else min(best, dt)
        print("wan_peers: decode rep %d: %d frames in %.3f s" % (r, nf, dt), flush=True)
    else:
        ctx["notes"].append("best of %d" % ctx["reps"])
    return nf, best


def mode_naive(torch, h, vae, z, ctx):
    path = ctx["path"]
    tmp = path + ".tmp"
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = vae.decode(z).sample
    nf = out.shape[2]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(os.dup(fd), "wb", buffering=1 << 20) as f:
        f.write(ctx["hdr"])
        for i in range(0, nf, 8):
            fr = frames_i420(torch, h, out[:, :, i:i + 8]).cpu().numpy()
            for k in range(fr.shape[0]):
                f.write(h["TAG"])
                f.write(fr[k].data)
    h["finish"](fd, tmp, path)
    return nf, time.perf_counter() - t0


def decoder_step(vae, x, i, first_kw):
    """One iteration of AutoencoderKLWan._decode's loop (diffusers 0.42)."""
    vae._conv_idx = [0]
    kw = {"first_chunk": True} if i == 0 and first_kw else {}
    return vae.decoder(x[:, :, i:i + 1, :, :], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, **kw)


def side_copy(torch, comp, copy, src, dst):
    """dst <- src on the copy stream after what comp has queued; returns the event that ends the copy."""
    ready = torch.cuda.Event()
    ready.record(comp)
    copy.wait_event(ready)
    with torch.cuda.stream(copy):
        dst.copy_(src, non_blocking=True)
    done = torch.cuda.Event(blocking=True)
    done.record(copy)
    return done


def mode_copy(torch, h, vae, z, ctx):
    T, fb = z.shape[2], ctx["fb"]
    ofb = len(h["TAG"]) + fb
    nvram, nhost = 2, ctx["host_buffers"]
    comp, copy = torch.cuda.Stream(), torch.cuda.Stream()
    host = [torch.empty((4, fb), dtype=torch.uint8).pin_memory() for _ in range(nhost)]
    host_np = [b.numpy() for b in host]
    dout = [torch.empty((4, fb), dtype=torch.uint8, device="cuda") for _ in range(nvram)]
    copied, fut = [None] * nvram, [None] * nhost
    first_kw = "first_chunk" in inspect.signature(vae.decoder.forward).parameters
    patch = vae.config.patch_size
    path = ctx["path"]
    tmp = path + ".tmp"
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=ctx["workers"])

    def write(ev, j, first, n):
        ev.synchronize()	# GIL released while waiting
        bufs = []
        for k in range(n):
            bufs += [h["TAG"], host_np[j][k]]
        h["pwritev_all"](fd, bufs, len(ctx["hdr"]) + first * ofb)

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, ctx["hdr"], 0)
    comp.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(comp):
        vae.clear_cache()
        x = vae.post_quant_conv(z)
    first = 0
    for i in range(T):
        k, j = i % nvram, i % nhost
        if fut[j] is not None:		# host buffer j still being written
            fut[j].result()
        with torch.cuda.stream(comp):
            out = decoder_step(vae, x, i, first_kw)
            if patch is not None:
                out = h["unpatchify"](out, patch_size=patch)
            out = torch.clamp(out, min=-1.0, max=1.0)
            n = out.shape[2]
            if copied[k] is not None:	# device buffer k still being copied out
                comp.wait_event(copied[k])
            dout[k][:n].copy_(frames_i420(torch, h, out))
        copied[k] = side_copy(torch, comp, copy, dout[k][:n], host[j][:n])
        fut[j] = pool.submit(write, copied[k], j, first, n)
        first += n
    for f in fut:
        if f is not None:
            f.result()
    vae.clear_cache()
    h["finish"](fd, tmp, path)
    dt = time.perf_counter() - t0
    pool.shutdown()
    return first, dt


def check_ref(h, a, mode, path, nf):
    import numpy as np
    k = min(a.check_frames, nf)
    h0, mine = h["read_y4m_frames"](path, k)
    h1, ref = h["read_y4m_frames"](a.ref, k)
    if mine.shape != ref.shape:
        print("WANPEERCHECK case=%s mode=%s vs egressd: frame shapes differ %s %s" % (a.case, mode, mine.shape,
                                                                                     ref.shape), flush=True)
        return
    d = np.abs(mine.astype(np.int16) - ref.astype(np.int16))
    print("WANPEERCHECK case=%s mode=%s vs egressd: %d frames, header %s, max |diff| %d, %.2f%% of bytes differ, "
          "mean |diff| %.4f" % (a.case, mode, k, "equal" if h0 == h1 else "DIFFERS", d.max(),
                               100.0 * (d > 0).mean(), d.mean()), flush=True)


def one_mode(torch, h, vae, z, a, mode, ctx):
    """Runs MODE, appends its row; 0 done, 1 failed."""
    fn = {"decode": mode_decode, "naive": mode_naive, "copy": mode_copy}[mode]
    ctx["notes"] = []
    ctx["path"] = os.path.join(a.out, "wanpeer-%s-%s.y4m" % (a.case, mode))
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    try:
        with torch.inference_mode():
            nf, dt = fn(torch, h, vae, z, ctx)
        torch.cuda.synchronize()
    except Exception as e:	# out of memory included: the next modes still run
        vae.clear_cache()
        torch.cuda.empty_cache()
        add_row(a.tsv, case=a.case, impl="diffusers", kind=mode, status="failed", latent_frames=z.shape[2],
                detail="%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
        print("wan_peers: %s failed: %s" % (mode, e), flush=True)
        return 1
    peak = torch.cuda.max_memory_allocated()
    ctx["secs"] = max(ctx.get("secs", 0.0), dt)
    if mode != "decode":
        size = os.path.getsize(ctx["path"])
        want = len(ctx["hdr"]) + nf * (len(h["TAG"]) + ctx["fb"])
        if size != want:
            ctx["notes"].append("WROTE %d BYTES, expected %d" % (size, want))
        if a.ref and os.path.exists(a.ref):
            check_ref(h, a, mode, ctx["path"], nf)
        os.unlink(ctx["path"])
    notes = ctx["notes"] + ["weights + latents %.2f GiB of it" % (base / GIB)]
    add_row(a.tsv, case=a.case, impl="diffusers", kind=mode, status="done", latent_frames=z.shape[2], frames=nf,
            frames_per_s="%.3f" % (nf / dt), wall_s="%.6f" % dt, peak_gib="%.3f" % (peak / GIB),
            detail="; ".join(notes))
    print("WANPEER case=%s mode=%s frames=%d wall_s=%.6f frames_per_s=%.3f peak_gib=%.3f" % (
        a.case, mode, nf, dt, nf / dt, peak / GIB), flush=True)
    return 0


def run(a):
    t_start = time.monotonic()
    try:
        torch, h, wtc = load_stack(a)
    except ImportError as e:
        return skip_all(a, "%s (import failed)" % e)
    except SystemExit:		# wanvae_torch_check exits 77 when its own imports fail
        return skip_all(a, "tests/gpu/wanvae_torch_check.py could not import what it needs")
    if not torch.cuda.is_available():
        return skip_all(a, "torch %s sees no CUDA device" % torch.__version__)
    import numpy as np
    torch.backends.cudnn.benchmark = True
    try:
        vae = build(torch, wtc, a)
        lat = np.load(a.latents)
        z = torch.from_numpy(np.ascontiguousarray(lat)).to("cuda", torch.bfloat16)
        T = z.shape[2]
        with torch.inference_mode():	# cuDNN autotuning, the allocator
            timed(torch, lambda: vae.decode(z[:, :, :min(a.warm, T)]).sample)
    except Exception as e:
        return skip_all(a, "building or warming up AutoencoderKLWan: %s: %s" % (type(e).__name__, e), "failed")
    scale = 16 if a.config == "2.2" else 8
    H, W = z.shape[3] * scale, z.shape[4] * scale
    print("wan_peers: %s, torch %s, diffusers %s; Wan %s dim %d, %d latent frames -> %dx%d, bf16, warm-up %.1f s" % (
        torch.cuda.get_device_name(0), torch.__version__, h["diffusers"], a.config, a.dim, T, W, H,
        time.monotonic() - t_start), flush=True)
    deadline = time.monotonic() + a.deadline_s if a.deadline_s else None
    ctx = dict(reps=max(1, a.reps), workers=a.workers, host_buffers=a.host_buffers, fb=H * W * 3 // 2,
               hdr=h["y4m_header"](W, H, "%s:1" % a.fps),
               left=lambda: deadline - time.monotonic() if deadline else 1e9)
    bad = 0
    for mode in a.modes.split(","):
        if mode not in MODES:
            print("wan_peers: unknown mode %r" % mode)
            return 2
        if ctx.get("secs") and ctx["left"]() < 1.5 * ctx["secs"]:
            add_row(a.tsv, case=a.case, impl="diffusers", kind=mode, status="skipped", latent_frames=T,
                    detail="time budget (%.0f s left, a decode takes %.0f s)" % (ctx["left"](), ctx["secs"]))
            print("wan_peers: %s skipped: time budget" % mode, flush=True)
            continue
        bad += one_mode(torch, h, vae, z, a, mode, ctx)
    return 1 if bad else 0


# ---------------------------------------------------------------------------
# table (tests/bench/table.py's helpers: standard library only)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table import f as fmt, md_table, met, num, read_tsv  # noqa: E402


RUN_NAMES = {
    ("egressd", "e2e"): "end to end: daemon, y4m to disk, chunk_frames %s (best of the timed jobs)",
    ("egressd", "cold"): "first job after start (weights load, cuDNN search, warm-up), chunk_frames %s",
    ("egressd", "alone"): "decode alone (test_wanvae_gpu --bench, feeds of %s)",
    ("diffusers", "decode"): "vae.decode alone, bf16",
    ("diffusers", "naive"): "naive loop: vae.decode, I420, .cpu(), write y4m",
    ("diffusers", "copy"): "copy-stream recipe: frame by frame, side-stream D2H, writer threads",
}


def run_name(r, names=None):
    name = (names or RUN_NAMES).get((r["impl"], r["kind"]), r["kind"])
    return name % r["chunk"] if "%s" in name else name


def read_cases(d, name="wan_cases.tsv"):
    """ID -> the case's label, from d/name (tests/bench/taehv_peers.py reads its own)."""
    path = os.path.join(d, name)
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return {r[0]: r[1] for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) >= 2}


def pick(rows, case, impl, kind, chunk=None):
    """The done row with the most frames/s of (case, impl, kind[, chunk]), or None."""
    best = None
    for r in rows:
        if (r["case"], r["impl"], r["kind"]) != (case, impl, kind) or r["status"] != "done":
            continue
        if chunk is not None and r["chunk"] != str(chunk):
            continue
        if best is None or (num(r["frames_per_s"]) or 0) > (num(best["frames_per_s"]) or 0):
            best = r
    return best


def why_missing(rows, case, impl, kind):
    for r in rows:
        if (r["case"], r["impl"], r["kind"]) == (case, impl, kind):
            return "%s: %s" % (r["status"], r["detail"] or "no reason given")
    return "not run"


def diffusers_fps(rows, case):
    """diffusers' decode alone of the case: f/s or None (table_md's default reference)."""
    r = pick(rows, case, "diffusers", "decode")
    return num(r["frames_per_s"]) if r else None


def table_md(rows, cases, ref_fps=diffusers_fps, ref_label="× diffusers decode alone", names=None):
    """The rows as a markdown table; ratios against ref_fps(rows, case) (tests/bench/taehv_peers.py passes
    PyTorch's), runs named by names (run_name's)."""
    hdr = ["case", "implementation", "run", "latent frames → frames", "frames/s", ref_label,
           "peak GPU memory GiB", "GPU kernel util", "notes"]
    body = []
    for r in rows:
        done = r["status"] == "done"
        fps = num(r["frames_per_s"]) if done else None
        ref = ref_fps(rows, r["case"])
        name = run_name(r, names) if done else "%s (%s)" % (run_name(r, names), r["status"])
        lf = "%s → %s" % (r["latent_frames"] or "?", r["frames"] or "?") if done else (r["latent_frames"] or "—")
        body.append([cases.get(r["case"], r["case"]), r["impl"], name, lf, fmt(fps, "%.1f"),
                     fmt(fps / ref if fps and ref else None, "%.2f×"),
                     fmt(num(r["peak_gib"]) if done else None, "%.2f"),
                     fmt(num(r["kernel_util"]) if done else None, "%.4f"), (r["detail"] or "").replace("|", "/")])
    return md_table(hdr, body)


def summary_e2e(rows, cases):
    """Wan 2.1 832x480: egressd end to end >= 80 f/s and >= 2x diffusers bf16 decode alone."""
    lab = cases.get("wan21", "Wan 2.1 832×480")
    e2e, ref = pick(rows, "wan21", "egressd", "e2e"), pick(rows, "wan21", "diffusers", "decode")
    if not e2e:
        return "%s: egressd end to end not measured (%s)" % (lab, why_missing(rows, "wan21", "egressd", "e2e"))
    fps = num(e2e["frames_per_s"])
    parts = ["egressd end to end (chunk_frames %s) %.1f f/s [target ≥ 80: %s]" % (e2e["chunk"], fps, met(fps >= 80))]
    if ref:
        x = fps / num(ref["frames_per_s"])
        parts.append("%.2f× diffusers bf16 decode alone (%.1f f/s) [target ≥ 2: %s]" % (
            x, num(ref["frames_per_s"]), met(x >= 2)))
    else:
        parts.append("diffusers decode alone not measured (%s): the 2× target is NOT judged" %
                     why_missing(rows, "wan21", "diffusers", "decode"))
    for impl, kind, what in (("egressd", "alone", "decode alone (feeds of %s)"), ("diffusers", "naive", "naive loop"),
                             ("diffusers", "copy", "copy-stream recipe")):
        r = pick(rows, "wan21", impl, kind)
        if r:
            parts.append("%s %s %.1f f/s" % (impl, what.replace("%s", r["chunk"]), num(r["frames_per_s"])))
    return "%s: %s" % (lab, "; ".join(parts))


def summary_memory(rows, cases):
    """Memory flat in video length: egressd's 801-frame peak within 10% of its 81-frame peak."""
    out = []
    for impl, kind in (("egressd", "alone"), ("diffusers", "decode")):
        short = pick(rows, "wan21", impl, kind, 1 if impl == "egressd" else None)
        long_ = pick(rows, "wan21-long", impl, kind, 1 if impl == "egressd" else None)
        if not (short and long_ and num(short["peak_gib"]) and num(long_["peak_gib"])):
            out.append("%s %s memory in video length: not measured (%s)" % (
                impl, kind.replace("alone", "decode alone"),
                why_missing(rows, "wan21-long", impl, kind) if not long_ else "no memory figure"))
            continue
        a, b = num(short["peak_gib"]), num(long_["peak_gib"])
        line = "%s %s memory: %s frames %.2f GiB, %s frames %.2f GiB = %.2f×" % (
            impl, "decode alone" if impl == "egressd" else "vae.decode", short["frames"], a, long_["frames"], b, b / a)
        if impl == "egressd":
            line += " [target ≤ 1.10 (flat in video length): %s]" % met(b <= 1.10 * a)
        out.append(line)
    return out


def summary_22(rows, cases):
    lab = cases.get("wan22", "Wan 2.2 5B")
    eg, ref = pick(rows, "wan22", "egressd", "alone"), pick(rows, "wan22", "diffusers", "decode")
    if not eg or not ref:
        return "%s: egressd %s, diffusers %s" % (
            lab, "%.1f f/s" % num(eg["frames_per_s"]) if eg else why_missing(rows, "wan22", "egressd", "alone"),
            "%.1f f/s" % num(ref["frames_per_s"]) if ref else why_missing(rows, "wan22", "diffusers", "decode"))
    a, b = num(eg["frames_per_s"]), num(ref["frames_per_s"])
    return "%s: egressd decode alone %.1f f/s (%s GiB) = %.2f× diffusers bf16 decode alone %.1f f/s (%s GiB)" % (
        lab, a, eg["peak_gib"] or "?", a / b, b, ref["peak_gib"] or "?")


def make_table(d):
    rows, cases = read_tsv(os.path.join(d, "wan.tsv")), read_cases(d)
    md = ["## Wan VAE decode: egressd against diffusers' AutoencoderKLWan (one run)", ""] + table_md(rows, cases)
    md += ["", "frames/s: frames over the run's wall time (egressd end to end: the job's wall_s in its result; "
           "decode alone: CUDA events / torch.cuda.synchronize).  Peak GPU memory: egressd decode alone, "
           "device memory in use (cudaMemGetInfo: weights, workspace, cuDNN); egressd end to end, the producer "
           "process's largest nvidia-smi figure (CUDA context included); diffusers, "
           "torch.cuda.max_memory_allocated over the mode (no context).",
           ""]
    with open(os.path.join(d, "extra.md"), "w") as fh:
        fh.write("\n".join(md) + "\n")
    summ = [summary_e2e(rows, cases)] + summary_memory(rows, cases) + [summary_22(rows, cases)]
    with open(os.path.join(d, "summary.txt"), "w") as fh:
        fh.write("\n".join(summ) + "\n")
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "table":
        return make_table(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cmd", choices=["run"])
    ap.add_argument("--tsv", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--config", choices=["2.1", "2.2"], default="2.1")
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--latents", required=True)
    ap.add_argument("--out", required=True, help="directory for the y4m outputs (removed after each mode)")
    ap.add_argument("--modes", default="decode,naive,copy")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--warm", type=int, default=3, help="latent frames of the untimed warm-up decode")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--host-buffers", type=int, default=2)
    ap.add_argument("--fps", default="16")
    ap.add_argument("--ref", help="egressd's y4m of the same job, to compare frames with")
    ap.add_argument("--check-frames", type=int, default=16)
    ap.add_argument("--deadline-s", type=float, default=0, help="seconds left: modes that would not fit are skipped")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
