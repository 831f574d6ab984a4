#!/usr/bin/env bash
# Unpack the FFmpeg bundle that `tests/bench/ffmpeg_bundle.sh --pack FILE`
# made (Debian's shared libavcodec, libavformat, libavutil, what they load,
# and their headers) into DIR, on a machine without FFmpeg (the GPU machine):
#
#   tests/bench/ffmpeg_unpack.sh FILE [DIR]     (DIR: .deps by default)
#
# DIR/lib and DIR/include are merged with what is there (`make deps-bundle`'s
# static libraries), so that `make DEPS=DIR` builds mp4/mkv support and links
# the binaries with an RPATH to DIR/lib (the Makefile's AV_LIBS).  Checks,
# before it says yes: the machine's glibc is at least the bundle's
# glibc_min, and every library the bundled libav* load resolves inside
# DIR/lib or the system.  Exit 0, 1 on a failed check, 64 on bad usage.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 1 ] || [ $# -gt 2 ]; then echo "usage: $0 FILE [DIR]" >&2; exit 64; fi
a=$1 d=${2:-.deps}
[ -f "$a" ] || { echo "ffmpeg_unpack: $a: no such file" >&2; exit 1; }
mkdir -p "$d"
if command -v xz >/dev/null; then
	tar -C "$d" -xJf "$a"
else	# tar needs xz for -J; Python's lzma does not
	python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' "$a" "$d"
fi
for f in lib/libavcodec.so lib/libavformat.so lib/libavutil.so include/libavcodec/avcodec.h ffmpeg-bundle.txt; do
	[ -e "$d/$f" ] || { echo "ffmpeg_unpack: $a has no $f: not a bundle of ffmpeg_bundle.sh --pack" >&2; exit 1; }
done
need=$(sed -n 's/^glibc_min = //p' "$d/ffmpeg-bundle.txt")
have=$(getconf GNU_LIBC_VERSION | awk '{ print $2 }')
if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | tail -n 1)" != "$have" ]; then
	echo "ffmpeg_unpack: the bundle needs glibc >= $need, this machine has $have" >&2
	exit 1
fi
missing=$(LD_LIBRARY_PATH=$d/lib ldd "$d"/lib/libavcodec.so "$d"/lib/libavformat.so "$d"/lib/libavutil.so |
	grep 'not found' | sort -u || true)
if [ -n "$missing" ]; then
	echo "ffmpeg_unpack: libraries the bundle does not hold and this machine lacks:" >&2
	echo "$missing" >&2
	exit 1
fi
libs=("$d"/lib/*.so.*)
echo "ffmpeg_unpack: ${#libs[@]} shared libraries in $d/lib, headers in $d/include;" \
	"glibc $have (>= $need); build with make DEPS=$d"
