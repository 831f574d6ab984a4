#!/usr/bin/env bash
# Integration: the random-SIGKILL campaign (issue 14, docs/RELIABILITY.md).
#  A clean daemon makes the reference outputs first.  Then egressd runs under
#  a restart loop (what systemd's Restart=always does) while jobs keep coming
#  (y4m and png, 200-400 frames) and a random process of the daemon -- the
#  supervisor, the producer or one of the 3 workers -- is SIGKILLed every
#  20-400 ms.  When the kills stop, every job must reach done/ within a
#  timeout; then: each job in done/ exactly once, none in failed/, every
#  output byte-identical to its reference, no temporary file anywhere, and
#  after a final SIGTERM no shared memory and no process left.
#
#  Knobs: CHAOS_KILLS (kills of the one phase, default 250), CHAOS_SEED,
#  CHAOS_PHASE="NAME KILLS MIN_MS MAX_MS [ENV=VALUE...]" (another phase);
#  CHAOS_NO_SUPERVISOR=1 (in the environment or a phase's list) kills only
#  the children.  SOAK=1 (make soak) runs the long campaign instead: 1000
#  kills every 20-400 ms, 400 every 5-80 ms, 300 every 20-400 ms with slow
#  writes (EGR_FAULT_WRITE_DELAY_MS), 300 of the children only every 5-80 ms
#  (no supervisor restart resets their crash-loop count).  KEEP=1 keeps the
#  test directory.
. "$(dirname "$0")/lib.sh"
shopt -s nullglob
SEED=${CHAOS_SEED:-$$}
RANDOM=$SEED
if [ -n "${SOAK:-}" ]; then
	PHASES=("normal 1000 20 400" "aggressive 400 5 80" "slow-writes 300 20 400 EGR_FAULT_WRITE_DELAY_MS=15"
		"children 300 5 80 CHAOS_NO_SUPERVISOR=1")
else
	PHASES=("${CHAOS_PHASE:-normal ${CHAOS_KILLS:-250} 20 400}")
fi
OUTSTANDING=12		# jobs submitted but not done, kept in the spool
DRAIN_S=${CHAOS_DRAIN_S:-120}	# after the kills stop, every job is done within this

conf workers=3 slots=4 slot_bytes=128K
mkdir -p "$T/out" "$T/ref"
NLAT=4
for i in $(seq 0 $((NLAT - 1))); do
	mklatents -o "$T/l$i.npy" -f $((200 + RANDOM % 201)) -c 4 -H 8 -W 16 --seed $((i + 1))
done
chunk_of() { [ "$1" = png ] && echo 3 || echo 4; }	# FORMAT
# the k-th kind of job: latents k/2 into y4m (k even) or png; its output named after BASE
kind_fmt() { [ $(($1 % 2)) = 0 ] && echo y4m || echo png; }
kind_out() { [ "$(kind_fmt "$1")" = y4m ] && echo "$2.y4m" || echo "$2"; }	# K BASE
submit() {	# NAME K OUT
	local fmt; fmt=$(kind_fmt "$2")
	job "$1" latents="$T/l$(($2 / 2)).npy" output="$(kind_out "$2" "$3")" format="$fmt" \
		chunk_frames="$(chunk_of "$fmt")"
}

# the clean references
start_daemon
for k in $(seq 0 $((2 * NLAT - 1))); do submit "ref$k.job" "$k" "$T/ref/k$k"; done
for k in $(seq 0 $((2 * NLAT - 1))); do
	[ "$(wait_job "ref$k.job")" = done ] || die "reference job $k"
done
stop_daemon
rm -f "$T"/spool/done/*

LOOP_PID=
# sup_loop ENV...: egressd again whenever it dies, until $T/stop exists
sup_loop() {
	while [ ! -e "$T/stop" ]; do
		env "$@" "$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
		echo $! >"$T/sup.pid"
		wait $!
		echo $? >>"$T/sup.exits"
	done
}
stop_loop() {
	[ -n "$LOOP_PID" ] || return 0
	touch "$T/stop"
	# SIGTERM until the loop ends: it may be starting one more supervisor
	while kill -0 "$LOOP_PID" 2>/dev/null; do
		kill -TERM "$(cat "$T/sup.pid" 2>/dev/null)" 2>/dev/null
		sleep 0.1
	done
	wait "$LOOP_PID" 2>/dev/null
	LOOP_PID=
	rm -f "$T/stop"
}
trap 'stop_loop; cleanup' EXIT

# pick: sets VICTIM (pid) and ROLE, or returns 1
pick() {
	local sup kids=() c
	sup=$(cat "$T/sup.pid" 2>/dev/null) && [ -n "$sup" ] || return 1
	read -r -a kids 2>/dev/null <"/proc/$sup/task/$sup/children" || true
	c=$((RANDOM % (${#kids[@]} + 1)))
	if [ -n "${CHAOS_NO_SUPERVISOR:-}" ]; then [ ${#kids[@]} -gt 0 ] || return 1; c=$((1 + RANDOM % ${#kids[@]})); fi
	if [ $c = 0 ]; then
		VICTIM=$sup ROLE=supervisor
	else
		VICTIM=${kids[$((c - 1))]}
		read -r c 2>/dev/null <"/proc/$VICTIM/comm" || return 1
		case $c in egressd-produc*) ROLE=producer ;; egressd-worker) ROLE=worker ;; *) return 1 ;; esac
	fi
	alive "$VICTIM"
}
# alive PID: running, not a zombie waiting for its parent (or init) to reap
# it; PROC_ID is "pid.start time": pids wrap around (pid_max can be 32768)
alive() {
	local st f
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	read -r -a f <<<"${st#*) }"	# from field 3, the state; 22 is the start time
	PROC_ID=$1.${f[19]}
	[ "${f[0]}" != Z ]
}

declare -A out_of ref_of fmt_of
verify_done() {	# compare and remove the outputs of jobs that reached done/
	local r name lines
	for r in "$T"/spool/done/*.job.result; do
		name=${r##*/} name=${name%.result}
		[ -e "$T/spool/done/$name" ] || continue
		mapfile -t lines <"$r"
		if [[ " ${lines[*]} " != *" status = done "* ]]; then
			fail "$name: result without status = done"; bad=$((bad + 1))
		elif [ "${fmt_of[$name]}" = y4m ] && ! cmp -s "${ref_of[$name]}" "${out_of[$name]}"; then
			fail "$name: y4m output differs from the clean run"; bad=$((bad + 1))
		elif [ "${fmt_of[$name]}" = png ] && ! diff -r -q "${ref_of[$name]}" "${out_of[$name]}"; then
			fail "$name: png output differs from the clean run"; bad=$((bad + 1))
		fi
		[[ " ${lines[*]} " == *" recovered = yes "* ]] && recovered=$((recovered + 1))
		rm -rf "${out_of[$name]}"
		mv "$r" "$T/spool/done/$name" "$T/checked/"
		verified=$((verified + 1))
	done
}

njob=0
run_phase() {	# NAME KILLS MIN_MS MAX_MS [ENV...]
	local name=$1 target=$2 lo=$3 hi=$4; shift 4
	local -A kills=([supervisor]=0 [producer]=0 [worker]=0) killed=()
	local total=0 tries=0 start end ms s pending i k
	local CHAOS_NO_SUPERVISOR=${CHAOS_NO_SUPERVISOR:-}
	for i in "$@"; do [[ $i = CHAOS_NO_SUPERVISOR=* ]] && CHAOS_NO_SUPERVISOR=${i#*=}; done
	recovered=0 verified=0 bad=0 submitted=0
	mkdir -p "$T/checked"
	rm -f "$T/sup.exits" "$T/sup.pid"
	start=$(date +%s.%N)
	sup_loop "$@" 2>/dev/null &	# not bash's "Killed" notices: the log has them
	LOOP_PID=$!
	while [ $total -lt "$target" ]; do
		# keep the spool busy
		pending=$((submitted - verified))
		for ((i = pending; i < OUTSTANDING; i++)); do
			njob=$((njob + 1)) submitted=$((submitted + 1))
			local jn; printf -v jn 'j%06d.job' $njob
			k=$((RANDOM % (2 * NLAT)))
			fmt_of[$jn]=$(kind_fmt $k)
			out_of[$jn]=$(kind_out $k "$T/out/${jn%.job}")
			ref_of[$jn]=$(kind_out $k "$T/ref/k$k")
			submit "$jn" $k "$T/out/${jn%.job}"
		done
		ms=$((lo + RANDOM % (hi - lo + 1)))
		printf -v s '%d.%03d' $((ms / 1000)) $((ms % 1000))
		sleep "$s"
		tries=$((tries + 1))
		# a process SIGKILLed a moment ago may still be exiting: one kill each
		if pick && [ -z "${killed[$PROC_ID]:-}" ] && kill -KILL "$VICTIM" 2>/dev/null; then
			killed[$PROC_ID]=1
			kills[$ROLE]=$((kills[$ROLE] + 1)) total=$((total + 1))
		fi
		verify_done
		if [ $tries -gt $((10 * target + 100)) ]; then
			fail "$name: the kills stopped landing ($total of $tries tries)"
			break
		fi
	done
	local kill_end; kill_end=$(date +%s.%N)
	# the kills stopped: every job ends, and soon
	for _ in $(seq $((DRAIN_S * 10))); do
		verify_done
		[ $verified = $submitted ] && break
		sleep 0.1
	done
	end=$(date +%s.%N)
	check "$name: all $submitted jobs done within ${DRAIN_S} s of the last kill" [ $verified = $submitted ]
	[ $verified = $submitted ] || ls -la "$T"/spool/{incoming,active,failed} | head -40
	check "$name: every output byte-identical to the clean run" [ $bad = 0 ]
	local nfailed; nfailed=$(ls "$T/spool/failed" | wc -l)
	check "$name: nothing in failed/" [ "$nfailed" = 0 ]
	[ "$nfailed" = 0 ] || head -n 3 "$T"/spool/failed/*.error
	stop_loop
	check "$name: no shared memory left after SIGTERM" [ -z "$(ls /dev/shm | grep "^$INSTANCE\(\.\|$\)")" ]
	local left; left=$(leftovers "$T/out" "$T/spool")
	check "$name: no temporary file left" [ -z "$left" ]
	[ -z "$left" ] || echo "$left" | head
	local strays; strays=$(pgrep -f "$T/egressd.ini" | while read -r p; do alive "$p" && echo "$p"; done)
	check "$name: no egressd process left" [ -z "$strays" ]
	# no output of a checked job may come back (a late rename of a killed run)
	local back; back=$(ls "$T/out" | head)
	check "$name: no output reappeared after it was checked" [ -z "$back" ]
	local restarts; restarts=$(($(wc -l <"$T/sup.exits") - 1))	# not the final SIGTERM
	# checked jobs left done/: one coming back there would be recorded twice
	local nrec again; nrec=$(ls "$T/checked" | wc -l) again=$(ls -A "$T/spool/done")
	check "$name: each job recorded in done/ exactly once" [ "$nrec" = $((2 * submitted)) -a -z "$again" ]
	rm -rf "$T/checked"
	awk -v n="$name" -v t="$total" -v s="${kills[supervisor]}" -v p="${kills[producer]}" \
		-v w="${kills[worker]}" -v j="$submitted" -v r="$recovered" -v x="$restarts" -v y="$tries" \
		-v a="$start" -v b="$kill_end" -v c="$end" -v bad="$bad" -v f="$nfailed" -v env="$*" \
		'BEGIN { printf "CHAOS %s%s: %d kills (supervisor %d, producer %d, worker %d; %d tries) over %.1f s; %d jobs done (%d recovered after the output rename), drained %.1f s after the last kill; %d supervisor restarts; %d failed, %d byte differences\n",
			n, env != "" ? " [" env "]" : "", t, s, p, w, y, b - a, j, r, c - b, x, f, bad }' >>"$T/summary"
}

echo "seed $SEED"
for ph in "${PHASES[@]}"; do
	# shellcheck disable=SC2086
	run_phase $ph
done
cat "$T/summary"
check "the daemon never gave up on a child killed from outside" bash -c "! grep -q 'giving up' '$T/daemon.log'"
echo "daemon log: $(grep -c 'given back' "$T/daemon.log") deaths seen, $(grep -c 'giving up' "$T/daemon.log") give-ups, $(grep -c 'failed:' "$T/daemon.log") job failures"
finish
