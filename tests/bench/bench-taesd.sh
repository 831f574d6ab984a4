#!/usr/bin/env bash
# make bench-taesd: the compute-bound regime of issue 12, on a GPU machine.
#
# TAESD (4-channel, seeded random weights) at 512², 1024² and 256² output,
# y4m to the real disk: per size, egressd's full pipeline and its naive
# baseline (egressd --oneshot, the release build) and the PyTorch peers
# (tests/bench/peers.py: the naive loop and the two-stream recipe) on the
# same latents and weights, beside the decode alone: egressd's kernels
# (test_taesd_gpu --bench, 512² and 1024²; at 256² the full run's kernel
# time), PyTorch eager and, with BENCH_COMPILE=1, torch.compile
# (max-autotune-no-cudagraphs, EGR_COMPILE_MODE) at BENCH_COMPILE_SIZES.
# TFLOP/s and the share of the fp16 GEMM peak measured in the same run stand
# beside each frames/s.  Then, when the real taef2 data is there
# (../shared/data/taef2: lib.sh's taef2_regime), FLUX.2's taef2 decoder (the
# flux_2 variant: 32 latent channels, GroupNorm pool branch) at 832x480 on
# the real latents (tiled to about BENCH_SECONDS), the same rows plus
# PyTorch's decode alone of it (tests/bench/taef2_peer.py); a skipped row
# saying why otherwise.  Writes $OUT/bench-taesd.md (OUT defaults to
# BENCH_DIR/results); prints the table, the summary last.
#
# Environment (defaults in brackets): the shared settings of tests/bench/lib.sh, and
#   BENCH_TAESD_SIZES [512 1024 256]  BENCH_VARIANTS [naive full]  BENCH_PEERS [1]
#   BENCH_COMPILE [0]  BENCH_COMPILE_SIZES [512]  BENCH_COMPILE_TIMEOUT [360 s]
#   BENCH_WRITE_STAGE [1: measure the disk alone per size]  BENCH_CHUNK [16 here]
#   BENCH_TAEF2 [1; 0: no taef2 rows]  BENCH_TAEF2_FRAMES [sized by BENCH_SECONDS]
#   EGR_SHARED_DATA [the folder holding taef2/; else ../shared/data, shared/data]
# Targets (issue 12): 512² ≥ 2600 f/s and ≥ 1.5× torch.compile decode alone,
# 1024² ≥ 700 f/s, 256² ≥ 8000 f/s; kernel utilisation ≥ 99.5%.
# Exit: 0, 77 without a GPU, 1 when a run failed or a binary is missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/bench/lib.sh

bench_init bench-taesd "$@"
# 16 frames a chunk unless BENCH_CHUNK says otherwise: at 256² a chunk of 8
# leaves the latent-size layers' grids a fraction of the GPU (decode alone on
# the H100: 8017 f/s at 8, 9637 at 16; 512²: 2703 and 2797).  The PyTorch
# peers decode batches of the same size.
[ -n "${BENCH_CHUNK:-}" ] || CHUNK=16
bench_need_gpu
bench_need_bins egressd egressd-mklatents egressd-mktaesd egressd-producer egressd-worker
bench_start
SIZES=${BENCH_TAESD_SIZES:-512 1024 256}
VARIANTS=${BENCH_VARIANTS:-naive full}
bench_meta "workers $WORKERS, slots $SLOTS, chunk_frames $CHUNK, vram_buffers $VRAM, y4m to $DISK_DIR; TAESD ${SIZES// /², }²; torch.compile $([ "${BENCH_COMPILE:-0}" = 1 ] && echo "on (${EGR_COMPILE_MODE:-max-autotune-no-cudagraphs}) at ${BENCH_COMPILE_SIZES:-512}" || echo "off (BENCH_COMPILE=1 turns it on)")"

d2h_stage
taesd_decode_alone "$SIZES"
for S in $SIZES; do
	case $S in 512) tgt=2600 ct=1.5 ;; 1024) tgt=700 ct= ;; 256) tgt=8000 ct= ;; *) tgt= ct= ;; esac
	regime "taesd-$S" "TAESD ${S}²" taesd "$S" "$tgt" "" "" "$ct"
	taesd_regime "taesd-$S" "$S"
done
[ "${BENCH_TAEF2:-1}" = 1 ] && taef2_regime taef2

decode_alone_section
bench_report "TAESD$([ "${BENCH_TAEF2:-1}" = 1 ] && echo " and taef2"), full pipeline against naive and the PyTorch peers"
