#!/bin/sh
# quick.sh: build and run the CUDA backend's GPU tests with nvcc alone (no
# liburing/inih/libpng needed: only frame.c and log.c besides the backend).
#   tests/gpu/quick.sh [outdir]      exit status of test_cuda_frames
# Runs: test_cuda_frames (exactness, poison, abort, errors, mutation),
# with SANITIZE=1 its short form under compute-sanitizer memcheck,
# test_cuda_frames --perf (pipeline modes) and bench_d2h.
set -e
cd "$(dirname "$0")/../.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
B=${B:-/tmp/egr-gpu}
OUT=${1:-$B}
mkdir -p "$B" "$OUT"
CFL="-std=gnu11 -O2 -g -ffp-contract=off -D_GNU_SOURCE -DEGR_TESTING=1 -Wall -Wextra -Wno-unused-parameter"
NVF="-O2 -g -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -fmad=false -DEGR_CUDA=1 -DEGR_TESTING=1 -Xcompiler -Wall,-Wextra,-Wno-unused-parameter"
gcc $CFL -c -o "$B/frame.o" daemon/frame.c
gcc $CFL -c -o "$B/log.o" daemon/log.c
$NVCC $NVF -c -o "$B/backend_cuda.o" daemon/backend_cuda.cu
$NVCC $NVF -o "$B/test_cuda_frames" tests/gpu/test_cuda_frames.cu "$B/backend_cuda.o" "$B/frame.o" "$B/log.o"
$NVCC $NVF -o "$B/bench_d2h" tests/gpu/bench_d2h.cu
set +e
"$B/test_cuda_frames" >"$OUT/test_cuda_frames.log" 2>&1
rc=$?
cat "$OUT/test_cuda_frames.log"
[ "$rc" = 77 ] && { echo "quick.sh: no GPU, skipped"; exit 77; }
if [ -n "$SANITIZE" ] && command -v compute-sanitizer >/dev/null; then
	# memcheck over the shape suite and the abort test: out-of-bounds kernel
	# stores, bad API use and leaks show here even where bytes happen to match
	timeout 150 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 \
		"$B/test_cuda_frames" --short >"$OUT/memcheck.log" 2>&1
	echo "quick.sh: compute-sanitizer memcheck exit $? (log: memcheck.log)"
	tail -5 "$OUT/memcheck.log"
fi
"$B/test_cuda_frames" --perf 2>&1 | tee "$OUT/perf.log"
"$B/bench_d2h" 2>&1 | tee "$OUT/bench_d2h.log"
echo "quick.sh: test_cuda_frames exit $rc"
exit $rc
