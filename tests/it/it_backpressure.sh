#!/usr/bin/env bash
# Integration: with writes made slow (test-build fault hook), the producer
# blocks on the free-slot count instead of running ahead: no slot is
# overwritten (output identical to a fast run), the producer reports the time
# it spent blocked, and resident memory stays flat over a job far longer
# than the slot pool.
. "$(dirname "$0")/lib.sh"
conf workers=2 slots=3 slot_bytes=256K
mklatents -o "$T/l.npy" -f 120 -c 4 -H 8 -W 16 --seed 5
mkdir -p "$T/out"
start_daemon
job fast.job latents="$T/l.npy" output="$T/out/fast.y4m" format=y4m chunk_frames=1
[ "$(wait_job fast.job)" = done ] || die "fast run"
stop_daemon

EGR_FAULT_WRITE_DELAY_MS=40 "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
DAEMON_PID=$!
sleep 0.2
job slow.job latents="$T/l.npy" output="$T/out/slow.y4m" format=y4m chunk_frames=1
for _ in $(seq 100); do [ -e "$T/spool/active/slow.job" ] && break; sleep 0.02; done
prod=$(pgrep -P "$DAEMON_PID" -f egressd-producer)
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
samples=()
while [ ! -e "$T/spool/done/slow.job.result" ] && [ ! -e "$T/spool/failed/slow.job.error" ]; do
	samples+=("$(rss "$prod")")
	sleep 0.2
done
r=$(wait_job slow.job 5)
stop_daemon
check "slow job done" [ "$r" = done ]
check "no slot overwritten: output identical to the fast run" cmp "$T/out/fast.y4m" "$T/out/slow.y4m"
blocked=$(result slow.job producer_blocked_s)
wall=$(result slow.job wall_s)
echo "producer blocked ${blocked}s of ${wall}s; RSS samples (kB): ${samples[*]}"
check "producer blocked on backpressure most of the job" awk -v b="$blocked" -v w="$wall" 'BEGIN { exit !(b > 0.5 * w) }'
n=${#samples[@]}
if [ "$n" -ge 6 ]; then
	early=${samples[2]} late=${samples[$((n - 2))]}
	check "producer RSS flat (${early} kB early, ${late} kB late)" [ $((late - early)) -lt 2048 ]
else
	fail "too few RSS samples ($n)"
fi
finish
