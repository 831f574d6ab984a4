#!/usr/bin/env bash
# make bench: every benchmark target, one after the other (each fits one
# 8-minute call on the GPU machine by itself; docs/BENCHMARKS.md):
# bench-taesd, bench-copy, bench-jobs, bench-encode, bench-wan, bench-taehv (BENCH_TARGETS
# overrides the list; add bench-pipeline for the ablation table of
# tests/bench/run.sh).  Each writes $OUT/<target>.md; the targets' summaries
# are printed again at the end.
# Exit: 0 when every target passed, 77 when every one skipped (no GPU), else 1.
set -u
cd "$(dirname "$0")/../.." || exit 1
declare -A script=([bench-taesd]=bench-taesd.sh [bench-copy]=bench-copy.sh [bench-jobs]=bench-jobs.sh
		   [bench-encode]=bench-encode.sh [bench-wan]=bench-wan.sh [bench-taehv]=bench-taehv.sh
		   [bench-pipeline]=run.sh)
pass=0 fail=0 skip=0
summary=()
for t in ${BENCH_TARGETS:-bench-taesd bench-copy bench-jobs bench-encode bench-wan bench-taehv}; do
	[ -n "${script[$t]:-}" ] || { echo "bench: unknown target $t (${!script[*]})"; fail=$((fail + 1)); continue; }
	log=$(mktemp)
	tests/bench/"${script[$t]}" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	case $rc in
	0) pass=$((pass + 1)) ;;
	77) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)) ;;
	esac
	summary+=("$t: exit $rc$([ $rc = 77 ] && echo " (skipped)")")
	while IFS= read -r line; do summary+=("$line"); done < <(sed -n "/^$t summary:/,\$p" "$log" | tail -n +2)
	rm -f "$log"
done
echo
echo "bench: $pass passed, $fail failed, $skip skipped"
printf '%s\n' "${summary[@]}"
[ $fail = 0 ] || exit 1
[ $pass = 0 ] && [ $skip -gt 0 ] && exit 77
exit 0
