#!/usr/bin/env bash
# make demo: from a fresh Debian/Ubuntu machine to videos of real data.
# Installs missing build dependencies, builds, and runs jobs through the real
# daemon (supervisor, producer, workers, shared memory, io_uring):
#   1. real FLUX.2 tiny-decoder weights (taef2) on real latents of a real
#      video (../shared/data/taef2): 832x480 frames a person recognises;
#   2. real Wan 2.1 latents (../shared/data/wan21) through the wan21
#      latent2rgb preview: 16 frames of 512x320, a cheesecake on a plate;
#   3. without the real data, synthetic latents from egressd-mklatents.
# It says where each video is.  The GPU is used when there is one; on the
# CPU the taef2 decode takes some seconds a frame, so it decodes 4 frames.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/deps.sh
make -j"$(nproc)" all
D=$(pwd)/build/demo
DATA=$(realpath -e "${EGR_SHARED:-../shared}/data" 2>/dev/null || true)
rm -rf "$D"
mkdir -p "$D/out"
cat >"$D/egressd.ini" <<INI
[daemon]
spool = $D/spool
instance = egressd-demo
workers = 2
; the GPU if there is one, else the CPU decoder
backend = auto
[ring]
slots = 8
slot_bytes = 32M
[paths]
; jobs read and write only under these directories
allow_read = $D${DATA:+ $DATA}
allow_write = $D/out
INI

run() {	# run NAME: the job $D/NAME.job, its output and one frame
	echo
	echo "== build/egressd --oneshot $D/$1.job -c $D/egressd.ini"
	build/egressd --oneshot "$D/$1.job" -c "$D/egressd.ini" 2>>"$D/egressd.log" | tee "$D/$1.result"
	ffmpeg -v error -y -i "$D/out/$1.y4m" -vf "select=eq(n\,$2)" -frames:v 1 "$D/out/$1-frame$2.png"
	ffprobe -v error -count_frames -show_entries stream=width,height,nb_read_frames \
		-of default=nw=1 "$D/out/$1.y4m" | tr '\n' ' '
	echo
}

if [ -n "$DATA" ] && [ -f "$DATA/taef2/taef2_decoder.safetensors" ]; then
	n=24
	command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || n=4
	python3 -c "import numpy as np; np.save('$D/taef2_latents.npy', np.load('$DATA/taef2/real_latents_0_24_f16.npy')[:$n])"
	cat >"$D/taef2.job" <<JOB
[job]
latents = $D/taef2_latents.npy
output = $D/out/taef2.y4m
decoder = taesd
weights = $DATA/taef2/taef2_decoder.safetensors
format = y4m
fps = 30
chunk_frames = 4
JOB
	run taef2 0
	cat >"$D/wan21.job" <<JOB
[job]
latents = $DATA/wan21/cheesecake_latents_bcthw_f32.npy
output = $D/out/wan21.y4m
decoder = latent2rgb
l2r_preset = wan21
format = y4m
fps = 16
JOB
	run wan21 8
	cat <<TXT

Real FLUX.2 tiny-decoder weights on real video latents:
  video $D/out/taef2.y4m ($n frames of 832x480), one frame $D/out/taef2-frame0.png
Real Wan 2.1 latents, latent2rgb preview:
  video $D/out/wan21.y4m (16 frames of 512x320), one frame $D/out/wan21-frame8.png
Watch: mpv $D/out/taef2.y4m   (results: $D/*.result, daemon log: $D/egressd.log)
TXT
	exit 0
fi

echo "(no ../shared/data here: synthetic latents instead)"
build/egressd-mklatents -o "$D/latents.npy" -f 96 -c 4 -H 64 -W 64 --seed 1
cat >"$D/demo.job" <<JOB
[job]
latents = $D/latents.npy
output = $D/out/demo.y4m
format = y4m
fps = 24
chunk_frames = 8
JOB
run demo 48
cat <<TXT
The video:   $D/out/demo.y4m   (512x512, 96 frames, 24 fps, YUV 4:2:0)
Its result:  $D/demo.result     (daemon log: $D/egressd.log)
Watch it:    mpv $D/out/demo.y4m     or   ffplay $D/out/demo.y4m
One frame:   $D/out/demo-frame48.png
TXT
