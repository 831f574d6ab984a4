#!/usr/bin/env bash
# A carryable copy of the FFmpeg libraries egressd links (format = mp4 | mkv)
# for a machine without them (the GPU machine): Debian's shared libavcodec,
# libavformat, libavutil and everything they load, found with ldd on the
# built egressd-worker, plus the three libraries' headers.
#
#   tests/bench/ffmpeg_bundle.sh [--with-ffmpeg] [DIR] [WORKER]
#   tests/bench/ffmpeg_bundle.sh --pack FILE [WORKER]
#
# DIR (default .deps, where `make deps-bundle` puts the static libraries)
# gets lib/ (each .so under its soname, and libav*.so link names) and
# include/; WORKER defaults to build/egressd-worker, else build/t's.  With
# --with-ffmpeg, bin/ffmpeg and bin/ffprobe and what they load too (the
# benchmark's "encode stage alone" peer).  Build there with
# `make DEPS=DIR`: the binaries carry an RPATH to DIR/lib, so nothing else
# is needed to run them (see the Makefile's AV_LIBS).
#
# --pack FILE bundles into a scratch directory beside FILE and packs it as
# one .tar.xz (lib/ with its link names, include/, and ffmpeg-bundle.txt
# naming the glibc it needs), then removes the directory: what is carried to
# the GPU machine, where tests/bench/ffmpeg_unpack.sh FILE DIR unpacks it
# (docs/ENCODE.md).  Put FILE under .ffb/ (ignored by git), e.g.
# .ffb/ffmpeg-bundle.tar.xz.
#
# The C library and the compiler's runtime (libstdc++, libgcc_s) are not
# copied (they must be the machine's own): the machine
# needs a glibc at least as new as the newest symbol version the bundle
# uses, which this script prints.  It prints the bundle's size, plain and
# as a .tar.xz.
set -euo pipefail
cd "$(dirname "$0")/../.."
with_ffmpeg=0 pack=
if [ "${1:-}" = --with-ffmpeg ]; then with_ffmpeg=1; shift; fi
if [ "${1:-}" = --pack ]; then
	[ -n "${2:-}" ] || { echo "usage: $0 --pack FILE [WORKER]" >&2; exit 64; }
	pack=$2
	shift 2
	mkdir -p "$(dirname "$pack")"
	d=$(dirname "$pack")/bundle.$$
	rm -rf "$d"
	trap 'rm -rf "$d"' EXIT
	worker=${1:-}
else
	d=${1:-.deps}
	worker=${2:-}
fi
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
		# the compiler's runtime too: binaries built on the newer machine
		# may need its newer symbol versions, and the RPATH would put
		# these first
		libstdc++.so.* | libgcc_s.so.*) ;;
		*) [ -e "$d/lib/$so" ] || cp -L "$path" "$d/lib/$so" ;;
		esac
	done
}
copy_deps "$worker"

# stub SONAME: replace a bundled library that egressd never reaches by a
# placeholder with the same soname and symbols (functions abort, data is
# zeros), so that its importers still load (they are linked with BIND_NOW,
# so every symbol they import must exist).  For the carry's size only.
stub() {
	local real=$d/lib/$1 c=$d/stub.c f s
	[ -e "$real" ] || return 0
	local defs; defs=$(nm -D --defined-only "$real" | awk 'NF == 3 { sub(/@.*/, "", $3); print $2, $3 }' | sort -k 2 -u)
	echo "/* placeholder for $1 (tests/bench/ffmpeg_bundle.sh --pack) */" >"$c"
	echo "extern void abort(void);" >>"$c"
	for f in "$d"/lib/*.so.*; do [ "$f" = "$real" ] || nm -D --undefined-only "$f" 2>/dev/null; done |
		awk '{ sub(/@.*/, "", $NF); print $NF }' | sort -u | while read -r s; do
		case $(awk -v s="$s" '$2 == s { print $1 }' <<<"$defs") in
		T | W | i) echo "void $s(void); void $s(void) { abort(); }" ;;
		"") ;;
		*) echo "const char $s[64] = { 0 };" ;;
		esac
	done >>"$c"
	gcc -shared -fPIC -O1 -Wl,-soname,"$1" -o "$real.stub" "$c" && mv "$real.stub" "$real"
	rm -f "$c"
	echo "stub: $1 ($(nm -D --defined-only "$real" | grep -c " [A-Za-z] ") symbols)"
}
# in the pack: libcodec2 (the codec2 speech codec) and libicudata (ICU's
# data, for libxml2's rare encodings) are 15 MiB of the archive's 46
STUBS=
if [ -n "$pack" ]; then
	for s in ${EGR_BUNDLE_STUBS-libcodec2.so.1.0 libicudata.so.72}; do
		[ -e "$d/lib/$s" ] && { stub "$s"; STUBS="$STUBS $s"; }
	done
fi
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
if [ -n "$pack" ]; then
	{
		echo "# tests/bench/ffmpeg_bundle.sh --pack: Debian's FFmpeg shared libraries for egressd-worker"
		echo "glibc_min = ${glibc#GLIBC_}"
		echo "libraries = $n"
		echo "libavcodec = $(cd "$d/lib" && ls libavcodec.so.[0-9]* | head -n 1)"
		echo "stubs =$STUBS (placeholders: egressd never calls them; a call aborts)"
		echo "made_on = $(. /etc/os-release && echo "$PRETTY_NAME"), $(date -u '+%Y-%m-%d')"
	} >"$d/ffmpeg-bundle.txt"
	# link names stay links (-h would store libav*.so twice)
	tar -C "$d" -cf - lib include ffmpeg-bundle.txt $( [ $with_ffmpeg = 1 ] && echo bin) | xz -T0 -6 >"$pack.tmp"
	mv "$pack.tmp" "$pack"
	echo "bundled $n shared libraries (+ headers), needs glibc >= ${glibc#GLIBC_}"
	echo "packed: $pack, $(($(stat -c %s "$pack") / 1048576)) MiB ($(stat -c %s "$pack") bytes); unpack with tests/bench/ffmpeg_unpack.sh $pack DIR"
	exit 0
fi
size=$(du -sLm "$d/lib" "$d/include" ${with_ffmpeg:+$( [ $with_ffmpeg = 1 ] && echo "$d/bin")} | awk '{ s += $1 } END { print s }')
xz=$(tar -C "$d" -chf - lib include $( [ $with_ffmpeg = 1 ] && echo bin) | xz -T0 -6 | wc -c)
echo "bundled $n shared libraries into $d/lib (+ headers in $d/include)"
echo "size: ${size} MiB on disk, $((xz / 1048576)) MiB as .tar.xz; needs glibc >= ${glibc#GLIBC_}"
