#!/usr/bin/env python3
"""Tables and summaries of the benchmark targets (tests/bench/lib.sh).

    table.py pipeline DIR   DIR/rows.tsv + DIR/stages.tsv [+ regimes.tsv,
                            meta.tsv] -> DIR/table.md, DIR/bench.csv,
                            DIR/summary.txt (one line per regime)
    table.py spool DIR      DIR/spool.tsv (runs through the spool daemon:
                            many jobs at once against one job) ->
                            DIR/spool.md, DIR/spool_summary.txt

Kept apart from the shell so that a run's files can be re-tabled later, with
no GPU (tests/bench/run.sh --format-only DIR).  Standard library only.
"""
import csv
import os
import sys

# labels of the regimes of runs before regimes.tsv existed
OLD_REG = {"copy": "copy-bound", "disk": "disk-bound", "compute": "compute-bound"}


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def f(x, fmt):
    return "—" if x is None else fmt % x


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_kv(path):
    out = {}
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.rstrip("\n").partition("\t")
            out[k] = v
    return out


def taesd_flops(size):
    """FLOPs of one size x size frame through 4-channel TAESD's 3x3 convs (bench_taesd.py)."""
    lat = size // 8
    fl = 2 * 9 * 4 * 64 * lat * lat
    for shift, n in ((0, 9), (1, 10), (2, 10), (3, 4)):
        fl += n * 2 * 9 * 64 * 64 * (lat << shift) ** 2
    return fl + 2 * 9 * 64 * 3 * (lat << 3) ** 2


def md_table(hdr, rows):
    out = ["| " + " | ".join(hdr) + " |", "| " + " | ".join("---" for _ in hdr) + " |"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def regime_info(d, rows):
    """regime id -> dict(label, decoder, size, fps_target, d2h_target, e2e_target, compile_target)."""
    info = {}
    for r in read_tsv(os.path.join(d, "regimes.tsv")):
        info[r["regime"]] = r
    for r in rows:	# runs from before regimes.tsv: the three old regimes
        reg = r["regime"]
        if reg not in info:
            info[reg] = {"label": OLD_REG.get(reg, reg), "decoder": "taesd" if reg == "compute" else "latent2rgb",
                         "size": "", "fps_target": "", "d2h_target": "50" if reg == "copy" else "",
                         "e2e_target": "", "compile_target": ""}
    return info


def slowest_stages(stages):
    """regime -> (stage, fps): the slowest stage alone; PyTorch's own numbers are peers, not stages."""
    slow = {}
    for s in stages:
        fps = num(s["frames_per_s"])
        if fps is None or fps <= 0 or s["stage"].startswith("torch"):
            continue
        if s["regime"] not in slow or fps < slow[s["regime"]][1]:
            slow[s["regime"]] = (s["stage"], fps)
    return slow


def pipeline(d):
    rows = read_tsv(os.path.join(d, "rows.tsv"))
    stages = read_tsv(os.path.join(d, "stages.tsv"))
    meta = read_kv(os.path.join(d, "meta.tsv"))
    info = regime_info(d, rows)
    gemm = num(meta.get("gemm_tflops"))
    slow = slowest_stages(stages)
    full = {r["regime"]: num(r["frames_per_s"]) for r in rows if r["pipeline"] == "full" and r["status"] == "done"}
    has_flops = any(info[r["regime"]].get("decoder") == "taesd" and num(info[r["regime"]].get("size"))
                    for r in rows)

    def tflops(reg, fps):
        i = info[reg]
        if i.get("decoder") != "taesd" or not num(i.get("size")) or not fps:
            return None
        return fps * taesd_flops(int(i["size"])) / 1e12

    hdr = ["regime", "pipeline", "frames", "frames/s"] + (["TFLOP/s (% GEMM)"] if has_flops else []) + [
        "GPU kernel util (steady)", "GPU busy / wall", "D2H GB/s", "bytes / wall GB/s", "producer blocked s",
        "slowest stage alone", "÷ slowest", "full ÷ this"]
    body, csvrows = [], []
    for r in rows:
        reg = r["regime"]
        done = r["status"] == "done"
        fps, wall, byt = num(r["frames_per_s"]), num(r["wall_s"]), num(r["bytes"])
        fps = fps if done else None
        e2e = byt / wall / 1e9 if done and byt and wall else None
        st = slow.get(reg)
        ratio = fps / st[1] if st and fps else None
        vs_full = full.get(reg) / fps if full.get(reg) and fps else None
        tf = tflops(reg, fps)
        cell_tf = [("%.1f (%.0f%%)" % (tf, 100 * tf / gemm) if gemm else "%.1f" % tf) if tf else "—"] \
            if has_flops else []
        name = r["pipeline"] if done else "%s (%s)" % (r["pipeline"], r["status"])
        body.append([info[reg]["label"], name, r["frames"] or "—", f(fps, "%.1f")] + cell_tf + [
            f(num(r["gpu_kernel_util"]) if done else None, "%.4f"),
            f(num(r.get("gpu_busy_of_wall")) if done else None, "%.3f"),
            f(num(r["d2h_gbps"]) if done else None, "%.1f"), f(e2e, "%.2f"),
            f(num(r["producer_blocked_s"]) if done else None, "%.2f"), "%s %.1f f/s" % st if st else "—",
            f(ratio, "%.3f"), f(vs_full, "%.2f×")])
        csvrows.append([reg, r["pipeline"], r["status"], r["frames"], r["frames_per_s"], r["wall_s"], r["bytes"],
                        r["gpu_kernel_util"], r["gpu_kernel_s"], r["d2h_gbps"], "" if e2e is None else "%.4f" % e2e,
                        r["producer_blocked_s"], r["write_s"], "" if tf is None else "%.2f" % tf,
                        st[0] if st else "", "%.3f" % st[1] if st else "",
                        "" if ratio is None else "%.4f" % ratio, "" if vs_full is None else "%.4f" % vs_full,
                        r["error"]])

    notes = ["", "Stages alone (the slowest, per regime, is the \"÷ slowest\" reference; torch rows are peers):",
             ""] if stages else []
    for s in stages:
        notes.append("- %s, %s: %s f/s — %s" % (info.get(s["regime"], {}).get("label", s["regime"]), s["stage"],
                                              f(num(s["frames_per_s"]), "%.1f"), s["detail"]))
    if gemm:
        notes += ["", "TFLOP/s: frames/s × FLOPs of a frame's 3×3 convs (4-channel TAESD); %% of the fp16 GEMM "
                  "peak measured in the same run (%.0f TFLOP/s, tests/bench/bench_taesd.py)." % gemm]
    errs = [r for r in rows if r["status"] != "done"]
    if errs:
        notes += ["", "Runs that did not complete:", ""]
        notes += ["- %s %s: %s %s" % (info[r["regime"]]["label"], r["pipeline"], r["status"], r["error"])
                  for r in errs]
    open(os.path.join(d, "table.md"), "w").write("\n".join(md_table(hdr, body) + notes) + "\n")
    with open(os.path.join(d, "bench.csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["regime", "pipeline", "status", "frames", "frames_per_s", "wall_s", "bytes", "gpu_kernel_util",
                    "gpu_kernel_s", "d2h_gbps", "bytes_per_wall_gbps", "producer_blocked_s", "write_s", "tflops",
                    "slowest_stage", "slowest_stage_fps", "ratio_to_slowest", "full_over_this", "error"])
        w.writerows(csvrows)
        for s in stages:
            w.writerow([s["regime"], "stage:" + s["stage"], "alone", "", s["frames_per_s"]] + [""] * 13 +
                       [s["detail"]])
    summ = [pipeline_summary(reg, info[reg], rows, stages, slow.get(reg), tflops, gemm) for reg in info
            if any(r["regime"] == reg for r in rows)]
    open(os.path.join(d, "summary.txt"), "w").write("\n".join(summ) + "\n")


def met(ok):
    return "met" if ok else "NOT met"


def pipeline_summary(reg, i, rows, stages, st, tflops, gemm):
    rr = {r["pipeline"]: r for r in rows if r["regime"] == reg}
    fr = rr.get("full")
    if not fr and rr:	# a regime skipped whole: one row saying why
        r = next(iter(rr.values()))
        return "%s: %s (%s)" % (i["label"], r["status"], r["error"] or "no reason given")
    if not fr or fr["status"] != "done":
        return "%s: full did not complete (%s)" % (i["label"], fr["status"] if fr else "not run")
    fps = num(fr["frames_per_s"])
    parts = ["full %.1f f/s" % fps]
    tgt = num(i.get("fps_target"))
    if tgt:
        parts[0] += " [target ≥ %g: %s]" % (tgt, met(fps >= tgt))
    tf = tflops(reg, fps)
    if tf:
        parts.append("%.1f TFLOP/s%s" % (tf, " = %.0f%% of the measured fp16 GEMM" % (100 * tf / gemm) if gemm else ""))
    if st:
        ratio = fps / st[1]
        parts.append("%.3f × slowest stage (%s) [target ≥ 0.95: %s]" % (ratio, st[0], met(ratio >= 0.95)))
    g = num(fr["d2h_gbps"])
    if num(i.get("d2h_target")) and g is not None:
        parts.append("D2H %.1f GB/s per copy [target ≥ %g: %s]" % (g, num(i["d2h_target"]),
                                                                 met(g >= num(i["d2h_target"]))))
    wall, byt = num(fr["wall_s"]), num(fr["bytes"])
    if num(i.get("e2e_target")) and wall and byt:
        e2e = byt / wall / 1e9
        parts.append("end to end %.1f GB/s (bytes / wall) [target ≥ %g: %s]" % (e2e, num(i["e2e_target"]),
                                                                             met(e2e >= num(i["e2e_target"]))))
    u = num(fr["gpu_kernel_util"])
    if i.get("decoder") == "taesd" and u is not None:
        parts.append("kernel util %.4f [target ≥ 0.995: %s]" % (u, met(u >= 0.995)))
    for s in stages:
        if s["regime"] == reg and s["stage"] == "torch eager decode" and num(s["frames_per_s"]):
            parts.append("%.2f× PyTorch eager decode alone (%s f/s)" % (fps / num(s["frames_per_s"]), s["frames_per_s"]))
        if s["regime"] == reg and s["stage"].startswith("torch.compile") and num(s["frames_per_s"]):
            x = fps / num(s["frames_per_s"])
            ct = num(i.get("compile_target"))
            parts.append("%.2f× %s alone%s" % (x, s["stage"], " [target ≥ %g: %s]" % (ct, met(x >= ct)) if ct else ""))
    ahead, behind = [], []
    for p, r in rr.items():
        if p == "full" or r["status"] != "done" or not num(r["frames_per_s"]):
            continue
        x = fps / num(r["frames_per_s"])
        (ahead if x > 1.05 else behind).append("%s %.2f×" % (p, x))
    if ahead:
        parts.append("full ahead of " + ", ".join(ahead))
    if behind:
        parts.append("NOT clearly ahead (≤ 1.05×) of " + ", ".join(behind) + ": explain from measurements")
    return "%s: %s" % (i["label"], "; ".join(parts))


def spool(d):
    rows = read_tsv(os.path.join(d, "spool.tsv"))
    hdr = ["group", "case", "jobs", "frames", "wall s", "frames/s", "bytes / wall GB/s", "D2H GB/s (mean per job)",
           "queue wait s (mean / max)", "÷ one job"]
    one = {r["group"]: num(r["frames_per_s"]) for r in rows if r["case"] == "one job" and r["status"] == "done"}
    body, summ = [], []
    for r in rows:
        done = r["status"] == "done"
        fps = num(r["frames_per_s"]) if done else None
        wall, byt = num(r["wall_s"]), num(r["bytes"])
        ratio = fps / one[r["group"]] if fps and one.get(r["group"]) and r["case"] != "one job" else None
        qa, qm = num(r["queue_wait_avg"]), num(r["queue_wait_max"])
        body.append([r["group"], r["case"] if done else "%s (%s)" % (r["case"], r["status"]), r["jobs"],
                     r["frames"] or "—", f(wall if done else None, "%.3f"), f(fps, "%.1f"),
                     f(byt / wall / 1e9 if done and byt and wall else None, "%.2f"),
                     f(num(r["d2h_gbps"]) if done else None, "%.1f"),
                     "%s / %s" % (f(qa, "%.3f"), f(qm, "%.3f")) if done else "—", f(ratio, "%.3f")])
        tgt = num(r.get("target"))
        if tgt and done and ratio is not None:
            summ.append("%s: %s jobs %.1f f/s = %.3f × one job of the same frames (%.1f f/s) [target ≥ %g: %s]" % (
                r["group"], r["jobs"], fps, ratio, one[r["group"]], tgt, met(ratio >= tgt)))
        elif tgt:
            summ.append("%s: %s did not complete or has no one-job reference (%s: %s)" % (
                r["group"], r["case"], r["status"], r["error"]))
    errs = [r for r in rows if r["status"] != "done"]
    notes = []
    if errs:
        notes = ["", "Runs that did not complete:", ""] + [
            "- %s %s: %s %s" % (r["group"], r["case"], r["status"], r["error"]) for r in errs]
    open(os.path.join(d, "spool.md"), "w").write("\n".join(md_table(hdr, body) + notes) + "\n")
    open(os.path.join(d, "spool_summary.txt"), "w").write("".join(s + "\n" for s in summ))


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("pipeline", "spool"):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 64
    {"pipeline": pipeline, "spool": spool}[sys.argv[1]](sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
