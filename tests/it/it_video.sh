#!/usr/bin/env bash
# Integration: the stateful video decoders through the real daemon (cpu
# backend).
#  - decoder = taehv (taehv_model = wan21, seeded random weights from
#    egressd-mktaehv) on a 4x4 crop of the real Wan 2.1 latents (16 latent
#    frames, 5-D bcthw): 61 frames of 32x32 in y4m and png; chunk_frames = 1
#    and 16 give the same bytes; the frames equal the CPU decoder's own output
#    (egressd-mktaehv --decode, quantised and converted here with numpy);
#  - the producer SIGKILLed mid-job (y4m, chunk_frames = 1; png with
#    chunk_frames = 16, which a 128K slot cuts to 10): the successor decodes
#    the published chunks again without publishing them and the output is
#    byte-identical;
#  - decoder = wan_vae with tiny seeded weights (egressd-mkwanvae --dim 8) on
#    5 latent frames gives 1 + 4 (5 - 1) = 17 frames, chunked or not equal to
#    egressd-mkwanvae --decode; wan_denormalize = yes with a vae_config the
#    test writes equals the decode of latents de-normalised here;
#  - a taehv_model the weights contradict and a vae_config outside the roots
#    fail the job with a reason naming the user's path.
# Without ../shared (the real latents), the wan_vae part runs on random
# latents and the test exits 77 after it.  Under ASan (build/san) the crop is
# 2x2 (frames of 16x16, slots of 32K): the same checks at a quarter of the cost.
# san: yes
. "$(dirname "$0")/lib.sh"
need_ffmpeg
need_numpy
WAN=${SHARED_DATA:-/nonexistent}/wan21/cheesecake_latents_bcthw_f32.npy
S=4 SLOT=128K
case $EGR_BIN in */san) S=2 SLOT=32K ;; esac
PX=$((S * 8))
conf workers=2 slots=4 slot_bytes=$SLOT
mkdir -p "$T/out"

# latents: the real crop (or random ones), as 5-D .npy and as raw [T][C][H][W] f32 for the tools
python3 - "$WAN" "$T" "$S" <<'PY' || die "writing latents"
import os, sys
import numpy as np
src, d, s = sys.argv[1], sys.argv[2], int(sys.argv[3])
if os.path.exists(src):
    a = np.load(src)[:, :, :, 18:18 + s, 30:30 + s]  # [1, 16, 16, s, s]: cake and plate
else:
    a = np.random.default_rng(7).standard_normal((1, 16, 16, s, s))
a = np.ascontiguousarray(a, dtype=np.float32)
np.save(d + "/tv.npy", a)
a[0].transpose(1, 0, 2, 3).astype("<f4").tofile(d + "/tv.f32")
w = np.ascontiguousarray(a[:, :, :5])
np.save(d + "/wv.npy", w)
w[0].transpose(1, 0, 2, 3).astype("<f4").tofile(d + "/wv.f32")
mean = np.linspace(-0.5, 0.5, 16, dtype=np.float32)
std = np.linspace(1.5, 3.0, 16, dtype=np.float32)
with open(d + "/config.json", "w") as f:
    f.write('{"_class_name": "AutoencoderKLWan", "z_dim": 16, "latents_mean": [%s], "latents_std": [%s]}'
            % (", ".join(repr(float(x)) for x in mean), ", ".join(repr(float(x)) for x in std)))
# what pipeline_wan.py hands vae.decode: latents / (1 / std) + mean, in float32
dn = w[0].transpose(1, 0, 2, 3) / (np.float32(1) / std)[None, :, None, None] + mean[None, :, None, None]
dn.astype("<f4").tofile(d + "/wv_dn.f32")
PY
"$EGR_BIN/egressd-mktaehv" -o "$T/taew2_1.safetensors" -m wan21 --seed 3 || die "mktaehv"
"$EGR_BIN/egressd-mkwanvae" -o "$T/wan.safetensors" --dim 8 --seed 5 || die "mkwanvae"

# ref KIND F32 NFRAMES OUT: the decoder's float frames [F][3][PX][PX] to RGB24 (OUT.rgb) and I420 (OUT.yuv),
# quantised as the producer does (taesd.h / wanvae.h), in binary32
ref() {
	python3 - "$TOP/tests/ref" "$PX" "$@" <<'PY'
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from l2r_ref import to_i420
px, kind, src, n, out = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
x = np.fromfile(src, dtype="<f4").reshape(-1, 3, px, px)
assert x.shape[0] == n, "%d frames, want %d" % (x.shape[0], n)
F = np.float32
if kind == "wan":
    x = (x + F(1)) * F(0.5)
v = np.where(x > 0, x, F(0))
v = np.minimum(v, F(1))
q = ((v * F(255)) + F(0.5)).astype(np.int32).astype(np.uint8)   # floor: v >= 0
rgb = q.transpose(0, 2, 3, 1)
rgb.tofile(out + ".rgb")
np.concatenate([to_i420(f) for f in rgb]).tofile(out + ".yuv")
PY
}
# frames of a y4m (I420) and of a png directory (RGB24), for cmp
y4m_raw() { ffmpeg -v error -i "$1" -f rawvideo -pix_fmt yuv420p -y "$2"; }
png_raw() { ffmpeg -v error -i "$1/frame_%06d.png" -f rawvideo -pix_fmt rgb24 -y "$2"; }
nframes() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }

TAEHV=(decoder=taehv taehv_model=wan21 weights="$T/taew2_1.safetensors" latents="$T/tv.npy" fps=16)
WANVAE=(decoder=wan_vae weights="$T/wan.safetensors" latents="$T/wv.npy")
run_fault() {	# NAME AT key=value...: one job with the producer SIGKILLed after its AT-th chunk
	local name=$1 at=$2; shift 2
	rm -f "$T/once"
	EGR_FAULT_PRODUCER_KILL_AT=$at EGR_FAULT_KILL_ONCE="$T/once" "$EGR_BIN/egressd" -c "$T/egressd.ini" \
		2>>"$T/daemon.log" &
	DAEMON_PID=$!
	for _ in $(seq 100); do [ -e "/dev/shm/$INSTANCE" ] && break; sleep 0.05; done
	job "$name.job" "$@"
	local r; r=$(wait_job "$name.job" 120)
	stop_daemon
	[ "$r" = done ] || { cat "$T/spool/failed/$name.job.error" 2>/dev/null; fail "$name: job $r"; return 1; }
	check "$name: the producer was killed mid-job" [ -e "$T/once" ]
	check "$name: the job says the producer restarted" [ "$(result "$name.job" producer_restarts)" = 1 ]
}

if [ -f "$WAN" ]; then
	"$EGR_BIN/egressd-mktaehv" --decode "$T/taew2_1.safetensors" -m wan21 --latents "$T/tv.f32" --frames 16 \
		--size ${S}x$S -o "$T/tv.ref.f32" || die "mktaehv --decode"
	ref taehv "$T/tv.ref.f32" 61 "$T/tv.ref" || die "taehv reference frames"
	start_daemon
	job tv1.job "${TAEHV[@]}" output="$T/out/tv1.y4m" format=y4m chunk_frames=1
	job tv16.job "${TAEHV[@]}" output="$T/out/tv16.y4m" format=y4m chunk_frames=16
	job bad.job "${TAEHV[@]/taehv_model=wan21/taehv_model=hunyuan15}" output="$T/out/bad.y4m" format=y4m
	for j in tv1.job tv16.job; do
		r=$(wait_job $j 120)
		[ "$r" = done ] || { cat "$T/spool/failed/$j.error" "$T/daemon.log" 2>/dev/null; die "$j: $r"; }
	done
	[ "$(wait_job bad.job)" = failed ] || die "wan21 weights for taehv_model hunyuan15 were not refused"
	cat "$T/spool/failed/bad.job.error"
	check "a contradicting taehv_model is refused, naming the weights" \
		grep -q "weights \"$T/taew2_1.safetensors\".*hunyuan15" "$T/spool/failed/bad.job.error"
	stop_daemon
	check "taehv: 61 frames in the y4m" [ "$(nframes "$T/out/tv1.y4m")" = 61 ]
	check "taehv: the result counts 61 frames of ${PX}x$PX" \
		[ "$(result tv1.job frames) $(result tv1.job width)x$(result tv1.job height)" = "61 ${PX}x$PX" ]
	check "taehv: chunk_frames = 16 stays 16 (its 64 frames fit a slot)" [ "$(result tv16.job chunk_frames)" = 16 ]
	check "taehv: chunk_frames = 1 and 16 give the same bytes" cmp "$T/out/tv1.y4m" "$T/out/tv16.y4m"
	y4m_raw "$T/out/tv1.y4m" "$T/tv1.yuv"
	check "taehv: y4m frames == the CPU decoder's own (egressd-mktaehv --decode)" cmp "$T/tv1.yuv" "$T/tv.ref.yuv"

	run_fault tvk 5 "${TAEHV[@]}" output="$T/out/tvk.y4m" format=y4m chunk_frames=1 && \
		check "taehv: producer killed after chunk 5 of 16: same bytes" cmp "$T/out/tv1.y4m" "$T/out/tvk.y4m"
	check "the successor decoded published chunks again, unpublished" \
		grep -q 'decoded again to rebuild the taehv decoder' "$T/daemon.log"
	run_fault tvp 1 "${TAEHV[@]}" output="$T/out/tvp" format=png chunk_frames=16 && {
		check "taehv png: chunk_frames = 16 cut to 10 so 40 frames fit a $SLOT slot" \
			[ "$(result tvp.job chunk_frames)" = 10 ]
		check "taehv png: 61 files" [ "$(ls "$T/out/tvp" | wc -l)" = 61 ]
		png_raw "$T/out/tvp" "$T/tvp.rgb"
		check "taehv png, producer killed after chunk 1 of 2: frames == the CPU decoder's" \
			cmp "$T/tvp.rgb" "$T/tv.ref.rgb"
	}
fi

# wan_vae: 5 latent frames -> 17
"$EGR_BIN/egressd-mkwanvae" --decode "$T/wan.safetensors" --latents "$T/wv.f32" --frames 5 --size ${S}x$S \
	-o "$T/wv.ref.f32" || die "mkwanvae --decode"
"$EGR_BIN/egressd-mkwanvae" --decode "$T/wan.safetensors" --latents "$T/wv_dn.f32" --frames 5 --size ${S}x$S \
	-o "$T/wvdn.ref.f32" || die "mkwanvae --decode (de-normalised)"
ref wan "$T/wv.ref.f32" 17 "$T/wv.ref" || die "wan_vae reference frames"
ref wan "$T/wvdn.ref.f32" 17 "$T/wvdn.ref" || die "wan_vae reference frames (de-normalised)"
start_daemon
job wv1.job "${WANVAE[@]}" output="$T/out/wv1.y4m" format=y4m chunk_frames=1
job wv5.job "${WANVAE[@]}" output="$T/out/wv5.y4m" format=y4m chunk_frames=5 wan_denormalize=no
job wvdn.job "${WANVAE[@]}" output="$T/out/wvdn" format=png chunk_frames=2 wan_denormalize=yes \
	vae_config="$T/config.json"
job wvbad.job "${WANVAE[@]}" output="$T/out/wvbad" format=png wan_denormalize=yes vae_config=/etc/hostname
for j in wv1.job wv5.job wvdn.job; do
	r=$(wait_job $j 120)
	[ "$r" = done ] || { cat "$T/spool/failed/$j.error" "$T/daemon.log" 2>/dev/null; die "$j: $r"; }
done
[ "$(wait_job wvbad.job)" = failed ] || die "a vae_config outside the roots was not refused"
cat "$T/spool/failed/wvbad.job.error"
check "vae_config goes through the roots, named" grep -q 'vae_config "/etc/hostname"' "$T/spool/failed/wvbad.job.error"
stop_daemon || fail "daemon exit status"
check "wan_vae: 17 frames" [ "$(nframes "$T/out/wv1.y4m")" = 17 ] && [ "$(result wv1.job frames)" = 17 ]
check "wan_vae: chunk_frames = 1 and 5 give the same bytes" cmp "$T/out/wv1.y4m" "$T/out/wv5.y4m"
y4m_raw "$T/out/wv1.y4m" "$T/wv1.yuv"
check "wan_vae: y4m frames == egressd-mkwanvae --decode" cmp "$T/wv1.yuv" "$T/wv.ref.yuv"
png_raw "$T/out/wvdn" "$T/wvdn.rgb"
check "wan_vae, wan_denormalize = yes with vae_config: png frames == the decode of de-normalised latents" \
	cmp "$T/wvdn.rgb" "$T/wvdn.ref.rgb"
[ -f "$WAN" ] || { [ $nfail = 0 ] && skip "wan_vae passed; real Wan 2.1 latents absent ($WAN)"; }
finish
