#!/usr/bin/env bash
# Integration: a job's lifecycle killed at its worst moments (issue 14), with
# the test build's kill points (daemon/base/fault.h); after a restart the job
# ends where it belongs, its output byte-identical, nothing left behind:
#  - the supervisor killed after the output rename, before the job's record
#    (the job is DONE in the ring), and inside the result's atomic write;
#  - the producer killed inside fallocate (an empty temp output), alone or
#    with the whole daemon; a PNG finalizer killed after its rename, with the
#    whole daemon (its marker is in the output);
#  - the supervisor killed after a failed job's record, before its move;
#  - a worker SIGKILLed 15 times in a row: respawned each time, no give-up;
#  - a file-size limit (ulimit -f): the job fails with one line, the daemon
#    serves the next job; a ring over the limit: the daemon says so and stops;
#  - --oneshot killed by SIGKILL (its segment and temp output are reclaimed by
#    the next start) and stopped by SIGTERM (nothing left).
# san: yes
. "$(dirname "$0")/lib.sh"
conf workers=2 slots=4 slot_bytes=128K
mklatents -o "$T/l.npy" -f 300 -c 4 -H 8 -W 16 --seed 5
mklatents -o "$T/small.npy" -f 40 -c 4 -H 8 -W 16 --seed 6
mkdir -p "$T/out" "$T/ref"

outp() { [ "$1" = png ] && echo "$2" || echo "$2.y4m"; }	# FORMAT BASE
jobf() {	# NAME FORMAT OUTBASE [LATENTS]: submit
	job "$1" latents="${4:-$T/l.npy}" output="$(outp "$2" "$3")" format="$2" chunk_frames=4
}
start_daemon
jobf ref-y4m.job y4m "$T/ref/r"
jobf ref-png.job png "$T/ref/r"
[ "$(wait_job ref-y4m.job)" = done ] && [ "$(wait_job ref-png.job)" = done ] || die "reference jobs"
stop_daemon

# wait_dead PID [timeout_s]
wait_dead() {
	for _ in $(seq $((${2:-60} * 20))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
	return 1
}
same_as_ref() {	# FORMAT OUT
	if [ "$1" = png ]; then diff -r "$T/ref/r" "$2"; else cmp "$T/ref/r.y4m" "$2"; fi
}
nothing_left() {	# WHAT: no temporary output, marker, half-written record or journal
	local left; left=$(leftovers "$T/out" "$T/spool")
	check "$1: no temporary file left" [ -z "$left" ]
	[ -z "$left" ] || { echo "$left"; echo "$left" | xargs rm -rf; }	# not again in the next case
}

# supervisor_fault NAME FORMAT ENV...: the daemon dies at the fault point;
# restarted, it must finish the job as done
supervisor_fault() {
	local name=$1 fmt=$2; shift 2
	local out; out=$(outp "$fmt" "$T/out/$name")
	rm -f "$T/once"
	env "$@" EGR_FAULT_KILL_ONCE="$T/once" "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
	DAEMON_PID=$!
	jobf "$name.job" "$fmt" "$T/out/$name"
	wait_dead "$DAEMON_PID" || die "$name: the daemon did not die at the fault point"
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	check "$name: the fault fired" [ -e "$T/once" ]
	check "$name: the job was left in active/" [ -e "$T/spool/active/$name.job" ]
	check "$name: the killed run left files for the restart to settle" [ -n "$(leftovers "$T/out" "$T/spool")" ]
	start_daemon
	check "$name: done after the restart" [ "$(wait_job "$name.job")" = done ]
	stop_daemon
	check "$name: output identical to the clean run" same_as_ref "$fmt" "$out"
	check "$name: not in failed/" [ ! -e "$T/spool/failed/$name.job.error" ]
	nothing_left "$name"
}

for fmt in y4m png; do
	supervisor_fault "sup-finish-$fmt" $fmt EGR_FAULT_SUPERVISOR_KILL=finish
	check "sup-finish-$fmt: recovered, not rerun" grep -q '^recovered = yes' \
		"$T/spool/done/sup-finish-$fmt.job.result"
	supervisor_fault "result-write-$fmt" $fmt EGR_FAULT_ATOMIC_KILL=.result
done
check "the killed result write left its .tmp (swept at start)" grep -q 'result.tmp", left by a killed run' "$T/daemon.log"
# a png finalizer killed after the rename, with the whole daemon: its marker is in the output
supervisor_fault finalize-png png EGR_FAULT_FINALIZE_KILL=1 EGR_FAULT_KILL_PARENT=1
supervisor_fault fallocate-daemon y4m EGR_FAULT_FALLOCATE_KILL=1 EGR_FAULT_KILL_PARENT=1

# the producer alone killed inside fallocate: its successor resumes the job
rm -f "$T/once"
EGR_FAULT_FALLOCATE_KILL=1 EGR_FAULT_KILL_ONCE="$T/once" "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
DAEMON_PID=$!
jobf fallocate.job y4m "$T/out/fallocate"
check "fallocate: done" [ "$(wait_job fallocate.job)" = done ]
stop_daemon
check "fallocate: the fault fired" [ -e "$T/once" ]
check "fallocate: output identical" same_as_ref y4m "$T/out/fallocate.y4m"
nothing_left fallocate

# a failed job's record written, the supervisor killed before the job moved:
# the record on disk is the decision, completed at the restart
rm -f "$T/once"
EGR_FAULT_ATOMIC_KILL_AFTER=.error EGR_FAULT_KILL_ONCE="$T/once" "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
DAEMON_PID=$!
jobf error-record.job y4m "$T/nodir/x"
wait_dead "$DAEMON_PID" || die "error-record: the daemon did not die"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
check "error-record: the fault fired" [ -e "$T/once" ]
mkdir -p "$T/nodir"	# a rerun would now succeed: it must not happen
start_daemon
check "error-record: failed after the restart" [ "$(wait_job error-record.job)" = failed ]
stop_daemon
check "error-record: not rerun" [ ! -e "$T/nodir/x.y4m" ]
check "error-record: no record in done/" [ ! -e "$T/spool/done/error-record.job.result" ]
nothing_left error-record

# kills from outside are no crash loop: 15 of one worker in a row neither
# slow its respawn (each within 1 s) nor stop the daemon
start_daemon
kills=0
for i in $(seq 15); do
	w=
	for _ in $(seq 50); do
		w=$(pgrep -P "$DAEMON_PID" -f 'egressd-worker .*--index 0$')
		[ -n "$w" ] && break
		sleep 0.02
	done
	[ -n "$w" ] || break
	kill -KILL "$w" && kills=$((kills + 1))
	while kill -0 "$w" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$w/stat" 2>/dev/null)" != Z ]; do sleep 0.01; done
done
check "outside kills: worker 0 respawned within 1 s after each of 15 kills" [ $kills = 15 ]
jobf outside.job y4m "$T/out/outside" "$T/small.npy"
check "outside kills: the daemon still serves jobs" [ "$(wait_job outside.job)" = done ]
check "outside kills: no give-up" bash -c "! grep -q 'giving up' '$T/daemon.log'"
stop_daemon
rm -f "$T/out/outside.y4m"

# a file-size limit: an error naming it, not a signal; the daemon carries on
# (2 MiB: the ring, 4 x 128K, fits; a 300-frame y4m of 3.6 MB does not)
(ulimit -f 2048 && exec "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>"$T/fsize.log") &
DAEMON_PID=$!
for _ in $(seq 100); do [ -e "/dev/shm/$INSTANCE" ] && break; sleep 0.05; done
jobf fsize.job y4m "$T/out/fsize"
check "fsize: the job failed" [ "$(wait_job fsize.job)" = failed ]
check "fsize: one line naming the file size limit" \
	bash -c "[ \$(wc -l <'$T/spool/failed/fsize.job.error') = 1 ] && grep -q 'file size limit' '$T/spool/failed/fsize.job.error'"
check "fsize: no output" [ ! -e "$T/out/fsize.y4m" ]
nothing_left fsize
jobf fsize-next.job y4m "$T/out/fsize-next" "$T/small.npy"
check "fsize: the next job is served" [ "$(wait_job fsize-next.job)" = done ]
check "fsize: no process died of a signal" bash -c "! grep -q 'killed by signal' '$T/fsize.log'"
stop_daemon
rm -f "$T/out/fsize-next.y4m"
# a limit the ring itself exceeds: the daemon does not start, and says why
(ulimit -f 256 && exec "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>"$T/fsize2.log")
check "fsize: a ring over the limit stops the start" [ $? != 0 ]
check "fsize: ... with a line naming the limit" grep -q 'file size limit' "$T/fsize2.log"
check "fsize: ... and no segment" [ ! -e "/dev/shm/$INSTANCE" ]

onejob() {	# NAME: a job file outside the spool
	{ echo "[job]"; echo "latents = $T/l.npy"; echo "output = $T/out/$1.y4m"; echo "format = y4m"
	  echo "chunk_frames = 4"; } >"$T/$1.job"
}
oneshot_midjob() {	# NAME: a slow --oneshot run of a new job, once its temp output exists; sets pid
	onejob "$1"
	EGR_FAULT_WRITE_DELAY_MS=50 "$EGR_BIN/egressd" -c "$T/egressd.ini" --oneshot "$T/$1.job" \
		>"$T/$1.out" 2>>"$T/daemon.log" &
	pid=$!
	for _ in $(seq 100); do [ -n "$(leftovers "$T/out")" ] && break; sleep 0.05; done
	sleep 0.2
}

# --oneshot SIGKILLed mid-job: its segment (and the temp output it records)
# stay until the next start reclaims them
oneshot_midjob one-kill
kill -KILL $pid
wait $pid 2>/dev/null
check "oneshot SIGKILL: its segment is left" [ -e "/dev/shm/$INSTANCE.oneshot.$pid" ]
check "oneshot SIGKILL: its temp output is left" [ -n "$(leftovers "$T/out")" ]
onejob one-next
"$EGR_BIN/egressd" -c "$T/egressd.ini" --oneshot "$T/one-next.job" >"$T/one-next.out" 2>>"$T/daemon.log"
check "oneshot SIGKILL: the next start succeeds" [ $? = 0 ]
check "oneshot SIGKILL: the next start reclaims the segment" [ ! -e "/dev/shm/$INSTANCE.oneshot.$pid" ]
check "oneshot SIGKILL: ... and says so" grep -q "oneshot.$pid left by a --oneshot run" "$T/daemon.log"
check "oneshot SIGKILL: no output" [ ! -e "$T/out/one-kill.y4m" ]
check "oneshot SIGKILL: next output identical" same_as_ref y4m "$T/out/one-next.y4m"
nothing_left "oneshot SIGKILL"

# --oneshot stopped by SIGTERM mid-job: no temp output, no segment
oneshot_midjob one-term
kill -TERM $pid
wait $pid
check "oneshot SIGTERM: exits non-zero" [ $? != 0 ]
check "oneshot SIGTERM: no segment" [ -z "$(ls /dev/shm | grep "^$INSTANCE\.")" ]
check "oneshot SIGTERM: no output" [ ! -e "$T/out/one-term.y4m" ]
nothing_left "oneshot SIGTERM"
finish
