# Shared helpers for the integration tests (tests/it/it_*.sh): each test starts
# the real daemon (real processes, shm, io_uring, files) in its own temp dir.
# Exit codes: 0 pass, 1 fail, 77 skip.
set -u
EGR_BIN=${EGR_BIN:-build/t}
EGR_BIN=$(cd "$EGR_BIN" && pwd)
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T=$(mktemp -d /tmp/egressd-test.XXXXXX)
chmod 755 "$T"
INSTANCE="egrt$$"
DAEMON_PID=
nfail=0

cleanup() {
	[ -n "$DAEMON_PID" ] && kill -TERM "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
	rm -f "/dev/shm/$INSTANCE"
	if [ $nfail = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$T"; else echo "test dir kept: $T"; fi
}
trap cleanup EXIT
trap 'exit 1' TERM INT

fail() { echo "FAIL: $*"; nfail=$((nfail + 1)); }
die() { echo "FAIL: $*"; nfail=$((nfail + 1)); exit 1; }
ok() { echo "ok: $*"; }
skip() { echo "skip: $*"; exit 77; }
check() {	# check "what" cmd...
	local what=$1; shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() { [ $nfail = 0 ] && exit 0 || exit 1; }

# the real data beside the checkout (CI has a copy of shared/ there), without
# ".." or links: job paths under a root are taken as written (safepath.h)
SHARED_DATA=$(realpath -e "${EGR_SHARED:-$TOP/../shared}/data" 2>/dev/null || true)

# conf [key=value ...]: write $T/egressd.ini (section of each key is known here)
conf() {
	local spool=${SPOOL:-$T/spool} workers=2 slots=4 slot_bytes=8M backend=cpu pipeline=full
	local max_frames=100000 max_pixels=33554432 extra=""
	local allow_read="$T${SHARED_DATA:+ $SHARED_DATA}" allow_write="$T"
	for kv in "$@"; do eval "$kv"; done
	cat >"$T/egressd.ini" <<INI
[daemon]
spool = $spool
instance = $INSTANCE
workers = $workers
backend = $backend
pipeline = $pipeline
log_level = debug
[ring]
slots = $slots
slot_bytes = $slot_bytes
[paths]
allow_read = $allow_read
allow_write = $allow_write
[limits]
max_frames = $max_frames
max_pixels = $max_pixels
$extra
INI
}

# As root, tests that need permissions to mean something run the daemon as
# nobody: RUNAS=nobody before conf/start_daemon.
RUNAS=${RUNAS:-}
as_user() {
	if [ -n "$RUNAS" ] && [ "$(id -u)" = 0 ]; then
		setpriv --reuid="$RUNAS" --regid="$(id -g "$RUNAS")" --clear-groups "$@"
	else
		"$@"
	fi
}

start_daemon() {
	if [ -n "$RUNAS" ] && [ "$(id -u)" = 0 ]; then
		mkdir -p "$T/spool"/{incoming,active,done,failed}
		chown -R "$RUNAS" "$T/spool"
	fi
	# not through as_user: a function in the background is a subshell,
	# and $! would be the subshell's pid, not the daemon's
	if [ -n "$RUNAS" ] && [ "$(id -u)" = 0 ]; then
		setpriv --reuid="$RUNAS" --regid="$(id -g "$RUNAS")" --clear-groups \
			"$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
	else
		"$EGR_BIN/egressd" -c "$T/egressd.ini" 2>>"$T/daemon.log" &
	fi
	DAEMON_PID=$!
	for _ in $(seq 100); do [ -d "$T/spool/incoming" ] && [ -e "/dev/shm/$INSTANCE" ] && return 0; sleep 0.05; done
	cat "$T/daemon.log"; die "daemon did not start"
}

stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID"
	wait "$DAEMON_PID"
	local rc=$?
	DAEMON_PID=
	return $rc
}

# job NAME key=value...: write a job file and rename it into incoming/
job() {
	local name=$1; shift
	{ echo "[job]"; for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done; } >"$T/spool/.$name.tmp"
	mv "$T/spool/.$name.tmp" "$T/spool/incoming/$name"
}

# wait_job NAME [timeout_s]: prints done|failed, returns 0 when it ended
wait_job() {
	local name=$1 t=${2:-120} i
	for i in $(seq $((t * 20))); do
		[ -f "$T/spool/done/$name.result" ] && [ -f "$T/spool/done/$name" ] && { echo done; return 0; }
		[ -f "$T/spool/failed/$name.error" ] && [ -f "$T/spool/failed/$name" ] && { echo failed; return 0; }
		if [ -n "$DAEMON_PID" ] && ! kill -0 "$DAEMON_PID" 2>/dev/null; then
			echo "daemon-died"; tail -n 20 "$T/daemon.log" >&2; return 1
		fi
		sleep 0.05
	done
	echo timeout
	return 1
}

# result NAME KEY: a value from done/NAME.result
result() { sed -n "s/^$2 = //p" "$T/spool/done/$1.result"; }

mklatents() { "$EGR_BIN/egressd-mklatents" "$@" >/dev/null; }

# ref_frames NPY FORMAT OUT [l2r args]: independent numpy reference frames
ref_frames() { python3 "$TOP/tests/ref/l2r_ref.py" "$@"; }

need_ffmpeg() { command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || skip "ffmpeg/ffprobe not installed"; }
need_numpy() { python3 -c 'import numpy' 2>/dev/null || skip "numpy not installed"; }

# leftovers DIR...: the temporary files of egressd under DIRs (temp outputs,
# finalize markers, half-written records, journals): none may outlive a restart
leftovers() {
	find "$@" \( -name '*.egressd-tmp' -o -name '*.egressd-tmp.gone' -o -name '.egressd-finalizing' -o -name '*.tmp' \
		-o -name '*.egressd-wal*' \) -print 2>/dev/null
}

# kids_of PID: child pids
kids_of() { pgrep -P "$1" || true; }

# Several daemons on one spool (shared_spool = yes), named by a short NAME:
# shared_conf NAME LEASE writes $T/NAME.ini (instance $INSTANCE-NAME) from
# $T/egressd.ini (conf first); start_shared NAME starts it, log in
# $T/NAME.log, pid in SHARED_PID[NAME]; stop_shared_all SIGKILLs what is left
# (the test's EXIT trap calls it).
declare -A SHARED_PID
shared_conf() {
	sed "s/^instance = .*/instance = $INSTANCE-$1/" "$T/egressd.ini" >"$T/$1.ini"
	printf '[daemon]\nshared_spool = yes\nhost_id = testhost\nlease_timeout = %s\n' "$2" >>"$T/$1.ini"
}
start_shared() {
	"$EGR_BIN/egressd" -c "$T/$1.ini" 2>>"$T/$1.log" &
	SHARED_PID[$1]=$!
	for _ in $(seq 100); do [ -e "/dev/shm/$INSTANCE-$1" ] && return 0; sleep 0.05; done
	cat "$T/$1.log"; die "daemon $1 did not start"
}
stop_shared_all() {
	for n in "${!SHARED_PID[@]}"; do kill -KILL "${SHARED_PID[$n]}" 2>/dev/null; rm -f "/dev/shm/$INSTANCE-$n"; done
}
