#!/usr/bin/env bash
# Integration: egressctl against the real daemon (CPU backend).
#  - submit (a job file; --latents/--output with key=value), --wait exit codes
#    (0 done, 1 failed with the .error line on stderr), a job refused before
#    it is queued, status (table, --json), list, wait;
#  - --progress: plain lines when stderr is not a terminal, a bar on one;
#  - cancel mid-job (slow writes): the job stops, leaves no output, ends in
#    cancelled/ "cancelled by uid 0", its submit --wait exits 2, the next job
#    runs; a cancel from another uid is refused; a job cancelled while the
#    daemon was down never starts;
#  - SIGHUP: a new limit applies in the producer, a change that needs a
#    restart is named and refused;
#  - 1000 tiny jobs dropped at once all complete, claimed in FIFO order, with
#    the supervisor's memory flat.
. "$(dirname "$0")/lib.sh"
CTL() { "$EGR_BIN/egressctl" -c "$T/egressd.ini" "$@"; }
conf workers=2 slots=4 slot_bytes=1M
mklatents -o "$T/l.npy" -f 16 -c 4 -H 8 -W 16 --seed 3
mklatents -o "$T/long.npy" -f 300 -c 4 -H 8 -W 16 --seed 4
mkdir -p "$T/out"
printf 'not a npy file\n' >"$T/junk.npy"

# ---- slow writes: jobs that run long enough to watch and cancel ----
export EGR_FAULT_WRITE_DELAY_MS=20
start_daemon
unset EGR_FAULT_WRITE_DELAY_MS

id=$(CTL submit --wait --latents "$T/l.npy" --output "$T/out/a.y4m" chunk_frames=8)
check "submit --wait: exit 0, the id on stdout" [ $? = 0 -a -n "$id" ]
check "the job's output is in place" [ -s "$T/out/a.y4m" ]
check "its id is its name in done/" [ -f "$T/spool/done/$id.result" ]
check "status ID: done, 16 frames" bash -c "'$EGR_BIN/egressctl' -c '$T/egressd.ini' status $id | grep -qx 'state: done' &&
	'$EGR_BIN/egressctl' -c '$T/egressd.ini' status $id | grep -qx 'frames: 16'"
CTL status --json "$id" >"$T/a.json"
check "status --json ID: a JSON object with the result" python3 -c "
import json, sys; j = json.load(open('$T/a.json'))
sys.exit(not (j['id'] == '$id' and j['state'] == 'done' and j['result']['frames'] == 16 and j['owner_uid'] == $(id -u)))"

printf '[job]\nlatents = %s\noutput = %s\nformat = png\n' "$T/l.npy" "$T/out/pngs" >"$T/png.job"
id=$(CTL submit "$T/png.job")
CTL wait "$id"
check "submit JOBFILE, then wait ID: exit 0" [ $? = 0 ]
check "png frames written" [ -f "$T/out/pngs/frame_000016.png" ]

CTL submit --wait --latents "$T/junk.npy" --output "$T/out/junk.y4m" >/dev/null 2>"$T/junk.err"
check "submit --wait of a job that fails: exit 1" [ $? = 1 ]
check "the .error line on stderr" grep -q "failed: latents \"$T/junk.npy\"" "$T/junk.err"
cat "$T/junk.err"
queued() { find "$T/spool/incoming" "$T/spool/active" -type f | wc -l; }
n=$(queued)
CTL submit --latents "$T/l.npy" --output "$T/out/b.y4m" decoder=nope 2>"$T/bad.err" >/dev/null
check "a job the daemon's parser refuses: exit 1 before it is queued" [ $? = 1 -a "$(queued)" = "$n" ]
check "  saying why" grep -q "decoder" "$T/bad.err"
CTL submit --latents "$T/nowhere.npy" --output "$T/out/b.y4m" 2>/dev/null
check "missing latents: usage error" [ $? = 64 ]
CTL wait nosuchjob-1 2>/dev/null
check "wait on an unknown id: exit 3" [ $? = 3 ]

# cancel mid-job: --progress lines (not a tty), exit 2, no output left, the next job runs
CTL submit --wait --progress --latents "$T/long.npy" --output "$T/out/long.y4m" chunk_frames=1 >"$T/long.id" 2>"$T/long.progress" &
sub=$!
for _ in $(seq 200); do [ -s "$T/long.id" ] && break; sleep 0.02; done
long=$(cat "$T/long.id")
for _ in $(seq 300); do
	CTL status --json | python3 -c "import json,sys; sys.exit(not any(j['state'] == 'running' and j['frames_done'] > 0 for j in json.load(sys.stdin)))" && break
	sleep 0.05
done
CTL status >"$T/table"
check "status: the running job in the table" grep -q "^$long *running *[0-9]*/300" "$T/table"
cat "$T/table"
sleep 1.2
CTL cancel "$long" >"$T/cancel.out"
check "cancel: exit 0" [ $? = 0 ]
wait $sub
check "its submit --wait exits 2 (cancelled)" [ $? = 2 ]
check "progress: plain lines when stderr is not a terminal" grep -q "^$long: running [0-9]*/300 frames, [0-9.]* frames/s, ETA" "$T/long.progress"
check "progress: more than one line (one a second)" [ "$(grep -c "running" "$T/long.progress")" -ge 2 ]
cat "$T/long.progress"
check "cancelled/ID.error: cancelled by uid $(id -u)" grep -qx "cancelled by uid $(id -u)" "$T/spool/cancelled/$long.error"
check "the job file is in cancelled/" [ -f "$T/spool/cancelled/$long" ]
check "no output, no temporary left" [ -z "$(ls -A "$T/out" | grep long)" ]
check "no status file left" [ -z "$(ls -A "$T/spool/status")" ]
id=$(CTL submit --wait --latents "$T/l.npy" --output "$T/out/after.y4m")
check "the next job runs" [ $? = 0 -a -s "$T/out/after.y4m" ]
CTL cancel "$id" 2>/dev/null
check "cancel of a job that ended: exit 1" [ $? = 1 ]

# someone else's request is refused (root can make one owned by nobody)
if [ "$(id -u)" = 0 ]; then
	id=$(CTL submit --latents "$T/long.npy" --output "$T/out/other.y4m" chunk_frames=20)
	touch "$T/req" && chown nobody "$T/req" && mv "$T/req" "$T/spool/cancel/$id"
	CTL wait "$id"
	check "a cancel request from another uid is refused: the job ends done" [ $? = 0 ]
	check "  with a log line" grep -q "job $id: cancel request from uid $(id -u nobody) refused" "$T/daemon.log"
fi

# --progress on a terminal draws a bar
if command -v script >/dev/null; then
	script -qec "'$EGR_BIN/egressctl' -c '$T/egressd.ini' submit --progress --latents '$T/long.npy' --output '$T/out/tty.y4m' chunk_frames=30" "$T/tty.log" >/dev/null
	check "--progress on a terminal: a bar redrawn in place" grep -q $'\r.*\\[#*\\.*\\] [0-9]*/300 frames' "$T/tty.log"
fi

# SIGHUP: max_frames applies (the producer re-reads it); workers needs a restart
sed -i 's/^workers = 2/workers = 3/; s/^max_frames = 100000/max_frames = 10/' "$T/egressd.ini"
kill -HUP "$DAEMON_PID"
for _ in $(seq 100); do grep -q "SIGHUP: reloaded" "$T/daemon.log" && break; sleep 0.05; done
check "SIGHUP: a key that needs a restart is named" grep -q "SIGHUP: not applied (restart egressd to change them): \[daemon\] workers" "$T/daemon.log"
sleep 0.3
CTL submit --wait --latents "$T/l.npy" --output "$T/out/limit.y4m" 2>"$T/limit.err" >/dev/null
check "SIGHUP: the new max_frames fails a 16-frame job" grep -q "over \[limits\] max_frames = 10" "$T/limit.err"
check "the daemon still runs its 2 workers" [ "$(kids_of "$DAEMON_PID" | wc -l)" = 3 ]
stop_daemon

# a job cancelled while the daemon is down never starts
id=$(CTL submit --latents "$T/l.npy" --output "$T/out/down.y4m")
CTL cancel --timeout 0.2 "$id" 2>/dev/null
check "cancel with no daemon: times out (124), the request stays" [ $? = 124 -a -f "$T/spool/cancel/$id" ]
sed -i 's/^workers = 3/workers = 2/; s/^max_frames = 10$/max_frames = 100000/' "$T/egressd.ini"
start_daemon
CTL wait "$id" 2>/dev/null
check "  the next daemon cancels it before it starts: wait exits 2" [ $? = 2 -a ! -e "$T/out/down.y4m" ]
CTL list >"$T/list"
cat "$T/list"
jobs=$(find "$T/spool/done" "$T/spool/failed" "$T/spool/cancelled" -type f ! -name '*.result' ! -name '*.error' | wc -l)
check "list: a header and every job ($jobs)" [ "$(wc -l <"$T/list")" = $((jobs + 1)) ]
check "list: the cancelled ones as cancelled" grep -q "^$long *cancelled" "$T/list"

# ---- 1000 tiny jobs dropped at once ----
sed -i 's/^log_level = debug/log_level = info/' "$T/egressd.ini"
kill -HUP "$DAEMON_PID"
mklatents -o "$T/tiny.npy" -f 1 -c 4 -H 8 -W 8 --seed 1
mkdir -p "$T/tiny"
drop() {	# drop FIRST LAST: job files tiny-FIRST..LAST into incoming/ at once
	for i in $(seq -f %04g "$1" "$2"); do
		printf '[job]\nlatents = %s\noutput = %s/%s.y4m\nformat = y4m\n' "$T/tiny.npy" "$T/tiny" "$i" >"$T/spool/tmp/tiny-$i"
	done
	python3 -c 'import os, sys
for i in range(int(sys.argv[2]), int(sys.argv[3]) + 1):
	os.rename("%s/tmp/tiny-%04d" % (sys.argv[1], i), "%s/incoming/tiny-%04d" % (sys.argv[1], i))' "$T/spool" "$1" "$2"
}
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$DAEMON_PID/status"; }
drop 1 100	# warm-up: the supervisor's one-time allocations
CTL wait $(seq -f 'tiny-%04g' 1 100) || fail "warm-up jobs"
rss0=$(rss)
t0=$(date +%s.%N)
drop 101 1100
CTL wait --timeout 120 $(seq -f 'tiny-%04g' 101 1100)
check "1000 jobs queued at once: all done" [ $? = 0 -a "$(ls "$T/tiny" | wc -l)" = 1100 ]
t1=$(date +%s.%N)
rss1=$(rss)
echo "1000 jobs in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f s (%.0f jobs/s)", b - a, 1000 / (b - a) }'); supervisor VmRSS ${rss0} -> ${rss1} kB"
grep -o 'job tiny-[0-9]* queued' "$T/daemon.log" | awk '{ print $2 }' >"$T/order"
check "claimed in FIFO order (arrival, then name)" cmp -s "$T/order" <(seq -f 'tiny-%04g' 1 1100)
check "supervisor memory flat (${rss0} -> ${rss1} kB)" [ $((rss1 - rss0)) -lt 512 ]
stop_daemon
finish
