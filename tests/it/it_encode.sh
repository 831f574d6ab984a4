#!/usr/bin/env bash
# Integration: format = mp4 | mkv, encoded by the worker pool in segments of
# gop frames (docs/ENCODE.md).  ffprobe: codec, frame count, exact duration
# and frame rate (30000/1001 and 24), colour tags in the container and in
# the bitstream, moov before mdat; FFV1 in MKV decodes to exactly the y4m
# output's frames; H.264 at crf 18 is >= 40 dB PSNR against them;
# chunk_frames 1 and 8 give the same file; a worker killed at several points
# (a chunk's take, half-way through a segment's encode, after its write, half
# way through the final mux) and the supervisor killed mid-job change nothing;
# ENOSPC and a missing encoder fail the job with a clear line; the files play
# (ffmpeg -v error prints nothing).
# san: yes
. "$(dirname "$0")/lib.sh"
need_ffmpeg
export LSAN_OPTIONS="suppressions=$TOP/tests/it/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

conf workers=3 slots=4 slot_bytes=1M
mklatents -o "$T/l.npy" -f 50 -c 4 -H 16 -W 24 --seed 5
mkdir -p "$T/out"
E=$EGR_BIN/egressd
F=50 W=192 H=128

# probe FILE KEYS: "key=value" lines of ffprobe's view of the video stream and the file
probe() {
	ffprobe -v error -count_frames -select_streams v:0 -show_entries "$2" -of default=nw=1 "$1"
}
# plays FILE: ffmpeg decodes it with nothing to say
plays() { [ -z "$(ffmpeg -v error -i "$1" -f null - 2>&1)" ]; }
# colour tags ffprobe reports (container and, where the codec has them, bitstream)
tags_ok() {	# FILE CHROMA
	local p; p=$(probe "$1" stream=color_range,color_space,color_transfer,color_primaries,chroma_location)
	grep -qx color_range=tv <<<"$p" && grep -qx color_space=smpte170m <<<"$p" &&
		grep -qx color_transfer=bt709 <<<"$p" && grep -qx color_primaries=bt709 <<<"$p" &&
		grep -qx "chroma_location=$2" <<<"$p"
}
# the elementary stream alone (no container): what the bitstream says
bitstream_tags_ok() {	# FILE RAWFMT CHROMA
	local p
	p=$(ffmpeg -v error -i "$1" -c copy -f "$2" - | ffprobe -v error -show_entries \
		stream=color_range,color_space,color_transfer,color_primaries,chroma_location -of default=nw=1 -)
	grep -qx color_range=tv <<<"$p" && grep -qx color_space=smpte170m <<<"$p" &&
		grep -qx color_transfer=bt709 <<<"$p" && grep -qx color_primaries=bt709 <<<"$p" &&
		grep -qx "chroma_location=$3" <<<"$p"
}
# moov_first FILE: the MP4 index before the media (+faststart)
moov_first() {
	python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); m = d.find(b"moov"); sys.exit(not (0 < m < d.find(b"mdat")))' "$1"
}
run_job() {	# NAME key=value...: runs the job in the daemon, dies unless it is done
	local name=$1; shift
	job "$name" latents="$T/l.npy" "$@"
	local r; r=$(wait_job "$name" 120)
	[ "$r" = done ] || { cat "$T/spool/failed/$name.error" 2>/dev/null; tail -n 20 "$T/daemon.log"; die "$name: $r"; }
}

start_daemon
run_job y.job output="$T/out/ref.y4m" format=y4m fps=30000/1001 chunk_frames=5
ffmpeg -v error -i "$T/out/ref.y4m" -f rawvideo -pix_fmt yuv420p "$T/ref.yuv" || die "decode y4m"

# ---- H.264 in MP4, 30000/1001 fps ----
run_job a.job output="$T/out/a.mp4" format=mp4 codec=h264 crf=18 preset=veryfast gop=12 fps=30000/1001 chunk_frames=8
p=$(probe "$T/out/a.mp4" stream=codec_name,pix_fmt,width,height,nb_read_frames,r_frame_rate,avg_frame_rate,duration:format=duration)
echo "$p"
check "mp4: codec h264" grep -qx codec_name=h264 <<<"$p"
check "mp4: yuv420p ${W}x$H" bash -c "grep -qx pix_fmt=yuv420p <<<'$p' && grep -qx width=$W <<<'$p' && grep -qx height=$H <<<'$p'"
check "mp4: $F frames (counted)" grep -qx "nb_read_frames=$F" <<<"$p"
check "mp4: frame rate 30000/1001" bash -c "grep -qx r_frame_rate=30000/1001 <<<'$p' && grep -qx avg_frame_rate=30000/1001 <<<'$p'"
# 50 * 1001 / 30000 = 1.668333...: stream and file both exact to the microsecond
check "mp4: duration exact (stream and file)" [ "$(grep -c '^duration=1.668333$' <<<"$p")" = 2 ]
check "mp4: colour tags (container)" tags_ok "$T/out/a.mp4" center
check "mp4: colour tags in the H.264 VUI" bitstream_tags_ok "$T/out/a.mp4" h264 center
check "mp4: moov before mdat (+faststart)" moov_first "$T/out/a.mp4"
check "mp4: plays without a word from ffmpeg" plays "$T/out/a.mp4"
psnr=$(ffmpeg -v info -framerate 30000/1001 -s ${W}x$H -pix_fmt yuv420p -f rawvideo -i "$T/ref.yuv" -i "$T/out/a.mp4" \
	-lavfi "[1:v][0:v]psnr" -f null - 2>&1 | sed -n 's/.*PSNR.* average:\([0-9.inf]*\).*/\1/p')
echo "H.264 crf 18 PSNR against the y4m frames: $psnr dB"
check "mp4: PSNR >= 40 dB at crf 18" awk -v p="$psnr" 'BEGIN { exit !(p == "inf" || p + 0 >= 40) }'
check "mp4: result names the format" grep -qx 'format = mp4' "$T/spool/done/a.job.result"

# segmentation follows gop, not chunks
run_job a1.job output="$T/out/a1.mp4" format=mp4 codec=h264 crf=18 preset=veryfast gop=12 fps=30000/1001 chunk_frames=1
check "chunk_frames 1 and 8: identical files" cmp "$T/out/a.mp4" "$T/out/a1.mp4"
check "no temporary output left" [ -z "$(ls -A "$T/out" | grep egressd-tmp)" ]

# ---- FFV1 in MKV, 24 fps: lossless ----
run_job b.job output="$T/out/b.mkv" format=mkv codec=ffv1 gop=10 fps=24 chunk_frames=3
p=$(probe "$T/out/b.mkv" stream=codec_name,nb_read_frames,r_frame_rate,avg_frame_rate:format=duration)
echo "$p"
check "mkv: codec ffv1" grep -qx codec_name=ffv1 <<<"$p"
check "mkv: $F frames (counted)" grep -qx "nb_read_frames=$F" <<<"$p"
check "mkv: frame rate 24/1" bash -c "grep -qx r_frame_rate=24/1 <<<'$p' && grep -qx avg_frame_rate=24/1 <<<'$p'"
# Matroska counts in milliseconds: 50 / 24 s = 2083.33 ms, the last frame's 41.67 ms rounded up
check "mkv: duration to the millisecond" grep -Eqx 'duration=2.08[34]000' <<<"$p"
check "mkv: colour tags (Matroska Colour)" tags_ok "$T/out/b.mkv" center
check "mkv: plays" plays "$T/out/b.mkv"
ffmpeg -v error -i "$T/out/b.mkv" -f rawvideo -pix_fmt yuv420p "$T/b.yuv" || fail "decode ffv1"
check "ffv1 frames == the y4m output's frames, byte for byte" cmp "$T/b.yuv" "$T/ref.yuv"

# ---- HEVC in MP4 and AV1 in MKV: what ffprobe sees ----
run_job c.job output="$T/out/c.mp4" format=mp4 codec=hevc preset=ultrafast gop=25 chunk_frames=8
p=$(probe "$T/out/c.mp4" stream=codec_name,codec_tag_string,nb_read_frames,duration)
check "hevc: codec, hvc1 tag, frames, duration" bash -c "grep -qx codec_name=hevc <<<'$p' && grep -qx codec_tag_string=hvc1 <<<'$p' &&
	grep -qx nb_read_frames=$F <<<'$p' && grep -qx duration=2.083333 <<<'$p'"
check "hevc: colour tags in the VUI" bitstream_tags_ok "$T/out/c.mp4" hevc center
check "hevc: plays" plays "$T/out/c.mp4"
run_job d.job output="$T/out/d.mkv" format=mkv codec=av1 preset=12 crf=40 gop=25 chunk_frames=8
p=$(probe "$T/out/d.mkv" stream=codec_name,nb_read_frames)
check "av1: codec, frames" bash -c "grep -qx codec_name=av1 <<<'$p' && grep -qx nb_read_frames=$F <<<'$p'"
check "av1: colour tags (container; AV1 cannot say 'centre')" tags_ok "$T/out/d.mkv" center
check "av1: colour tags in the sequence header" bitstream_tags_ok "$T/out/d.mkv" obu unspecified
check "av1: plays" plays "$T/out/d.mkv"

# ---- refusals: keys that do not apply, a codec this libavcodec lacks ----
job e.job latents="$T/l.npy" output="$T/out/e.y4m" format=y4m codec=h264
check "codec with format = y4m: refused" [ "$(wait_job e.job)" = failed ]
check "... saying so" grep -q 'codec applies to format = mp4 or mkv only' "$T/spool/failed/e.job.error"
job f.job latents="$T/l.npy" output="$T/out/f.mp4" format=mp4 codec=ffv1
check "ffv1 in mp4: refused" [ "$(wait_job f.job)" = failed ]
stop_daemon

printf '[job]\nlatents = %s\noutput = %s/out/g.mp4\nformat = mp4\ncodec = hevc\n' "$T/l.npy" "$T" >"$T/g.job"
res=$(EGR_VIDEO_HIDE=hevc "$E" --oneshot "$T/g.job" -c "$T/egressd.ini" 2>>"$T/daemon.log"); rc=$?
echo "$res" | grep '^error'
check "missing encoder: job fails" [ $rc = 1 ]
check "missing encoder: names the codec, the encoder and what is available" \
	grep -q 'codec = hevc: this libavcodec has no libx265 encoder.*codecs available: h264 (libx264), av1' <<<"$res"
check "--version lists the codecs" bash -c "'$E' --version | grep -q 'video codecs.*h264 (libx264)'"
check "-t lists the codecs" bash -c "'$E' -t -c '$T/egressd.ini' | grep -q '^# video codecs.*ffv1'"

# a full disk: the spool write fails ENOSPC (test-build fault)
printf '[job]\nlatents = %s\noutput = %s/out/h.mp4\nformat = mp4\n' "$T/l.npy" "$T" >"$T/h.job"
res=$(EGR_FAULT_WRITE_ERRNO=ENOSPC EGR_FAULT_WRITE_AT=1 "$E" --oneshot "$T/h.job" -c "$T/egressd.ini" 2>>"$T/daemon.log"); rc=$?
check "ENOSPC: job fails, saying so" bash -c "[ $rc = 1 ] && grep -q 'No space left on device' <<<'$res'"
check "ENOSPC: nothing left behind" [ -z "$(ls -A "$T/out" | grep -e h.mp4 -e egressd-tmp)" ]

# ---- crashes: the clean run, then a worker killed at each point ----
clean=$T/out/k.mp4
printf '[job]\nlatents = %s\noutput = %s\nformat = mp4\npreset = veryfast\ngop = 8\nchunk_frames = 8\n' "$T/l.npy" "$clean" >"$T/k.job"
"$E" --oneshot "$T/k.job" -c "$T/egressd.ini" >/dev/null 2>>"$T/daemon.log" || die "clean mp4 run"
run_with_fault() {	# NAME ENV...
	local name=$1 out=$T/out/$1.mp4; shift
	rm -f "$T/once"
	env "$@" EGR_FAULT_KILL_ONCE="$T/once" "$E" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
	DAEMON_PID=$!
	sleep 0.2
	job "$name.job" latents="$T/l.npy" output="$out" format=mp4 preset=veryfast gop=8 chunk_frames=8
	local r; r=$(wait_job "$name.job" 120)
	stop_daemon
	[ "$r" = done ] || { fail "$name: job $r"; return; }
	[ -e "$T/once" ] || { fail "$name: the fault did not fire"; return; }
	check "$name: output identical to the clean run" cmp "$clean" "$out"
	rm -f "$out"
}
for phase in take mid written; do
	for at in 1 3; do
		run_with_fault "wk-$phase-$at" EGR_FAULT_KILL_AT=$at EGR_FAULT_KILL_PHASE=$phase
	done
done
run_with_fault wk-finalize EGR_FAULT_KILL_AT=1 EGR_FAULT_KILL_PHASE=finalize
check "the workers' deaths were seen" grep -q 'fault injection: SIGKILL' "$T/daemon.log"

# the supervisor SIGKILLed mid-job: a new one reruns active/, same file
EGR_FAULT_WRITE_DELAY_MS=50 "$E" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
DAEMON_PID=$!
sleep 0.2
job sup.job latents="$T/l.npy" output="$T/out/sup.mp4" format=mp4 preset=veryfast gop=8 chunk_frames=1
for _ in $(seq 100); do [ -e "$T/spool/active/sup.job" ] && break; sleep 0.02; done
sleep 0.3
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
sleep 0.3
check "supervisor killed: no output under the final name" [ ! -e "$T/out/sup.mp4" ]
start_daemon
check "rerun after restart: done" [ "$(wait_job sup.job 120)" = done ]
check "rerun output identical" cmp "$clean" "$T/out/sup.mp4"
stop_daemon
check "no temporary output left" [ -z "$(ls -A "$T/out" | grep egressd-tmp)" ]
finish
