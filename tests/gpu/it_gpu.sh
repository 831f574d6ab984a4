#!/usr/bin/env bash
# GPU integration: the real daemon (supervisor, CUDA producer, workers, spool)
# with backend = cuda, against the same jobs run with backend = cpu.
#  (a) latent2rgb, y4m and png, f16 and f32 latents, a partial last chunk:
#      output files byte-identical to the CPU backend's;
#  (b) a worker SIGKILLed mid-job (test-build hook) on the GPU path: the job
#      completes with byte-identical output;
#  (c) a job far longer than the slot pool, writes made slow: the producer
#      blocks on backpressure and the producer's and workers' resident
#      memory stays flat; output identical to an unthrottled GPU run;
#  (d) TAESD (random weights from egressd-mktaesd): GPU frames within 2 code
#      values of the CPU backend's (fp16 network vs the fp32 reference);
#  (e) pipeline = naive and every ablation: output identical to full;
#  (f) the stateful video decoders on the GPU (decoder = wan_vae, width 8;
#      decoder = taehv, taehv_model = wan21; seeded weights): frames within
#      a few codes of the CPU backend's (bf16 vs fp32), and a producer
#      SIGKILLed after its 2nd chunk: the resumed job replays the published
#      chunks and its output is byte-identical to an uninterrupted GPU run.
# Run by `make test-gpu` (tests/run.sh --gpu) with EGR_BIN=build/t; skipped
# (77) where `nvidia-smi -L` fails.
. "$(dirname "$0")/../it/lib.sh"
nvidia-smi -L >/dev/null 2>&1 || skip "no NVIDIA GPU (nvidia-smi -L failed)"
need_numpy
BE=cuda
MKTAESD=
for d in "$EGR_BIN" "$TOP/build/t" "$TOP/build"; do
	[ -x "$d/egressd-mktaesd" ] && { MKTAESD=$d/egressd-mktaesd; break; }
done
mkdir -p "$T/out" "$T/ref"

# daemon_jobs BACKEND [PIPELINE] [ENV...] -- NAME KEY=VALUE... [-- NAME ...]:
# start a daemon on a fresh config, queue the jobs, wait for all of them,
# stop it.  Fails (and shows the log) on any job that did not finish.
daemon_jobs() {
	local be=$1 pl=full; shift
	[ "$1" != -- ] && [ "${1#*=}" = "$1" ] && { pl=$1; shift; }
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	conf backend="$be" pipeline="$pl" workers=3 slots=4 slot_bytes=4M
	env "${envs[@]}" "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
	DAEMON_PID=$!
	local names=() args=()
	while [ $# -gt 0 ]; do
		args=()
		local name=$1; shift
		while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
		[ $# -gt 0 ] && shift
		for _ in $(seq 100); do [ -d "$T/spool/incoming" ] && break; sleep 0.05; done
		job "$name" "${args[@]}"
		names+=("$name")
	done
	local n r bad=0
	for n in "${names[@]}"; do
		r=$(wait_job "$n" 90)
		if [ "$r" != done ]; then
			fail "$be/$pl: job $n: $r: $(cat "$T/spool/failed/$n.error" 2>/dev/null)"
			bad=1
		fi
	done
	stop_daemon
	[ $bad = 0 ] || { tail -n 40 "$T/daemon.log"; return 1; }
}

# y4m_cmp A B MAXDIFF: same header and frame count, every byte within
# MAXDIFF code values; prints the histogram of differences.  The reference
# (A) must not be flat, or the comparison would prove nothing.
y4m_cmp() {
	python3 - "$@" <<'PY'
import sys
import numpy as np

def frames(path):
    raw = open(path, "rb").read()
    nl = raw.index(b"\n")
    hdr = raw[:nl].decode()
    w = int([t for t in hdr.split() if t[0] == "W"][0][1:])
    h = int([t for t in hdr.split() if t[0] == "H"][0][1:])
    fb = w * h * 3 // 2
    body = raw[nl + 1:]
    if len(body) % (6 + fb):
        sys.exit("%s: %d body bytes is not a whole number of %d-byte frames" % (path, len(body), 6 + fb))
    a = np.frombuffer(body, np.uint8).reshape(-1, 6 + fb)
    if (a[:, :6] != np.frombuffer(b"FRAME\n", np.uint8)).any():
        sys.exit("%s: a frame does not start with FRAME\\n" % path)
    return hdr, a[:, 6:]

ha, a = frames(sys.argv[1])
hb, b = frames(sys.argv[2])
lim = int(sys.argv[3])
if ha != hb:
    sys.exit("headers differ: %r vs %r" % (ha, hb))
if a.shape != b.shape:
    sys.exit("frame counts differ: %d vs %d" % (a.shape[0], b.shape[0]))
d = np.abs(a.astype(np.int16) - b.astype(np.int16))
hist = np.bincount(d.ravel(), minlength=lim + 2)
print("%d frames %s; |diff| histogram: %s; max %d" % (a.shape[0], ha.split()[1][1:] + "x" + ha.split()[2][1:],
      ", ".join("%d: %.4f%%" % (k, 100.0 * v / d.size) for k, v in enumerate(hist) if v), d.max()))
if len(np.unique(a)) < 10:
    sys.exit("reference has only %d distinct byte values: too flat to compare" % len(np.unique(a)))
sys.exit(0 if d.max() <= lim else 1)
PY
}

# ---- (a) latent2rgb, GPU == CPU byte for byte ----
mklatents -o "$T/a16.npy" -f 13 -c 4 -H 24 -W 40 --dtype f16 --seed 21
mklatents -o "$T/a32.npy" -f 7 -c 4 -H 9 -W 14 --dtype f32 --seed 22 --pattern noise
jobs_a() {	# OUTDIR
	echo a16y.job latents="$T/a16.npy" output="$1/a16.y4m" format=y4m chunk_frames=5 --
	echo a16p.job latents="$T/a16.npy" output="$1/a16p" format=png chunk_frames=4 --
	echo a32y.job latents="$T/a32.npy" output="$1/a32.y4m" format=y4m chunk_frames=3 \
		l2r_weights=0.5,0.1,-0.2,0.3,0.5,0.1,-0.4,0.2,0.5,0.1,-0.1,0.2 l2r_bias=0.05,-0.1,0.02 --
	echo a32p.job latents="$T/a32.npy" output="$1/a32p" format=png chunk_frames=2
}
# shellcheck disable=SC2046  # word splitting of the job list is the point
daemon_jobs cpu -- $(jobs_a "$T/ref") || die "CPU reference jobs"
rm -rf "$T/spool"
# shellcheck disable=SC2046
daemon_jobs $BE -- $(jobs_a "$T/out") || die "GPU jobs"
check "(a) backend recorded as $BE" [ "$(result a16y.job backend)" = $BE ]
check "(a) result has GPU stats (gpu_kernel_util, d2h_gbps)" \
	grep -q '^d2h_gbps = ' "$T/spool/done/a16y.job.result"
check "(a) y4m f16: GPU == CPU" cmp "$T/ref/a16.y4m" "$T/out/a16.y4m"
check "(a) y4m f32, custom weights: GPU == CPU" cmp "$T/ref/a32.y4m" "$T/out/a32.y4m"
check "(a) png f16: GPU == CPU" diff -r "$T/ref/a16p" "$T/out/a16p"
check "(a) png f32: GPU == CPU" diff -r "$T/ref/a32p" "$T/out/a32p"
check "(a) png frame count" [ "$(ls "$T/out/a16p" | wc -l)" = 13 ]

# ---- (e) naive and every ablation == full (== CPU) ----
for pl in naive no-copy-stream pageable single-buffer one-worker; do
	rm -rf "$T/spool" "$T/out/e"; mkdir -p "$T/out/e"
	if [ $pl = naive ]; then	# the naive loop writes y4m only
		daemon_jobs $BE $pl -- e1.job latents="$T/a16.npy" output="$T/out/e/a16.y4m" format=y4m chunk_frames=5 \
			-- e2.job latents="$T/a32.npy" output="$T/out/e/a32.y4m" format=y4m chunk_frames=3 \
			l2r_weights=0.5,0.1,-0.2,0.3,0.5,0.1,-0.4,0.2,0.5,0.1,-0.1,0.2 l2r_bias=0.05,-0.1,0.02 ||
			continue
	else
		# shellcheck disable=SC2046
		daemon_jobs $BE $pl -- $(jobs_a "$T/out/e" | sed 's/^a/e/') || continue
		check "(e) $pl: png f16 == full" diff -r "$T/ref/a16p" "$T/out/e/a16p"
		check "(e) $pl: png f32 == full" diff -r "$T/ref/a32p" "$T/out/e/a32p"
	fi
	check "(e) $pl: y4m f16 == full" cmp "$T/ref/a16.y4m" "$T/out/e/a16.y4m"
	check "(e) $pl: y4m f32 == full" cmp "$T/ref/a32.y4m" "$T/out/e/a32.y4m"
done

# ---- (b) a worker SIGKILLed on the GPU path ----
rm -rf "$T/spool"
mklatents -o "$T/b.npy" -f 24 -c 4 -H 16 -W 24 --seed 23
daemon_jobs cpu -- bref.job latents="$T/b.npy" output="$T/ref/b.y4m" format=y4m chunk_frames=1 \
	-- brefp.job latents="$T/b.npy" output="$T/ref/bp" format=png chunk_frames=3 || die "CPU reference (b)"
conf backend=$BE workers=2 slots=3 slot_bytes=1M
gpu_fault() {	# NAME FORMAT ENV...
	local name=$1 fmt=$2; shift 2
	local out=$T/out/$name.y4m ref=$T/ref/b.y4m ck=1
	[ "$fmt" = png ] && { out=$T/out/$name; ref=$T/ref/bp; ck=3; }
	rm -f "$T/once"
	env "$@" EGR_FAULT_KILL_ONCE="$T/once" "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
	DAEMON_PID=$!
	for _ in $(seq 100); do [ -d "$T/spool/incoming" ] && break; sleep 0.05; done
	job "$name.job" latents="$T/b.npy" output="$out" format="$fmt" chunk_frames=$ck
	local r; r=$(wait_job "$name.job" 90)
	stop_daemon
	[ "$r" = done ] || { fail "(b) $name: job $r"; return; }
	[ -e "$T/once" ] || { fail "(b) $name: the fault did not fire (not a test build?)"; return; }
	check "(b) $name: backend $BE" [ "$(result "$name.job" backend)" = $BE ]
	if [ "$fmt" = png ]; then
		check "(b) $name: png output identical" diff -r "$ref" "$out"
	else
		check "(b) $name: y4m output identical" cmp "$ref" "$out"
	fi
	rm -rf "$out"
}
gpu_fault gk-mid-2 y4m EGR_FAULT_KILL_AT=2 EGR_FAULT_KILL_PHASE=mid
gpu_fault gk-written-2 y4m EGR_FAULT_KILL_AT=2 EGR_FAULT_KILL_PHASE=written
gpu_fault gk-png-mid-2 png EGR_FAULT_KILL_AT=2 EGR_FAULT_KILL_PHASE=mid
check "(b) the worker deaths were seen and slots given back" grep -q 'given back' "$T/daemon.log"

# ---- (c) a job far longer than the slot pool: flat memory, backpressure ----
# 3000 frames of 512x512 y4m (384 KiB each), chunk 8 = 3 MiB: 375 chunks
# through 4 slots.  Writes delayed 50 ms per slot with 2 workers: ~10 s.
rm -rf "$T/spool"
mklatents -o "$T/c.npy" -f 3000 -c 4 -H 64 -W 64 --seed 24
conf backend=$BE workers=2 slots=4 slot_bytes=3M
start_daemon
job cfast.job latents="$T/c.npy" output="$T/out/cfast.y4m" format=y4m chunk_frames=8
[ "$(wait_job cfast.job 90)" = done ] || die "(c) unthrottled GPU run"
stop_daemon
EGR_FAULT_WRITE_DELAY_MS=50 "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 100); do [ -d "$T/spool/incoming" ] && break; sleep 0.05; done
job cslow.job latents="$T/c.npy" output="$T/out/cslow.y4m" format=y4m chunk_frames=8
for _ in $(seq 200); do [ -e "$T/spool/active/cslow.job" ] && break; sleep 0.02; done
prod=$(pgrep -P "$DAEMON_PID" -f egressd-producer)
wks=$(pgrep -P "$DAEMON_PID" -f egressd-worker | tr '\n' ' ')
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
samples=()	# "producer_kB worker1_kB worker2_kB"
t_end=$((SECONDS + 60))
while [ ! -e "$T/spool/done/cslow.job.result" ] && [ ! -e "$T/spool/failed/cslow.job.error" ] &&
	[ $SECONDS -lt $t_end ]; do
	line=$(rss "$prod")
	for w in $wks; do line="$line $(rss "$w")"; done
	samples+=("$line")
	sleep 0.25
done
r=$(wait_job cslow.job 5)
stop_daemon
check "(c) slow job done within 60 s" [ "$r" = done ]
check "(c) no slot overwritten: output identical to the unthrottled run" cmp "$T/out/cfast.y4m" "$T/out/cslow.y4m"
check "(c) output size: 3000 frames" [ "$(stat -c %s "$T/out/cslow.y4m")" = \
	$(($(head -1 "$T/out/cslow.y4m" | wc -c) + 3000 * (6 + 512 * 512 * 3 / 2))) ]
blocked=$(result cslow.job producer_blocked_s)
wall=$(result cslow.job wall_s)
echo "(c) producer blocked ${blocked}s of ${wall}s; backend $(result cslow.job backend)"
check "(c) producer blocked on backpressure (producer_blocked_s > 0)" awk -v b="${blocked:-0}" 'BEGIN { exit !(b > 0) }'
check "(c) backpressure reached the GPU: blocked most of the job" \
	awk -v b="${blocked:-0}" -v w="${wall:-1}" 'BEGIN { exit !(b > 0.5 * w) }'
n=${#samples[@]}
echo "(c) $n RSS samples (kB: producer workers...): first ${samples[0]:-}; last ${samples[$((n > 0 ? n - 1 : 0))]:-}"
if [ "$n" -ge 12 ]; then
	# early: 1 s in (CUDA context, registered slots and first touches done);
	# late: just before the end
	read -ra early <<<"${samples[4]}"
	read -ra late <<<"${samples[$((n - 2))]}"
	procs=(producer)
	for w in $wks; do procs+=("worker-$w"); done
	for i in "${!early[@]}"; do
		d=$((late[i] - early[i]))
		check "(c) ${procs[$i]} RSS flat: ${early[$i]} kB early, ${late[$i]} kB late (+$d kB < 16 MB)" \
			[ $d -lt 16384 ]
	done
else
	fail "(c) too few RSS samples ($n): the job ended too soon to tell"
fi
rm -f "$T/out/cfast.y4m" "$T/out/cslow.y4m"

# ---- (d) TAESD: GPU within 2 code values of the CPU's fp32 reference ----
if [ -z "$MKTAESD" ]; then
	fail "(d) egressd-mktaesd not found in $EGR_BIN, build/t or build"
else
	rm -rf "$T/spool"
	"$MKTAESD" -o "$T/w4.safetensors" --latent-channels 4 --seed 31 >/dev/null || die "mktaesd 4"
	"$MKTAESD" -o "$T/w16.safetensors" --latent-channels 16 --seed 32 --dtype f32 >/dev/null || die "mktaesd 16"
	mklatents -o "$T/d4.npy" -f 5 -c 4 -H 8 -W 12 --dtype f16 --seed 33
	mklatents -o "$T/d16.npy" -f 2 -c 16 -H 7 -W 5 --dtype f32 --seed 34
	jobs_d() {	# OUTDIR
		echo d4.job latents="$T/d4.npy" output="$1/d4.y4m" format=y4m decoder=taesd \
			weights="$T/w4.safetensors" chunk_frames=2 --
		echo d16.job latents="$T/d16.npy" output="$1/d16.y4m" format=y4m decoder=taesd \
			weights="$T/w16.safetensors" chunk_frames=2
	}
	# shellcheck disable=SC2046
	if daemon_jobs cpu -- $(jobs_d "$T/ref"); then
		rm -rf "$T/spool"
		# shellcheck disable=SC2046
		if daemon_jobs $BE -- $(jobs_d "$T/out"); then
			check "(d) taesd backend recorded as $BE" [ "$(result d4.job backend)" = $BE ]
			check "(d) taesd C=4 f16 64x96: GPU within 2 codes of CPU" y4m_cmp "$T/ref/d4.y4m" "$T/out/d4.y4m" 2
			check "(d) taesd C=16 f32 40x56: GPU within 2 codes of CPU" \
				y4m_cmp "$T/ref/d16.y4m" "$T/out/d16.y4m" 2
		fi
	else
		fail "(d) CPU taesd reference jobs"
	fi
fi
# ---- (f) wan_vae and taehv on the GPU: near the CPU's; a producer kill changes no byte ----
rm -rf "$T/spool"
"$EGR_BIN/egressd-mkwanvae" -o "$T/wan.safetensors" --dim 8 --seed 41 >/dev/null || die "mkwanvae"
"$EGR_BIN/egressd-mktaehv" -o "$T/taehv.safetensors" -m wan21 --seed 42 >/dev/null || die "mktaehv"
python3 - "$T" <<'PY' || die "video latents"
import sys
import numpy as np
r = np.random.default_rng(43)
np.save(sys.argv[1] + "/fw.npy", r.standard_normal((1, 16, 6, 6, 8)).astype(np.float16))
np.save(sys.argv[1] + "/ft.npy", r.standard_normal((1, 16, 7, 8, 8)).astype(np.float32))
PY
jobs_f() {	# OUTDIR
	echo fw.job latents="$T/fw.npy" output="$1/fw.y4m" format=y4m decoder=wan_vae weights="$T/wan.safetensors" \
		chunk_frames=2 --
	echo ft.job latents="$T/ft.npy" output="$1/ft.y4m" format=y4m decoder=taehv taehv_model=wan21 \
		weights="$T/taehv.safetensors" chunk_frames=2
}
mkdir -p "$T/fref" "$T/fgpu" "$T/fkill"
# shellcheck disable=SC2046
if daemon_jobs cpu -- $(jobs_f "$T/fref") && rm -rf "$T/spool" && daemon_jobs $BE -- $(jobs_f "$T/fgpu"); then
	check "(f) wan_vae backend recorded as $BE" [ "$(result fw.job backend)" = $BE ]
	check "(f) wan_vae 6 latent frames -> 21 frames 64x48: GPU within 6 codes of CPU" \
		y4m_cmp "$T/fref/fw.y4m" "$T/fgpu/fw.y4m" 6
	check "(f) taehv wan21 7 latent frames -> 25 frames 64x64: GPU within 6 codes of CPU" \
		y4m_cmp "$T/fref/ft.y4m" "$T/fgpu/ft.y4m" 6
	rm -rf "$T/spool" "$T/once"
	# shellcheck disable=SC2046
	if daemon_jobs $BE EGR_FAULT_PRODUCER_KILL_AT=2 EGR_FAULT_KILL_ONCE="$T/once" -- $(jobs_f "$T/fkill"); then
		check "(f) the producer was killed mid-job" [ -e "$T/once" ]
		check "(f) wan_vae after a producer kill: byte-identical to the uninterrupted GPU run" \
			cmp "$T/fgpu/fw.y4m" "$T/fkill/fw.y4m"
		check "(f) taehv after a producer kill: byte-identical to the uninterrupted GPU run" \
			cmp "$T/fgpu/ft.y4m" "$T/fkill/ft.y4m"
	fi
else
	fail "(f) video decoder jobs"
fi
finish
