#!/usr/bin/env bash
# Integration: a daemon that loses its lease while a child of it creates a
# job's temporary output (daemon/supervisor/lease.h).  The race it pins
# down: a reaper takes a stopped daemon's journalled temporary away before
# it exists; the daemon, continued, creates it, and its supervisor kills
# the child before the job can fail.  With fault points (test builds):
#  - daemon d (shared_spool = yes) claims the only job; its producer halts
#    after journalling the temporary's name, before creating it
#    (EGR_FAULT_CREATE_STOP), stopping d's supervisor first;
#  - daemon a reaps d's lease past its timeout (nothing to take away yet),
#    reruns the job and commits it;
#  - d's producer alone is continued: it creates the temporary under the
#    journalled name and halts again (EGR_FAULT_CREATED_STOP);
#  - d's supervisor is continued: it finds its lease lost, SIGKILLs its
#    children, exits 71 without a record, and removes that temporary (its
#    own) once they are dead;
#  - the job has one record, by a; its output equals a --oneshot reference;
#    no temporary or journal is left.
# san: yes
. "$(dirname "$0")/lib.sh"
LEASE=2
trap 'stop_shared_all; cleanup' EXIT

mkdir -p "$T/out" "$T/ref"
mklatents -o "$T/l.npy" -f 2 -c 4 -H 8 -W 8 --seed 5
conf workers=2 slots=4 slot_bytes=256K
printf '[job]\nlatents = %s\noutput = %s\nformat = y4m\n' "$T/l.npy" "$T/ref/r.y4m" >"$T/r.job"
"$EGR_BIN/egressd" --oneshot "$T/r.job" -c "$T/egressd.ini" >/dev/null 2>>"$T/oneshot.log" ||
	die "reference: $(tail -n 3 "$T/oneshot.log")"

shared_conf d $LEASE
shared_conf a $LEASE
EGR_FAULT_CREATE_STOP=1 EGR_FAULT_CREATED_STOP=1 EGR_FAULT_KILL_PARENT=1 start_shared d
job j1.job latents="$T/l.npy" output="$T/out/j1.y4m" format=y4m
state() { ps -o stat= -p "$1" | cut -c1; }
stopped=
for _ in $(seq 200); do
	grep -q "EGR_FAULT_CREATE_STOP=1: SIGSTOP" "$T/d.log" && [ "$(state "${SHARED_PID[d]}")" = T ] && { stopped=1; break; }
	sleep 0.05
done
check "d stopped before creating the temporary, its supervisor too" [ -n "$stopped" ]
check "  ... no temporary yet" [ -z "$(find "$T/out" -name '*egressd-tmp*')" ]

start_shared a
r=$(wait_job j1.job 60)
check "a reran the job after d's lease timed out (done)" [ "$r" = done ]
check "  ... its output equals the reference" cmp -s "$T/ref/r.y4m" "$T/out/j1.y4m"

kill -CONT $(kids_of "${SHARED_PID[d]}")	# the producer (the workers never stopped)
created=
for _ in $(seq 200); do
	grep -q "EGR_FAULT_CREATED_STOP=1: SIGSTOP" "$T/d.log" && [ -n "$(find "$T/out" -name '*egressd-tmp*')" ] &&
		{ created=1; break; }
	sleep 0.05
done
check "d's producer, continued, created its temporary and halted again" [ -n "$created" ]
kill -CONT "${SHARED_PID[d]}"
wait "${SHARED_PID[d]}"
rc=$?
unset 'SHARED_PID[d]'
check "d found its lease lost and stopped (exit 71)" [ $rc = 71 ]
check "  ... and removed its own temporary output" grep -q "removed partial output" "$T/d.log"
check "no temporary output left" [ -z "$(leftovers "$T/out")" ]
check "one record (done), written by a" [ "$(cat "$T"/[ad].log | grep -c 'job j1.job done')" = 1 ]
check "nothing in failed/" [ -z "$(ls -A "$T/spool/failed")" ]
kill -TERM "${SHARED_PID[a]}"; wait "${SHARED_PID[a]}"; unset 'SHARED_PID[a]'
check "a clean stop leaves active/ empty" [ -z "$(ls -A "$T/spool/active")" ]
finish
