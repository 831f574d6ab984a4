#!/bin/sh
# Build the two conv probes behind docs/TAESD.md's "the conv alone" numbers
# (sm_90a binaries, static cudart: carry them to the GPU machine and run):
#   tests/gpu/probes/build.sh wgmma     -> build/probes/conv_wgmma   (the daemon's Hopper kernel,
#                                          daemon/decode/taesd_wgmma.cuh, against taesd_conv)
#   tests/gpu/probes/build.sh cutlass   -> build/probes/conv_cutlass (CUTLASS 3's sm90 conv)
# CUTLASS_DIR: a checkout of github.com/NVIDIA/cutlass (measured with 7107b0553);
# headers only, never part of egressd's build.
set -eu
cd "$(dirname "$0")/../../.."
NVCC=${NVCC:-/usr/local/cuda/bin/nvcc}
OUT=build/probes
mkdir -p "$OUT"
ARCH="-gencode=arch=compute_90a,code=sm_90a"
case "${1:-}" in
wgmma)
	$NVCC -std=c++17 -O3 $ARCH -cudart static -I. -Xptxas -v -o "$OUT/conv_wgmma" \
		tests/gpu/probes/conv_wgmma.cu 2>&1 | grep -v 'Compile time\|^ *0 bytes stack' || true
	test -x "$OUT/conv_wgmma" && echo "built $OUT/conv_wgmma"
	;;
cutlass)
	CUT=${CUTLASS_DIR:?set CUTLASS_DIR to a CUTLASS checkout}
	FLAGS="-diag-suppress 20012 $ARCH -O3 -std=c++17 --expt-relaxed-constexpr -DNDEBUG \
		-I$CUT/include -I$CUT/tools/util/include"
	NPARTS=$(sed -n 's/^#define PROBE_NPARTS \([0-9]*\)/\1/p' tests/gpu/probes/conv_cutlass.cu)
	objs= i=0
	while [ "$i" -le "$NPARTS" ]; do
		echo "  nvcc part $i"
		$NVCC $FLAGS -DPROBE_PART=$i -c tests/gpu/probes/conv_cutlass.cu -o "$OUT/cutlass_part$i.o"
		objs="$objs $OUT/cutlass_part$i.o"
		i=$((i + 1))
	done
	$NVCC $ARCH -cudart static $objs -o "$OUT/conv_cutlass" && echo "built $OUT/conv_cutlass"
	;;
*)
	echo "usage: $0 wgmma|cutlass" >&2
	exit 2
	;;
esac
