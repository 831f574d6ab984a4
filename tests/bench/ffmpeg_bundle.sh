#!/usr/bin/env bash
# A carryable copy of the FFmpeg libraries egressd links (format = mp4 | mkv)
# for a machine without them (the GPU machine): Debian's shared libavcodec,
# libavformat, libavutil and everything they load, found with ldd on the
# built egressd-worker, plus the three libraries' headers.
#
#   tests/bench/ffmpeg_bundle.sh [--with-ffmpeg] [DIR] [WORKER]
#
# DIR (default .deps, where `make deps-bundle` puts the static libraries)
# gets lib/ (each .so under its soname, and libav*.so link names) and
# include/; WORKER defaults to build/egressd-worker, else build/t's.  With
# --with-ffmpeg, bin/ffmpeg and bin/ffprobe and what they load too (the
# benchmark's "encode stage alone" peer).  Build there with
# `make DEPS=DIR`: the binaries carry an RPATH to DIR/lib, so nothing else
# is needed to run them (see the Makefile's AV_LIBS).
#
# The C library is not copied (it must be the machine's own): the machine
# needs a glibc at least as new as the newest symbol version the bundle
# uses, which this script prints.  It prints the bundle's size, plain and
# as a .tar.xz.
set -euo pipefail
cd "$(dirname "$0")/../.."
with_ffmpeg=0
if [ "${1:-}" = --with-ffmpeg ]; then with_ffmpeg=1; shift; fi
d=${1:-.deps}
worker=${2:-}
if [ -z "$worker" ]; then
	for w in build/egressd-worker build/t/egressd-worker; do [ -x "$w" ] && { worker=$w; break; }; done
fi
[ -x "${worker:-}" ] || { echo "no egressd-worker built: run make first" >&2; exit 1; }
mkdir -p "$d/lib" "$d/include"

# copy_deps FILE...: every shared library the files load, under its soname
copy_deps() {
	ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u | while read -r so path; do
		case $so in
		libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | ld-linux*) ;;
		*) [ -e "$d/lib/$so" ] || cp -L "$path" "$d/lib/$so" ;;
		esac
	done
}
copy_deps "$worker"
for l in avformat avcodec avutil; do
	so=$(cd "$d/lib" && ls lib$l.so.[0-9]* | head -n 1)
	ln -sf "$so" "$d/lib/lib$l.so"
done
inc=$(pkg-config --variable=includedir libavcodec 2>/dev/null || echo /usr/include/x86_64-linux-gnu)
for h in libavcodec libavformat libavutil; do
	rm -rf "${d:?}/include/$h"
	cp -r "$inc/$h" "$d/include/"
done
if [ $with_ffmpeg = 1 ]; then
	mkdir -p "$d/bin"
	cp -L /usr/bin/ffmpeg /usr/bin/ffprobe "$d/bin/"
	copy_deps /usr/bin/ffmpeg /usr/bin/ffprobe
	echo "ffmpeg: run as LD_LIBRARY_PATH=$d/lib $d/bin/ffmpeg"
fi

glibc=$(for f in "$d"/lib/*.so* ${with_ffmpeg:+$( [ $with_ffmpeg = 1 ] && echo "$d"/bin/*)}; do
	objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*'
done | sort -u -V | tail -n 1)
n=$(ls "$d/lib" | grep -c '\.so\.')
size=$(du -sLm "$d/lib" "$d/include" ${with_ffmpeg:+$( [ $with_ffmpeg = 1 ] && echo "$d/bin")} | awk '{ s += $1 } END { print s }')
xz=$(tar -C "$d" -chf - lib include $( [ $with_ffmpeg = 1 ] && echo bin) | xz -T0 -6 | wc -c)
echo "bundled $n shared libraries into $d/lib (+ headers in $d/include)"
echo "size: ${size} MiB on disk, $((xz / 1048576)) MiB as .tar.xz; needs glibc >= ${glibc#GLIBC_}"
