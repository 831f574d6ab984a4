#!/usr/bin/env bash
# Integration: every kind of bad input ends in failed/ with a one-line reason
# a person can act on, leaves no partial output, and the daemon goes on
# serving the next job.
# san: yes
. "$(dirname "$0")/lib.sh"
need_numpy
RUNAS=nobody	# as root, "not writable" needs an unprivileged daemon
conf max_pixels=65536 max_frames=40 slots=3 slot_bytes=256K
mkdir -p "$T/out" "$T/ro"
[ "$(id -u)" = 0 ] && chown nobody "$T/out"
chmod 755 "$T/ro"
[ "$(id -u)" = 0 ] || chmod 555 "$T/ro"
start_daemon

mklatents -o "$T/good.npy" -f 6 -c 4 -H 8 -W 8
good="latents=$T/good.npy"

# expect NAME SUBSTRING: the job failed and its .error says SUBSTRING
expect() {
	local name=$1 want=$2 r
	r=$(wait_job "$name" 60)
	if [ "$r" != failed ]; then fail "$name: expected failed, got $r"; return; fi
	local msg; msg=$(cat "$T/spool/failed/$name.error")
	if grep -qF -- "$want" <<<"$msg"; then ok "$name: $msg"; else fail "$name: '$msg' lacks '$want'"; fi
	[ "$(wc -l <"$T/spool/failed/$name.error")" = 1 ] || fail "$name: .error is not one line"
}

# malformed INI
printf '[job\nlatents = %s\n' "$T/good.npy" >"$T/spool/.m"; mv "$T/spool/.m" "$T/spool/incoming/malformed.job"
expect malformed.job "malformed.job:1"
# unknown key
job unknown.job "$good" output="$T/out/u.y4m" format=y4m fsp=24
expect unknown.job "unknown key 'fsp'"
# over-long line (past the 8191-byte limit: refused, never cut)
{ echo "[job]"; echo "latents = $T/good.npy"; printf 'output = %s/out/%09000d.y4m\n' "$T" 0; echo "format = y4m"; } >"$T/spool/.l"
mv "$T/spool/.l" "$T/spool/incoming/longline.job"
expect longline.job "longline.job:3"
# missing latents file
job missing.job latents="$T/nope.npy" output="$T/out/m.y4m" format=y4m
expect missing.job "No such file or directory"
# truncated .npy
mklatents -o "$T/trunc.npy" -f 6 -c 4 -H 8 -W 8
truncate -s 1000 "$T/trunc.npy"
job trunc.job latents="$T/trunc.npy" output="$T/out/t.y4m" format=y4m
expect trunc.job "truncated"
# wrong dtype
python3 -c "import numpy as np; np.save('$T/f64.npy', np.zeros((2,4,8,8)))"
job dtype.job latents="$T/f64.npy" output="$T/out/d.y4m" format=y4m
expect dtype.job "float64"
# NaN in frame 4: chunks before it were written, the partial output must go
mklatents -o "$T/nan.npy" -f 6 -c 4 -H 8 -W 8 --nan-at $((4 * 4 * 8 * 8 + 5))
job nan.job latents="$T/nan.npy" output="$T/out/nan.y4m" format=y4m chunk_frames=1
expect nan.job "NaN or Inf at frame 4"
# absurd shapes: 3-d, too many pixels, too many frames
python3 -c "import numpy as np; np.save('$T/3d.npy', np.zeros((4,8,8), dtype=np.float32))"
job shape3.job latents="$T/3d.npy" output="$T/out/s.y4m" format=y4m
expect shape3.job "dimensions"
mklatents -o "$T/big.npy" -f 1 -c 4 -H 64 -W 64
job pixels.job latents="$T/big.npy" output="$T/out/p.y4m" format=y4m
expect pixels.job "max_pixels"
mklatents -o "$T/long.npy" -f 50 -c 4 -H 1 -W 1
job frames.job latents="$T/long.npy" output="$T/out/f.y4m" format=y4m
expect frames.job "max_frames"
# wrong channel count for the default latent2rgb coefficients
mklatents -o "$T/c16.npy" -f 1 -c 16 -H 8 -W 8
job chan.job latents="$T/c16.npy" output="$T/out/c.y4m" format=y4m
expect chan.job "l2r_weights"
# output directory not writable, and missing
job ro.job "$good" output="$T/ro/x.y4m" format=y4m
expect ro.job "Permission denied"
job nodir.job "$good" output="$T/nodir/x.y4m" format=y4m
expect nodir.job "does not exist"
# relative path
job rel.job latents=good.npy output="$T/out/r.y4m" format=y4m
expect rel.job "absolute"

check "no partial output left behind" [ -z "$(ls -A "$T/out")" ]
check "no temporary in ro/" [ -z "$(ls -A "$T/ro")" ]

# and the daemon still serves
job fine.job "$good" output="$T/out/fine.y4m" format=y4m
check "a good job after all that" [ "$(wait_job fine.job)" = done ]
check "its output exists" [ -s "$T/out/fine.y4m" ]
check "daemon still running" kill -0 "$DAEMON_PID"
stop_daemon || fail "daemon exit status"
finish
