#!/bin/sh
# taesd_backend_quick.sh: build and run decoder = taesd through the CUDA
# backend with gcc + nvcc alone (no Makefile; jansson from DEPS, default
# .deps, made by `make deps-bundle` and carried to the GPU machine).
#   tests/gpu/taesd_backend_quick.sh [DEPS]     results also under $OUT (if set)
# Runs: test_cuda_taesd (checks), test_cuda_frames (latent2rgb, now built
# with TAESD in), with SANITIZE=1 test_cuda_taesd --short under
# compute-sanitizer memcheck, then test_cuda_taesd --perf.
cd "$(dirname "$0")/../.." || exit 1
DEPS=${1:-.deps}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
B=${B:-/tmp/egr-taesd-be}
O=${OUT:-$B}
mkdir -p "$B" "$O"
CFL="-std=gnu11 -O2 -g -ffp-contract=off -D_GNU_SOURCE -DEGR_TESTING=1 -DEGR_HAVE_TAESD=1 -pthread -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -I$DEPS/include"
NVF="-O2 -g -std=c++17 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -fmad=false -DEGR_CUDA=1 -DEGR_TESTING=1 -DEGR_HAVE_TAESD=1 -Xcompiler -Wall,-Wextra,-Wno-unused-parameter -I$DEPS/include"
set -e
pids=
for f in frame log taesd safetensors half; do
	gcc $CFL -c -o "$B/$f.o" daemon/$f.c & pids="$pids $!"
done
$NVCC $NVF -c -o "$B/backend_cuda.o" daemon/backend_cuda.cu & pids="$pids $!"
$NVCC $NVF -c -o "$B/taesd_cuda.o" daemon/taesd_cuda.cu & pids="$pids $!"
$NVCC $NVF -c -o "$B/test_cuda_taesd.o" tests/gpu/test_cuda_taesd.cu & pids="$pids $!"
$NVCC $NVF -c -o "$B/test_cuda_frames.o" tests/gpu/test_cuda_frames.cu & pids="$pids $!"
for p in $pids; do
	wait "$p" || { echo "taesd_backend_quick.sh: build failed" >&2; exit 1; }
done
CUDA_LIB=$(dirname "$NVCC")/../lib64
for t in test_cuda_taesd test_cuda_frames; do
	gcc -pthread -o "$B/$t" "$B/$t.o" "$B/backend_cuda.o" "$B/taesd_cuda.o" "$B/taesd.o" "$B/safetensors.o" "$B/half.o" \
		"$B/frame.o" "$B/log.o" "$DEPS/lib/libjansson.a" -L"$CUDA_LIB" -lcudart_static -ldl -lrt -lstdc++ -lm
done
set +e
[ -n "$BUILD_ONLY" ] && exit 0
echo "== test_cuda_taesd"
"$B/test_cuda_taesd" 2>&1 | tee "$O/test_cuda_taesd.log"
rc=$(tail -1 "$O/test_cuda_taesd.log" | grep -q '^PASS' && echo 0 || echo 1)
grep -q 'skipped' "$O/test_cuda_taesd.log" && { echo "taesd_backend_quick.sh: no GPU, skipped"; exit 77; }
echo "== test_cuda_frames (latent2rgb, TAESD built in)"
"$B/test_cuda_frames" >"$O/test_cuda_frames.log" 2>&1
rf=$?
grep -E "^(ok|FAIL)|failure|:[0-9]+: " "$O/test_cuda_frames.log"
if [ -n "$SANITIZE" ] && command -v compute-sanitizer >/dev/null; then
	timeout 120 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 \
		"$B/test_cuda_taesd" --short >"$O/memcheck.log" 2>&1
	echo "memcheck exit $? (log: memcheck.log)"
	tail -4 "$O/memcheck.log"
fi
echo "== test_cuda_taesd --perf"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv,noheader
"$B/test_cuda_taesd" --perf 2>&1 | tee "$O/perf.log"
echo "taesd_backend_quick.sh: test_cuda_taesd rc $rc, test_cuda_frames rc $rf"
[ "$rc" = 0 ] && [ "$rf" = 0 ]
