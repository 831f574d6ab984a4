# tests/bench/lib.sh: what the benchmark targets share (sourced by run.sh and
# every tests/bench/bench-*.sh; docs/BENCHMARKS.md).
#
#   bench_init TARGET      settings from the environment
#   bench_need_gpu, bench_need_bins: exit 77 / 1 before anything is made
#   bench_start            result and work directories, clean-up on exit
#   one job, one row       run_variant (egressd --oneshot, the release build)
#                          -> $RES/rows.tsv; stage -> $RES/stages.tsv;
#                          table.py pipeline makes the table
#   many jobs at once      daemon_start, spool_case (tests/bench/spool_run.py)
#                          -> $RES/spool.tsv; table.py spool
#   stages alone           d2h_stage (tests/gpu/bench_d2h), write_alone,
#                          taesd_decode_alone (test_taesd_gpu --bench and
#                          tests/bench/bench_taesd.py), run_peers (peers.py)
#   real taef2 (optional)  taef2_regime: the shared data's decoder and latents
#   video decoders         video_daemon, e2e_rows (jobs one at a time, cold
#                          and timed), wrow -> $TSV (bench-wan, bench-taehv)
#   bench_report TITLE     $OUT/TARGET.md, the table printed, the summary last
#
# Environment (defaults in brackets), shared by every target:
#   BENCH_BIN [build]  BENCH_DIR [/var/tmp/egressd-bench: the real disk]
#   BENCH_SHM_DIR [/dev/shm/egressd-bench]  BENCH_SECONDS [3: per full run]
#   BENCH_WORKERS [nproc/2, 2..8]  BENCH_SLOTS [8]  BENCH_CHUNK [8]  BENCH_VRAM_BUFFERS [2]
#   BENCH_READ_THREADS [4]
#   BENCH_BUDGET [420: seconds; rows past it are skipped, not run]
#   BENCH_SHM_MAX [16G]  BENCH_DISK_MAX [24G]: most output bytes per job
#   BENCH_BACKEND [cuda; cpu runs the plumbing without a GPU, numbers meaningless]
#   OUT: where results go (else BENCH_DIR/results); each target writes
#   OUT/TARGET.md and keeps its rows, CSV and logs in OUT/TARGET/.
set -u

gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1073741824 }'; }
size_bytes() {	# 16G -> bytes
	local v=${1%[KMGT]} u=${1##*[0-9]}
	case $u in K) echo $((v << 10)) ;; M) echo $((v << 20)) ;; G) echo $((v << 30)) ;; T) echo $((v << 40)) ;;
	*) echo "$v" ;; esac
}
avail() { df -B1 --output=avail "$1" | tail -1 | tr -d ' '; }
say() { echo "$TARGET: $*" >&2; }
over_budget() { [ $((SECONDS - T0)) -gt "$BUDGET" ]; }
kv() { sed -n "s/^$1 = //p" "$2" | head -1; }	# kv KEY RESULT_FILE
safe_name() { printf '%s' "$1" | LC_ALL=C tr -cs 'A-Za-z0-9.-' '_'; }	# for file names

bench_init() {	# TARGET [the script's arguments, for the record]
	TARGET=$1
	shift
	BENCH_ARGS=$*
	T0=$SECONDS
	BIN=${BENCH_BIN:-build}
	DISK_DIR=${BENCH_DIR:-/var/tmp/egressd-bench}
	SHM_DIR=${BENCH_SHM_DIR:-/dev/shm/egressd-bench}
	SECS=${BENCH_SECONDS:-3}
	NPROC=$(nproc)
	WORKERS=${BENCH_WORKERS:-$((NPROC / 2 < 2 ? 2 : NPROC / 2 > 8 ? 8 : NPROC / 2))}
	SLOTS=${BENCH_SLOTS:-8}
	CHUNK=${BENCH_CHUNK:-8}
	VRAM=${BENCH_VRAM_BUFFERS:-2}
	READ_THREADS=${BENCH_READ_THREADS:-4}
	BUDGET=${BENCH_BUDGET:-420}
	BACKEND=${BENCH_BACKEND:-cuda}
	SHM_MAX=$(size_bytes "${BENCH_SHM_MAX:-16G}")
	DISK_MAX=$(size_bytes "${BENCH_DISK_MAX:-24G}")
	RES_TOP=${OUT:-$DISK_DIR/results}
	RES=$RES_TOP/$TARGET
	# work lives in subdirectories made here and removed at exit, never
	# BENCH_DIR or BENCH_SHM_DIR themselves (they may be shared)
	W=$DISK_DIR/work.$$		# latents, weights, configs, job files
	OUTD=$DISK_DIR/out.$$		# outputs on the real disk
	SHMD=$SHM_DIR/run.$$		# outputs on tmpfs
	INSTANCE="egrbench$$"
	DAEMON_PID=
}

# bench_start: after the checks, the directories, the tables' headers and
# the clean-up on exit
bench_start() {
	mkdir -p "$W" "$OUTD" "$SHMD" "$RES/logs" || { echo "$TARGET: cannot create $W, $OUTD, $SHMD or $RES"; exit 1; }
	rm -f "$RES"/*.tsv "$RES"/*.md "$RES"/*.txt "$RES"/*.csv
	printf 'regime\tpipeline\tstatus\tframes\tframes_per_s\twall_s\tbytes\tgpu_kernel_util\tgpu_kernel_s\td2h_gbps\tproducer_blocked_s\twrite_s\tgpu_busy_of_wall\terror\n' >"$RES/rows.tsv"
	printf 'regime\tstage\tframes_per_s\tdetail\n' >"$RES/stages.tsv"
	printf 'regime\tlabel\tdecoder\tsize\tfps_target\td2h_target\te2e_target\tcompile_target\n' >"$RES/regimes.tsv"
	trap bench_cleanup EXIT
	trap 'exit 1' INT TERM
}

bench_cleanup() {
	daemon_stop
	rm -rf "$W" "$OUTD" "$SHMD"
	rmdir "$SHM_DIR" "$DISK_DIR" 2>/dev/null
	rm -f "/dev/shm/$INSTANCE"
}

# exit 77, cleanly, where the target needs a GPU and there is none
bench_need_gpu() {
	[ "$BACKEND" = cuda ] || return 0
	if ! nvidia-smi -L >/dev/null 2>&1; then
		echo "$TARGET: skipped: no NVIDIA GPU (nvidia-smi -L failed); BENCH_BACKEND=cpu runs the plumbing only"
		exit 77
	fi
}

bench_need_bins() {	# NAME...
	local b
	for b in "$@"; do
		[ -x "$BIN/$b" ] || { echo "$TARGET: $BIN/$b missing (make all)"; exit 1; }
	done
}

# meta.tsv: the setup, for the page.  CONFIG_LINE: what the target ran with.
bench_meta() {	# CONFIG_LINE
	{
		printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
		if [ "$BACKEND" = cuda ]; then
			printf 'device\t%s\n' "$(nvidia-smi --query-gpu=name,memory.total,pcie.link.gen.current,pcie.link.width.current --format=csv,noheader | head -1)"
			printf 'driver\t%s\n' "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
		else
			printf 'device\tnone: BENCH_BACKEND=%s (plumbing check, not a measurement)\n' "$BACKEND"
		fi
		printf 'cpu\t%s x %s\n' "$NPROC" "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
		printf 'kernel\t%s\n' "$(uname -r)"
		printf 'commit\t%s%s\n' "$(git rev-parse --short HEAD 2>/dev/null)" \
			"$(git status --porcelain 2>/dev/null | grep -qv '^??' && echo ' (+ local changes)')"
		printf 'disk\t%s (%s)\n' "$DISK_DIR" "$(df -T "$DISK_DIR" | awk 'NR == 2 { print $1 ", " $2 }')"
		printf 'shm\t%s (%s, %s GiB free)\n' "$SHM_DIR" "$(df --output=fstype "$SHM_DIR" | tail -1)" \
			"$(gib "$(avail "$SHM_DIR")")"
		printf 'config\t%s\n' "$1"
		printf 'command\t%s%s%s\n' "tests/bench/$(basename "$0")" "${BENCH_ARGS:+ $BENCH_ARGS}" \
			"$(env | grep '^BENCH_' | sort | tr '\n' ' ' | sed 's/^./ with &/')"
	} >"$RES/meta.tsv"
	sed 's/\t/: /' "$RES/meta.tsv" >&2
}

# regime ID LABEL DECODER SIZE [FPS_TARGET D2H_TARGET E2E_TARGET COMPILE_TARGET]
regime() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" "${6:-}" "${7:-}" "${8:-}" >>"$RES/regimes.tsv"; }
stage() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$RES/stages.tsv"; say "stage alone: $1 $2 $3 f/s ($4)"; }

# ---------------------------------------------------------------------------
# Inputs

# latents: a short clip from egressd-mklatents, tiled to N frames (the
# decoders' speed does not depend on the values; mklatents itself takes
# seconds per thousand frames)
make_latents() {	# OUT N C H W
	"$BIN/egressd-mklatents" -o "$W/base.npy" -f 32 -c "$3" -H "$4" -W "$5" --seed 7 >/dev/null || return 1
	tile_npy "$W/base.npy" "$1" "$2"
}

# tile_npy SRC OUT N [AXIS]: SRC's entries along AXIS (0, or 2 for [1, C, T,
# h, w]) repeated in order to N, written as OUT (same dtype)
tile_npy() {
	python3 - "$1" "$2" "$3" "${4:-0}" <<'PY'
import sys
import numpy as np

base = np.load(sys.argv[1], mmap_mode="r")
n, axis = int(sys.argv[3]), int(sys.argv[4])
shape = base.shape[:axis] + (n,) + base.shape[axis + 1:]
with open(sys.argv[2], "wb") as f:
    np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(base.dtype),
                                             "fortran_order": False, "shape": shape})
    if axis == 0:
        raw = np.ascontiguousarray(base).tobytes()
        per = len(raw) // base.shape[0]
        left = n
        while left:
            k = min(left, base.shape[0])
            f.write(raw[:k * per])
            left -= k
    else:	# in memory: the video latents of bench-taehv, hundreds of MB at most
        m = base.shape[axis]
        idx = [slice(None)] * base.ndim
        idx[axis] = slice(0, n)
        f.write(np.ascontiguousarray(np.concatenate([base] * ((n + m - 1) // m), axis=axis)[tuple(idx)]).tobytes())
PY
}

npy_frames() { python3 -c "import numpy as np; print(np.load('$1', mmap_mode='r').shape[0])"; }

# frames for about SECS seconds at RATE bytes/s, within CAP bytes, a whole
# number of chunks, at least 32 chunks
pick_frames() {	# RATE_BPS CAP_BYTES FRAME_OUT_BYTES [CHUNK]
	awk -v r="$1" -v cap="$2" -v fb="$3" -v s="$SECS" -v c="${4:-$CHUNK}" 'BEGIN {
		n = r * s / fb; m = cap / fb; if (m < n) n = m
		n = int(n / c) * c; if (n < 32 * c) n = 32 * c; print n }'
}

# ---------------------------------------------------------------------------
# One job through egressd --oneshot: one line of rows.tsv

# bench_conf FILE PIPELINE WORKERS SLOT_BYTES: the daemon's configuration
bench_conf() {
	cat >"$1" <<INI
[daemon]
spool = $W/spool
instance = $INSTANCE
workers = $3
read_threads = $READ_THREADS
backend = $BACKEND
pipeline = $2
log_level = info
[ring]
slots = $SLOTS
slot_bytes = $4
[cuda]
vram_buffers = $VRAM
[paths]
allow_read = $W $DISK_DIR $SHM_DIR
allow_write = $DISK_DIR $SHM_DIR
[limits]
max_frames = 100000000
max_bytes = 1T
INI
}

# bench_jobfile FILE key=value...: a job file
bench_jobfile() {
	local f=$1 kv; shift
	{ echo "[job]"; for kv in "$@"; do [ -n "${kv#*=}" ] && echo "${kv%%=*} = ${kv#*=}"; done; } >"$f"
}

# run_variant REGIME PIPELINE NPY OUTPUT [key=value...]: one oneshot job with
# daemon pipeline PIPELINE (or one-reader: full with [daemon] read_threads = 1).  Keys: decoder, weights, format [y4m], chunk
# [CHUNK], workers [WORKERS], label [PIPELINE: the row's name], keep [empty:
# the output is removed after the run].  Uses SLOT_BYTES.
run_variant() {
	local reg=$1 pl=$2 npy=$3 outp=$4; shift 4
	local decoder=latent2rgb weights= format=y4m chunk=$CHUNK workers=$WORKERS label=$pl keep= kv
	for kv in "$@"; do local "$kv"; done
	[ "$pl" = one-worker ] && workers=1
	# one-reader: the full pipeline with one thread reading the latents (bench_conf sees this local)
	local READ_THREADS=$READ_THREADS
	[ "$pl" = one-reader ] && { READ_THREADS=1; pl=full; }
	local tag; tag=$(safe_name "$reg-$label")
	local conf=$W/$tag.ini jobf=$W/$tag.job res=$RES/logs/$tag.result
	local frames; frames=$(npy_frames "$npy")
	if over_budget; then
		printf '%s\t%s\tskipped\t%s\t\t\t\t\t\t\t\t\t\ttime budget (BENCH_BUDGET=%ss) spent\n' "$reg" "$label" "$frames" "$BUDGET" >>"$RES/rows.tsv"
		say "$tag: skipped (time budget)"
		return
	fi
	bench_conf "$conf" "$pl" "$workers" "$SLOT_BYTES"
	bench_jobfile "$jobf" latents="$npy" output="$([ "$format" = null ] || echo "$outp")" format="$format" \
		decoder="$decoder" weights="$weights" chunk_frames="$chunk" overwrite=yes
	rm -rf "$outp"
	local t=$SECONDS
	timeout -k 5 300 "$BIN/egressd" --oneshot "$jobf" -c "$conf" >"$res" 2>"$RES/logs/$tag.log"
	local rc=$?
	local status; status=$(kv status "$res")
	[ -n "$status" ] || status="exit $rc"
	[ $rc = 124 ] && status=timeout
	local err; err=$(kv error "$res" | tr '\t' ' ')
	[ "$status" != done ] && [ -z "$err" ] && err=$(grep -E '<[0-3]>' "$RES/logs/$tag.log" | head -1 | tr '\t' ' ')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$reg" "$label" "$status" "$frames" \
		"$(kv frames_per_s "$res")" "$(kv wall_s "$res")" "$(kv bytes "$res")" "$(kv gpu_kernel_util "$res")" \
		"$(kv gpu_kernel_s "$res")" "$(kv d2h_gbps "$res")" "$(kv producer_blocked_s "$res")" \
		"$(kv write_s "$res")" "$(kv gpu_busy_of_wall "$res")" "$err" >>"$RES/rows.tsv"
	say "$tag: $status, $(kv frames_per_s "$res") frames/s, kernel util $(kv gpu_kernel_util "$res"), D2H $(kv d2h_gbps "$res") GB/s ($((SECONDS - t)) s)"
	[ -n "$keep" ] || rm -rf "$outp"
}

# full_kernel_s REGIME [LABEL]: gpu_kernel_s of the regime's full run, if done
full_kernel_s() { awk -F'\t' -v r="$1" -v p="${2:-full}" '$1 == r && $2 == p && $3 == "done" { print $9 }' "$RES/rows.tsv"; }

# decode_from_kernels REGIME FRAMES WHAT: the decode stage alone as frames
# over the full run's kernel time (when nothing better measured it)
decode_from_kernels() {
	local ks; ks=$(full_kernel_s "$1")
	[ -n "$ks" ] && stage "$1" decode "$(awk -v n="$2" -v k="$ks" 'BEGIN { if (k > 0) printf "%.1f", n / k }')" \
		"$3 kernels only: $2 frames / gpu_kernel_s $ks of the full run"
}

# ---------------------------------------------------------------------------
# Stages alone

# D2H: bench_d2h's back-to-back pinned copies (cudaMallocHost), the raw peak.
# Sets D2H_GBPS and D2H_DETAIL (empty when it could not be measured).
d2h_stage() {
	D2H_GBPS='' D2H_DETAIL=''
	[ "$BACKEND" = cuda ] || return 0
	local bin= c
	for c in build/tests/gpu/bench_d2h build/t/tests/gpu/bench_d2h; do [ -x "$c" ] && { bin=$c; break; }; done
	if [ -z "$bin" ] && command -v nvcc >/dev/null; then
		mkdir -p "$W/bin"
		nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 \
			-o "$W/bin/bench_d2h" tests/gpu/bench_d2h.cu >"$RES/logs/bench_d2h.build.log" 2>&1 &&
			bin=$W/bin/bench_d2h
	fi
	if [ -n "$bin" ]; then
		timeout 120 "$bin" >"$RES/logs/bench_d2h.log" 2>&1
		D2H_GBPS=$(awk '$1 == "pinned" { for (i = 1; i < NF; i++) if ($i == "queued") v = $(i + 1) + 0;
			if (v > m) m = v } END { if (m) print m }' "$RES/logs/bench_d2h.log")
		local reg_gbps; reg_gbps=$(awk '$1 == "shm-reg" { for (i = 1; i < NF; i++) if ($i == "queued") v = $(i + 1) + 0;
			if (v > m) m = v } END { if (m) print m }' "$RES/logs/bench_d2h.log")
		D2H_DETAIL="bench_d2h, cudaMallocHost, back-to-back copies, best size: $D2H_GBPS GB/s (registered shm: ${reg_gbps:-?} GB/s)"
	fi
	[ -n "$D2H_GBPS" ] || say "no D2H number (bench_d2h missing or failed): the D2H stage is left out"
}

# d2h_stage_row REGIME FRAME_BYTES
d2h_stage_row() {
	[ -n "$D2H_GBPS" ] && stage "$1" D2H "$(awk -v g="$D2H_GBPS" -v b="$2" 'BEGIN { printf "%.1f", g * 1e9 / b }')" \
		"$D2H_DETAIL; $2 bytes per frame"
}

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

# write_stage_row REGIME DIR BYTES FRAME_OUT_BYTES FRAME_BYTES: write_alone
# on the job's exact byte count, as a stage
write_stage_row() {
	local wr; wr=$(write_alone "$2" "$3" $((CHUNK * $5)) "$WORKERS")
	stage "$1" write "$(awk -v g="$wr" -v b="$4" 'BEGIN { printf "%.1f", g * 1e9 / b }')" \
		"$wr GB/s: $(gib "$3") GiB in ${CHUNK}-frame pwrites + sync_file_range from $WORKERS threads to one file on $2, then fsync"
}

# TAESD decode alone: test_taesd_gpu --bench (512² and 1024²), through
# tests/bench/bench_taesd.py when PyTorch has CUDA (which adds PyTorch eager,
# torch.compile when BENCH_COMPILE=1, and the fp16 GEMM peak).  Sets
# DECODE_ALONE[size] and TORCH_EAGER[size], TORCH_COMPILE[size], GEMM_TFLOPS.
declare -A DECODE_ALONE=() TORCH_EAGER=() TORCH_COMPILE=()
GEMM_TFLOPS=
taesd_decode_alone() {	# SIZES (e.g. "512 1024 256")
	local sizes=$1 tb= c log=$RES/logs/decode_alone.log
	[ "$BACKEND" = cuda ] || return 0
	for c in build/tests/gpu/test_taesd_gpu build/t/tests/gpu/test_taesd_gpu; do [ -x "$c" ] && { tb=$c; break; }; done
	if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
		local to=240
		[ "${BENCH_COMPILE:-0}" = 1 ] && to=${BENCH_COMPILE_TIMEOUT:-360}
		( [ "${BENCH_COMPILE:-0}" = 1 ] || export EGR_NO_COMPILE=1
		  timeout -k 5 "$to" python3 tests/bench/bench_taesd.py "${tb:--}" "$CHUNK" --sizes "${sizes// /,}" \
			--compile-sizes "${BENCH_COMPILE_SIZES:-512}" ) >"$log" 2>&1
		[ $? = 124 ] && say "bench_taesd.py timed out after ${to}s: decode-alone numbers may be missing"
	elif [ -n "$tb" ]; then
		timeout 120 "$tb" --bench "$CHUNK" >"$log" 2>&1
	else
		say "neither test_taesd_gpu nor PyTorch: no TAESD decode-alone numbers"
		return 0
	fi
	local s v
	for s in $sizes; do
		v=$(awk -v s="$s" '$1 == "EGRBENCH" && $2 == "size=" s && $4 == "warps=8" { sub("fps=", "", $6); print $6 }' "$log" | head -1)
		[ -n "$v" ] && DECODE_ALONE[$s]=$v
		# the last TORCH line of a size has its compile number, if any
		v=$(awk -v s="$s" '$1 == "TORCH" && $2 == "size=" s { sub("eager=", "", $3); print $3 }' "$log" | tail -1)
		[ -n "$v" ] && [ "$v" != - ] && TORCH_EAGER[$s]=$v
		v=$(awk -v s="$s" '$1 == "TORCH" && $2 == "size=" s { sub("compile=", "", $4); print $4 }' "$log" | tail -1)
		[ -n "$v" ] && [ "$v" != - ] && TORCH_COMPILE[$s]=$v
	done
	GEMM_TFLOPS=$(awk '$1 == "GEMM" { sub("tflops=", "", $2); print $2 }' "$log" | head -1)
	[ -n "$GEMM_TFLOPS" ] && printf 'gemm_tflops\t%s\n' "$GEMM_TFLOPS" >>"$RES/meta.tsv"
	return 0
}

# decode_alone_section: bench_taesd.py's own table, for the report
decode_alone_section() {
	local log=$RES/logs/decode_alone.log
	grep -q 'TAESD decode alone' "$log" 2>/dev/null || return 0
	{
		echo "## TAESD decode alone (tests/bench/bench_taesd.py, same run)"
		echo
		echo '```'
		grep '^BENCH torch.compile' "$log"
		sed -n '/^TAESD decode alone/,$p' "$log"
		echo '```'
	} >>"$RES/extra.md"
}

# run_peers REGIME NPY WEIGHTS OUTDIR FRAMES [REF]: the PyTorch peers
# (tests/bench/peers.py) on the same job; rows torch-naive and torch-full
run_peers() {
	local reg=$1 npy=$2 wts=$3 dir=$4 n=$5 refy=${6:-} log=$RES/logs/peers-$1.log
	[ "${BENCH_PEERS:-1}" = 1 ] && [ "$BACKEND" = cuda ] || return 0
	if over_budget; then
		say "$reg peers: skipped (time budget)"
		printf '%s\ttorch-%s\tskipped\t%s\t\t\t\t\t\t\t\t\t\ttime budget (BENCH_BUDGET=%ss) spent\n' \
			"$reg" naive "$n" "$BUDGET" "$reg" full "$n" "$BUDGET" >>"$RES/rows.tsv"
		return 0
	fi
	local ref=()
	[ -n "$refy" ] && [ -f "$refy" ] && ref=(--ref "$refy")
	timeout -k 5 300 python3 tests/bench/peers.py --latents "$npy" --weights "$wts" --out "$dir" --chunk "$CHUNK" \
		--workers "$WORKERS" --buffers "$SLOTS" "${ref[@]}" >"$log" 2>&1
	local prc=$? m
	grep -E '^PEER' "$log" >&2
	for m in naive full; do
		local line; line=$(grep "^PEER mode=$m " "$log" | head -1)
		if [ -n "$line" ]; then
			local fps wall byt
			fps=$(sed -n 's/.* frames_per_s=\([^ ]*\).*/\1/p' <<<"$line")
			wall=$(sed -n 's/.* wall_s=\([^ ]*\).*/\1/p' <<<"$line")
			byt=$(sed -n 's/.* bytes=\([^ ]*\).*/\1/p' <<<"$line")
			printf '%s\t%s\tdone\t%s\t%s\t%s\t%s\t\t\t\t\t\t\t\n' "$reg" "torch-$m" "$n" "$fps" "$wall" "$byt" >>"$RES/rows.tsv"
		else
			local why; why=$(tail -1 "$log" | tr '\t' ' ')
			printf '%s\t%s\t%s\t%s\t\t\t\t\t\t\t\t\t\t%s\n' "$reg" "torch-$m" \
				"$([ $prc = 77 ] && echo skipped || echo failed)" "$n" "$why" >>"$RES/rows.tsv"
		fi
	done
	grep '^PEERCHECK' "$log" | sed "s/^/- $reg: /" >>"$RES/peercheck.md"
}

# ---------------------------------------------------------------------------
# Regimes: one job per pipeline variant on the same latents

# l2r_regime ID DIR CAP FORMAT SIZE: latent2rgb at SIZE² into DIR (y4m: one
# file; null: nothing), each of VARIANTS (daemon pipelines; "full@C" is full
# with chunk_frames C) on the same latents, sized for SECS seconds at the
# slowest stage (write alone for y4m, D2H alone for null), within CAP bytes.
# The caller adds the regime's line to regimes.tsv.
l2r_regime() {
	local reg=$1 dir=$2 cap=$3 fmt=$4 S=$5
	local fb=$((S * S * 3 / 2)) lat=$((S / 8)) ofb
	ofb=$([ "$fmt" = null ] && echo $fb || echo $((fb + 6)))
	local maxchunk=$CHUNK v
	for v in $VARIANTS; do [[ $v == *@* ]] && [ "${v#*@}" -gt "$maxchunk" ] && maxchunk=${v#*@}; done
	SLOT_BYTES=$(((maxchunk * fb + 1048575) >> 20))M
	local ring=$((SLOTS * maxchunk * fb + (64 << 20)))
	if [ "$fmt" = null ]; then
		# the cap is on the latents, 1/12 of the frames' bytes, on the disk
		local room=$(($(avail "$W") * 4 / 10 * fb / (lat * lat * 4 * 2)))
		[ $room -lt "$cap" ] && cap=$room
	else
		local free; free=$(avail "$dir")
		[ "$dir" = "$SHMD" ] && free=$((free - ring))	# the ring lives in /dev/shm too
		# tmpfs: 60% of what is free; a disk also holds the latents: 40%
		local room=$((free * $([ "$dir" = "$SHMD" ] && echo 6 || echo 4) / 10))
		[ $room -lt "$cap" ] && cap=$room
	fi
	if [ "$cap" -lt $((32 * CHUNK * ofb)) ]; then
		printf '%s\t%s\tskipped\t\t\t\t\t\t\t\t\t\t\t%s has too little room (%s GiB of output allowed)\n' "$reg" all \
			"$dir" "$(gib "$cap")" >>"$RES/rows.tsv"
		say "$reg: skipped, too little room in $dir"
		return
	fi
	local rate probe=
	if [ "$fmt" = null ]; then
		rate=$(awk -v d="${D2H_GBPS:-50}" 'BEGIN { print d * 1e9 }')
	else
		# probe the writer with 1 GiB to size the job, then measure it alone
		# on the job's exact byte count
		probe=$(write_alone "$dir" $((1 << 30)) $((CHUNK * fb)) "$WORKERS")
		rate=$(awk -v p="$probe" -v d="${D2H_GBPS:-0}" 'BEGIN { r = p; if (d > 0 && d < r) r = d; print r * 1e9 }')
	fi
	local n; n=$(pick_frames "$rate" "$cap" "$ofb" "$maxchunk")
	local bytes=$((n * ofb))
	say "$reg: $n frames of ${S}x$S $fmt ($(gib $bytes) GiB)$([ "$fmt" = null ] || echo " to $dir; writer probe $probe GB/s")"
	[ "$fmt" = null ] || write_stage_row "$reg" "$dir" "$bytes" "$ofb" "$fb"
	d2h_stage_row "$reg" "$fb"
	make_latents "$W/$reg.npy" "$n" 4 "$lat" "$lat" || { say "$reg: making latents failed"; return; }
	for v in $VARIANTS; do
		local pl=${v%@*} ch=$CHUNK label=$v
		[[ $v == *@* ]] && { ch=${v#*@}; label="$pl, chunk $ch"; }
		run_variant "$reg" "$pl" "$W/$reg.npy" "$dir/$reg-$pl.y4m" format="$fmt" chunk="$ch" label="$label"
	done
	decode_from_kernels "$reg" "$n" latent2rgb
	rm -f "$W/$reg.npy"
}

# taesd_regime ID SIZE: TAESD (seeded random weights, $W/taesd.safetensors)
# at SIZE² into OUTD (the real disk), each of VARIANTS, sized for SECS
# seconds at decode-alone speed; then the PyTorch peers on the same latents,
# their frames compared with egressd's.  Call taesd_decode_alone first.
taesd_regime() {
	local reg=$1 S=$2 dir=$OUTD
	local fb=$((S * S * 3 / 2)) ofb=$((S * S * 3 / 2 + 6)) lat=$((S / 8))
	SLOT_BYTES=$(((CHUNK * fb + 1048575) >> 20))M
	[ -f "$W/taesd.safetensors" ] || "$BIN/egressd-mktaesd" -o "$W/taesd.safetensors" --latent-channels 4 --seed 5 >/dev/null ||
		{ say "$reg: egressd-mktaesd failed"; return; }
	local alone=${DECODE_ALONE[$S]:-}
	[ -n "$alone" ] && stage "$reg" decode "$alone" \
		"test_taesd_gpu --bench $CHUNK: egressd's TAESD kernels alone, batch $CHUNK, ${S}x$S I420, CUDA events, median of 7"
	[ -n "${TORCH_EAGER[$S]:-}" ] && stage "$reg" "torch eager decode" "${TORCH_EAGER[$S]}" \
		"bench_taesd.py: PyTorch fp16 channels_last eager, the network alone, batch $CHUNK"
	[ -n "${TORCH_COMPILE[$S]:-}" ] && stage "$reg" "torch.compile(${EGR_COMPILE_MODE:-max-autotune-no-cudagraphs}) decode" \
		"${TORCH_COMPILE[$S]}" "bench_taesd.py: the network alone, batch $CHUNK, after compiling"
	# a first guess at the rate where nothing measured it: issue 12's figures
	local guess; guess=$(awk -v s="$S" 'BEGIN { printf "%d", 1850 * (512 / s) ^ 2 }')
	local rate; rate=$(awk -v f="${alone:-$guess}" -v b="$ofb" 'BEGIN { print f * b }')
	local cap=$DISK_MAX room=$(($(avail "$dir") * 4 / 10))
	[ $room -lt "$cap" ] && cap=$room
	local n; n=$(pick_frames "$rate" "$cap" "$ofb")
	local bytes=$((n * ofb))
	say "$reg: $n frames of TAESD ${S}x$S y4m ($(gib $bytes) GiB) to $dir"
	[ "${BENCH_WRITE_STAGE:-1}" = 1 ] && write_stage_row "$reg" "$dir" "$bytes" "$ofb" "$fb"
	d2h_stage_row "$reg" "$fb"
	make_latents "$W/$reg.npy" "$n" 4 "$lat" "$lat" || { say "$reg: making latents failed"; return; }
	local keep=$dir/$reg-full.y4m pl
	for pl in $VARIANTS; do
		# full's output stays until the peers' frames have been compared with it
		run_variant "$reg" "$pl" "$W/$reg.npy" "$dir/$reg-$pl.y4m" decoder=taesd weights="$W/taesd.safetensors" \
			keep="$([ "$pl" = full ] && echo 1)"
	done
	[ -n "$alone" ] || decode_from_kernels "$reg" "$n" TAESD
	run_peers "$reg" "$W/$reg.npy" "$W/taesd.safetensors" "$dir" "$n" "$keep"
	rm -f "$keep" "$W/$reg.npy"
}

# taef2_data: the folder holding the real taef2 data (taef2/ with the
# decoder and the latents; ../shared/data/README.md): $EGR_SHARED_DATA, else
# ../shared/data beside the tree, else shared/data inside it (as
# tests/unit/taef2_data.h looks); 1 when none has it
TAEF2_W=taef2/taef2_decoder.safetensors TAEF2_L=taef2/real_latents_0_24_f16.npy
taef2_data() {
	local d
	for d in ${EGR_SHARED_DATA:-../shared/data shared/data}; do
		[ -r "$d/$TAEF2_W" ] && [ -r "$d/$TAEF2_L" ] && { echo "$d"; return 0; }
	done
	return 1
}

# taef2_regime ID: the real taef2 decoder (FLUX.2's TAESD: flux_2 variant, 32
# latent channels, the GroupNorm pool branch) on the real latents (24 frames
# of 60x104 -> 832x480), tiled to about SECS seconds, y4m into OUTD: each of
# VARIANTS (egressd --oneshot, decoder = taesd); the decode alone from the
# full run's kernel time; PyTorch's decode alone (tests/bench/taef2_peer.py,
# fp16 channels_last, batches of CHUNK) and its frames against egressd's;
# the PyTorch peers (peers.py) on the same job.  BENCH_TAEF2_FRAMES sets the
# frame count (the plumbing on the CPU backend).  The data is copied into the
# work directory (the daemon reads inside its roots) with its LICENSE beside
# it.  Without the data: one skipped row saying where it was looked for.
taef2_regime() {
	local reg=$1 dir=$OUTD W2=$W/taef2 S="832x480"
	local fb=$((832 * 480 * 3 / 2)) ofb=$((832 * 480 * 3 / 2 + 6)) d
	regime "$reg" "taef2 (FLUX.2) ${S/x/×}, real latents" taef2 "$S"
	if ! d=$(taef2_data); then
		printf '%s\tall\tskipped\t\t\t\t\t\t\t\t\t\t\treal taef2 data not found (%s; EGR_SHARED_DATA names the folder holding taef2/)\n' \
			"$reg" "${EGR_SHARED_DATA:-../shared/data, shared/data}" >>"$RES/rows.tsv"
		say "$reg: skipped, no real taef2 data (${EGR_SHARED_DATA:-../shared/data, shared/data})"
		return 0
	fi
	if over_budget; then
		printf '%s\tall\tskipped\t\t\t\t\t\t\t\t\t\t\ttime budget (BENCH_BUDGET=%ss) spent\n' "$reg" "$BUDGET" >>"$RES/rows.tsv"
		say "$reg: skipped (time budget)"
		return 0
	fi
	SLOT_BYTES=$(((CHUNK * fb + 1048575) >> 20))M
	if ! { mkdir -p "$W2" && cp "$d/$TAEF2_W" "$W2/"; }; then
		say "$reg: copying $d/$TAEF2_W failed"
		return 0
	fi
	cp "$d"/taef2/LICENSE* "$W2/" 2>/dev/null || say "$reg: no LICENSE in $d/taef2 to keep beside the copy"
	# a first guess at the rate (832x480 is 1.5x 512²'s pixels: 2800 / 1.5, less the pool branch)
	local rate; rate=$(awk -v b="$ofb" 'BEGIN { print 1500 * b }')
	local cap=$DISK_MAX room=$(($(avail "$dir") * 4 / 10))
	[ $room -lt "$cap" ] && cap=$room
	local n; n=${BENCH_TAEF2_FRAMES:-$(pick_frames "$rate" "$cap" "$ofb")}
	say "$reg: $n frames of taef2 $S y4m ($(gib $((n * ofb))) GiB) to $dir: the 24 real latent frames of $d/$TAEF2_L, tiled"
	tile_npy "$d/$TAEF2_L" "$W2/$reg.npy" "$n" || { say "$reg: tiling the latents failed"; return 0; }
	d2h_stage_row "$reg" "$fb"
	local keep=$dir/$reg-full.y4m pl wts=$W2/taef2_decoder.safetensors
	for pl in $VARIANTS; do
		run_variant "$reg" "$pl" "$W2/$reg.npy" "$dir/$reg-$pl.y4m" decoder=taesd weights="$wts" \
			keep="$([ "$pl" = full ] && echo 1)"
	done
	decode_from_kernels "$reg" "$n" taef2
	if [ "$BACKEND" = cuda ] && [ "${BENCH_PEERS:-1}" = 1 ] && ! over_budget; then
		local log=$RES/logs/taef2_peer.log v ref=()
		[ -f "$keep" ] && ref=(--ref "$keep")
		timeout -k 5 180 python3 tests/bench/taef2_peer.py --weights "$wts" --latents "$d/$TAEF2_L" --batch "$CHUNK" \
			"${ref[@]}" >"$log" 2>&1
		grep -E '^(taef2_peer|PEERCHECK)' "$log" >&2
		v=$(awk '$1 == "TORCH" && $2 == "size=taef2" { sub("eager=", "", $3); print $3 }' "$log" | tail -1)
		[ -n "$v" ] && stage "$reg" "torch eager decode" "$v" \
			"taef2_peer.py: PyTorch fp16 channels_last eager, the network alone, batch $CHUNK of the real latents"
		[ -n "$v" ] || say "$reg: no PyTorch decode-alone number ($(tail -1 "$log"))"
		grep '^PEERCHECK' "$log" | sed "s/^/- $reg: /" >>"$RES/peercheck.md"
	fi
	run_peers "$reg" "$W2/$reg.npy" "$wts" "$dir" "$n" "$keep"
	rm -f "$keep" "$W2/$reg.npy"
}

# ---------------------------------------------------------------------------
# Many jobs at once, through the spool of a running daemon

daemon_start() {	# CONF
	mkdir -p "$W/stage"
	"$BIN/egressd" -c "$1" 2>>"$RES/logs/daemon.log" &
	DAEMON_PID=$!
	local i
	for i in $(seq 600); do
		[ -d "$W/spool/incoming" ] && [ -e "/dev/shm/$INSTANCE" ] && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.05
	done
	say "the daemon did not start (log: $RES/logs/daemon.log)"
	tail -n 5 "$RES/logs/daemon.log" >&2
	DAEMON_PID=
	return 1
}

daemon_stop() {
	[ -n "${DAEMON_PID:-}" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null
	local i
	for i in $(seq 200); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.05; done
	kill -KILL "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# spool_warm key=value...: one job through the running daemon, untimed (CUDA
# context, weights, page cache); 0 when it is done
spool_warm() {
	rm -rf "$W/stage" && mkdir -p "$W/stage"
	bench_jobfile "$W/stage/warm-up.job" "$@"
	local line; line=$(python3 tests/bench/spool_run.py "$W/spool" "$W/stage" --timeout 120)
	local rc=$?
	[ $rc = 0 ] || say "warm-up job: ${line:-no answer}"
	rm -f "$W"/spool/done/* "$W"/spool/failed/*
	return $rc
}

# spool_case GROUP CASE NJOBS TARGET key=value...: NJOBS job files (%d in a
# value: the job's number) dropped at once into the running daemon's spool,
# timed by spool_run.py; one line of spool.tsv.  TARGET: the least ratio to
# the group's "one job" row (empty: none).
spool_case() {
	local group=$1 case=$2 n=$3 tgt=$4; shift 4
	local i kv args tag; tag=$(safe_name "$group-$case")
	[ -f "$RES/spool.tsv" ] || printf 'group\tcase\tjobs\tframes\tbytes\twall_s\tframes_per_s\tgbps\td2h_gbps\tqueue_wait_avg\tqueue_wait_max\tstatus\ttarget\terror\n' >"$RES/spool.tsv"
	if over_budget || [ -z "$DAEMON_PID" ]; then
		local why="time budget (BENCH_BUDGET=${BUDGET}s) spent" st=skipped
		[ -z "$DAEMON_PID" ] && why="the daemon did not start (logs/daemon.log)" st=failed
		printf '%s\t%s\t%s\t\t\t\t\t\t\t\t\t%s\t%s\t%s\n' "$group" "$case" "$n" "$st" "$tgt" "$why" >>"$RES/spool.tsv"
		say "$group, $case: $st ($why)"
		return
	fi
	rm -rf "$W/stage" && mkdir -p "$W/stage"
	for i in $(seq 1 "$n"); do
		args=()
		for kv in "$@"; do args+=("${kv//%d/$(printf %04d "$i")}"); done
		bench_jobfile "$W/stage/$(printf 'j%04d' "$i").job" "${args[@]}"
	done
	local line rc t=$SECONDS
	line=$(python3 tests/bench/spool_run.py "$W/spool" "$W/stage" --timeout "${SPOOL_TIMEOUT:-240}")
	rc=$?
	echo "$line" >>"$RES/logs/spool_run.log"
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	local status; status=$(get status)
	[ -n "$status" ] || status="exit $rc"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$group" "$case" "$n" "$(get frames)" \
		"$(get bytes)" "$(get wall_s)" "$(get frames_per_s)" "$(get gbps)" "$(get d2h_gbps)" \
		"$(get queue_wait_avg)" "$(get queue_wait_max)" "$status" "$tgt" \
		"$(sed -n 's/.* error=//p' <<<"$line" | tr '\t' ' ')" >>"$RES/spool.tsv"
	say "$group, $case: $status, $(get frames_per_s) frames/s, $(get gbps) GB/s ($((SECONDS - t)) s)"
	# a few records stay for the logs (not hundreds: $OUT travels back); the outputs go
	mkdir -p "$RES/logs/results-$tag"
	local f
	for f in $(ls "$W"/spool/done/*.result 2>/dev/null | head -n 3) $(ls "$W"/spool/failed/*.error 2>/dev/null | head -n 3); do
		mv "$f" "$RES/logs/results-$tag/"
	done
	rm -f "$W"/spool/done/* "$W"/spool/failed/*
}

# ---------------------------------------------------------------------------
# Video decoders (bench-wan, bench-taehv): one row per run in $TSV (columns:
# case impl kind chunk status latent_frames frames frames_per_s wall_s
# peak_gib kernel_util detail), jobs one at a time through a running daemon.
# The target sets TSV and REPS and defines nframes T (frames of T latent
# frames: what a job must give).

# video_start TSV_FILE: TSV set and its header written; the EXIT trap also
# stops the memory watcher (after bench_start, whose trap it replaces)
video_start() {
	TSV=$1
	trap 'mem_watch_stop /dev/null; bench_cleanup' EXIT
	printf 'case\timpl\tkind\tchunk\tstatus\tlatent_frames\tframes\tframes_per_s\twall_s\tpeak_gib\tkernel_util\tdetail\n' >"$TSV"
}
# video_finish PEERS_PY TITLE: PEERS_PY's table of $TSV, then the report;
# exits 1 when a row failed (or the table could not be made)
video_finish() {
	python3 "$1" table "$RES" || exit 1
	bench_report "$2"
	local rc=$?
	if grep -qP '^([^\t]*\t){4}failed\t' "$TSV"; then
		echo "$TARGET: some runs failed (the table's rows marked failed; logs in $RES/logs)"
		rc=1
	fi
	exit $rc
}
# gpu_tool NAME: the path of tests/gpu/NAME in BIN, build or build/t (empty: none)
gpu_tool() {
	local c
	for c in "$BIN/tests/gpu/$1" "build/tests/gpu/$1" "build/t/tests/gpu/$1"; do
		[ -x "$c" ] && { echo "$c"; return; }
	done
}
lat_h() { echo "${1%x*}"; }
lat_w() { echo "${1#*x}"; }
# wrow CASE IMPL KIND CHUNK STATUS LATENT_FRAMES FRAMES FPS WALL PEAK UTIL DETAIL: one row of $TSV
wrow() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" | tr -d '\r' >>"$TSV"; }
skip_row() { wrow "$1" "$2" "$3" "$4" skipped "$5" "" "" "" "" "" "$6"; say "$1 $2 $3${4:+ (chunk $4)}: skipped ($6)"; }
budget_note() { echo "time budget (BENCH_BUDGET=${BUDGET}s) spent"; }

# nvidia-smi's figure for the processes on the GPU (the producer), sampled
# while a job runs: mem_watch_start FILE ... mem_watch_stop FILE sets MEM, the
# largest in GiB (empty when unmeasured), and MEM_NOTE.  video_start's EXIT
# trap calls mem_watch_stop /dev/null before bench_cleanup.
MEMW_PID=
mem_watch_start() {
	MEMW_PID=
	[ "$BACKEND" = cuda ] && command -v nvidia-smi >/dev/null || return 0
	nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -lms 200 >"$1" 2>/dev/null &
	MEMW_PID=$!
}
mem_watch_stop() {	# not in a subshell: the sampler is this shell's child
	[ -n "$MEMW_PID" ] && { kill "$MEMW_PID"; wait "$MEMW_PID"; } 2>/dev/null
	MEMW_PID=
	MEM=$(awk -F', *' '$2 + 0 > m { m = $2 + 0 } END { if (m) printf "%.2f", m / 1024 }' "$1" 2>/dev/null)
	MEM_NOTE=${MEM:+"memory: the producer process's largest nvidia-smi figure"}
}

# video_job NAME key=value...: one job through the running daemon's spool
# (spool_run.py; given up at once when the daemon exits); JOB_RES: its result
# (or error) kept in the logs, JOB_OK 1 when it is done
video_job() {
	local name=$1 sp; shift
	JOB_RES=$RES/logs/$name.result JOB_OK=0
	rm -rf "$W/stage" && mkdir -p "$W/stage"
	bench_jobfile "$W/stage/$name.job" "$@"
	if daemon_alive; then
		python3 tests/bench/spool_run.py "$W/spool" "$W/stage" --timeout 240 >>"$RES/logs/spool_run.log" &
		sp=$!
		while kill -0 "$sp" 2>/dev/null; do
			daemon_alive || { kill "$sp"; break; }
			sleep 0.2
		done
		wait "$sp" 2>/dev/null
	fi
	if [ -f "$W/spool/done/$name.job.result" ]; then
		cp "$W/spool/done/$name.job.result" "$JOB_RES" && JOB_OK=1
	elif ! cp "$W/spool/failed/$name.job.error" "$JOB_RES" 2>/dev/null; then
		daemon_alive && echo "error = no record within 240 s" >"$JOB_RES" ||
			echo "error = the daemon exited: $(grep -E '<[0-3]>' "$RES/logs/daemon.log" | tail -1)" >"$JOB_RES"
	fi
	rm -f "$W"/spool/done/* "$W"/spool/failed/*
}
daemon_alive() { [ -n "${DAEMON_PID:-}" ] && kill -0 "$DAEMON_PID" 2>/dev/null && ! zombie "$DAEMON_PID"; }
zombie() { [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
job_err() { { kv error "$JOB_RES"; head -1 "$JOB_RES"; } | head -1; }

# job_row CASE KIND CHUNK T RESULT PEAK DETAIL: a done job's row (failed when
# its frame count is not nframes T)
job_row() {
	local f; f=$(kv frames "$5")
	local st="done" det=$7
	[ "$f" = "$(nframes "$4")" ] || { st=failed det="$f frames, want $(nframes "$4"); $det"; }
	wrow "$1" egressd "$2" "$3" "$st" "$4" "$f" "$(kv frames_per_s "$5")" "$(kv wall_s "$5")" "$6" \
		"$(kv gpu_kernel_util "$5")" "$det"
}

# video_daemon CONF SLOT_BYTES: the daemon of the e2e rows (full pipeline,
# WORKERS workers), started; 1 when it did not start
video_daemon() {
	bench_conf "$1" full "$WORKERS" "$2"
	daemon_start "$1"
}

# e2e_rows CASE T CHUNK COLD key=value...: the running daemon's rows for one
# chunk_frames: with COLD 1 the first job (row "cold": weights load, cuDNN
# search), then REPS timed jobs, the best kept (row "e2e").  The jobs: the
# keys given, chunk_frames CHUNK, y4m to $OUTD/CASE-cCHUNK.y4m (left there
# for the peers' frame check).
e2e_rows() {
	local case=$1 t=$2 c=$3 cold=$4; shift 4
	over_budget && { skip_row "$case" egressd e2e "$c" "$t" "$(budget_note)"; return; }
	daemon_alive || { wrow "$case" egressd e2e "$c" failed "$t" "" "" "" "" "" "the daemon is not running (logs/daemon.log)"; return; }
	local job=("$@" output="$OUTD/$case-c$c.y4m" format=y4m chunk_frames="$c" overwrite=yes) s=$SECONDS
	if [ "$cold" = 1 ]; then
		mem_watch_start "$RES/logs/mem-$case-c$c-cold.csv"
		video_job "$case-c$c-cold" "${job[@]}"
		mem_watch_stop "$RES/logs/mem-$case-c$c-cold.csv"
		if [ $JOB_OK != 1 ]; then
			wrow "$case" egressd e2e "$c" failed "$t" "" "" "" "" "" "first job: $(job_err)"
			say "$case daemon chunk_frames $c: the first job failed: $(job_err)"
			return
		fi
		job_row "$case" cold "$c" "$t" "$JOB_RES" "$MEM" "$MEM_NOTE"
	fi
	local r best="" bestf=0 all=()
	mem_watch_start "$RES/logs/mem-$case-c$c.csv"
	for r in $(seq 1 "$REPS"); do
		video_job "$case-c$c-r$r" "${job[@]}"
		[ $JOB_OK = 1 ] || { best=$JOB_RES bestf=-1; break; }
		all+=("$(kv frames_per_s "$JOB_RES")")
		awk -v a="${all[-1]}" -v b="$bestf" 'BEGIN { exit !(a > b) }' && { best=$JOB_RES bestf=${all[-1]}; }
	done
	mem_watch_stop "$RES/logs/mem-$case-c$c.csv"
	if [ "$bestf" = -1 ]; then
		wrow "$case" egressd e2e "$c" failed "$t" "" "" "" "" "" "timed job $r: $(JOB_RES=$best job_err)"
	else
		local busy; busy=$(kv gpu_busy_of_wall "$best")
		job_row "$case" e2e "$c" "$t" "$best" "$MEM" "f/s of the $REPS jobs: ${all[*]};${busy:+ GPU busy / wall $busy,} producer blocked $(kv producer_blocked_s "$best") s, write $(kv write_s "$best") s${MEM_NOTE:+; $MEM_NOTE}"
	fi
	local first=
	[ "$cold" = 1 ] && first="cold $(kv frames_per_s "$RES/logs/$case-c$c-cold.result") f/s, "
	say "$case daemon chunk_frames $c: ${first}timed ${all[*]} f/s, kernel util $(kv gpu_kernel_util "${best:-/dev/null}") ($((SECONDS - s)) s)"
}

# ---------------------------------------------------------------------------
# The report: $OUT/TARGET.md, the tables printed, the summary last

# bench_report TITLE: exit status 1 when a run failed, else 0
bench_report() {
	local title=$1 md=$RES_TOP/$TARGET.md
	[ "$(wc -l <"$RES/rows.tsv")" -gt 1 ] && { python3 tests/bench/table.py pipeline "$RES" || return 1; }
	[ -f "$RES/spool.tsv" ] && { python3 tests/bench/table.py spool "$RES" || return 1; }
	{
		echo "# $TARGET"
		echo
		echo "## Setup"
		echo
		sed 's/^\([^\t]*\)\t/- \1: /' "$RES/meta.tsv"
		if [ -f "$RES/table.md" ]; then
			echo
			echo "## $title (one run)"
			echo
			cat "$RES/table.md"
		fi
		if [ -f "$RES/spool.md" ]; then
			echo
			echo "## ${SPOOL_TITLE:-Many jobs at once, through the spool}"
			echo
			[ -f "$RES/spool_intro.md" ] && { cat "$RES/spool_intro.md"; echo; }
			cat "$RES/spool.md"
		fi
		[ -f "$RES/extra.md" ] && { echo; cat "$RES/extra.md"; }
		if [ -f "$RES/peercheck.md" ]; then
			echo
			echo "Peers' frames against egressd's (same latents and weights):"
			echo
			cat "$RES/peercheck.md"
		fi
		echo
		echo "## Summary"
		echo
		cat "$RES/summary.txt" "$RES/spool_summary.txt" 2>/dev/null | sed '/^$/d; s/^/- /'
	} >"$md"
	echo
	cat "$md"
	echo
	echo "$TARGET: done in $((SECONDS - T0)) s; $md; rows, CSV and logs in $RES"
	echo "$TARGET summary:"
	cat "$RES/summary.txt" "$RES/spool_summary.txt" 2>/dev/null | sed '/^$/d; s/^/  /'
	local tsv=("$RES/rows.tsv")
	[ -f "$RES/spool.tsv" ] && tsv+=("$RES/spool.tsv")
	! grep -qP '\t(failed|timeout|exit [0-9]+)\t' "${tsv[@]}"
}
