#!/usr/bin/env bash
# make bench-copy: the copy-bound regime of issue 12, on a GPU machine.
#
# 1. latent2rgb at 1024² with format = null: the frames are decoded, copied
#    out of the GPU into the ring (I420, 1.5 MiB a frame) and dropped by the
#    workers, so nothing but the copy path is measured.  One egressd
#    --oneshot job per pipeline variant (BENCH_COPY_VARIANTS; full@32 is full
#    with 32-frame chunks); the table gives the D2H GB/s per copy (CUDA
#    events) and end to end (bytes / wall), beside the D2H alone
#    (tests/gpu/bench_d2h).  Target: ≥ 50 GB/s end to end.
# 2. Many files on tmpfs, through the spool of a running daemon: the same
#    frames split over 1, 2, 4 and 8 y4m jobs at once (one file each: no
#    shared inode lock), and one png job (a file per frame, zlib level 1) —
#    where the host side saturates.
# Writes $OUT/bench-copy.md (OUT defaults to BENCH_DIR/results); prints the
# tables, the summary last.
#
# Environment (defaults in brackets): the shared settings of tests/bench/lib.sh, and
#   BENCH_COPY_SIZE [1024]  BENCH_COPY_VARIANTS [full full@32 one-reader pageable one-worker]
#   BENCH_NULL_SECONDS [1.5: seconds of the null job at the D2H rate]
#   BENCH_NULL_MAX [96G: output bytes of the null job, at most]
#   BENCH_MANY_FRAMES [4096]  BENCH_MANY_JOBS [1 2 4 8]  BENCH_PNG_FRAMES [512]
# Exit: 0, 77 without a GPU, 1 when a run failed or a binary is missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/bench/lib.sh

bench_init bench-copy "$@"
bench_need_gpu
bench_need_bins egressd egressd-mklatents egressd-producer egressd-worker
bench_start
S=${BENCH_COPY_SIZE:-1024}
FB=$((S * S * 3 / 2))
LAT=$((S / 8))
bench_meta "workers $WORKERS, slots $SLOTS, chunk_frames $CHUNK, vram_buffers $VRAM, read_threads $READ_THREADS; latent2rgb ${S}², f16 latents; null, then y4m and png on $SHM_DIR"

# ---- 1. format = null ----
d2h_stage
regime null "latent2rgb ${S}² → null" latent2rgb "$S" "" "" 50
VARIANTS=${BENCH_COPY_VARIANTS:-full full@32 one-reader pageable one-worker}
SECS=${BENCH_NULL_SECONDS:-1.5} l2r_regime null "$SHMD" "$(size_bytes "${BENCH_NULL_MAX:-96G}")" null "$S"

# ---- 2. many files on tmpfs ----
FRAMES=${BENCH_MANY_FRAMES:-4096}
PNG_FRAMES=${BENCH_PNG_FRAMES:-512}
room=$(($(avail "$SHM_DIR") * 6 / 10 - SLOTS * CHUNK * FB))
while [ "$FRAMES" -gt 64 ] && [ $((FRAMES * (FB + 6))) -gt "$room" ]; do FRAMES=$((FRAMES / 2)); done
SLOT_BYTES=$(((CHUNK * S * S * 3 + 1048575) >> 20))M	# room for png's RGB frames too
bench_conf "$W/spool.ini" full "$WORKERS" "$SLOT_BYTES"
cat >"$RES/spool_intro.md" <<EOF
Through the spool of one running daemon: the jobs are dropped into incoming/
at once, timed from the first rename to the last record (tests/bench/spool_run.py).
y4m: $FRAMES frames of ${S}² split evenly over the jobs, one file each on
$SHM_DIR ($(df --output=fstype "$SHM_DIR" | tail -1)); png: one job of $PNG_FRAMES frames, one file per frame
(filter UP, zlib level 1, Z_RLE).  "÷ one job": frames/s over the group's
one-job row.
EOF
# without a daemon, spool_case writes skipped rows that say so
daemon_start "$W/spool.ini" && make_latents "$W/warm.npy" 16 4 "$LAT" "$LAT" &&
	spool_warm latents="$W/warm.npy" format=null chunk_frames="$CHUNK"
for k in ${BENCH_MANY_JOBS:-1 2 4 8}; do
	make_latents "$W/many.npy" $((FRAMES / k)) 4 "$LAT" "$LAT" || { say "making latents failed"; break; }
	mkdir -p "$SHMD/many"
	spool_case "y4m files, latent2rgb ${S}²" "$([ "$k" = 1 ] && echo "one job" || echo "$k jobs")" "$k" "" \
		latents="$W/many.npy" output="$SHMD/many/k$k-%d.y4m" format=y4m chunk_frames="$CHUNK"
	rm -rf "$SHMD/many"
done
make_latents "$W/png.npy" "$PNG_FRAMES" 4 "$LAT" "$LAT" && mkdir -p "$SHMD/png" &&
	spool_case "png, a file per frame, latent2rgb ${S}²" "one job" 1 "" \
		latents="$W/png.npy" output="$SHMD/png/frames-%d" format=png chunk_frames="$CHUNK"
rm -rf "$SHMD/png" "$W"/*.npy
daemon_stop
SPOOL_TITLE="Many files on tmpfs" bench_report "latent2rgb ${S}², format = null: the copy path end to end"
