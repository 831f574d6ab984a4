#!/usr/bin/env python3
"""Helpers of tests/bench/bench-encode.sh (make bench-encode).

    bench_encode.py cpu PID             CPU seconds (user + sys) of PID and its
                                        descendants, reaped children included
    bench_encode.py check FILE KIND N   KIND y4m | mp4 | mkv: is FILE a whole
                                        video of N frames?  No ffprobe: the
                                        container is parsed here (exit 0 ok)
    bench_encode.py peer ...            the PyTorch + OpenCV peer (--help)
    bench_encode.py table DIR           DIR/encode.tsv + params.tsv ->
                                        DIR/extra.md, DIR/summary.txt; exit 1
                                        when a row failed

cpu and check and table need the standard library only; peer needs numpy,
opencv-python (cv2) and, for the TAESD decode, PyTorch.
"""
import argparse
import csv
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table import f as fmt, md_table, num  # noqa: E402  (tests/bench/table.py)

# ---------------------------------------------------------------------------
# cpu: a process tree's CPU time from /proc


def proc_cpu(root):
    """utime+stime+cutime+cstime over root and its live descendants, in seconds.

    A descendant's time is counted once: in its own utime/stime while it
    lives, in its parent's cutime/cstime once reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, ticks = {}, {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            s = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        f = s[s.rfind(")") + 2:].split()
        parent[int(p)] = int(f[1])
        ticks[int(p)] = sum(int(x) for x in f[11:15])
    total = 0
    for pid in ticks:
        q = pid
        while q > 1 and q != root:
            q = parent.get(q, 0)
        if q == root:
            total += ticks[pid]
    return total / tick


# ---------------------------------------------------------------------------
# check: containers parsed without ffprobe


def mp4_boxes(f, start, end):
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        h = f.read(16)
        size, typ = struct.unpack(">I4s", h[:8])
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack(">Q", h[8:16])[0], 16
        elif size == 0:
            size = end - pos
        if size < hdr or pos + size > end:
            raise ValueError("box %r at %d: size %d runs past its parent" % (typ, pos, size))
        yield typ.decode("latin-1"), pos + hdr, pos + size
        pos += size


def mp4_child(f, box, name):
    for t, s, e in mp4_boxes(f, box[0], box[1]):
        if t == name:
            return s, e
    return None


def check_mp4(path):
    """(frames, detail): the video track's sample count (stsz)."""
    end = os.path.getsize(path)
    with open(path, "rb") as f:
        top = [(t, s, e) for t, s, e in mp4_boxes(f, 0, end)]
        names = [t for t, _, _ in top]
        if not names or names[0] != "ftyp":
            raise ValueError("no ftyp box first (boxes: %s)" % " ".join(names[:6]))
        if "moov" not in names or "mdat" not in names:
            raise ValueError("no %s box" % ("moov" if "moov" not in names else "mdat"))
        f.seek(top[0][1])
        brand = f.read(4).decode("latin-1")
        moov = [(s, e) for t, s, e in top if t == "moov"][0]
        for t, s, e in mp4_boxes(f, *moov):
            if t != "trak":
                continue
            mdia = mp4_child(f, (s, e), "mdia")
            hdlr = mdia and mp4_child(f, mdia, "hdlr")
            if not hdlr:
                continue
            f.seek(hdlr[0] + 8)
            if f.read(4) != b"vide":
                continue
            stbl = mp4_child(f, mp4_child(f, mdia, "minf") or (0, 0), "stbl")
            stsz = stbl and mp4_child(f, stbl, "stsz")
            if not stsz:
                raise ValueError("video track without stsz")
            f.seek(stsz[0] + 8)
            (n,) = struct.unpack(">I", f.read(4))
            order = "moov first" if names.index("moov") < names.index("mdat") else "moov last"
            return n, "mp4 (brand %s, %s), %d video samples" % (brand, order, n)
    raise ValueError("no video track")


def ebml_vint(f, keep_marker):
    b = f.read(1)
    if not b:
        raise ValueError("EBML: end of file inside an element header")
    first = b[0]
    n = 1
    while n <= 8 and not first & (0x80 >> (n - 1)):
        n += 1
    if n > 8:
        raise ValueError("EBML: bad length marker")
    v = first if keep_marker else first & (0xFF >> n)
    for c in f.read(n - 1):
        v = (v << 8) | c
    unknown = not keep_marker and v == (1 << (7 * n)) - 1
    return v, unknown


def ebml_elems(f, start, end):
    pos = start
    while pos < end:
        f.seek(pos)
        eid, _ = ebml_vint(f, True)
        size, unknown = ebml_vint(f, False)
        data = f.tell()
        yield eid, data, end if unknown else data + size, unknown
        if unknown:
            return
        pos = data + size


def check_mkv(path):
    """(frames, detail): the blocks of every cluster (one video track)."""
    end = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x1a\x45\xdf\xa3" or b"matroska" not in head:
            raise ValueError("no EBML header with DocType matroska")
        n = clusters = 0
        for eid, s, e, _ in ebml_elems(f, 0, end):
            if eid != 0x18538067:	# Segment
                continue
            for cid, cs, ce, unknown in ebml_elems(f, s, e):
                if cid != 0x1F43B675:	# Cluster
                    continue
                if unknown:
                    raise ValueError("a cluster of unknown size: blocks not counted")
                clusters += 1
                n += sum(1 for bid, _, _, _ in ebml_elems(f, cs, ce) if bid in (0xA3, 0xA0))
        return n, "Matroska, %d clusters, %d blocks" % (clusters, n)


def check_y4m(path):
    with open(path, "rb") as f:
        hdr = f.readline()
    if not hdr.startswith(b"YUV4MPEG2 "):
        raise ValueError("no YUV4MPEG2 header")
    tok = {t[:1]: t[1:] for t in hdr.split()[1:]}
    fb = int(tok[b"W"]) * int(tok[b"H"]) * 3 // 2
    body = os.path.getsize(path) - len(hdr)
    if body % (6 + fb):
        raise ValueError("%d bytes after the header: not whole frames of %d" % (body, 6 + fb))
    n = body // (6 + fb)
    return n, "y4m, %d frames of %sx%s" % (n, tok[b"W"].decode(), tok[b"H"].decode())


def check(path, kind, frames):
    if not os.path.exists(path):
        print("BAD: %s does not exist" % path)
        return 1
    size = os.path.getsize(path)
    if size == 0:
        print("BAD: %s is empty" % path)
        return 1
    try:
        n, detail = {"mp4": check_mp4, "mkv": check_mkv, "y4m": check_y4m}[kind](path)
    except (ValueError, KeyError, struct.error, IndexError) as e:
        print("BAD: %s: %s" % (kind, e))
        return 1
    if n != frames:
        print("BAD: %s; expected %d frames" % (detail, frames))
        return 1
    print("ok: %s" % detail)
    return 0


# ---------------------------------------------------------------------------
# peer: what a PyTorch user writes: decode on the GPU, frames to uint8 BGR,
# cv2.VideoWriter in the same process


def peer(argv):
    ap = argparse.ArgumentParser(prog="bench_encode.py peer")
    ap.add_argument("--latents", required=True)
    ap.add_argument("--weights", help="TAESD safetensors (--decoder taesd)")
    ap.add_argument("--out", required=True, help="the .mp4 to write")
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--fps", type=float, default=24.0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--decoder", default="taesd", choices=("taesd", "standin"),
                    help="standin: a fixed numpy 4->3 projection, upsampled 8x (checks the plumbing, no PyTorch)")
    a = ap.parse_args(argv)
    try:
        import numpy as np
        import cv2
    except ImportError as e:
        print("PEER skipped: %s (the peer needs numpy and opencv-python)" % e)
        return 77
    lat = np.load(a.latents, mmap_mode="c")
    n, c, lh, lw = lat.shape
    w, h = 8 * lw, 8 * lh
    if a.decoder == "taesd":
        try:
            import torch
        except ImportError:
            print("PEER skipped: no PyTorch")
            return 77
        if a.device == "cuda" and not torch.cuda.is_available():
            print("PEER skipped: PyTorch has no CUDA device")
            return 77
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu"))
        from taesd_torch_check import Decoder, load_safetensors
        torch.backends.cudnn.benchmark = True
        dt = torch.float16 if a.device == "cuda" else torch.float32
        net = Decoder(c)
        net.load_state_dict(load_safetensors(a.weights), strict=True)
        net = net.to(a.device, dt).to(memory_format=torch.channels_last).eval()
        what = "TAESD, PyTorch %s %s on %s" % (torch.__version__, str(dt).replace("torch.", ""),
                                               torch.cuda.get_device_name(0) if a.device == "cuda" else a.device)

        def decode(x):
            with torch.inference_mode():
                y = net(torch.from_numpy(x).to(a.device, dt).contiguous(memory_format=torch.channels_last))
                u8 = (y.float().clamp_(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
                return u8.flip(1).permute(0, 2, 3, 1).contiguous().cpu().numpy()	# RGB -> BGR, NHWC

        def sync():
            if a.device == "cuda":
                torch.cuda.synchronize()
    else:
        proj = np.array([[0.3, 0.2, -0.1, 0.1], [0.1, 0.3, 0.2, -0.1], [-0.1, 0.1, 0.3, 0.2]], np.float32)
        what = "numpy stand-in decoder (a plumbing check, not a peer)"

        def decode(x):
            rgb = np.einsum("oc,nchw->nhwo", proj, x.astype(np.float32)) * 0.5 + 0.5
            u8 = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)[..., ::-1]
            return np.ascontiguousarray(u8.repeat(8, axis=1).repeat(8, axis=2))

        def sync():
            pass
    decode(lat[:a.chunk])	# warm-up: context, cuDNN's choice of kernels, allocator
    decode(lat[:a.chunk])
    sync()
    import resource
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    wr = cv2.VideoWriter(a.out, cv2.VideoWriter_fourcc(*"mp4v"), a.fps, (w, h))
    if not wr.isOpened():
        print("PEER failed: cv2.VideoWriter could not open %s with fourcc mp4v" % a.out)
        return 1
    for i in range(0, n, a.chunk):
        for fr in decode(lat[i:i + a.chunk]):
            wr.write(fr)
    wr.release()
    fd = os.open(a.out, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print("PEER frames=%d wall_s=%.6f frames_per_s=%.3f cpu_s=%.3f bytes=%d cv2=%s decoder=%s" % (
        n, wall, n / wall, cpu, os.path.getsize(a.out), cv2.__version__, what.replace(" ", "_")))
    return 0


# ---------------------------------------------------------------------------
# table: encode.tsv -> the markdown table and the summary


def table(d):
    with open(os.path.join(d, "encode.tsv")) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    par = {}
    if os.path.exists(os.path.join(d, "params.tsv")):
        for line in open(os.path.join(d, "params.tsv")):
            k, _, v = line.rstrip("\n").partition("\t")
            par[k] = v
    order = {"y4m": 0, "h264": 1, "ffv1": 2, "peer": 3}
    rows.sort(key=lambda r: (order.get(r["id"].split("-")[0], 9), int(r["workers"] or 0)))
    ok = {r["id"]: num(r["frames_per_s"]) for r in rows if r["status"] == "done"}
    h264 = sorted((int(r["workers"]), ok[r["id"]]) for r in rows if r["id"].startswith("h264-") and r["id"] in ok)
    one = h264[0][1] if h264 and h264[0][0] == 1 else None
    hdr = ["pipeline", "output", "workers", "frames", "wall s", "frames/s", "× 1 worker", "CPU-s",
           "CPU ms / frame", "output bytes", "bytes / frame", "check"]
    body = []
    for r in rows:
        done = r["status"] == "done"
        fps, wall, cpu, byt, n = (num(r[k]) for k in ("frames_per_s", "wall_s", "cpu_s", "bytes", "frames"))
        x1 = fps / one if done and one and r["id"].startswith("h264-") else None
        name = r["label"] if done else "%s (%s)" % (r["label"], r["status"])
        body.append([
            name, r["output"], r["workers"] or "—", r["frames"] or "—", fmt(wall if done else None, "%.2f"),
            fmt(fps if done else None, "%.1f"), fmt(x1, "%.2f×"), fmt(cpu if done else None, "%.2f"),
            fmt(1000 * cpu / n if done and cpu is not None and n else None, "%.2f"),
            "%d" % byt if byt else "—", fmt(byt / n if byt and n else None, "%.0f"),
            r["check"] or "—"])
    notes = [
        "",
        "- All rows decode the same latents (%s) in the same run; egressd rows are one job each through "
        "the spool of a running daemon with the named number of workers (after an untimed warm-up job), timed "
        "from the job file's drop to its record (tests/bench/spool_run.py)." % par.get("latents", "?"),
        "- y4m: the same job with no encode (decode, copy out, write): the ceiling of the encoding rows.",
        "- H.264: libx264 %s, crf %s, gop %s, threads 1 per segment; FFV1: gop %s (FFmpeg's ffv1, 4 slices). "
        "Segments of one GOP are encoded by whichever worker completes them (docs/ENCODE.md)."
        % (par.get("preset", "?"), par.get("crf", "?"), par.get("gop", "?"), par.get("gop", "?")),
        "- CPU-s: user + sys of the daemon's processes (supervisor, producer, workers) over the job, from "
        "/proc; the peer: its own process (getrusage), decode included.",
        "- PyTorch + cv2.VideoWriter: what a PyTorch user writes: decode a chunk on the GPU (fp16), frames to "
        "uint8 BGR, `.cpu()`, `VideoWriter.write` per frame, in one process. Its codec is **mp4v (MPEG-4 "
        "Part 2), not H.264**: opencv-python's bundled FFmpeg has no libx264, so this row is not the same "
        "codec nor the same quality; it is the encoder that path gets.",
        "- The encode stage alone (ffmpeg y4m → mp4 with the same settings) is not measured: the machine "
        "has no ffmpeg binary (the carried FFmpeg bundle holds the libraries only).",
        "- check: the output parsed without ffprobe (MP4: ftyp, moov and mdat boxes, the video track's "
        "sample count in stsz; Matroska: EBML header, blocks of every cluster; y4m: whole frames) against the "
        "job's frame count.",
    ]
    if par.get("sizing"):
        notes.append("- frames: %s" % par["sizing"])
    bad = [r for r in rows if r["status"] not in ("done", "skipped")]
    skipped = [r for r in rows if r["status"] == "skipped"]
    if bad or skipped:
        notes += ["", "Rows that did not complete:", ""]
        notes += ["- %s: %s %s" % (r["label"], r["status"], r["error"]) for r in bad + skipped]
    title = "## Encode-bound: %s %s → files, encoders against workers (one run)" % (
        par.get("decoder", "?"), par.get("size", "?"))
    open(os.path.join(d, "extra.md"), "w").write("\n".join([title, ""] + md_table(hdr, body) + notes) + "\n")

    summ = []
    y4m = [ok[r["id"]] for r in rows if r["id"] == "y4m" and r["id"] in ok]
    if h264:
        parts = ["%d worker%s %.1f f/s%s" % (w, "" if w == 1 else "s", f, " (%.2f×)" % (f / one) if one and w != 1
                                                                            else "") for w, f in h264]
        s = "H.264 (%s, crf %s): %s" % (par.get("preset", "?"), par.get("crf", "?"), "; ".join(parts))
        if y4m:
            s += "; %d workers at %.2f × the y4m reference (%.1f f/s, no encode)" % (h264[-1][0], h264[-1][1] / y4m[0],
                                                                                 y4m[0])
        summ.append(s)
    else:
        summ.append("H.264: no row completed")
    for r in rows:
        if r["id"].startswith("ffv1") and r["id"] in ok:
            summ.append("FFV1, %s workers: %.1f f/s%s" % (r["workers"], ok[r["id"]], " = %.2f × the y4m reference"
                                                           % (ok[r["id"]] / y4m[0]) if y4m else ""))
        if r["id"] == "peer":
            if r["id"] in ok:
                s = "%s, not the same codec: %.1f f/s" % (r["label"], ok["peer"])
                if h264:
                    s += "; egressd H.264 with %d workers %.2f× it" % (h264[-1][0], h264[-1][1] / ok["peer"])
                summ.append(s)
            else:
                summ.append("%s: %s (%s)" % (r["label"], r["status"], r["error"]))
    summ.append("encode stage alone (ffmpeg): not measured, no ffmpeg binary on this machine")
    for r in bad:
        summ.append("%s: %s %s" % (r["label"], r["status"], r["error"]))
    open(os.path.join(d, "summary.txt"), "w").write("\n".join(summ) + "\n")
    return 1 if bad else 0


def main():
    a = sys.argv[1:]
    if a[:1] == ["cpu"] and len(a) == 2:
        print("%.2f" % proc_cpu(int(a[1])))
        return 0
    if a[:1] == ["check"] and len(a) == 4:
        return check(a[1], a[2], int(a[3]))
    if a[:1] == ["peer"]:
        return peer(a[1:])
    if a[:1] == ["table"] and len(a) == 2:
        return table(a[1])
    print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main())
