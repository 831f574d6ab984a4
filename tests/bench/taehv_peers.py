#!/usr/bin/env python3
"""PyTorch's TAEHV as the peer of egressd's TAEHV decoder (make bench-taehv).

    taehv_peers.py run --tsv ROWS.tsv --model wan21|wan22 --weights W.safetensors
                       --latents SHORT.npy [--ref EGRESSD_SHORT.y4m]
                       [--long-latents LONG.npy [--long-ref EGRESSD_LONG.y4m]]
                       [--chunk 8] [--reps 3] [--check-frames 16] [--deadline-s S]
                       [--compile 0|1] [--compile-timeout S]
    taehv_peers.py table RESDIR    RESDIR/taehv.tsv (+ taehv_cases.tsv,
                                   taehv_check.tsv) -> RESDIR/extra.md (the
                                   table) and RESDIR/summary.txt

run: the decoder is tests/gpu/taehv_torch_check.py's (an independent build
of the public taehv.py decoder from torch.nn layers; the safetensors egressd
decodes loaded with load_state_dict(strict=True)), on the GPU, eager,
channels_last, cudnn.benchmark on, inference_mode.  The latents are the .npy
egressd decodes ([1, C, T, h, w] f16, as [T, C, h, w]).  Rows (appended to
--tsv, the columns of tests/bench/bench-taehv.sh), each after one untimed
warm-up run:

  whole-fp16, whole-bf16  the short video in one decode_video (parallel)
          call, as taehv.py's decode_video(parallel=True): every layer over
          all frames at once; best of --reps
  chunked-fp16  the long latents, --chunk latent frames a call, each
          MemBlock's past (its input's last frame) carried from one call to
          the next (what StreamingTAEHV does; a whole-video call at that
          length does not fit in GPU memory); one run
  compile-fp16  with --compile 1: torch.compile(mode EGR_COMPILE_MODE,
          default max-autotune-no-cudagraphs) of the whole-video decode;
          best of --reps after compiling

Timed: the network alone (pixel shuffle and clamp included; no
quantisation, no colour conversion, no copy to the host), between two
torch.cuda.synchronize(); frames/s and torch.cuda.max_memory_allocated.  The
frames of whole-fp16 and whole-bf16 (all of them) and chunked-fp16 (the first and last
--check-frames) are turned into I420 as egressd does (tests/bench/peers.py's
to_i420: egr_taesd_quant_u8, BT.601 limited) and compared with egressd's y4m
(--ref, --long-ref): one TAEHVPEERCHECK line and one row of
taehv_check.tsv beside --tsv each.  Exit 0, 1 when a mode failed, 77 when
everything was skipped (no torch, no CUDA).

table: standard library only (re-table a run's files anywhere).
"""
import argparse
import copy
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from table import met, num, read_tsv  # noqa: E402
from wan_peers import RUN_NAMES as WAN_RUN_NAMES, add_row, pick, read_cases, timed, why_missing  # noqa: E402
from wan_peers import table_md as wan_table_md  # noqa: E402

KINDS = ("whole-fp16", "whole-bf16", "chunked-fp16", "compile-fp16")
CHECK_COLS = ["case", "kind", "frames", "mean_diff", "max_diff", "within2_pct", "exact_pct", "note"]
GIB = 1024.0 ** 3
MEAN_BOUND = 1.0	# mean |diff| in 8-bit codes: bf16 (egressd) against fp16 (PyTorch) stays well under it


def row(a, case, kind, **kw):
    add_row(a.tsv, case=case, impl="pytorch", kind=kind, **kw)


def skip_all(a, why, status="skipped"):
    print("taehv_peers: %s: PyTorch rows %s" % (why, status), flush=True)
    for k in kinds_of(a):
        ch = k.startswith("chunked")
        row(a, a.model + "-long" if ch else a.model, k, chunk=a.chunk if ch else "", status=status, detail=why)
    return 77 if status == "skipped" else 1


def kinds_of(a):
    ks = ["whole-fp16", "whole-bf16"]
    if a.long_latents:
        ks.append("chunked-fp16")
    if a.compile:
        ks.append("compile-fp16")
    return ks


# ---------------------------------------------------------------------------
# run


def y4m_frames(path, idx):
    """The I420 frames of a y4m file at the indices idx: (count in the file, [len(idx), bytes] uint8)."""
    import numpy as np
    with open(path, "rb") as f:
        hdr = f.readline()
    t = hdr.split()
    w, h = int(t[1][1:]), int(t[2][1:])
    fb = w * h * 3 // 2
    tag = len(b"FRAME\n")
    n = (os.path.getsize(path) - len(hdr)) // (tag + fb)
    if n <= 0:
        return 0, None
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=len(hdr), shape=(n, tag + fb))
    sel = [i for i in idx if i < n]	# idx sorted: what is cut is a tail
    return n, np.stack([np.asarray(mm[i, tag:]) for i in sel]) if sel else None


def check(a, np, case, kind, ref, mine, nframes):
    """mine: {frame index: I420 bytes}; one TAEHVPEERCHECK line and a taehv_check.tsv row."""
    path = os.path.join(os.path.dirname(os.path.abspath(a.tsv)), "taehv_check.tsv")
    new = not os.path.exists(path)
    idx = sorted(mine)
    note = ""
    if not ref or not os.path.exists(ref):
        vals = dict(frames="", mean_diff="", max_diff="", within2_pct="", exact_pct="",
                    note="no egressd output to compare with (%s)" % ref)
    else:
        n, theirs = y4m_frames(ref, idx)
        if n != nframes:
            note = "egressd's y4m has %d frames, PyTorch made %d" % (n, nframes)
        k = min(len(idx), 0 if theirs is None else theirs.shape[0])
        if k == 0 or theirs.shape[1] != mine[idx[0]].shape[0]:
            vals = dict(frames=k, mean_diff="", max_diff="", within2_pct="", exact_pct="",
                        note=note or "frame sizes differ or nothing to compare")
        else:
            d = np.abs(np.stack([mine[i] for i in idx[:k]]).astype(np.int16) - theirs[:k].astype(np.int16))
            vals = dict(frames=k, mean_diff="%.4f" % d.mean(), max_diff=int(d.max()),
                        within2_pct="%.4f" % (100.0 * (d <= 2).mean()),
                        exact_pct="%.4f" % (100.0 * (d == 0).mean()), note=note)
    with open(path, "a") as fh:
        if new:
            fh.write("\t".join(CHECK_COLS) + "\n")
        vals.update(case=case, kind=kind)
        fh.write("\t".join(str(vals[c]).replace("\t", " ") for c in CHECK_COLS) + "\n")
    print("TAEHVPEERCHECK case=%s kind=%s vs egressd: %s frames, mean |diff| %s, max |diff| %s, %s%% within 2 codes, "
          "%s%% exact%s" % (case, kind, vals["frames"], vals["mean_diff"], vals["max_diff"], vals["within2_pct"],
                            vals["exact_pct"], "; " + vals["note"] if vals["note"] else ""), flush=True)


def load_latents(torch, np, path, dtype):
    """[1, C, T, h, w] .npy -> [T, C, h, w] on the GPU, channels_last."""
    lat = np.load(path, mmap_mode="r")
    x = torch.from_numpy(np.ascontiguousarray(lat[0].transpose(1, 0, 2, 3)))
    return x.to("cuda", dtype).contiguous(memory_format=torch.channels_last)


def decode_chunked(torch, F, ttc, dec, x, chunk, patch, trim, keep, to_i420):
    """x [T, C, h, w] in chunks of `chunk`, each MemBlock's past carried over; frames at indices `keep` to I420."""
    state, out, kept = {}, 0, {}
    for i in range(0, x.shape[0], chunk):
        h = x[i:i + chunk]
        for j, layer in enumerate(dec):
            if isinstance(layer, ttc.MemBlock):
                prev = state.get(j)
                past = torch.cat([torch.zeros_like(h[:1]) if prev is None else prev, h[:-1]], 0)
                state[j] = h[-1:].clone()
                h = layer(h, past)
            else:
                h = layer(h)
        if patch > 1:
            h = F.pixel_shuffle(h, patch)
        h = h.clamp(0, 1)
        if i == 0:
            h = h[trim:]
        for k in range(out, out + h.shape[0]):
            if k in keep:
                kept[k] = to_i420(h[k - out:k - out + 1])
        out += h.shape[0]
    return out, kept


class Ctx:
    pass


def shim_safetensors():
    """safetensors.torch.load_file from taesd_torch_check's own reader (F16/F32), when the package is missing."""
    import types
    from taesd_torch_check import load_safetensors
    pkg, mod = types.ModuleType("safetensors"), types.ModuleType("safetensors.torch")
    mod.load_file = load_safetensors
    pkg.torch = mod
    sys.modules["safetensors"], sys.modules["safetensors.torch"] = pkg, mod
    print("taehv_peers: no safetensors package: the weights read by taesd_torch_check's reader", flush=True)


def setup(a):
    """torch and the helpers, or raises ImportError / SystemExit."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, os.path.join(HERE, "..", "gpu"))
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        shim_safetensors()
    import taehv_torch_check as ttc	# exits 77 when its own imports fail
    from peers import to_i420
    c = Ctx()
    c.np, c.torch, c.F, c.ttc, c.to_i420 = np, torch, F, ttc, to_i420
    return c


def mode_whole(c, a, dec, x, kind, fn=None):
    """Best of --reps whole-video decodes; returns (frames, best s, peak bytes, I420 frames of the last run)."""
    torch = c.torch
    fn = fn or (lambda z: c.ttc.decode_video(dec, z, c.patch, c.cog, c.trim))
    out, dt = timed(torch, lambda: fn(x))	# warm-up: cuDNN's search for every shape, the allocator
    print("taehv_peers: %s warm-up %.3f s" % (kind, dt), flush=True)
    del out
    torch.cuda.reset_peak_memory_stats()
    best = out = None
    for r in range(a.reps):
        if r and c.left() < 1.3 * best:
            c.notes.append("best of %d (the deadline left no room for another)" % r)
            break
        out = None	# the previous run's frames freed before the next
        out, dt = timed(torch, lambda: fn(x))
        best = dt if best is None or dt < best else best
        print("taehv_peers: %s rep %d: %d frames in %.4f s" % (kind, r, out.shape[0], dt), flush=True)
    else:
        c.notes.append("best of %d" % a.reps)
    peak = torch.cuda.max_memory_allocated()
    mine = None
    if kind.startswith("whole"):	# egressd is bf16: both PyTorch precisions are compared with it
        q = c.to_i420(out)
        mine = {i: q[i].cpu().numpy() for i in range(q.shape[0])}
    return out.shape[0], best, peak, mine


def mode_chunked(c, a, dec, x):
    torch = c.torch
    n_all = c.ttc_frames(x.shape[0])
    keep = set(range(min(a.check_frames, n_all))) | set(range(max(0, n_all - a.check_frames), n_all))
    run = lambda: decode_chunked(torch, c.F, c.ttc, dec, x, a.chunk, c.patch, c.trim, keep, c.to_i420)  # noqa: E731
    timed(torch, lambda: decode_chunked(torch, c.F, c.ttc, dec, x[:2 * a.chunk], a.chunk, c.patch, c.trim, set(),
                                        c.to_i420))	# warm-up: the chunk's shapes
    torch.cuda.reset_peak_memory_stats()
    (nf, kept), dt = timed(torch, run)
    c.notes.append("one run, chunks of %d latent frames" % a.chunk)
    return nf, dt, torch.cuda.max_memory_allocated(), {k: v[0].cpu().numpy() for k, v in kept.items()}


def one(c, a, case, kind, fn):
    """Runs one mode (fn() -> frames, seconds, peak, frames to check), appends its row; 0 done, 1 failed."""
    torch = c.torch
    c.notes = []
    base = torch.cuda.memory_allocated()
    try:
        with torch.inference_mode():
            nf, dt, peak, mine = fn()
        torch.cuda.synchronize()
    except Exception as e:	# out of memory included: the next modes still run
        torch.cuda.empty_cache()
        # torch.compile not working here is a fact about the peer, not a failed measurement
        st = "skipped" if kind.startswith("compile") else "failed"
        row(a, case, kind, status=st, latent_frames=c.T[case],
            detail="%s: %s" % (type(e).__name__, str(e).splitlines()[0][:300] if str(e) else ""))
        print("taehv_peers: %s %s: %s" % (kind, st, e), flush=True)
        return 1 if st == "failed" else 0
    c.secs[kind] = dt
    want = c.ttc_frames(c.T[case])
    status = "done" if nf == want else "failed"
    if nf != want:
        c.notes.insert(0, "%d frames, want %d" % (nf, want))
    row(a, case, kind, chunk=a.chunk if kind.startswith("chunked") else "", status=status, latent_frames=c.T[case],
        frames=nf, frames_per_s="%.3f" % (nf / dt), wall_s="%.6f" % dt, peak_gib="%.3f" % (peak / GIB),
        detail="; ".join(c.notes + ["weights + latents %.2f GiB of it" % (base / GIB)]))
    print("TAEHVPEER case=%s kind=%s frames=%d wall_s=%.6f frames_per_s=%.3f peak_gib=%.3f" % (
        case, kind, nf, dt, nf / dt, peak / GIB), flush=True)
    if mine is not None:
        check(a, c.np, case, kind, a.long_ref if kind.startswith("chunked") else a.ref, mine, nf)
    torch.cuda.empty_cache()
    return 0 if status == "done" else 1


def build(c, a):
    ch, patch, time_up, cog = c.ttc.MODELS[a.model]
    c.patch, c.cog = patch, cog
    tup = 2 ** sum(time_up)
    c.trim = tup - 1
    c.ttc_frames = lambda t: t * tup if (cog and t % 2 == 0) else t * tup - (tup - 1)
    dec = c.ttc.build_decoder(ch, patch, time_up)
    c.ttc.load_decoder(dec, a.weights)	# strict; fp32 on the CPU
    return dec.eval()


def on_gpu(c, dec32, dtype):
    return copy.deepcopy(dec32).to("cuda", dtype).to(memory_format=c.torch.channels_last)


def run(a):
    t_start = time.monotonic()
    try:
        c = setup(a)
    except ImportError as e:
        return skip_all(a, "%s (import failed)" % e)
    except SystemExit:
        return skip_all(a, "tests/gpu/taehv_torch_check.py could not import what it needs")
    torch = c.torch
    if not torch.cuda.is_available():
        return skip_all(a, "torch %s sees no CUDA device" % torch.__version__)
    torch.backends.cudnn.benchmark = True
    deadline = time.monotonic() + a.deadline_s if a.deadline_s else None
    c.left = lambda: deadline - time.monotonic() if deadline else 1e9
    c.secs = {}
    try:
        dec32 = build(c, a)
        x16 = load_latents(torch, c.np, a.latents, torch.float16)
    except Exception as e:
        return skip_all(a, "building TAEHV or reading the latents: %s: %s" % (type(e).__name__, e), "failed")
    short, long_ = a.model, a.model + "-long"
    c.T = {short: x16.shape[0]}
    print("taehv_peers: %s, torch %s; TAEHV %s, %d latent frames %dx%d -> %d frames; set up in %.1f s" % (
        torch.cuda.get_device_name(0), torch.__version__, a.model, x16.shape[0], x16.shape[3], x16.shape[2],
        c.ttc_frames(x16.shape[0]), time.monotonic() - t_start), flush=True)
    bad = 0
    dec = on_gpu(c, dec32, torch.float16)
    bad += one(c, a, short, "whole-fp16", lambda: mode_whole(c, a, dec, x16, "whole-fp16"))
    est = 3 * (a.reps + 1) * c.secs.get("whole-fp16", 1.0)
    if c.left() < est:
        row(a, short, "whole-bf16", status="skipped", latent_frames=c.T[short],
            detail="time budget (%.0f s left, about %.0f s needed)" % (c.left(), est))
    else:
        dbf = on_gpu(c, dec32, torch.bfloat16)
        xbf = x16.to(torch.bfloat16)
        bad += one(c, a, short, "whole-bf16", lambda: mode_whole(c, a, dbf, xbf, "whole-bf16"))
        del dbf, xbf
    if a.long_latents:
        bad += long_mode(c, a, dec, long_)
    if a.compile:
        bad += compile_mode(c, a, dec, x16, short)
    return 1 if bad else 0


def long_mode(c, a, dec, case):
    torch = c.torch
    lat = c.np.load(a.long_latents, mmap_mode="r")
    c.T[case] = lat.shape[2]
    fps = c.ttc_frames(c.T[a.model]) / c.secs["whole-fp16"] if c.secs.get("whole-fp16") else None
    est = c.ttc_frames(c.T[case]) / fps * 1.3 + 10 if fps else None
    if est and c.left() < est:
        row(a, case, "chunked-fp16", chunk=a.chunk, status="skipped", latent_frames=c.T[case],
            detail="time budget (%.0f s left, about %.0f s needed)" % (c.left(), est))
        return 0
    try:
        x = load_latents(torch, c.np, a.long_latents, torch.float16)
    except Exception as e:
        row(a, case, "chunked-fp16", chunk=a.chunk, status="failed", latent_frames=c.T[case],
            detail="reading %s: %s: %s" % (a.long_latents, type(e).__name__, e))
        return 1
    r = one(c, a, case, "chunked-fp16", lambda: mode_chunked(c, a, dec, x))
    del x
    return r


def compile_mode(c, a, dec, x, case):
    torch = c.torch
    mode = os.environ.get("EGR_COMPILE_MODE", "max-autotune-no-cudagraphs")
    if c.left() < a.compile_timeout:
        row(a, case, "compile-fp16", status="skipped", latent_frames=c.T[case],
            detail="time budget (%.0f s left, compiling may take %d s)" % (c.left(), a.compile_timeout))
        return 0
    t0 = time.monotonic()
    fn = torch.compile(lambda z: c.ttc.decode_video(dec, z, c.patch, c.cog, c.trim), mode=mode, dynamic=False)

    def go():
        r = mode_whole(c, a, dec, x, "compile-fp16", fn)
        c.notes.insert(0, "torch.compile(mode=%s), compiled and warmed up in %.0f s" % (mode, time.monotonic() - t0))
        return r
    return one(c, a, case, "compile-fp16", go)


# ---------------------------------------------------------------------------
# table (standard library only)

# egressd's daemon rows are named as bench-wan's
RUN_NAMES = {k: v for k, v in WAN_RUN_NAMES.items() if k[0] == "egressd"}
RUN_NAMES.update({
    ("egressd", "alone"): "decode alone (test_taehv_gpu --bench, feeds of %s)",
    ("disk", "write"): "the job's bytes written alone (no decode)",
    ("pytorch", "whole-fp16"): "decode alone, fp16, whole video in one call",
    ("pytorch", "whole-bf16"): "decode alone, bf16, whole video in one call",
    ("pytorch", "chunked-fp16"): "decode alone, fp16, chunks of %s latent frames, MemBlock state carried",
    ("pytorch", "compile-fp16"): "decode alone, fp16, torch.compile, whole video in one call",
})


def model_of(case):
    return case[:-len("-long")] if case.endswith("-long") else case


def ref_fps(rows, case):
    """PyTorch fp16 whole-video decode alone of the case's model (the short video): f/s or None."""
    r = pick(rows, model_of(case), "pytorch", "whole-fp16")
    return num(r["frames_per_s"]) if r else None


def check_lines(checks, cases):
    out = []
    for k in checks:
        if k["mean_diff"]:
            out.append("- %s, PyTorch %s against egressd: %s frames, mean |diff| %s codes, max %s, %s%% of bytes "
                       "within 2 codes, %s%% exact%s" % (cases.get(k["case"], k["case"]), k["kind"], k["frames"],
                                                         k["mean_diff"], k["max_diff"], k["within2_pct"],
                                                         k["exact_pct"], "; " + k["note"] if k["note"] else ""))
        else:
            out.append("- %s, PyTorch %s: not compared (%s)" % (cases.get(k["case"], k["case"]), k["kind"],
                                                                 k["note"]))
    return out


def best_of(rows, case, impl, kind):
    r = pick(rows, case, impl, kind)
    return (num(r["frames_per_s"]), r) if r else (None, None)


def summary_model(rows, checks, cases, m):
    """One line per model: the ratios of issue 12, the frames check."""
    lab = ", ".join(cases.get(m, "TAEHV %s" % m).split(", ")[:2])
    ref, _ = best_of(rows, m, "pytorch", "whole-fp16")
    parts = []

    def ratio(fps):
        return " = %.2f× PyTorch fp16" % (fps / ref) if ref and fps else ""
    for case, impl, kind, what in ((m + "-long", "egressd", "e2e", "egressd end to end, %s latent frames (chunk %s)"),
                                   (m, "egressd", "e2e", "end to end, %s latent frames (chunk %s)"),
                                   (m, "egressd", "alone", "decode alone, %s latent frames (feeds of %s)"),
                                   (m + "-long", "egressd", "alone", "decode alone, %s latent frames (feeds of %s)")):
        fps, r = best_of(rows, case, impl, kind)
        if fps:
            util = num(r["kernel_util"])
            parts.append("%s %.1f f/s%s%s" % (what % (r["latent_frames"], r["chunk"]), fps, ratio(fps),
                                             ", kernel util %.4f" % util if util is not None else ""))
        else:
            parts.append("%s%s: not measured (%s)" % (what.split(",")[0], " (long)" if case.endswith("-long") else "",
                                                       why_missing(rows, case, impl, kind)))
    if ref:
        parts.append("PyTorch fp16 decode alone (whole video) %.1f f/s" % ref)
    else:
        parts.append("PyTorch fp16 decode alone not measured (%s): no ratio" % why_missing(rows, m, "pytorch",
                                                                                          "whole-fp16"))
    for case, kind in ((m, "whole-bf16"), (m + "-long", "chunked-fp16"), (m, "compile-fp16")):
        fps, _ = best_of(rows, case, "pytorch", kind)
        if fps:
            parts.append("PyTorch %s %.1f f/s" % (kind, fps))
    for k in checks:
        if model_of(k["case"]) == m and k["mean_diff"]:
            mean = float(k["mean_diff"])
            parts.append("frames vs PyTorch %s: mean |diff| %.3f codes, max %s [mean ≤ %g: %s]" % (
                k["kind"], mean, k["max_diff"], MEAN_BOUND, met(mean <= MEAN_BOUND and not k["note"])))
    return "%s: %s" % (lab, "; ".join(parts))


def make_table(d):
    rows, cases = read_tsv(os.path.join(d, "taehv.tsv")), read_cases(d, "taehv_cases.tsv")
    checks = read_tsv(os.path.join(d, "taehv_check.tsv"))
    md = ["## TAEHV decode: egressd against PyTorch's TAEHV (one run)", ""]
    md += wan_table_md(rows, cases, ref_fps, "× PyTorch fp16 decode alone", RUN_NAMES)
    md += ["", "frames/s: frames over the run's wall time (egressd end to end: the job's wall_s in its result, from "
           "the claim to the output in place; decode alone: CUDA events / torch.cuda.synchronize, the network "
           "alone for PyTorch, y4m frames in device memory for egressd).  Peak GPU memory: egressd end to end, the "
           "producer process's largest nvidia-smi figure (CUDA context included); PyTorch, "
           "torch.cuda.max_memory_allocated over the timed runs (no context).  × PyTorch: against PyTorch's fp16 "
           "whole-video decode alone of the same model (short video).", ""]
    if checks:
        md += ["PyTorch's frames (I420 as egressd quantises) against egressd's y4m, same latents and weights:", ""]
        md += check_lines(checks, cases) + [""]
    with open(os.path.join(d, "extra.md"), "w") as fh:
        fh.write("\n".join(md) + "\n")
    models = []
    for r in rows:
        m = model_of(r["case"])
        if m not in models:
            models.append(m)
    with open(os.path.join(d, "summary.txt"), "w") as fh:
        fh.write("".join(summary_model(rows, checks, cases, m) + "\n" for m in models))
    return 0


def main():
    if sys.argv[1:2] == ["table"] and len(sys.argv) == 3:
        return make_table(sys.argv[2])
    ap = argparse.ArgumentParser(description="PyTorch's TAEHV against egressd's (make bench-taehv); see the top of the file")
    ap.add_argument("cmd", choices=["run"])
    ap.add_argument("--model", choices=["wan21", "wan22"], required=True)
    ap.add_argument("--tsv", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--latents", required=True, help="the short video's latents, [1, C, T, h, w] .npy")
    ap.add_argument("--ref", help="egressd's y4m of the short latents, to compare frames with")
    ap.add_argument("--long-latents", help="the long video's latents: the chunked mode")
    ap.add_argument("--long-ref", help="egressd's y4m of the long latents")
    ap.add_argument("--chunk", type=int, default=8, help="latent frames per call of the chunked mode")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--check-frames", type=int, default=16, help="chunked: the first and last N frames compared")
    ap.add_argument("--deadline-s", type=float, default=0, help="seconds left: modes that would not fit are skipped")
    ap.add_argument("--compile", type=int, default=0)
    ap.add_argument("--compile-timeout", type=float, default=240)
    a = ap.parse_args()
    a.reps = max(1, a.reps)
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
