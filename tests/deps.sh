#!/usr/bin/env bash
# Install egressd's build and test dependencies on Debian/Ubuntu (as root, or
# through sudo), only those missing.  With --bundle DIR, instead copy the
# static libraries and headers egressd links into DIR/{lib,include}, for a
# machine that lacks the -dev packages (the GPU machine): make DEPS=DIR.
# FFmpeg's shared libraries for such a machine: tests/bench/ffmpeg_bundle.sh.
set -euo pipefail
pkgs=(build-essential pkg-config liburing-dev libpng-dev zlib1g-dev libjansson-dev libavcodec-dev libavformat-dev
	libavutil-dev ffmpeg bc python3 python3-numpy python3-prometheus-client util-linux procps coreutils systemd)
if [ "${1:-}" = --bundle ]; then
	d=${2:?usage: $0 --bundle DIR}
	mkdir -p "$d/lib" "$d/include"
	for l in liburing.a libpng16.a libz.a libjansson.a; do
		cp "/usr/lib/x86_64-linux-gnu/$l" "$d/lib/"
	done
	cp -r /usr/include/liburing /usr/include/liburing.h /usr/include/libpng16 \
		/usr/include/png.h /usr/include/pngconf.h /usr/include/pnglibconf.h /usr/include/zlib.h \
		/usr/include/zconf.h /usr/include/jansson.h /usr/include/jansson_config.h "$d/include/"
	echo "bundled static deps into $d"
	exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	echo "installing: ${missing[*]}"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# the python3 on PATH may not be Debian's (pyenv): make sure it has numpy,
# prometheus_client (its text parser checks egressd's metrics) and what
# `pip install ./daemon/client/python` needs offline (setuptools, wheel)
for mod in numpy prometheus_client setuptools wheel; do
	if ! python3 -c "import $mod" 2>/dev/null; then
		python3 -m pip install -q "$mod" 2>/dev/null || python3 -m pip install -q --break-system-packages "$mod"
	fi
done
