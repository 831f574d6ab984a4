#!/usr/bin/env bash
# Integration: format = null (the decoder benchmark's sink, like ffmpeg -f
# null) on the CPU backend: jobs with and without an output key, latent2rgb
# and TAESD, complete; the result's bytes are frames x the I420 frame size
# (what a y4m job copies, less the y4m header and tags); nothing is written
# anywhere (no output, no temporary, no journal), and a y4m job running
# beside them is unaffected.
# san: yes
. "$(dirname "$0")/lib.sh"

conf workers=2 slots=4 slot_bytes=1M
printf '[metrics]\ntextfile = %s\n' "$T/metrics/egressd.prom" >>"$T/egressd.ini"
mkdir -p "$T/metrics" "$T/out"
start_daemon
mklatents -o "$T/a.npy" -f 13 -c 4 -H 16 -W 24 --dtype f16 --seed 7
mklatents -o "$T/t.npy" -f 5 -c 4 -H 4 -W 6 --dtype f32 --seed 3
"$EGR_BIN/egressd-mktaesd" -o "$T/taesd.safetensors" --latent-channels 4 --seed 5 >/dev/null || die "egressd-mktaesd"
# everything outside the spool, the log and the metrics before the jobs
snapshot() { (cd "$T" && find . -path ./spool -prune -o -path ./metrics -prune -o -name daemon.log -o -print | sort); }
before=$(snapshot)

job n1.job latents="$T/a.npy" format=null chunk_frames=5
job n2.job latents="$T/a.npy" format=null output="$T/nowhere/n2.y4m" chunk_frames=4
job n3.job latents="$T/t.npy" format=null decoder=taesd weights="$T/taesd.safetensors" chunk_frames=2
job y.job latents="$T/a.npy" format=y4m output="$T/out/y.y4m" chunk_frames=3
for j in n1.job n2.job n3.job y.job; do
	r=$(wait_job $j 120)
	[ "$r" = done ] || { cat "$T/spool/failed/$j.error" 2>/dev/null; tail -n 30 "$T/daemon.log"; die "$j: $r"; }
done
ok "null jobs (no output key, an output key, taesd) and a y4m job beside them done"

# 192x128 I420: 36864 bytes a frame; taesd 48x32: 2304
check "n1: bytes = 13 x 192x128 I420" [ "$(result n1.job bytes)" = $((13 * 192 * 128 * 3 / 2)) ]
check "n2: bytes = 13 x 192x128 I420" [ "$(result n2.job bytes)" = $((13 * 192 * 128 * 3 / 2)) ]
check "n3 (taesd): bytes = 5 x 48x32 I420" [ "$(result n3.job bytes)" = $((5 * 48 * 32 * 3 / 2)) ]
check "n1: result says format = null" grep -qx 'format = null' "$T/spool/done/n1.job.result"
check "n1: result counts frames" [ "$(result n1.job frames)" = 13 ]
check "y4m job beside them: whole output" [ "$(result y.job bytes)" = "$(stat -c %s "$T/out/y.y4m")" ]

after=$(snapshot)
extra=$(comm -13 <(echo "$before") <(echo "$after") | grep -vx './out/y.y4m')
check "nothing written outside the spool (no output, no temporary)" [ -z "$extra" ]
[ -z "$extra" ] || echo "new files: $extra"
check "n2's ignored output directory was not created" [ ! -e "$T/nowhere" ]
check "no journal or temporary left in active/" [ -z "$(ls -A "$T/spool/active")" ]

stop_daemon || fail "daemon exit status"
# the workers counted the dropped bytes (metrics written at exit; the y4m
# job's count is its frames and FRAME tags, the header is the producer's)
want=$((2 * 13 * 192 * 128 * 3 / 2 + 5 * 48 * 32 * 3 / 2 + 13 * (6 + 192 * 128 * 3 / 2)))
got=$(awk '$1 == "egressd_bytes_written_total" { printf "%.0f", $2 }' "$T/metrics/egressd.prom")
check "egressd_bytes_written_total counts the dropped bytes ($got = $want)" [ "$got" = "$want" ]

# a bad combination still fails at parse time, naming the key
printf '[job]\nlatents = %s\nformat = null\noutput = relative.y4m\n' "$T/a.npy" >"$T/bad.job"
out=$("$EGR_BIN/egressd" --oneshot "$T/bad.job" -c "$T/egressd.ini" 2>&1)
check "null with a relative output is refused by the parser" grep -q "output: 'relative.y4m' is not an absolute path" <<<"$out"
finish
