#!/usr/bin/env bash
# Integration: several daemons on one spool ([daemon] shared_spool = yes;
# daemon/supervisor/lease.h, docs/SCALING.md).
#  - without shared_spool a second daemon is refused, and a shared one is
#    refused beside a daemon without it;
#  - three daemons (instances a, b, c) serve one spool: JOBS tiny jobs
#    (4x4 latents, 2 frames), daemon b SIGKILLed mid-run (its jobs requeued
#    by the others once its lease times out), daemon c SIGSTOPped past its
#    lease timeout and then continued (it must find its lease lost and stop
#    without committing or recording anything);
#  - every job ends with exactly one record, in done/ (none in failed/, no
#    second id), each "done" logged by one daemon only, every output
#    byte-identical to a --oneshot reference, no temporary left;
#  - a clean stop hands what is left back and leaves active/ empty.
# JOBS=n overrides the count (500).
# san: yes
. "$(dirname "$0")/lib.sh"
JOBS=${JOBS:-500}
LEASE=4
t_start=$(date +%s.%N)

trap 'stop_shared_all; cleanup' EXIT

mkdir -p "$T/out" "$T/ref"
for s in 1 2 3 4 5; do mklatents -o "$T/l$s.npy" -f 2 -c 4 -H 4 -W 4 --seed $s; done

# the references, by --oneshot (no spool involved)
conf workers=2 slots=4 slot_bytes=256K
for s in 1 2 3 4 5; do
	printf '[job]\nlatents = %s\noutput = %s\nformat = y4m\n' "$T/l$s.npy" "$T/ref/r$s.y4m" >"$T/r$s.job"
	"$EGR_BIN/egressd" --oneshot "$T/r$s.job" -c "$T/egressd.ini" >/dev/null 2>>"$T/oneshot.log" ||
		die "reference $s: $(tail -n 3 "$T/oneshot.log")"
done

# exclusion: plain after plain, shared beside plain, plain beside shared
start_daemon
"$EGR_BIN/egressd" -c "$T/egressd.ini" 2>"$T/second.log"
check "a second daemon without shared_spool is refused (exit 69)" [ $? = 69 ]
shared_conf x $LEASE
"$EGR_BIN/egressd" -c "$T/x.ini" 2>"$T/second.log"
rc=$?
check "a shared daemon beside one without shared_spool is refused (exit 69)" [ $rc = 69 ]
check "  ... saying why" grep -q "without shared_spool = yes" "$T/second.log"
stop_daemon
start_shared x
"$EGR_BIN/egressd" -c "$T/egressd.ini" 2>"$T/second.log"
check "a daemon without shared_spool beside shared ones is refused (exit 69)" [ $? = 69 ]
check "  ... saying why" grep -q "shared_spool = yes" "$T/second.log"
kill -TERM "${SHARED_PID[x]}"; wait "${SHARED_PID[x]}"; unset 'SHARED_PID[x]'
check "a clean stop removes the daemon's lease and directory" [ -z "$(ls -A "$T/spool/active")" ]

for n in a b c; do shared_conf $n $LEASE; done
for n in a b c; do start_shared $n; done
"$EGR_BIN/egressd" -c "$T/a.ini" 2>"$T/second.log"
check "a second daemon with the same identity is refused (exit 69)" [ $? = 69 ]

# JOBS jobs, submitted the way clients do (written in tmp/, renamed into incoming/), all at once
for i in $(seq -w 1 "$JOBS"); do
	s=$(( (10#$i % 5) + 1 ))
	printf '[job]\nlatents = %s\noutput = %s\nformat = y4m\n' "$T/l$s.npy" "$T/out/j$i.y4m" >"$T/spool/tmp/j$i.job"
done
t_submitted=$(date +%s.%N)
find "$T/spool/tmp" -name 'j*.job' -exec mv -t "$T/spool/incoming" {} +

ndone() { find "$T/spool/done" -name '*.result' | wc -l; }
# b: SIGKILLed while it holds jobs, once a tenth of them are done
for _ in $(seq 600); do [ "$(ndone)" -ge $((JOBS / 10)) ] && break; sleep 0.05; done
for _ in $(seq 200); do
	held=$(find "$T/spool/active/testhost.$INSTANCE-b" -maxdepth 1 -type f -name 'j*.job' 2>/dev/null | wc -l)
	[ "$held" -gt 0 ] && break; sleep 0.01
done
kill -KILL "${SHARED_PID[b]}"; wait "${SHARED_PID[b]}" 2>/dev/null; unset 'SHARED_PID[b]'
echo "b SIGKILLed holding $held jobs, $(ndone) done"
check "b held jobs when killed" [ "$held" -gt 0 ]

# c: stopped (supervisor and children) past its lease, then continued
for _ in $(seq 600); do [ "$(ndone)" -ge $((JOBS / 4)) ] && break; sleep 0.05; done
cpids="${SHARED_PID[c]} $(kids_of "${SHARED_PID[c]}")"
# stop it at an instant it holds jobs (between two of its jobs it may hold none: then let it go on, retry)
for _ in $(seq 200); do
	kill -STOP $cpids
	held=$(find "$T/spool/active/testhost.$INSTANCE-c" -maxdepth 1 -type f -name 'j*.job' | wc -l)
	[ "$held" -gt 0 ] && break
	kill -CONT $cpids; sleep 0.01
done
echo "c stopped holding $held jobs, $(ndone) done"
check "c held jobs when stopped" [ "$held" -gt 0 ]
one=$(find "$T/spool/active/testhost.$INSTANCE-c" -maxdepth 1 -type f -name 'j*.job' -printf '%f\n' | head -n 1)
"$EGR_BIN/egressctl" -c "$T/a.ini" list >"$T/list" 2>&1
check "egressctl list shows a job in c's directory ($one), no lease file" \
	bash -c "grep -q '^$one ' '$T/list' && ! grep -q 'lease' '$T/list'"
sleep $((LEASE * 2))
kill -CONT $cpids
wait "${SHARED_PID[c]}"
rc=$?
unset 'SHARED_PID[c]'
check "c found its lease lost and stopped (exit 71)" [ $rc = 71 ]
check "  ... logging it" grep -q "lost:" "$T/c.log"

for _ in $(seq 1200); do [ "$(ndone)" -ge "$JOBS" ] && break; sleep 0.05; done
t_done=$(date +%s.%N)
kill -TERM "${SHARED_PID[a]}"; wait "${SHARED_PID[a]}"; unset 'SHARED_PID[a]'

# every job exactly once
check "$JOBS records in done/" [ "$(ndone)" = "$JOBS" ]
check "every job file in done/ beside its record" [ "$(find "$T/spool/done" -name 'j*.job' | wc -l)" = "$JOBS" ]
check "no record in failed/" [ -z "$(ls -A "$T/spool/failed")" ]
check "no second id (name.2)" [ -z "$(find "$T/spool/done" -name '*.job.[0-9]*')" ]
check "nothing left in incoming/ or active/" [ -z "$(ls -A "$T/spool/incoming")$(ls -A "$T/spool/active")" ]
dup=$(cat "$T"/[abc].log | sed -n 's/.*job \(j[0-9]*\.job\) done:.*/\1/p' | sort | uniq -d | wc -l)
check "no job logged done by two daemons" [ "$dup" = 0 ]
bad=0
for i in $(seq -w 1 "$JOBS"); do
	s=$(( (10#$i % 5) + 1 ))
	cmp -s "$T/ref/r$s.y4m" "$T/out/j$i.y4m" || { bad=$((bad + 1)); echo "differs: j$i.y4m"; }
done
check "all $JOBS outputs byte-identical to the references" [ $bad = 0 ]
check "no temporary output left" [ -z "$(find "$T/out" -name '*egressd-tmp*')" ]
check "b's jobs were requeued after its lease timed out" grep -q "daemon testhost.$INSTANCE-b: lease .* not renewed" "$T/a.log" "$T/c.log"
check "c's jobs were requeued by a" grep -q "daemon testhost.$INSTANCE-c: lease .* not renewed" "$T/a.log"
grep -h "not renewed\|not committing\|no record written\|found done" "$T"/[abc].log | sed 's/^/  | /'
for n in a b c; do echo "daemon $n: $(grep -c ' done: ' "$T/$n.log") jobs done"; done
awk -v a="$t_start" -v b="$t_submitted" -v c="$t_done" -v n="$JOBS" \
	'BEGIN { printf "%d jobs, 3 daemons, 1 SIGKILL, 1 SIGSTOP past the lease: all done %.1f s after submission (test %.1f s)\n", n, c - b, c - a }'
finish
