#!/usr/bin/env bash
# make demo: from a fresh Debian/Ubuntu machine to a playable video.
# Installs missing build dependencies, builds, generates sample latents with
# egressd-mklatents, runs one job through the real daemon (supervisor,
# producer, workers, shared memory, io_uring) and says where the video is.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/deps.sh
make -j"$(nproc)" all
D=$(pwd)/build/demo
rm -rf "$D"
mkdir -p "$D/out"
build/egressd-mklatents -o "$D/latents.npy" -f 96 -c 4 -H 64 -W 64 --seed 1
cat >"$D/egressd.ini" <<INI
[daemon]
spool = $D/spool
instance = egressd-demo
workers = 2
; the GPU if there is one, else the CPU decoder
backend = auto
[ring]
slots = 8
slot_bytes = 8M
INI
cat >"$D/demo.job" <<JOB
[job]
latents = $D/latents.npy
output = $D/out/demo.y4m
format = y4m
fps = 24
chunk_frames = 8
JOB
echo
echo "== running: build/egressd --oneshot $D/demo.job -c $D/egressd.ini"
build/egressd --oneshot "$D/demo.job" -c "$D/egressd.ini" 2>"$D/egressd.log" | tee "$D/result.ini"
echo
if command -v ffprobe >/dev/null; then
	ffprobe -v error -count_frames -show_entries stream=width,height,nb_read_frames,r_frame_rate \
		-of default=nw=1 "$D/out/demo.y4m" | tr '\n' ' '
	echo
	ffmpeg -v error -y -i "$D/out/demo.y4m" -vf 'select=eq(n\,48)' -frames:v 1 "$D/out/frame48.png"
fi
cat <<TXT
The video:   $D/out/demo.y4m   (512x512, 96 frames, 24 fps, YUV 4:2:0)
Its result:  $D/result.ini       (daemon log: $D/egressd.log)
Watch it:    mpv $D/out/demo.y4m     or   ffplay $D/out/demo.y4m
To MP4:      ffmpeg -i $D/out/demo.y4m -c:v libx264 -pix_fmt yuv420p $D/out/demo.mp4
One frame:   $D/out/frame48.png
TXT
