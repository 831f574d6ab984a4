#!/usr/bin/env bash
# make bench-pipeline: the pipeline benchmark of docs/BENCHMARKS.md (issues 3
# and 4), on a GPU machine.
#
# One run, one table: for each regime (copy-bound: latent2rgb to /dev/shm;
# disk-bound: latent2rgb to the real disk; compute-bound: TAESD to the real
# disk) and each pipeline (naive, full and the ablations), one job through
# `egressd --oneshot` with the release build, parsed from the result it
# prints; next to it the slowest stage of that regime measured alone, and
# for the compute-bound regime the PyTorch peers (tests/bench/peers.py) on
# the same job.  Prints the table in Markdown and a short summary last;
# writes $OUT/bench-pipeline.md, and rows, CSV and logs in
# $OUT/bench-pipeline/ (OUT defaults to BENCH_DIR/results).
#
#   tests/bench/run.sh                     (what `make bench-pipeline` runs)
#   tests/bench/run.sh --format-only DIR   re-print the table from DIR/rows.tsv
#                                          and DIR/stages.tsv of an earlier run
# Environment (defaults in brackets): the shared settings of tests/bench/lib.sh
# (BENCH_BIN, BENCH_DIR, BENCH_SHM_DIR, BENCH_SECONDS, BENCH_WORKERS,
# BENCH_SLOTS, BENCH_CHUNK, BENCH_BUDGET, BENCH_SHM_MAX, BENCH_DISK_MAX), and
#   BENCH_L2R_SIZE [1024]  BENCH_TAESD_SIZE [512]  BENCH_REGIMES [copy disk compute]
#   BENCH_VARIANTS [naive full no-copy-stream pageable single-buffer one-worker]
#   BENCH_PEERS [1]  BENCH_COMPILE [0: torch.compile in the decode-alone numbers]
# Exit: 0, 77 without a GPU, 1 when a run failed or a binary is missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/bench/lib.sh

if [ "${1:-}" = --format-only ]; then
	[ -d "${2:-}" ] || { echo "usage: $0 --format-only DIR" >&2; exit 64; }
	python3 tests/bench/table.py pipeline "$2" || exit 1
	cat "$2/table.md"; echo; cat "$2/summary.txt"
	exit 0
fi

bench_init bench-pipeline "$@"
bench_need_gpu
bench_need_bins egressd egressd-mklatents egressd-mktaesd egressd-producer egressd-worker
bench_start
L2R_SIZE=${BENCH_L2R_SIZE:-1024}
TAESD_SIZE=${BENCH_TAESD_SIZE:-512}
REGIMES=${BENCH_REGIMES:-copy disk compute}
VARIANTS=${BENCH_VARIANTS:-naive full no-copy-stream pageable single-buffer one-worker}
# every job's ring lives in /dev/shm whatever the output directory
RING_NEED=$((SLOTS * CHUNK * (L2R_SIZE * L2R_SIZE * 3 / 2) + (64 << 20)))
if [ "$(avail /dev/shm)" -lt $RING_NEED ]; then
	say "WARNING: /dev/shm has $(gib "$(avail /dev/shm)") GiB free; the ring needs $(gib $RING_NEED) GiB: runs will fail"
fi
bench_meta "workers $WORKERS, slots $SLOTS, chunk_frames $CHUNK, vram_buffers $VRAM, y4m; latent2rgb ${L2R_SIZE}², TAESD ${TAESD_SIZE}²"

d2h_stage
for reg in $REGIMES; do
	case $reg in
	copy)
		regime copy copy-bound latent2rgb "$L2R_SIZE" "" 50
		l2r_regime copy "$SHMD" "$SHM_MAX" y4m "$L2R_SIZE" ;;
	disk)
		regime disk disk-bound latent2rgb "$L2R_SIZE"
		l2r_regime disk "$OUTD" "$DISK_MAX" y4m "$L2R_SIZE" ;;
	compute)
		regime compute compute-bound taesd "$TAESD_SIZE"
		taesd_decode_alone "$TAESD_SIZE"
		taesd_regime compute "$TAESD_SIZE" ;;
	*) say "unknown regime '$reg' (copy, disk, compute)" ;;
	esac
done

decode_alone_section
bench_report "Pipeline benchmark"
