#!/bin/sh
# One call on the GPU machine: build the TAESD GPU test with nvcc directly
# (no Makefile, no system jansson: DEPS=.deps holds libjansson.a and its
# headers), run it, cross-check against PyTorch, benchmark.
#   tests/gpu/taesd_quick.sh [DEPS]     results also under $OUT (if set)
DEPS=${1:-.deps}
B=/tmp/taesd_build
O=${OUT:-/tmp/taesd_out}
mkdir -p "$B" "$O"
export PYTHONUNBUFFERED=1
CF="-std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -ffp-contract=off -D_GNU_SOURCE -I$DEPS/include"
for f in taesd safetensors half log frame; do
	gcc $CF -c daemon/$f.c -o "$B/$f.o" || exit 1
done
nvcc -O2 -std=c++17 -gencode arch=compute_90,code=sm_90 -fmad=false -Xptxas -v -I"$DEPS/include" \
	-o "$B/test_taesd_gpu" tests/gpu/test_taesd_gpu.cu daemon/taesd_cuda.cu \
	"$B/taesd.o" "$B/safetensors.o" "$B/half.o" "$B/log.o" "$B/frame.o" "$DEPS/lib/libjansson.a" -lm \
	>"$O/build.log" 2>&1 || { cat "$O/build.log"; exit 1; }
grep -E "registers|spill" "$O/build.log" | sort | uniq -c | head -20
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv,noheader
echo "== test_taesd_gpu"
"$B/test_taesd_gpu" 2>&1 | tee "$O/test.log"
echo "rc=$?"
echo "== torch check"
"$B/test_taesd_gpu" --dump /tmp/taesd_dump >/dev/null 2>&1
python3 tests/gpu/taesd_torch_check.py /tmp/taesd_dump 2>&1 | tee "$O/torch.log"
echo "== bench"
python3 tests/gpu/bench_taesd.py "$B/test_taesd_gpu" "${EGR_BENCH_BATCH:-8}" 2>&1 | grep -v Warning | tee "$O/bench.log"
