#!/usr/bin/env bash
# make bench-encode on the GPU machine in one call (it has no FFmpeg):
# unpack the carried FFmpeg bundle into DEPS, build against it, run the
# benchmark with a time budget that fits the call, and leave the results in
# $OUT for the run tool to bring back (at most 8 files).
#
#   tests/bench/gpu_bench_encode.sh BUNDLE.tar.xz [DEPS]     (DEPS: .deps)
#
# BUNDLE from `tests/bench/ffmpeg_bundle.sh --pack .ffb/ffmpeg-bundle.tar.xz`
# and DEPS from `make deps-bundle`, both made on the developer's machine and
# carried (docs/ENCODE.md, "The benchmark"):
#
#   run(carry=[".deps", ".ffb"], timeout_s=600,
#       command="tests/bench/gpu_bench_encode.sh .ffb/ffmpeg-bundle.tar.xz")
#
# Environment: GPU_CALL_S [570: seconds this call may take; the benchmark's
# BENCH_BUDGET is what the build leaves, less a margin for the last row, at
# most 300], JOBS [32: make -j], and every BENCH_* setting of
# tests/bench/bench-encode.sh.  Files in $OUT: build.log, bench-encode.log
# (the console), bench-encode.md (the page), encode.tsv, logs.tar.gz (each
# job's result and log, the daemon's log, the peer's).  Exit: the
# benchmark's (0, 1 when a row failed, 77 without a GPU); 1 when unpacking
# or building failed.
set -u
cd "$(dirname "$0")/../.." || exit 1
T0=$SECONDS
[ $# -ge 1 ] || { echo "usage: $0 BUNDLE.tar.xz [DEPS]" >&2; exit 64; }
bundle=$1 deps=${2:-.deps}
res=${OUT:-/tmp/egressd-gpu-bench-encode}
work=/var/tmp/egressd-bench-encode-results
mkdir -p "$res" || exit 1
for f in liburing.a libpng16.a libz.a libjansson.a; do
	[ -f "$deps/lib/$f" ] || { echo "gpu_bench_encode: $deps/lib/$f missing: carry .deps as make deps-bundle makes it"; exit 1; }
done
nvidia-smi -L
echo "cpu: $(nproc) x $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); glibc $(getconf GNU_LIBC_VERSION | awk '{ print $2 }')"
python3 -c 'import torch, cv2, numpy; print("python: torch", torch.__version__, "cuda", torch.cuda.is_available(), "cv2", cv2.__version__, "numpy", numpy.__version__)' ||
	echo "python: the peer row will be skipped (it needs torch, cv2 and numpy)"
tests/bench/ffmpeg_unpack.sh "$bundle" "$deps" || exit 1
if ! make -j"${JOBS:-32}" DEPS="$deps" all >"$res/build.log" 2>&1; then
	tail -n 40 "$res/build.log"
	echo "gpu_bench_encode: the build failed (build.log)"
	exit 1
fi
echo "built in $((SECONDS - T0)) s: $(build/egressd --version 2>&1 | tr '\n' ' ')"
ldd build/egressd-worker | grep -E 'libav|not found'

left=$((${GPU_CALL_S:-570} - (SECONDS - T0)))
budget=$((left - 150))
[ $budget -gt 300 ] && budget=300
[ $budget -lt 30 ] && budget=30
echo "bench-encode: BENCH_BUDGET=${BENCH_BUDGET:-$budget}, $left s left in this call"
rm -rf "$work"
BENCH_BUDGET=${BENCH_BUDGET:-$budget} OUT=$work timeout -k 10 $((left > 40 ? left - 10 : 30)) \
	make --no-print-directory DEPS="$deps" bench-encode 2>&1 | tee "$res/bench-encode.log"
rc=${PIPESTATUS[0]}
cp "$work/bench-encode.md" "$work/bench-encode/encode.tsv" "$res/" 2>/dev/null
tar -C "$work/bench-encode" -czf "$res/logs.tar.gz" logs params.tsv meta.tsv 2>/dev/null
rm -rf "$work"
echo "gpu_bench_encode: exit $rc after $((SECONDS - T0)) s; results in $res"
exit "$rc"
