#!/usr/bin/env bash
# make bench-jobs: issue 11's queue benchmark: many small jobs against one
# job of the same total frames, through the spool of one running daemon
# (jobs dropped into incoming/ at once, timed from the first rename to the
# last record by tests/bench/spool_run.py, after an untimed warm-up job).
#
#   GPU   200 jobs of 16 frames, TAESD 512² (y4m on tmpfs, and null), against
#         one job of 3200 frames
#   CPU   the same with the CPU backend, latent2rgb at 256²
#
#   tests/bench/bench-jobs.sh              both groups; exit 77 without a GPU
#   tests/bench/bench-jobs.sh --cpu-only   the CPU group only: no GPU needed
#   tests/bench/bench-jobs.sh --smoke      the CPU group, 20 jobs of 4 frames
#                                          at 64²: seconds (tests/it/it_bench_smoke.sh)
# Target (issue 11): total frames/s of the many jobs ≥ 0.8 × the one job's.
# Writes $OUT/bench-jobs.md (OUT defaults to BENCH_DIR/results); prints the
# table, the summary last.
#
# Environment (defaults in brackets): the shared settings of tests/bench/lib.sh, and
#   BENCH_JOBS_N [200]  BENCH_JOBS_FRAMES [16]  BENCH_JOBS_SIZE [512: GPU, TAESD]
#   BENCH_JOBS_CPU_SIZE [256: CPU, latent2rgb]  BENCH_JOBS_FORMATS [y4m null: GPU]
#   BENCH_JOBS_CPU_FORMATS [y4m]
# Exit: 0, 77 without a GPU (unless --cpu-only or --smoke), 1 when a run
# failed or a binary is missing, 64 on a bad argument.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/bench/lib.sh

MODE=all
case ${1:-} in
--cpu-only) MODE=cpu ;;
--smoke) MODE=smoke ;;
"") ;;
*) echo "usage: $0 [--cpu-only | --smoke]" >&2; exit 64 ;;
esac
bench_init bench-jobs "$@"
NJOBS=${BENCH_JOBS_N:-200}
JF=${BENCH_JOBS_FRAMES:-16}
GSIZE=${BENCH_JOBS_SIZE:-512}
CSIZE=${BENCH_JOBS_CPU_SIZE:-256}
CPU_FORMATS=${BENCH_JOBS_CPU_FORMATS:-y4m}
if [ $MODE = smoke ]; then
	NJOBS=${BENCH_JOBS_N:-20} JF=${BENCH_JOBS_FRAMES:-4} CSIZE=${BENCH_JOBS_CPU_SIZE:-64}
	WORKERS=${BENCH_WORKERS:-2} SLOTS=${BENCH_SLOTS:-4} BUDGET=${BENCH_BUDGET:-60} SPOOL_TIMEOUT=30
fi
if [ $MODE = all ]; then
	bench_need_gpu
	bench_need_bins egressd-mktaesd
else
	BACKEND=cpu
fi
bench_need_bins egressd egressd-mklatents egressd-producer egressd-worker
bench_start
bench_meta "workers $WORKERS, slots $SLOTS, chunk_frames $CHUNK; $NJOBS jobs of $JF frames against one of $((NJOBS * JF)); $([ $MODE = all ] && echo "GPU: TAESD ${GSIZE}² (${BENCH_JOBS_FORMATS:-y4m null}); ")CPU: latent2rgb ${CSIZE}² ($CPU_FORMATS)"
cat >"$RES/spool_intro.md" <<EOF
Through the spool of one running daemon per group (backend as named): the
jobs are dropped into incoming/ at once, timed from the first rename to the
last record (tests/bench/spool_run.py), after an untimed warm-up job.  y4m
outputs go to $SHM_DIR ($(df --output=fstype "$SHM_DIR" | tail -1)).  "÷ one job": the many jobs' frames/s over
the one job's (same total frames, same daemon).
EOF

# jobs_group GROUP FORMAT key=value...: one job of NJOBS*JF frames, then
# NJOBS jobs of JF frames, on the running daemon (latents made here)
jobs_group() {
	local group=$1 fmt=$2; shift 2
	local out=
	mkdir -p "$SHMD/jobs"
	make_latents "$W/one.npy" $((NJOBS * JF)) 4 "$LAT" "$LAT" && make_latents "$W/small.npy" "$JF" 4 "$LAT" "$LAT" ||
		{ say "$group: making latents failed"; return; }
	[ "$fmt" = null ] || out=$SHMD/jobs/one.y4m
	spool_case "$group" "one job" 1 "" latents="$W/one.npy" output="$out" format="$fmt" chunk_frames="$CHUNK" "$@"
	rm -rf "$SHMD/jobs" && mkdir -p "$SHMD/jobs"
	[ "$fmt" = null ] || out=$SHMD/jobs/%d.y4m
	spool_case "$group" "$NJOBS jobs" "$NJOBS" 0.8 latents="$W/small.npy" output="$out" format="$fmt" \
		chunk_frames="$CHUNK" "$@"
	rm -rf "$SHMD/jobs" "$W/one.npy" "$W/small.npy"
}

# ---- GPU: TAESD ----
if [ $MODE = all ]; then
	LAT=$((GSIZE / 8))
	"$BIN/egressd-mktaesd" -o "$W/taesd.safetensors" --latent-channels 4 --seed 5 >/dev/null || say "egressd-mktaesd failed"
	bench_conf "$W/gpu.ini" full "$WORKERS" $(((CHUNK * GSIZE * GSIZE * 3 / 2 + 1048575) >> 20))M
	daemon_start "$W/gpu.ini" && make_latents "$W/warm.npy" "$JF" 4 "$LAT" "$LAT" &&
		spool_warm latents="$W/warm.npy" format=null decoder=taesd weights="$W/taesd.safetensors" chunk_frames="$CHUNK"
	for fmt in ${BENCH_JOBS_FORMATS:-y4m null}; do
		jobs_group "$([ "$BACKEND" = cuda ] && echo GPU || echo "$BACKEND backend"), TAESD ${GSIZE}² → $fmt" "$fmt" decoder=taesd weights="$W/taesd.safetensors"
	done
	daemon_stop
fi

# ---- CPU: latent2rgb ----
LAT=$((CSIZE / 8))
BACKEND=cpu bench_conf "$W/cpu.ini" full "$WORKERS" $(((CHUNK * CSIZE * CSIZE * 3 / 2 + 1048575) >> 20))M
daemon_start "$W/cpu.ini" && make_latents "$W/warm.npy" "$JF" 4 "$LAT" "$LAT" &&
	spool_warm latents="$W/warm.npy" format=null chunk_frames="$CHUNK"
for fmt in $CPU_FORMATS; do
	jobs_group "CPU, latent2rgb ${CSIZE}² → $fmt" "$fmt"
done
daemon_stop
rm -f "$W/warm.npy"

SPOOL_TITLE="$NJOBS jobs of $JF frames against one job of $((NJOBS * JF))" bench_report ""
