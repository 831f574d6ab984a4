#!/usr/bin/env bash
# Integration: the real daemon decodes y4m and png jobs; ffprobe/ffmpeg accept
# the y4m and decode it back to exactly the independent numpy reference's
# pixels; PNG frames decoded by ffmpeg equal the reference RGB; several jobs
# in flight at once; no temporary file left behind.
# san: yes
. "$(dirname "$0")/lib.sh"
need_ffmpeg
need_numpy

conf workers=3 slots=4 slot_bytes=1M
start_daemon
mklatents -o "$T/a.npy" -f 13 -c 4 -H 16 -W 24 --dtype f16 --seed 7
mklatents -o "$T/b.npy" -f 5 -c 4 -H 8 -W 8 --dtype f32 --seed 3 --pattern noise
mkdir -p "$T/out"
job a.job latents="$T/a.npy" output="$T/out/a.y4m" format=y4m fps=30000/1001 chunk_frames=5
job b.job latents="$T/b.npy" output="$T/out/b" format=png chunk_frames=2
job c.job latents="$T/b.npy" output="$T/out/c.y4m" format=y4m chunk_frames=1 \
	l2r_weights=0.5,0,0,0,0.5,0,0,0,0.5,0.1,0.1,0.1 l2r_bias=0.1,-0.2,0.05
for j in a.job b.job c.job; do
	r=$(wait_job $j 120)
	[ "$r" = done ] || { cat "$T/spool/failed/$j.error" 2>/dev/null; cat "$T/daemon.log"; die "$j: $r"; }
done
ok "three jobs done"

# y4m: ffprobe's view
probe=$(ffprobe -v error -count_frames -select_streams v:0 \
	-show_entries stream=width,height,nb_read_frames,pix_fmt,r_frame_rate -of default=nw=1 "$T/out/a.y4m")
echo "$probe"
check "ffprobe width" grep -qx 'width=192' <<<"$probe"
check "ffprobe height" grep -qx 'height=128' <<<"$probe"
check "ffprobe frame count" grep -qx 'nb_read_frames=13' <<<"$probe"
check "ffprobe frame rate" grep -qx 'r_frame_rate=30000/1001' <<<"$probe"
check "ffprobe pix_fmt is 4:2:0" grep -q 'pix_fmt=yuv420p' <<<"$probe"
check "y4m header states colour range" grep -aq 'C420jpeg XCOLORRANGE=LIMITED' <(head -c 100 "$T/out/a.y4m")

# y4m pixels: ffmpeg decodes, compared with the numpy reference
ffmpeg -v error -i "$T/out/a.y4m" -f rawvideo -pix_fmt yuv420p "$T/a.dec" || die "ffmpeg decode"
ref_frames "$T/a.npy" y4m "$T/a.ref"
check "y4m frames (ffmpeg) == numpy reference, byte for byte" cmp "$T/a.dec" "$T/a.ref"
ffmpeg -v error -i "$T/out/c.y4m" -f rawvideo -pix_fmt yuv420p "$T/c.dec" || die "ffmpeg decode c"
ref_frames "$T/b.npy" y4m "$T/c.ref" --weights 0.5,0,0,0,0.5,0,0,0,0.5,0.1,0.1,0.1 --bias 0.1,-0.2,0.05
check "custom l2r weights == numpy reference" cmp "$T/c.dec" "$T/c.ref"

# png: every frame decoded by ffmpeg, concatenated, equals the reference RGB
n=$(ls "$T/out/b" | wc -l)
check "5 png frames" [ "$n" = 5 ]
check "png names are 1-based" [ -f "$T/out/b/frame_000001.png" ] && [ -f "$T/out/b/frame_000005.png" ]
: >"$T/b.dec"
for f in "$T"/out/b/frame_*.png; do
	ffmpeg -v error -i "$f" -f rawvideo -pix_fmt rgb24 - >>"$T/b.dec" || fail "ffmpeg decode $f"
done
ref_frames "$T/b.npy" png "$T/b.ref"
check "png frames (ffmpeg) == numpy reference" cmp "$T/b.dec" "$T/b.ref"

# results and leftovers
check "result says done" grep -qx 'status = done' "$T/spool/done/a.job.result"
check "result counts frames" [ "$(result a.job frames)" = 13 ]
check "result has bytes" [ "$(result a.job bytes)" = "$(stat -c %s "$T/out/a.y4m")" ]
check "result has frames/s" grep -q '^frames_per_s = [0-9]' "$T/spool/done/a.job.result"
check "result has producer_blocked_s" grep -q '^producer_blocked_s = ' "$T/spool/done/a.job.result"
check "no temporary output left" [ -z "$(ls -A "$T/out" | grep egressd-tmp)" ]
check "active/ empty" [ -z "$(ls -A "$T/spool/active")" ]

# two jobs writing the same output at once (overwrite = yes): each has its
# own temporary, the last to finish wins whole (never a mix of the two)
job e1.job latents="$T/a.npy" output="$T/out/same.y4m" format=y4m fps=30000/1001 chunk_frames=1 overwrite=yes
job e2.job latents="$T/a.npy" output="$T/out/same.y4m" format=y4m fps=30000/1001 chunk_frames=2 overwrite=yes
[ "$(wait_job e1.job)" = done ] && [ "$(wait_job e2.job)" = done ] || die "concurrent jobs on one output"
check "concurrent jobs on one output: a whole, valid output" cmp "$T/out/a.y4m" "$T/out/same.y4m"

# a second run over an existing output replaces it atomically
job d.job latents="$T/b.npy" output="$T/out/b" format=png chunk_frames=3 overwrite=yes
[ "$(wait_job d.job)" = done ] || die "rerun over an existing png directory"
: >"$T/d.dec"
for f in "$T"/out/b/frame_*.png; do ffmpeg -v error -i "$f" -f rawvideo -pix_fmt rgb24 - >>"$T/d.dec"; done
check "png directory replaced by the new run" cmp "$T/d.dec" "$T/b.ref"
stop_daemon || fail "daemon exit status"
check "shared memory removed at exit" [ ! -e "/dev/shm/$INSTANCE" ]
finish
