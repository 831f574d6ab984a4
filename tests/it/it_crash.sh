#!/usr/bin/env bash
# Integration: processes die and nothing is lost.
#  - a worker SIGKILLs itself at several points of its N-th slot (right after
#    taking it, half-way through writing it, after writing it but before
#    releasing it): the job completes with byte-identical output;
#  - workers SIGKILLed from outside at random moments while writes are slow;
#  - the producer SIGKILLed mid-job: its successor resumes the job;
#  - the supervisor SIGKILLed mid-job: its children die with it, and a new
#    supervisor reruns what was left in active/.
# san: yes
. "$(dirname "$0")/lib.sh"
conf workers=2 slots=3 slot_bytes=256K
mklatents -o "$T/l.npy" -f 24 -c 4 -H 8 -W 16 --seed 11
mkdir -p "$T/out"

# the clean reference run
start_daemon
job ref.job latents="$T/l.npy" output="$T/out/ref.y4m" format=y4m chunk_frames=2
[ "$(wait_job ref.job)" = done ] || die "reference job"
job refp.job latents="$T/l.npy" output="$T/out/refp" format=png chunk_frames=3
[ "$(wait_job refp.job)" = done ] || die "reference png job"
stop_daemon

run_with_fault() {	# NAME FORMAT ENV...
	local name=$1 fmt=$2; shift 2
	rm -f "$T/once"
	env "$@" EGR_FAULT_KILL_ONCE="$T/once" "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
	DAEMON_PID=$!
	sleep 0.2
	local out=$T/out/$name.y4m
	[ "$fmt" = png ] && out=$T/out/$name
	job "$name.job" latents="$T/l.npy" output="$out" format=$fmt chunk_frames=$([ "$fmt" = png ] && echo 3 || echo 1)
	local r; r=$(wait_job "$name.job" 120)
	stop_daemon
	[ "$r" = done ] || { fail "$name: job $r"; return; }
	[ -e "$T/once" ] || { fail "$name: the fault did not fire"; return; }
	if [ "$fmt" = png ]; then
		check "$name: png output identical" diff -r "$T/out/refp" "$out"
	else
		check "$name: y4m output identical" cmp "$T/out/ref.y4m" "$out"
	fi
	rm -rf "$out"
}

for phase in take mid written; do
	for at in 1 2 3; do
		run_with_fault "wk-$phase-$at" y4m EGR_FAULT_KILL_AT=$at EGR_FAULT_KILL_PHASE=$phase
	done
done
run_with_fault wk-png-mid png EGR_FAULT_KILL_AT=2 EGR_FAULT_KILL_PHASE=mid
check "the worker deaths were seen and slots given back" grep -q 'given back' "$T/daemon.log"

for at in 1 5; do
	run_with_fault "pr-$at" y4m EGR_FAULT_PRODUCER_KILL_AT=$at
done
grep -h '^producer_restarts' "$T"/spool/done/pr-*.job.result | sort | uniq -c

# workers killed from outside, at random moments, while writes are slow
EGR_FAULT_WRITE_DELAY_MS=30 "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
DAEMON_PID=$!
sleep 0.2
job rnd.job latents="$T/l.npy" output="$T/out/rnd.y4m" format=y4m chunk_frames=1
kills=0
for i in $(seq 8); do
	sleep 0.0$((RANDOM % 9 + 1))
	w=$(pgrep -P "$DAEMON_PID" -f egressd-worker | shuf -n 1)
	[ -n "$w" ] && kill -KILL "$w" && kills=$((kills + 1))
done
r=$(wait_job rnd.job 120)
stop_daemon
echo "killed $kills workers"
check "random worker kills: job done" [ "$r" = done ]
check "random worker kills: output identical" cmp "$T/out/ref.y4m" "$T/out/rnd.y4m"

# supervisor SIGKILLed mid-job: children follow it; a new one reruns active/
EGR_FAULT_WRITE_DELAY_MS=50 "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
DAEMON_PID=$!
sleep 0.2
job sup.job latents="$T/l.npy" output="$T/out/sup.y4m" format=y4m chunk_frames=1
for _ in $(seq 100); do [ -e "$T/spool/active/sup.job" ] && break; sleep 0.02; done
sleep 0.3
kids=$(kids_of "$DAEMON_PID")
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null; DAEMON_PID=
sleep 0.3
alive=0
# a zombie waiting for a (container) init to reap it is dead all the same
for k in $kids; do
	st=$(awk '/^State/ { print $2 }' "/proc/$k/status" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && alive=$((alive + 1))
done
check "children died with the supervisor" [ $alive = 0 ]
check "job left in active/" [ -e "$T/spool/active/sup.job" ]
check "no output under the final name yet" [ ! -e "$T/out/sup.y4m" ]
start_daemon
check "rerun after restart: done" [ "$(wait_job sup.job 120)" = done ]
check "rerun output identical" cmp "$T/out/ref.y4m" "$T/out/sup.y4m"
check "stale shared memory was replaced" grep -q 'replacing stale shared memory' "$T/daemon.log"
stop_daemon
finish
