#!/usr/bin/env bash
# Test runner (liburing style): every test is a program or script that exits
# 0 (pass), 77 (skip) or anything else (fail), run with a timeout.  Prints one
# line per test and ends with "N passed, N failed, N skipped".
#
#   tests/run.sh --bin build/t [--san build/san]   unit + integration tests (CI)
#   tests/run.sh --bin build/t --gpu               GPU tests
#   tests/run.sh --bin build/t --only it_bad_input  one test
set -u
cd "$(dirname "$0")/.."
bin=build/t san= gpu=0 only=
while [ $# -gt 0 ]; do
	case $1 in
	--bin) bin=$2; shift ;;
	--san) san=$2; shift ;;
	--gpu) gpu=1 ;;
	--only) only=$2; shift ;;
	*) echo "usage: $0 --bin DIR [--san DIR] [--gpu] [--only NAME]" >&2; exit 64 ;;
	esac
	shift
done
pass=0 fail=0 skip=0 failed=()
logdir=${TEST_LOGDIR:-build/test-logs}
mkdir -p "$logdir"

# run NAME TIMEOUT CMD...: one test, its output in $logdir/NAME.log
run() {
	local name=$1 t=$2; shift 2
	[ -n "$only" ] && [ "$only" != "$name" ] && [ "$only" != "${name#*:}" ] && return
	local log="$logdir/${name//[:\/]/_}.log" start rc
	start=$(date +%s.%N)
	timeout -k 10 "$t" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	local dur; dur=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	case $rc in
	0) pass=$((pass + 1)); printf '  PASS  %-40s %6ss\n' "$name" "$dur" ;;
	77) skip=$((skip + 1)); printf '  SKIP  %-40s %s\n' "$name" "$(tail -n 1 "$log")" ;;
	*) fail=$((fail + 1)); failed+=("$name")
	   [ $rc = 124 ] && echo "(timed out after ${t}s)" >>"$log"
	   printf '  FAIL  %-40s %6ss (exit %d)\n' "$name" "$dur" "$rc"
	   sed 's/^/        | /' "$log" | tail -n 30 ;;
	esac
}

unit() {	# unit DIR TAG
	local d=$1 tag=$2 t
	for t in "$d"/tests/test_*; do
		[ -x "$t" ] || continue
		run "$tag:$(basename "$t")" 300 env EGR_BIN="$d" "$t"
	done
}

integ() {	# integ DIR TAG [san-only]
	local d=$1 tag=$2 sanonly=${3:-} t
	for t in tests/it/it_*.sh; do
		[ -f "$t" ] || continue
		if [ -n "$sanonly" ] && ! grep -q '^# san: yes' "$t"; then continue; fi
		run "$tag:$(basename "$t" .sh)" 600 env EGR_BIN="$d" bash "$t"
	done
}

if [ $gpu = 1 ]; then
	for t in "$bin"/tests/gpu/*; do
		[ -x "$t" ] || continue
		run "gpu:$(basename "$t")" 600 env EGR_BIN="$bin" "$t"
	done
	for t in tests/gpu/it_*.sh; do
		[ -f "$t" ] || continue
		run "gpu:$(basename "$t" .sh)" 600 env EGR_BIN="$bin" bash "$t"
	done
else
	unit "$bin" unit
	integ "$bin" it
	if [ -n "$san" ]; then
		export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
		unit "$san" san
		integ "$san" san-it yes
	fi
fi
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]} (logs in $logdir)"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail = 0 ]
