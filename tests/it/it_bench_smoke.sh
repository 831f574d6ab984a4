#!/usr/bin/env bash
# Integration: the benchmark scripts do not rot.  bench-jobs' CPU part at a
# tiny size (tests/bench/bench-jobs.sh --smoke: a real daemon, 20 jobs of 4
# frames against one of 80, through the spool) completes and writes its
# report; the GPU targets exit 77 cleanly where there is no GPU; the table
# of an earlier run can be rebuilt without one (run.sh --format-only).
. "$(dirname "$0")/lib.sh"
need_numpy

cd "$TOP" || die "cd $TOP"
export OUT=$T/results BENCH_BIN=$EGR_BIN BENCH_DIR=$T/bench BENCH_SHM_DIR=$T/shm
timeout -k 5 60 tests/bench/bench-jobs.sh --smoke >"$T/smoke.log" 2>&1
rc=$?
[ $rc = 0 ] || { tail -n 40 "$T/smoke.log"; die "bench-jobs.sh --smoke exited $rc"; }
ok "bench-jobs.sh --smoke completed"
md=$OUT/bench-jobs.md
check "report written to \$OUT/bench-jobs.md" [ -s "$md" ]
check "report: the one-job row, done" grep -qE '^\| CPU, latent2rgb 64² → y4m \| one job \| 1 \| 80 \|' "$md"
check "report: the 20-jobs row, done, with a ratio" \
	grep -qE '^\| CPU, latent2rgb 64² → y4m \| 20 jobs \| 20 \| 80 \| [0-9.]+ \| [0-9.]+ \|.*\| [0-9.]+ \|$' "$md"
check "report: the issue's target judged" grep -q 'one job of the same frames .*\[target ≥ 0.8: ' "$md"
check "summary printed last" grep -q '^bench-jobs summary:' <(tail -n 3 "$T/smoke.log")
check "work and output directories removed" [ ! -e "$BENCH_DIR" ] && [ ! -e "$BENCH_SHM_DIR" ]
check "no daemon left behind" [ -z "$(pgrep -f "egressd -c $BENCH_DIR/" || true)" ]

# no GPU here: the GPU targets skip, leaving nothing behind
if ! nvidia-smi -L >/dev/null 2>&1; then
	for s in run.sh bench-taesd.sh bench-copy.sh bench-jobs.sh bench-taehv.sh all.sh; do
		out=$(OUT=$T/nogpu timeout 30 tests/bench/$s 2>&1)
		rc=$?
		check "$s without a GPU: exit 77 ($rc), one skip line" [ $rc = 77 ] && grep -q 'skipped: no NVIDIA GPU' <<<"$out"
	done
	check "skipped targets leave no results" [ ! -e "$T/nogpu" ]
fi

# the table of an earlier run, rebuilt (the smoke run's pipeline tables are empty: use a made-up one)
mkdir -p "$T/old"
printf 'regime\tpipeline\tstatus\tframes\tframes_per_s\twall_s\tbytes\tgpu_kernel_util\tgpu_kernel_s\td2h_gbps\tproducer_blocked_s\twrite_s\tgpu_busy_of_wall\terror\n' >"$T/old/rows.tsv"
printf 'compute\tfull\tdone\t800\t1600.0\t0.5\t316000000\t0.998\t0.49\t47.0\t0.0\t0.4\t0.99\t\n' >>"$T/old/rows.tsv"
printf 'compute\tnaive\tdone\t800\t800.0\t1.0\t316000000\t0.7\t0.49\t7.0\t0.0\t0.4\t0.5\t\n' >>"$T/old/rows.tsv"
printf 'regime\tstage\tframes_per_s\tdetail\ncompute\tdecode\t1650.0\tkernels alone\n' >"$T/old/stages.tsv"
out=$(tests/bench/run.sh --format-only "$T/old")
check "--format-only: table and summary" grep -q '^compute-bound: full 1600.0 f/s; 0.970 × slowest stage (decode) \[target ≥ 0.95: met\]; .*full ahead of naive 2.00×' <<<"$out"
finish
