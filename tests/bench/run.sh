#!/usr/bin/env bash
# make bench: the pipeline benchmark of docs/BENCHMARKS.md, on a GPU machine.
#
# One run, one table: for each regime (copy-bound: latent2rgb to /dev/shm;
# disk-bound: latent2rgb to the real disk; compute-bound: TAESD to the real
# disk) and each pipeline (naive, full and the ablations), one job through
# `egressd --oneshot` with the release build, parsed from the result it
# prints; next to it the slowest stage of that regime measured alone, and
# for the compute-bound regime the PyTorch peers (tests/bench/peers.py) on
# the same job.  Prints the table in Markdown and a short summary last;
# with $OUT set, also writes $OUT/bench.md, $OUT/bench.csv and the logs.
#
#   tests/bench/run.sh                     (what `make bench` runs)
#   tests/bench/run.sh --format-only DIR   re-print the table from DIR/rows.tsv
#                                          and DIR/stages.tsv of an earlier run
# Environment (defaults in brackets):
#   BENCH_BIN [build]  BENCH_DIR [/var/tmp/egressd-bench: the real disk]
#   BENCH_SHM_DIR [/dev/shm/egressd-bench]  BENCH_SECONDS [3: per full run]
#   BENCH_WORKERS [nproc/2, 2..8]  BENCH_SLOTS [8]  BENCH_CHUNK [8]
#   BENCH_L2R_SIZE [1024]  BENCH_TAESD_SIZE [512]  BENCH_REGIMES [copy disk compute]
#   BENCH_VARIANTS [naive full no-copy-stream pageable single-buffer one-worker]
#   BENCH_SHM_MAX [16G]  BENCH_DISK_MAX [24G]: most output bytes per job
#   BENCH_BUDGET [420: seconds; variants past it are skipped, not run]
#   BENCH_PEERS [1]  BENCH_COMPILE [0: torch.compile in the decode-alone table]
# Exit: 0, 77 without a GPU, 1 when a run failed or a binary is missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
T0=$SECONDS

gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1073741824 }'; }
size_bytes() {	# 16G -> bytes
	local v=${1%[KMGT]} u=${1##*[0-9]}
	case $u in K) echo $((v << 10)) ;; M) echo $((v << 20)) ;; G) echo $((v << 30)) ;; T) echo $((v << 40)) ;;
	*) echo "$v" ;; esac
}

# ---------------------------------------------------------------------------
# The table: rows.tsv (one line per run) + stages.tsv (stages alone) -> Markdown
# and CSV.  Kept apart so that it can be re-run on an earlier run's files.
format_table() {	# DIR
	python3 - "$1" <<'PY'
import csv
import os
import sys

d = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(d, "rows.tsv")), delimiter="\t", quoting=csv.QUOTE_NONE))
stages = list(csv.DictReader(open(os.path.join(d, "stages.tsv")), delimiter="\t", quoting=csv.QUOTE_NONE))
meta = {}
if os.path.exists(os.path.join(d, "meta.tsv")):
    for line in open(os.path.join(d, "meta.tsv")):
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = v
REG = {"copy": "copy-bound", "disk": "disk-bound", "compute": "compute-bound"}


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def f(x, fmt):
    return "—" if x is None else fmt % x


# slowest stage alone per regime: the one with the fewest frames/s
slow = {}
for s in stages:
    fps = num(s["frames_per_s"])
    if fps is None or fps <= 0:
        continue
    if s["regime"] not in slow or fps < slow[s["regime"]][1]:
        slow[s["regime"]] = (s["stage"], fps)
full = {r["regime"]: num(r["frames_per_s"]) for r in rows if r["pipeline"] == "full" and r["status"] == "done"}

hdr = ["regime", "pipeline", "frames", "frames/s", "GPU kernel util (steady)", "GPU busy / wall", "D2H GB/s", "disk GB/s",
       "producer blocked s", "slowest stage alone", "÷ slowest", "full ÷ this"]
out = ["| " + " | ".join(hdr) + " |", "| " + " | ".join("---" for _ in hdr) + " |"]
csvrows = []
for r in rows:
    reg = r["regime"]
    fps, wall, byt = num(r["frames_per_s"]), num(r["wall_s"]), num(r["bytes"])
    util, d2h, blk = num(r["gpu_kernel_util"]), num(r["d2h_gbps"]), num(r["producer_blocked_s"])
    done = r["status"] == "done"
    disk = byt / wall / 1e9 if done and byt and wall else None
    st = slow.get(reg)
    ratio = fps / st[1] if done and st and fps else None
    vs_full = full.get(reg) / fps if done and full.get(reg) and fps else None
    name = r["pipeline"] if done else "%s (%s)" % (r["pipeline"], r["status"])
    out.append("| " + " | ".join([
        REG.get(reg, reg), name, r["frames"] or "—", f(fps if done else None, "%.1f"),
        f(util if done else None, "%.4f"), f(num(r.get("gpu_busy_of_wall")) if done else None, "%.3f"),
        f(d2h if done else None, "%.1f"), f(disk, "%.2f"),
        f(blk if done else None, "%.2f"), "%s %.1f f/s" % st if st else "—",
        f(ratio, "%.3f"), f(vs_full, "%.2f×")]) + " |")
    csvrows.append([reg, r["pipeline"], r["status"], r["frames"], r["frames_per_s"], r["wall_s"], r["bytes"],
                    r["gpu_kernel_util"], r["gpu_kernel_s"], r["d2h_gbps"], "" if disk is None else "%.4f" % disk,
                    r["producer_blocked_s"], r["write_s"], st[0] if st else "", "%.3f" % st[1] if st else "",
                    "" if ratio is None else "%.4f" % ratio, "" if vs_full is None else "%.4f" % vs_full,
                    r["error"]])

notes = ["", "Stages alone (the slowest, per regime, is the \"÷ slowest\" reference):", ""]
for s in stages:
    fps = num(s["frames_per_s"])
    notes.append("- %s, %s: %s f/s — %s" % (REG.get(s["regime"], s["regime"]), s["stage"],
                                          f(fps, "%.1f"), s["detail"]))
errs = [r for r in rows if r["status"] != "done"]
if errs:
    notes += ["", "Runs that did not complete:", ""]
    notes += ["- %s %s: %s %s" % (REG.get(r["regime"], r["regime"]), r["pipeline"], r["status"], r["error"])
              for r in errs]
table = "\n".join(out + notes) + "\n"
open(os.path.join(d, "table.md"), "w").write(table)
with open(os.path.join(d, "bench.csv"), "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["regime", "pipeline", "status", "frames", "frames_per_s", "wall_s", "bytes", "gpu_kernel_util",
                "gpu_kernel_s", "d2h_gbps", "disk_gbps", "producer_blocked_s", "write_s", "slowest_stage",
                "slowest_stage_fps", "ratio_to_slowest", "full_over_this", "error"])
    w.writerows(csvrows)
    for s in stages:
        w.writerow([s["regime"], "stage:" + s["stage"], "alone", "", s["frames_per_s"], "", "", "", "", "", "",
                    "", "", "", "", "", "", s["detail"]])

# summary: the issues' targets, read off the rows above
summ = []
for reg in ("copy", "disk", "compute"):
    rr = {r["pipeline"]: r for r in rows if r["regime"] == reg}
    if not rr:
        continue
    fr = rr.get("full")
    if not fr or fr["status"] != "done":
        summ.append("%s: full did not complete" % REG[reg])
        continue
    fps = num(fr["frames_per_s"])
    parts = []
    st = slow.get(reg)
    if st:
        ratio = fps / st[1]
        parts.append("full %.3f × slowest stage (%s) [target ≥ 0.95: %s]" % (ratio, st[0],
                     "met" if ratio >= 0.95 else "NOT met"))
    if reg == "copy" and num(fr["d2h_gbps"]) is not None:
        g = num(fr["d2h_gbps"])
        parts.append("D2H %.1f GB/s [target ≥ 50: %s]" % (g, "met" if g >= 50 else "NOT met"))
    if reg == "compute" and num(fr["gpu_kernel_util"]) is not None:
        u = num(fr["gpu_kernel_util"])
        parts.append("kernel util %.4f [target ≥ 0.995: %s]" % (u, "met" if u >= 0.995 else "NOT met"))
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
    summ.append("%s: %s" % (REG[reg], "; ".join(parts)))
open(os.path.join(d, "summary.txt"), "w").write("\n".join(summ) + "\n")
PY
}

if [ "${1:-}" = --format-only ]; then
	[ -d "${2:-}" ] || { echo "usage: $0 --format-only DIR" >&2; exit 64; }
	format_table "$2" || exit 1
	cat "$2/table.md"; echo; cat "$2/summary.txt"
	exit 0
fi

# ---------------------------------------------------------------------------
if ! nvidia-smi -L >/dev/null 2>&1; then
	echo "bench: no NVIDIA GPU (nvidia-smi -L failed); the benchmark needs one, skipped"
	exit 77
fi
BIN=${BENCH_BIN:-build}
DISK_DIR=${BENCH_DIR:-/var/tmp/egressd-bench}
SHM_DIR=${BENCH_SHM_DIR:-/dev/shm/egressd-bench}
SECS=${BENCH_SECONDS:-3}
NPROC=$(nproc)
WORKERS=${BENCH_WORKERS:-$((NPROC / 2 < 2 ? 2 : NPROC / 2 > 8 ? 8 : NPROC / 2))}
SLOTS=${BENCH_SLOTS:-8}
CHUNK=${BENCH_CHUNK:-8}
L2R_SIZE=${BENCH_L2R_SIZE:-1024}
TAESD_SIZE=${BENCH_TAESD_SIZE:-512}
REGIMES=${BENCH_REGIMES:-copy disk compute}
VARIANTS=${BENCH_VARIANTS:-naive full no-copy-stream pageable single-buffer one-worker}
SHM_MAX=$(size_bytes "${BENCH_SHM_MAX:-16G}")
DISK_MAX=$(size_bytes "${BENCH_DISK_MAX:-24G}")
BUDGET=${BENCH_BUDGET:-420}
for b in egressd egressd-mklatents egressd-mktaesd egressd-producer egressd-worker; do
	[ -x "$BIN/$b" ] || { echo "bench: $BIN/$b missing (make all)"; exit 1; }
done
RES=${OUT:-$DISK_DIR/results}
W=$DISK_DIR/work		# latents, weights, configs, job files
mkdir -p "$W" "$DISK_DIR/out" "$SHM_DIR" "$RES/logs" || exit 1
rm -f "$RES/rows.tsv" "$RES/stages.tsv"
printf 'regime\tpipeline\tstatus\tframes\tframes_per_s\twall_s\tbytes\tgpu_kernel_util\tgpu_kernel_s\td2h_gbps\tproducer_blocked_s\twrite_s\tgpu_busy_of_wall\terror\n' >"$RES/rows.tsv"
printf 'regime\tstage\tframes_per_s\tdetail\n' >"$RES/stages.tsv"
INSTANCE="egrbench$$"
cleanup() { rm -rf "$SHM_DIR" "$DISK_DIR/out"; rm -f "$W"/*.npy "$W"/*.tmp; }
trap cleanup EXIT
trap 'exit 1' INT TERM
say() { echo "bench: $*" >&2; }
stage() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RES/stages.tsv"; say "stage alone: $1 $2 $3 f/s ($4)"; }
avail() { df -B1 --output=avail "$1" | tail -1 | tr -d ' '; }
# every job's ring lives in /dev/shm whatever the output directory
RING_NEED=$((SLOTS * CHUNK * (L2R_SIZE * L2R_SIZE * 3 / 2) + (64 << 20)))
if [ "$(avail /dev/shm)" -lt $RING_NEED ]; then
	say "WARNING: /dev/shm has $(gib "$(avail /dev/shm)") GiB free; the ring needs $(gib $RING_NEED) GiB: runs will fail"
fi

# ---- setup, for the page ----
{
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
	printf 'device\t%s\n' "$(nvidia-smi --query-gpu=name,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv,noheader | head -1)"
	printf 'driver\t%s\n' "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
	printf 'cpu\t%s x %s\n' "$NPROC" "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	printf 'kernel\t%s\n' "$(uname -r)"
	printf 'commit\t%s%s\n' "$(git rev-parse --short HEAD 2>/dev/null)" \
		"$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo ' (+ local changes)')"
	printf 'disk\t%s (%s)\n' "$DISK_DIR" "$(df -T "$DISK_DIR" | awk 'NR == 2 { print $1 ", " $2 }')"
	printf 'shm\t%s (%s GiB free)\n' "$SHM_DIR" "$(gib "$(avail "$SHM_DIR")")"
	printf 'config\tworkers %s, slots %s, chunk_frames %s, vram_buffers 2, y4m\n' "$WORKERS" "$SLOTS" "$CHUNK"
	printf 'command\tmake bench (tests/bench/run.sh)%s\n' \
		"$(env | grep '^BENCH_' | sort | tr '\n' ' ' | sed 's/^./ with &/')"
} >"$RES/meta.tsv"
sed 's/\t/: /' "$RES/meta.tsv" >&2

# ---- stages alone ----
# D2H: bench_d2h's back-to-back pinned copies (cudaMallocHost), the raw peak.
D2H_GBPS='' D2H_DETAIL=''
d2h_bin=
for c in build/t/tests/gpu/bench_d2h build/tests/gpu/bench_d2h; do [ -x "$c" ] && { d2h_bin=$c; break; }; done
if [ -z "$d2h_bin" ] && command -v nvcc >/dev/null; then
	mkdir -p "$W/bin"
	nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
		-o "$W/bin/bench_d2h" tests/gpu/bench_d2h.cu >"$RES/logs/bench_d2h.build.log" 2>&1 &&
		d2h_bin=$W/bin/bench_d2h
fi
if [ -n "$d2h_bin" ]; then
	timeout 120 "$d2h_bin" >"$RES/logs/bench_d2h.log" 2>&1
	D2H_GBPS=$(awk '$1 == "pinned" { for (i = 1; i < NF; i++) if ($i == "queued") v = $(i + 1) + 0;
		if (v > m) m = v } END { if (m) print m }' "$RES/logs/bench_d2h.log")
	REG_GBPS=$(awk '$1 == "shm-reg" { for (i = 1; i < NF; i++) if ($i == "queued") v = $(i + 1) + 0;
		if (v > m) m = v } END { if (m) print m }' "$RES/logs/bench_d2h.log")
	D2H_DETAIL="bench_d2h, cudaMallocHost, back-to-back copies, best size: $D2H_GBPS GB/s (registered shm: ${REG_GBPS:-?} GB/s)"
fi
[ -n "$D2H_GBPS" ] || say "no D2H number (bench_d2h missing or failed): the D2H stage is left out"

# write alone: the job's bytes, in chunk-sized pwrites at disjoint offsets of
# one file from WORKERS threads, each chunk's writeback started at once with
# sync_file_range(SYNC_FILE_RANGE_WRITE), then fsync: what the workers do,
# minus the ring and the GPU.  Python's os.pwrite releases the GIL.  Prints
# GB/s.
write_alone() {	# DIR BYTES CHUNK_BYTES THREADS
	python3 - "$@" <<'PY'
import ctypes
import os
import sys
import threading
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
SYNC_FILE_RANGE_WRITE = 2
d, total, chunk, nt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
path = os.path.join(d, "write_alone.tmp")
buf = bytes(range(256)) * (chunk // 256) + bytes(chunk % 256)
nchunks = (total + chunk - 1) // chunk
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
lock = threading.Lock()
nxt = [0]

def run():
    mv = memoryview(buf)
    while True:
        with lock:
            i = nxt[0]
            nxt[0] += 1
        if i >= nchunks:
            return
        n = min(chunk, total - i * chunk)
        off, done = i * chunk, 0
        while done < n:
            done += os.pwrite(fd, mv[done:n], off + done)
        libc.sync_file_range(fd, off, n, SYNC_FILE_RANGE_WRITE)

t0 = time.perf_counter()
ths = [threading.Thread(target=run) for _ in range(nt)]
for t in ths:
    t.start()
for t in ths:
    t.join()
os.fsync(fd)
dt = time.perf_counter() - t0
os.close(fd)
os.unlink(path)
print("%.4f" % (total / dt / 1e9))
PY
}

# latents: a short clip from egressd-mklatents, tiled to N frames (the
# decoders' speed does not depend on the values; mklatents itself takes
# seconds per thousand frames)
make_latents() {	# OUT N C H W
	"$BIN/egressd-mklatents" -o "$W/base.npy" -f 32 -c "$3" -H "$4" -W "$5" --seed 7 >/dev/null || return 1
	python3 - "$W/base.npy" "$1" "$2" <<'PY'
import sys
import numpy as np

base = np.load(sys.argv[1])
n = int(sys.argv[3])
with open(sys.argv[2], "wb") as f:
    np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(base.dtype),
                                             "fortran_order": False, "shape": (n,) + base.shape[1:]})
    raw = base.tobytes()
    per = len(raw) // base.shape[0]
    left = n
    while left:
        k = min(left, base.shape[0])
        f.write(raw[:k * per])
        left -= k
PY
}

# run_variant REGIME PIPELINE NPY OUTPUT [DECODER WEIGHTS]: one oneshot job,
# one line of rows.tsv
run_variant() {
	local reg=$1 pl=$2 npy=$3 outp=$4 dec=${5:-latent2rgb} wts=${6:-}
	local tag=$reg-$pl conf=$W/$reg-$pl.ini jobf=$W/$reg-$pl.job res=$RES/logs/$reg-$pl.result
	local frames; frames=$(python3 -c "import numpy as np; print(np.load('$npy', mmap_mode='r').shape[0])")
	if [ $((SECONDS - T0)) -gt "$BUDGET" ]; then
		printf '%s\t%s\tskipped\t%s\t\t\t\t\t\t\t\t\ttime budget (BENCH_BUDGET=%ss) spent\n' "$reg" "$pl" "$frames" "$BUDGET" >>"$RES/rows.tsv"
		say "$tag: skipped (time budget)"
		return
	fi
	cat >"$conf" <<INI
[daemon]
spool = $DISK_DIR/spool
instance = $INSTANCE
workers = $WORKERS
backend = cuda
pipeline = $pl
log_level = info
[ring]
slots = $SLOTS
slot_bytes = $SLOT_BYTES
[paths]
allow_read = $W $DISK_DIR $SHM_DIR
allow_write = $DISK_DIR $SHM_DIR
[limits]
max_frames = 100000000
INI
	{
		echo "[job]"
		echo "latents = $npy"
		echo "output = $outp"
		echo "format = y4m"
		echo "decoder = $dec"
		[ -n "$wts" ] && echo "weights = $wts"
		echo "chunk_frames = $CHUNK"
		echo "overwrite = yes"
	} >"$jobf"
	rm -rf "$outp"
	local t=$SECONDS
	timeout -k 5 300 "$BIN/egressd" --oneshot "$jobf" -c "$conf" >"$res" 2>"$RES/logs/$tag.log"
	local rc=$?
	get() { sed -n "s/^$1 = //p" "$res" | head -1; }
	local status; status=$(get status)
	[ -n "$status" ] || status="exit $rc"
	[ $rc = 124 ] && status=timeout
	local err; err=$(get error | tr '\t' ' ')
	[ "$status" != done ] && [ -z "$err" ] && err=$(grep -E '<[0-3]>' "$RES/logs/$tag.log" | head -1 | tr '\t' ' ')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$reg" "$pl" "$status" "$frames" \
		"$(get frames_per_s)" "$(get wall_s)" "$(get bytes)" "$(get gpu_kernel_util)" "$(get gpu_kernel_s)" \
		"$(get d2h_gbps)" "$(get producer_blocked_s)" "$(get write_s)" "$(get gpu_busy_of_wall)" "$err" >>"$RES/rows.tsv"
	say "$tag: $status, $(get frames_per_s) frames/s, kernel util $(get gpu_kernel_util), D2H $(get d2h_gbps) GB/s ($((SECONDS - t)) s)"
	[ -n "${KEEP_OUTPUT:-}" ] || rm -rf "$outp"
}

# frames for about SECS seconds at RATE bytes/s, within CAP bytes, a whole
# number of chunks, at least 32 chunks
pick_frames() {	# RATE_BPS CAP_BYTES FRAME_OUT_BYTES
	awk -v r="$1" -v cap="$2" -v fb="$3" -v s="$SECS" -v c="$CHUNK" 'BEGIN {
		n = r * s / fb; m = cap / fb; if (m < n) n = m
		n = int(n / c) * c; if (n < 32 * c) n = 32 * c; print n }'
}

# ---- latent2rgb regimes: copy-bound (/dev/shm) and disk-bound (real disk) ----
l2r_regime() {	# REGIME DIR CAP
	local reg=$1 dir=$2 cap=$3
	local fb=$((L2R_SIZE * L2R_SIZE * 3 / 2)) lat=$((L2R_SIZE / 8))
	local ofb=$((fb + 6))
	SLOT_BYTES=$(((CHUNK * fb + 1048575) >> 20))M
	local ring=$((SLOTS * CHUNK * fb + (64 << 20)))
	local free; free=$(avail "$dir")
	[ "$reg" = copy ] && free=$((free - ring))	# the ring lives in /dev/shm too
	# tmpfs: 60% of what is free; a disk also holds the latents: 40%
	local room=$((free * $([ "$reg" = copy ] && echo 6 || echo 4) / 10))
	[ $room -lt "$cap" ] && cap=$room
	if [ "$cap" -lt $((32 * CHUNK * ofb)) ]; then
		printf '%s\t%s\tskipped\t\t\t\t\t\t\t\t\t\t%s has %s GiB free: too little\n' "$reg" all "$dir" "$(gib "$free")" >>"$RES/rows.tsv"
		say "$reg: skipped, $dir has $(gib "$free") GiB free"
		return
	fi
	# probe the writer with 1 GiB to size the job, then measure it alone on
	# the job's exact byte count
	local probe; probe=$(write_alone "$dir" $((1 << 30)) $((CHUNK * fb)) "$WORKERS")
	local rate; rate=$(awk -v p="$probe" -v d="${D2H_GBPS:-0}" 'BEGIN { r = p; if (d > 0 && d < r) r = d; print r * 1e9 }')
	local n; n=$(pick_frames "$rate" "$cap" "$ofb")
	local bytes=$((n * ofb))
	say "$reg: $n frames of ${L2R_SIZE}x$L2R_SIZE y4m ($(gib $bytes) GiB) to $dir; writer probe $probe GB/s"
	local wr; wr=$(write_alone "$dir" "$bytes" $((CHUNK * fb)) "$WORKERS")
	stage "$reg" write "$(awk -v g="$wr" -v b="$ofb" 'BEGIN { printf "%.1f", g * 1e9 / b }')" \
		"$wr GB/s: $(gib $bytes) GiB in ${CHUNK}-frame pwrites + sync_file_range from $WORKERS threads to one file on $dir, then fsync"
	[ -n "$D2H_GBPS" ] && stage "$reg" D2H "$(awk -v g="$D2H_GBPS" -v b="$fb" 'BEGIN { printf "%.1f", g * 1e9 / b }')" \
		"$D2H_DETAIL; $fb bytes per frame"
	make_latents "$W/$reg.npy" "$n" 4 "$lat" "$lat" || { say "$reg: making latents failed"; return; }
	for pl in $VARIANTS; do
		run_variant "$reg" "$pl" "$W/$reg.npy" "$dir/$reg-$pl.y4m"
	done
	# decode alone: the full run's kernel time on the compute stream
	local ks; ks=$(awk -F'\t' -v r="$reg" '$1 == r && $2 == "full" && $3 == "done" { print $9 }' "$RES/rows.tsv")
	[ -n "$ks" ] && stage "$reg" decode "$(awk -v n="$n" -v k="$ks" 'BEGIN { if (k > 0) printf "%.1f", n / k }')" \
		"latent2rgb kernels only: $n frames / gpu_kernel_s $ks of the full run"
	rm -f "$W/$reg.npy"
}

# ---- compute-bound: TAESD to the real disk, and the PyTorch peers ----
DECODE_ALONE_FPS=
compute_regime() {
	local reg=compute dir=$DISK_DIR/out S=$TAESD_SIZE
	local fb=$((S * S * 3 / 2)) ofb=$((S * S * 3 / 2 + 6)) lat=$((S / 8))
	SLOT_BYTES=$(((CHUNK * fb + 1048575) >> 20))M
	"$BIN/egressd-mktaesd" -o "$W/taesd.safetensors" --latent-channels 4 --seed 5 >/dev/null ||
		{ say "compute: egressd-mktaesd failed"; return; }
	# decode alone: test_taesd_gpu --bench (via tests/bench/bench_taesd.py when
	# PyTorch is there, which adds PyTorch's own decode-alone numbers)
	local tb=
	for c in build/t/tests/gpu/test_taesd_gpu build/tests/gpu/test_taesd_gpu; do [ -x "$c" ] && { tb=$c; break; }; done
	if [ -n "$tb" ]; then
		if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
			( [ "${BENCH_COMPILE:-0}" = 1 ] || export EGR_NO_COMPILE=1
			  timeout 240 python3 tests/bench/bench_taesd.py "$tb" "$CHUNK" ) >"$RES/logs/decode_alone.log" 2>&1
		else
			timeout 120 "$tb" --bench "$CHUNK" >"$RES/logs/decode_alone.log" 2>&1
		fi
		DECODE_ALONE_FPS=$(awk -v s="$S" '$1 == "EGRBENCH" && $2 == "size=" s && $4 == "warps=8" {
			sub("fps=", "", $6); print $6 }' "$RES/logs/decode_alone.log" | head -1)
		[ -n "$DECODE_ALONE_FPS" ] && stage compute decode "$DECODE_ALONE_FPS" \
			"test_taesd_gpu --bench $CHUNK: egressd's TAESD kernels alone, batch $CHUNK, ${S}x$S I420, CUDA events, median of 7"
	fi
	local rate; rate=$(awk -v f="${DECODE_ALONE_FPS:-1500}" -v b="$ofb" 'BEGIN { print f * b }')
	local cap=$DISK_MAX room=$(($(avail "$dir") * 4 / 10))
	[ $room -lt "$cap" ] && cap=$room
	local n; n=$(pick_frames "$rate" "$cap" "$ofb")
	local bytes=$((n * ofb))
	say "compute: $n frames of TAESD ${S}x$S y4m ($(gib $bytes) GiB) to $dir"
	local wr; wr=$(write_alone "$dir" "$bytes" $((CHUNK * fb)) "$WORKERS")
	stage compute write "$(awk -v g="$wr" -v b="$ofb" 'BEGIN { printf "%.1f", g * 1e9 / b }')" \
		"$wr GB/s: $(gib $bytes) GiB in ${CHUNK}-frame pwrites + sync_file_range from $WORKERS threads to one file on $dir, then fsync"
	[ -n "$D2H_GBPS" ] && stage compute D2H "$(awk -v g="$D2H_GBPS" -v b="$fb" 'BEGIN { printf "%.1f", g * 1e9 / b }')" \
		"$D2H_DETAIL; $fb bytes per frame"
	make_latents "$W/compute.npy" "$n" 4 "$lat" "$lat" || { say "compute: making latents failed"; return; }
	local keep=$dir/compute-full.y4m
	for pl in $VARIANTS; do
		# full's output stays until the peers' frames have been compared with it
		KEEP_OUTPUT=$([ "$pl" = full ] && echo 1) \
			run_variant compute "$pl" "$W/compute.npy" "$dir/compute-$pl.y4m" taesd "$W/taesd.safetensors"
	done
	if [ -z "$DECODE_ALONE_FPS" ]; then
		local ks; ks=$(awk -F'\t' '$1 == "compute" && $2 == "full" && $3 == "done" { print $9 }' "$RES/rows.tsv")
		[ -n "$ks" ] && stage compute decode "$(awk -v n="$n" -v k="$ks" 'BEGIN { if (k > 0) printf "%.1f", n / k }')" \
			"TAESD kernels only: $n frames / gpu_kernel_s $ks of the full run (test_taesd_gpu not built)"
	fi
	if [ "${BENCH_PEERS:-1}" = 1 ]; then
		if [ $((SECONDS - T0)) -gt "$BUDGET" ]; then
			say "peers: skipped (time budget)"
		else
			local ref=()
			[ -f "$keep" ] && ref=(--ref "$keep")
			timeout -k 5 300 python3 tests/bench/peers.py --latents "$W/compute.npy" \
				--weights "$W/taesd.safetensors" --out "$dir" --chunk "$CHUNK" --workers "$WORKERS" \
				--buffers "$SLOTS" "${ref[@]}" >"$RES/logs/peers.log" 2>&1
			local prc=$?
			grep -E '^PEER' "$RES/logs/peers.log" >&2
			local m
			for m in naive full; do
				local line; line=$(grep "^PEER mode=$m " "$RES/logs/peers.log" | head -1)
				if [ -n "$line" ]; then
					local fps wall byt
					fps=$(sed -n 's/.* frames_per_s=\([^ ]*\).*/\1/p' <<<"$line")
					wall=$(sed -n 's/.* wall_s=\([^ ]*\).*/\1/p' <<<"$line")
					byt=$(sed -n 's/.* bytes=\([^ ]*\).*/\1/p' <<<"$line")
					printf '%s\t%s\tdone\t%s\t%s\t%s\t%s\t\t\t\t\t\t\n' compute "torch-$m" "$n" "$fps" "$wall" "$byt" >>"$RES/rows.tsv"
				else
					local why; why=$(tail -1 "$RES/logs/peers.log" | tr '\t' ' ')
					printf '%s\t%s\t%s\t%s\t\t\t\t\t\t\t\t\t%s\n' compute "torch-$m" "$([ $prc = 77 ] && echo skipped || echo failed)" "$n" "$why" >>"$RES/rows.tsv"
				fi
			done
		fi
	fi
	rm -f "$keep" "$W/compute.npy"
}

for reg in $REGIMES; do
	case $reg in
	copy) l2r_regime copy "$SHM_DIR" "$SHM_MAX" ;;
	disk) l2r_regime disk "$DISK_DIR/out" "$DISK_MAX" ;;
	compute) compute_regime ;;
	*) say "unknown regime '$reg' (copy, disk, compute)" ;;
	esac
done

format_table "$RES" || exit 1
{
	echo "## Setup"
	echo
	sed 's/^\([^\t]*\)\t/- \1: /' "$RES/meta.tsv"
	echo
	echo "## Pipeline benchmark (one run)"
	echo
	cat "$RES/table.md"
	if grep -q 'TAESD decode alone' "$RES/logs/decode_alone.log" 2>/dev/null; then
		echo
		echo "## TAESD decode alone (tests/bench/bench_taesd.py)"
		echo
		echo '```'
		sed -n '/^TAESD decode alone/,$p' "$RES/logs/decode_alone.log"
		echo '```'
	fi
	if grep -q '^PEERCHECK' "$RES/logs/peers.log" 2>/dev/null; then
		echo
		echo "Peers' frames against egressd's (same latents and weights):"
		echo
		grep '^PEERCHECK' "$RES/logs/peers.log" | sed 's/^/- /'
	fi
	echo
	echo "## Summary"
	echo
	sed 's/^/- /' "$RES/summary.txt"
} >"$RES/bench.md"
echo
cat "$RES/bench.md"
echo
echo "bench: $(($(wc -l <"$RES/rows.tsv") - 1)) rows in $((SECONDS - T0)) s; $RES/bench.md, $RES/bench.csv, logs in $RES/logs"
echo "bench summary:"
sed 's/^/  /' "$RES/summary.txt"
! grep -qP '\t(failed|timeout|exit [0-9]+)\t' "$RES/rows.tsv"
