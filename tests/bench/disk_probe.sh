#!/usr/bin/env bash
# disk_probe.sh: where does the disk-bound regime lose against a plain
# writer?  Runs the disk-bound job (latent2rgb 1024x1024 y4m, 8 workers) with
# the test build, twice each: as is; with EGR_FORCE_PWRITE (no io_uring);
# with EGR_PROBE_NO_FALLOCATE (no up-front posix_fallocate); and the plain
# writer of tests/bench/lib.sh on the same bytes.  Prints frames/s.
set -u
cd "$(dirname "$0")/../.."
B=build/t D=${BENCH_DIR:-/var/tmp/egressd-probe}
mkdir -p "$D/out"
F=${PROBE_FRAMES:-4000}
"$B/egressd-mklatents" -o "$D/l.npy" -f "$F" -c 4 -H 128 -W 128 >/dev/null
cat >"$D/c.ini" <<INI
[daemon]
spool = $D/spool
instance = egressd-probe
workers = 8
backend = ${PROBE_BACKEND:-cuda}
[ring]
slots = 8
slot_bytes = 16M
INI
printf '[job]\nlatents = %s/l.npy\noutput = %s/out/o.y4m\nformat = y4m\nchunk_frames = 8\n' "$D" "$D" >"$D/j.job"
run() {	# NAME ENV...
	local name=$1; shift
	rm -f "$D/out/o.y4m"; sync
	local fps; fps=$(env "$@" "$B/egressd" --oneshot "$D/j.job" -c "$D/c.ini" 2>"$D/$name.log" | sed -n 's/^frames_per_s = //p')
	echo "$name: ${fps:-failed} frames/s"
}
for i in 1 2; do
	run "as-is-$i" X=1
	run "pwrite-$i" EGR_FORCE_PWRITE=1
	run "no-fallocate-$i" EGR_PROBE_NO_FALLOCATE=1
	run "pwrite+no-fallocate-$i" EGR_FORCE_PWRITE=1 EGR_PROBE_NO_FALLOCATE=1
done
bytes=$(stat -c %s "$D/out/o.y4m")
source <(sed -n '/^write_alone()/,/^}/p' tests/bench/lib.sh)
for i in 1 2; do
	gbs=$(write_alone "$D/out" "$bytes" $((8 * 1572870)) 8)
	echo "plain-writer-$i: $(awk -v g="$gbs" -v b="$bytes" -v f="$F" 'BEGIN { printf "%.1f", g * 1e9 / (b / f) }') frames/s ($gbs GB/s)"
done
rm -rf "$D"
