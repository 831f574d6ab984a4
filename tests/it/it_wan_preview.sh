#!/usr/bin/env bash
# Integration, on real data: the Wan 2.1 latents in ../shared/data/wan21
# (float32 [1, 16, 16, 40, 64], the diffusers/Wan bcthw layout) through the
# real daemon with decoder = latent2rgb and l2r_preset = wan21 give 16 frames
# (a preview: no time upsampling) of 512x320; the frames equal, byte for
# byte, the independent numpy reference (tests/ref/l2r_ref.py --preset wan21,
# which reads the layout with numpy and takes its factors from the data's
# README), and the picture is a video, not a transposition (consecutive
# frames alike, the cheesecake and plate bright against the dark top).  The
# same latents as a bfloat16 .safetensors file (what the VAE holds) decode to
# the same bytes; a preset for other latents is refused, naming both counts.
# Skipped (77) where ../shared is absent; EGR_SHARED points elsewhere.
# san: yes
. "$(dirname "$0")/lib.sh"
SHARED=$(dirname "${SHARED_DATA:-/nonexistent/data}")
WAN=$SHARED/data/wan21/cheesecake_latents_bcthw_f32.npy
[ -f "$WAN" ] || skip "real Wan 2.1 latents not found ($WAN; CI has ../shared)"
need_ffmpeg
need_numpy

conf workers=2 slots=4 slot_bytes=4M
start_daemon
mkdir -p "$T/out"
# bfloat16 .safetensors of the same values (they came from bf16: exact)
python3 - "$WAN" "$T/wan_bf16.safetensors" <<'PY' || die "writing the bf16 safetensors"
import json, struct, sys
import numpy as np
a = np.ascontiguousarray(np.load(sys.argv[1]))
u = a.view(np.uint32)
assert (u & 0xffff).max() == 0, "not bf16-exact"
data = (u >> 16).astype("<u2").tobytes()
hdr = json.dumps({"latents": {"dtype": "BF16", "shape": list(a.shape), "data_offsets": [0, len(data)]}}).encode()
hdr += b" " * (-len(hdr) % 8)
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr + data)
PY
job wan.job latents="$WAN" output="$T/out/wan.y4m" format=y4m fps=16 chunk_frames=5 l2r_preset=wan21
job bf16.job latents="$T/wan_bf16.safetensors" output="$T/out/bf16.y4m" format=y4m fps=16 chunk_frames=16 \
	layout=bcthw latents_key=latents l2r_preset=wan21
job sd.job latents="$WAN" output="$T/out/sd.y4m" format=y4m l2r_preset=sd15
for j in wan.job bf16.job; do
	r=$(wait_job $j 120)
	[ "$r" = done ] || { cat "$T/spool/failed/$j.error" 2>/dev/null; cat "$T/daemon.log"; die "$j: $r"; }
done
ok "wan21 jobs done"
[ "$(wait_job sd.job)" = failed ] || die "sd15 preset on 16-channel latents was not refused"
check "preset/channel mismatch names both" \
	grep -q 'l2r_preset = sd15 is for 4-channel latents; the latents have 16 channels' "$T/spool/failed/sd.job.error"

probe=$(ffprobe -v error -count_frames -select_streams v:0 \
	-show_entries stream=width,height,nb_read_frames -of default=nw=1 "$T/out/wan.y4m")
echo "$probe"
check "16 frames" grep -qx 'nb_read_frames=16' <<<"$probe"
check "512 wide" grep -qx 'width=512' <<<"$probe"
check "320 high" grep -qx 'height=320' <<<"$probe"
check "result counts 16 frames" [ "$(result wan.job frames)" = 16 ]

ffmpeg -v error -i "$T/out/wan.y4m" -f rawvideo -pix_fmt yuv420p "$T/wan.dec" || die "ffmpeg decode"
ref_frames "$WAN" y4m "$T/wan.ref" --preset wan21 || die "numpy reference"
check "frames == numpy reference (wan21, bcthw), byte for byte" cmp "$T/wan.dec" "$T/wan.ref"
check "bf16 .safetensors gives the same video" cmp "$T/out/wan.y4m" "$T/out/bf16.y4m"

# the picture itself: a video of a plate, not 16 latent channels side by side
check "the picture is the cheesecake" python3 - "$T/wan.ref" <<'PY'
import sys
import numpy as np
w, h = 512, 320
y = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(16, -1)[:, :w * h].reshape(16, h, w).astype(float)
step = np.abs(np.diff(y, axis=0)).mean()         # 5 for the video; 80 with frames and channels swapped
contrast = y[:, 140:260, 150:430].mean() - y[:, :40, :].mean()   # bright cake and plate, dark top
print("frame-to-frame %.1f, centre - top %.1f" % (step, contrast))
sys.exit(0 if step < 15 and contrast > 60 else 1)
PY
stop_daemon || fail "daemon exit status"
finish
