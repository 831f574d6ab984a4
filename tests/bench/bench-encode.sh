#!/usr/bin/env bash
# make bench-encode: the encode-bound benchmark of issue 10, on a GPU machine.
#
# TAESD 512² (4-channel, seeded random weights) decoded on the GPU (about
# 1800 frames/s: the encoders are the bottleneck), all rows on the same
# latents in one run, each one job through the spool of a running daemon:
#
#   egressd → y4m                          the reference: no encode
#   egressd → mp4 H.264 (libx264 veryfast, crf 23, gop 48, threads 1)
#                                          with 1, 4, 8, 16 workers: scaling
#   egressd → mkv FFV1 (gop 48)            16 workers
#   PyTorch + cv2.VideoWriter              the peer: decode on the GPU, uint8
#                                          BGR, OpenCV's writer in the same
#                                          process; mp4v (MPEG-4 Part 2), the
#                                          codec opencv-python's FFmpeg has:
#                                          not the same codec
#
# Per row: frames/s, CPU-seconds (the daemon's processes, from /proc), output
# bytes and a check of the file without ffprobe (tests/bench/bench_encode.py
# check).  The encode stage alone (ffmpeg) is not measured: the GPU machine
# has no ffmpeg binary.  There, build with the FFmpeg bundle first
# (tests/bench/gpu_bench_encode.sh does it all; docs/ENCODE.md).
#
# The number of frames, unless BENCH_ENCODE_FRAMES sets it: an H.264 probe of
# 4 GOPs with the first worker count measures one encoder, and the clip is
# sized so that row lasts about BENCH_ENCODE_W1_SECONDS, within
# BENCH_ENCODE_MIN_FRAMES..BENCH_ENCODE_MAX_FRAMES, whole GOPs.
#
# Environment (defaults in brackets; with BENCH_BACKEND=cpu, the second):
# the shared settings of tests/bench/lib.sh (BENCH_BUDGET [300] here, and
# BENCH_SLOTS [16]), and
#   BENCH_ENCODE_SIZE [512 | 256]  BENCH_ENCODE_FRAMES [auto | 64]
#   BENCH_ENCODE_WORKERS ["1 4 8 16" | "1 2"]  BENCH_ENCODE_FFV1_WORKERS [the most]
#   BENCH_ENCODE_DECODER [taesd | latent2rgb]  BENCH_ENCODE_GOP [48 | 16]
#   BENCH_ENCODE_CRF [23]  BENCH_ENCODE_PRESET [veryfast]
#   BENCH_ENCODE_W1_SECONDS [45]  BENCH_ENCODE_MIN_FRAMES [2400]
#   BENCH_ENCODE_MAX_FRAMES [9600]  BENCH_ENCODE_ROW_TIMEOUT [300 s]
#   BENCH_PEERS [1]
# BENCH_BACKEND=cpu checks the plumbing (latent2rgb 256², 64 frames; the
# peer's decoder a numpy stand-in): not a measurement.
# Writes $OUT/bench-encode.md (OUT defaults to BENCH_DIR/results); prints
# the table, the summary last.  Exit: 0, 77 without a GPU (cuda backend), 1
# when a row failed or egressd cannot encode H.264.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/bench/lib.sh

bench_init bench-encode "$@"
BUDGET=${BENCH_BUDGET:-300}
SLOTS=${BENCH_SLOTS:-16}
if [ "$BACKEND" = cuda ]; then
	d_size=512 d_frames=auto d_workers="1 4 8 16" d_dec=taesd d_gop=48
else
	d_size=256 d_frames=64 d_workers="1 2" d_dec=latent2rgb d_gop=16
fi
S=${BENCH_ENCODE_SIZE:-$d_size}
FRAMES=${BENCH_ENCODE_FRAMES:-$d_frames}
WLIST=$(tr ' ' '\n' <<<"${BENCH_ENCODE_WORKERS:-$d_workers}" | grep . | sort -n -u | tr '\n' ' ')
WMAX=$(tr ' ' '\n' <<<"$WLIST" | grep . | tail -n 1)
FFV1_W=${BENCH_ENCODE_FFV1_WORKERS:-$WMAX}
DEC=${BENCH_ENCODE_DECODER:-$d_dec}
GOP=${BENCH_ENCODE_GOP:-$d_gop}
CRF=${BENCH_ENCODE_CRF:-23}
PRESET=${BENCH_ENCODE_PRESET:-veryfast}
ROW_TIMEOUT=${BENCH_ENCODE_ROW_TIMEOUT:-300}
LAT=$((S / 8))
FB=$((S * S * 3 / 2))
SLOT_BYTES=$(((CHUNK * FB + 1048575) >> 20))M
H264=(format=mp4 codec=h264 crf="$CRF" preset="$PRESET" gop="$GOP" threads=1)
FFV1=(format=mkv codec=ffv1 gop="$GOP" threads=1)

bench_need_gpu
bench_need_bins egressd egressd-mklatents egressd-mktaesd egressd-producer egressd-worker
codecs=$("$BIN/egressd" --version 2>&1)
if ! grep -q 'h264 (libx264)' <<<"$codecs"; then
	echo "bench-encode: $BIN/egressd cannot encode H.264: it was built without FFmpeg's libraries or without libx264"
	echo "  ($(grep -i codecs <<<"$codecs" | head -n 1)); on a machine without FFmpeg: tests/bench/ffmpeg_unpack.sh" \
		"BUNDLE.tar.xz .deps, then make DEPS=.deps (docs/ENCODE.md)"
	exit 1
fi
grep -q 'ffv1 (ffv1)' <<<"$codecs" || { say "this libavcodec has no FFV1 encoder: no FFV1 row"; FFV1_W=; }
bench_start
rm -f "$RES/encode.tsv" "$RES/params.tsv"
printf 'id\tlabel\toutput\tworkers\tstatus\tframes\twall_s\tframes_per_s\tcpu_s\tbytes\tcheck\terror\n' >"$RES/encode.tsv"
bench_meta "$([ "$DEC" = taesd ] && echo "TAESD" || echo "$DEC") ${S}², slots $SLOTS, chunk_frames $CHUNK, to $DISK_DIR; H.264 $PRESET crf $CRF gop $GOP threads 1 with workers ${WLIST% }; FFV1 gop $GOP with ${FFV1_W:-no} workers; budget ${BUDGET}s"
say "$(grep -i 'video codecs' <<<"$codecs")"

WTS=
if [ "$DEC" = taesd ]; then
	WTS=$W/taesd.safetensors
	"$BIN/egressd-mktaesd" -o "$WTS" --latent-channels 4 --seed 5 >/dev/null || { say "egressd-mktaesd failed"; exit 1; }
fi
DECKEYS=(decoder="$DEC" weights="$WTS")

# add_row ID LABEL OUTPUT WORKERS STATUS FRAMES WALL FPS CPU BYTES CHECK ERROR
add_row() { (IFS=$'\t'; echo "$*") >>"$RES/encode.tsv"; }

# row ID LABEL WORKERS NPY OUTPUT KIND key=value...: one job through the
# running daemon, timed by spool_run.py; its CPU time from /proc; its output
# checked, then removed
row() {
	local id=$1 label=$2 wk=$3 npy=$4 outp=$5 kind=$6
	shift 6
	local frames; frames=$(npy_frames "$npy")
	if over_budget; then
		add_row "$id" "$label" "$kind" "$wk" skipped "$frames" "" "" "" "" "" "time budget (BENCH_BUDGET=${BUDGET}s) spent"
		say "$label: skipped (time budget)"
		return
	fi
	if [ -z "$DAEMON_PID" ]; then
		add_row "$id" "$label" "$kind" "$wk" failed "$frames" "" "" "" "" "" "the daemon did not start (logs/daemon.log)"
		return
	fi
	rm -rf "$W/stage" "$outp" && mkdir -p "$W/stage"
	bench_jobfile "$W/stage/$id.job" latents="$npy" output="$outp" chunk_frames="$CHUNK" overwrite=yes \
		"${DECKEYS[@]}" "$@"
	local c0 c1 line t=$SECONDS
	c0=$(python3 tests/bench/bench_encode.py cpu "$DAEMON_PID")
	line=$(python3 tests/bench/spool_run.py "$W/spool" "$W/stage" --timeout "$ROW_TIMEOUT")
	c1=$(python3 tests/bench/bench_encode.py cpu "$DAEMON_PID")
	echo "$id: $line" >>"$RES/logs/spool_run.log"
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	local status chk='' byt='' err; status=$(get status)
	err=$(sed -n 's/.* error=//p' <<<"$line" | tr '\t' ' ')
	[ -n "$status" ] || status=failed
	if [ "$status" = "done" ]; then
		byt=$(stat -c %s "$outp" 2>/dev/null)
		chk=$(python3 tests/bench/bench_encode.py check "$outp" "$kind" "$frames") ||
			{ status="bad output" err=$chk; }
	fi
	add_row "$id" "$label" "$kind" "$wk" "$status" "$frames" "$(get wall_s)" "$(get frames_per_s)" \
		"$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')" "$byt" "${chk#ok: }" "$err"
	say "$label: $status, $(get frames_per_s) f/s, $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.1f", b - a }') CPU-s, ${byt:-no} bytes; ${chk:-$err} ($((SECONDS - t)) s)"
	mkdir -p "$RES/logs/results"
	mv "$W"/spool/done/*.result "$W"/spool/failed/*.error "$RES/logs/results/" 2>/dev/null
	rm -f "$W"/spool/done/* "$W"/spool/failed/* "$outp"
}

# daemon_for WORKERS: a daemon with that many workers, warmed up (CUDA
# context, weights) by one untimed job
daemon_for() {
	daemon_stop
	bench_conf "$W/d$1.ini" full "$1" "$SLOT_BYTES"
	say "daemon with $1 workers"
	if daemon_start "$W/d$1.ini"; then
		spool_warm latents="$W/warm.npy" format=null chunk_frames="$CHUNK" "${DECKEYS[@]}" ||
			say "warm-up failed (logs/daemon.log)"
	fi
}

# choose_frames: FRAMES, or sized by an H.264 probe on the running daemon
choose_frames() {
	local unit=$GOP lo=${BENCH_ENCODE_MIN_FRAMES:-2400} hi=${BENCH_ENCODE_MAX_FRAMES:-9600} secs=${BENCH_ENCODE_W1_SECONDS:-45}
	local room=$(($(avail "$OUTD") * 4 / 10 / (FB + 6)))	# the y4m row's output, 40% of the disk at most
	[ "$hi" -gt "$room" ] && hi=$room
	if [ "$FRAMES" != auto ]; then
		N=$FRAMES
		printf 'sizing\t%s (BENCH_ENCODE_FRAMES)\n' "$N" >>"$RES/params.tsv"
		return
	fi
	make_latents "$W/probe.npy" $((4 * GOP)) 4 "$LAT" "$LAT" || { say "making latents failed"; exit 1; }
	row probe "probe" "$1" "$W/probe.npy" "$OUTD/probe.mp4" mp4 "${H264[@]}"
	local fps; fps=$(awk -F'\t' '$1 == "probe" && $5 == "done" { print $8 }' "$RES/encode.tsv")
	sed -i '/^probe\t/d' "$RES/encode.tsv"
	N=$(awk -v f="${fps:-0}" -v s="$secs" -v u="$unit" -v lo="$lo" -v hi="$hi" 'BEGIN {
		n = f * s; if (n < lo) n = lo; if (n > hi) n = hi; n = int(n / u) * u; if (n < u) n = u; print n }')
	printf 'sizing\t%s: an H.264 probe of %s frames with %s worker(s) ran at %s f/s; sized for about %s s at that speed, within %s..%s\n' \
		"$N" $((4 * GOP)) "$1" "${fps:-?}" "$secs" "$lo" "$hi" >>"$RES/params.tsv"
	say "frames: $N (probe: ${fps:-no number} f/s with $1 worker(s))"
	rm -f "$W/probe.npy"
}

# the peer: PyTorch + cv2.VideoWriter on the same latents (the CPU backend:
# a numpy stand-in for the decoder, to check the plumbing)
peer_row() {
	local npy=$1 n; n=$(npy_frames "$1")
	local label="PyTorch + cv2.VideoWriter (mp4v)" outp=$OUTD/peer.mp4 log=$RES/logs/peer.log
	[ "${BENCH_PEERS:-1}" = 1 ] || return 0
	if [ "$BACKEND" = cuda ] && [ "$DEC" != taesd ]; then
		add_row peer "$label" mp4 1 skipped "$n" "" "" "" "" "" "the peer decodes TAESD only"
		return
	fi
	if over_budget; then
		add_row peer "$label" mp4 1 skipped "$n" "" "" "" "" "" "time budget (BENCH_BUDGET=${BUDGET}s) spent"
		return
	fi
	local t=$SECONDS
	timeout -k 5 "$ROW_TIMEOUT" python3 tests/bench/bench_encode.py peer --latents "$npy" --weights "$WTS" \
		--out "$outp" --chunk "$CHUNK" --device "$([ "$BACKEND" = cuda ] && echo cuda || echo cpu)" \
		--decoder "$([ "$BACKEND" = cuda ] && echo taesd || echo standin)" >"$log" 2>&1
	local rc=$? line; line=$(grep '^PEER ' "$log" | tail -n 1)
	get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
	if [ $rc = 0 ] && [ -n "$(get frames_per_s)" ]; then
		local chk st="done" err=
		chk=$(python3 tests/bench/bench_encode.py check "$outp" mp4 "$n") || { st="bad output" err=$chk; }
		[ "$BACKEND" = cuda ] || label="numpy stand-in + cv2.VideoWriter (mp4v)"
		add_row peer "$label" mp4 1 "$st" "$n" "$(get wall_s)" "$(get frames_per_s)" "$(get cpu_s)" \
			"$(stat -c %s "$outp")" "${chk#ok: }" "$err"
		printf 'peer\t%s, OpenCV %s\n' "$(get decoder | tr _ ' ')" "$(get cv2)" >>"$RES/params.tsv"
	else
		add_row peer "$label" mp4 1 "$([ $rc = 77 ] && echo skipped || echo failed)" "$n" "" "" "" "" "" \
			"$(tail -n 1 "$log" | tr '\t' ' ')"
	fi
	say "$label: $(tail -n 1 "$log") ($((SECONDS - t)) s)"
	rm -f "$outp"
}

{
	printf 'size\t%s\ndecoder\t%s\ngop\t%s\ncrf\t%s\npreset\t%s\nbackend\t%s\n' "${S}²" \
		"$([ "$DEC" = taesd ] && echo TAESD || echo "$DEC")" "$GOP" "$CRF" "$PRESET" "$BACKEND"
} >>"$RES/params.tsv"
make_latents "$W/warm.npy" "$CHUNK" 4 "$LAT" "$LAT" || { say "making latents failed"; exit 1; }
N=
# shellcheck disable=SC2086 # word lists
for wk in $(printf '%s\n' $WLIST $FFV1_W | sort -n -u); do
	daemon_for "$wk"
	if [ -z "$N" ]; then
		choose_frames "$wk"
		make_latents "$W/clip.npy" "$N" 4 "$LAT" "$LAT" || { say "making latents failed"; exit 1; }
		printf 'latents\t%s frames, 4×%s×%s f16, seed 7\n' "$N" "$LAT" "$LAT" >>"$RES/params.tsv"
	fi
	[ "$wk" = "$WMAX" ] && row y4m "egressd → y4m (no encode)" "$wk" "$W/clip.npy" "$OUTD/clip.y4m" y4m format=y4m
	grep -qw -- "$wk" <<<"$WLIST" &&
		row "h264-$wk" "egressd → H.264" "$wk" "$W/clip.npy" "$OUTD/clip.mp4" mp4 "${H264[@]}"
	[ "$wk" = "$FFV1_W" ] && row "ffv1-$wk" "egressd → FFV1" "$wk" "$W/clip.npy" "$OUTD/clip.mkv" mkv "${FFV1[@]}"
done
daemon_stop
peer_row "$W/clip.npy"
rm -f "$W/clip.npy" "$W/warm.npy"

python3 tests/bench/bench_encode.py table "$RES"
trc=$?
bench_report ""
brc=$?
[ $trc = 0 ] && [ $brc = 0 ]
