#!/usr/bin/env bash
# Integration: safe at the edges (issue 8).  Against the real daemon (CPU
# backend), every hostile job is refused cleanly: it ends in failed/ with a
# one-line .error that names the user's path or key, nothing outside the
# job's own temporary files is touched (a canary tree outside the write roots
# and every file there before the job are byte-identical after it, modes
# and owners included), and the daemon serves the next job each time.
#
#   outputs:  png over a non-empty directory, y4m over a file, a device node
#             (a FIFO where mknod is not allowed), the latents themselves, a
#             symlinked parent pointing outside the roots, a ".." escape, a
#             parent swapped for a symlink (and for another directory) while
#             the job runs, links planted at temporary-looking names
#   inputs:   latents outside allow_read; weights = a root-only file of secret
#             bytes (no byte of it in any log, result or error)
#   spool:    job file as a symlink, FIFO, directory, hard link and 100 MB
#             file; the same name twice (both records kept); a name with a
#             newline and an ESC (no raw control byte, no forged "<0>" line
#             in the log); a second daemon on the spool (refused, exit != 0,
#             the first keeps serving)
#   overwrite = yes: a regular file replaced, an egressd-made png directory
#             replaced, a foreign directory / a device / the latents / a
#             directory holding the latents still refused
#   as root:  the daemon run as nobody end to end (one job, refusals)
# san: yes
. "$(dirname "$0")/lib.sh"
need_numpy

IN=$T/in OUT=$T/out OK=$T/ok C=$T/canary
mkdir -p "$IN" "$OUT" "$OK" "$C/sub"
# the roots: inputs from in/ and out/ (for "output = the latents"), outputs to out/ and ok/; canary in neither
ROOTS=(allow_read="'$IN $OUT'" allow_write="'$OUT $OK'")	# conf evals each
conf "${ROOTS[@]}" max_pixels=65536 max_frames=64 slots=3 slot_bytes=256K

mklatents -o "$IN/good.npy" -f 4 -c 4 -H 8 -W 8
good="latents=$IN/good.npy"
cp "$IN/good.npy" "$OUT/lat.npy"
# the canary: files of several modes, a root-only secret, a subdirectory, a job file and latents
echo "canary a" >"$C/a.txt"
head -c 4096 /dev/urandom >"$C/sub/b.bin"
echo "canary secret $RANDOM" >"$C/secret" && chmod 600 "$C/secret"
echo "victim of a planted link" >"$C/victim" && chmod 600 "$C/victim"
cp "$IN/good.npy" "$C/lat.npy"
printf '[job]\nlatents = %s\noutput = %s/vialink.y4m\nformat = y4m\n' "$IN/good.npy" "$OUT" >"$C/job.txt"
chmod 750 "$C/sub"

# snap: every entry under the canary, in/ and out/ (dotfiles too): type, mode,
# owner, and for non-directories size, mtime, link target and sha256
snap() {
	find "$C" "$IN" "$OUT" \( -type d -printf '%y %m %U:%G %p\n' \) -o -printf '%y %m %U:%G %s %T@ %p -> %l\n' | sort
	find "$C" "$IN" "$OUT" -type f -print0 | sort -z | xargs -0 sha256sum
}
canary_snap() { find "$C" -printf '%y %m %U:%G %s %T@ %p -> %l\n' | sort; find "$C" -type f -print0 | sort -z | xargs -0 sha256sum; }
CANARY0=$(canary_snap)

# wait_ended NAME [timeout]: done|failed once the record and the entry (of any type) are there
wait_ended() {
	local name=$1 t=${2:-60} i
	for i in $(seq $((t * 20))); do
		[ -f "$T/spool/done/$name.result" ] && { [ -e "$T/spool/done/$name" ] || [ -L "$T/spool/done/$name" ]; } &&
			{ echo done; return 0; }
		[ -f "$T/spool/failed/$name.error" ] && { [ -e "$T/spool/failed/$name" ] || [ -L "$T/spool/failed/$name" ]; } &&
			{ echo failed; return 0; }
		kill -0 "$DAEMON_PID" 2>/dev/null || { echo daemon-died; return 1; }
		sleep 0.05
	done
	echo timeout
	return 1
}

# refused NAME WANT...: the job ends in failed/ with a one-line .error holding every WANT
refused() {
	local name=$1 r msg w; shift
	r=$(wait_ended "$name")
	if [ "$r" != failed ]; then fail "$name: expected failed/, got $r"; return 1; fi
	msg=$(cat "$T/spool/failed/$name.error")
	[ "$(wc -l <"$T/spool/failed/$name.error")" = 1 ] || fail "$name: .error is not exactly one line"
	for w in "$@"; do
		grep -qF -- "$w" <<<"$msg" || { fail "$name: '$msg' lacks '$w'"; return 1; }
	done
	# a path's refusal begins with its key and the user's path, nothing before them
	case $1 in output\ \"* | latents\ \"* | weights\ \"*)
		[[ $msg == "$1"* ]] || { fail "$name: '$msg' does not begin with '$1'"; return 1; } ;;
	esac
	ok "$name refused: $msg"
}

NOK=0
# serves: the daemon still decodes a good job
serves() {
	NOK=$((NOK + 1))
	job "ok$NOK.job" "$good" output="$OK/$NOK.y4m" format=y4m
	[ "$(wait_ended "ok$NOK.job")" = done ] && [ -s "$OK/$NOK.y4m" ] || fail "the daemon did not serve a good job after $1"
}

# case NAME WANT... -- KEY=VALUE...: submit, expect refused with WANT, nothing touched, the daemon serves on
case_() {
	local name=$1 before; shift
	local wants=()
	while [ "$1" != -- ]; do wants+=("$1"); shift; done
	shift
	before=$(snap)
	job "$name" "$@"
	refused "$name" "${wants[@]}"
	[ "$(snap)" = "$before" ] || { fail "$name: files changed"; diff <(echo "$before") <(snap) | head; }
	serves "$name"
}

# ---- (1) a parent swapped while the job runs (slow writes: 150 ms a chunk) ----
mklatents -o "$IN/long.npy" -f 16 -c 4 -H 8 -W 8
# race NAME SWAP: the job's temporary appears in out/NAME/, then SWAP runs; nothing may reach the canary
race() {
	local name=$1 swap=$2 d=$OUT/$1 i r
	mkdir "$d"
	job "$name.job" latents="$IN/long.npy" output="$d/r.y4m" format=y4m chunk_frames=1
	for i in $(seq 200); do compgen -G "$d/.r.y4m.*.egressd-tmp" >/dev/null && break; sleep 0.02; done
	compgen -G "$d/.r.y4m.*.egressd-tmp" >/dev/null || { fail "$name: no temporary appeared"; return; }
	mv "$d" "$d.orig"
	$swap "$d"
	r=$(wait_ended "$name.job")
	[ "$r" = failed ] && ok "$name: the job failed: $(cat "$T/spool/failed/$name.job.error")"
	[ "$r" = done ] && fail "$name: the job was done after its directory was swapped"
	[ "$(wc -l <"$T/spool/failed/$name.job.error")" = 1 ] || fail "$name: .error is not one line"
	grep -qF "\"$d/r.y4m\"" "$T/spool/failed/$name.job.error" || fail "$name: .error does not name the output"
	check "$name: nothing reached the canary" [ "$(canary_snap)" = "$CANARY0" ]
	# what the job wrote stayed in the directory it began in: its own temporary at most
	left=$(ls -A "$d.orig")
	check "$name: the original directory holds no output, at most the job's temporary ($left)" \
		bash -c "[ -z '$left' ] || [[ '$left' =~ ^\.r\.y4m\.[0-9a-f]{16}\.egressd-tmp$ ]]"
	[ -L "$d" ] && rm "$d" || rm -rf "$d"
}
to_canary() { ln -s "$C" "$1"; }
other_dir() { mkdir "$1"; }
EGR_FAULT_WRITE_DELAY_MS=150 start_daemon
race race1 to_canary
race race2 other_dir
check "race2: nothing written into the directory swapped in" [ -z "$(ls -A "$OUT/race2" 2>/dev/null)" ]
rm -rf "$OUT/race1.orig" "$OUT/race2.orig" "$OUT/race2"
stop_daemon || fail "daemon exit status (race phase)"

start_daemon

# ---- (2) outputs ----
mkdir -p "$OUT/frames/sub" && echo one >"$OUT/frames/f.txt" && echo two >"$OUT/frames/sub/g.txt"
case_ png-dir.job "output \"$OUT/frames\"" "egressd did not create" -- "$good" output="$OUT/frames" format=png
echo "precious" >"$OUT/exist.y4m"
case_ y4m-file.job "output \"$OUT/exist.y4m\"" "overwrite = yes" -- "$good" output="$OUT/exist.y4m" format=y4m
if mknod "$OUT/null" c 1 3 2>/dev/null; then dev=device; else mkfifo "$OUT/null"; dev=FIFO; fi
case_ device.job "output \"$OUT/null\"" "$dev" "never replaces" -- "$good" output="$OUT/null" format=y4m
case_ latents.job "output \"$OUT/lat.npy\"" "the job's latents" -- latents="$OUT/lat.npy" output="$OUT/lat.npy" format=y4m
ln -s "$C" "$OUT/link"
case_ symparent.job "output \"$OUT/link/x.y4m\"" "symbolic link" -- "$good" output="$OUT/link/x.y4m" format=y4m
case_ dotdot.job "output \"$OUT/../canary/x.y4m\"" '".."' -- "$good" output="$OUT/../canary/x.y4m" format=y4m
case_ outside.job "output \"$C/x.y4m\"" "allow_write" -- "$good" output="$C/x.y4m" format=y4m

# ---- (3) inputs ----
case_ noread.job "latents \"$C/lat.npy\"" "allow_read" -- latents="$C/lat.npy" output="$OUT/nr.y4m" format=y4m
ln -s "$C/lat.npy" "$IN/lnk.npy"
case_ inlink.job "latents \"$IN/lnk.npy\"" "symbolic link" -- latents="$IN/lnk.npy" output="$OUT/il.y4m" format=y4m
# weights: root-only files of secret bytes, one whose first 8 bytes make an
# absurd header length, one with a plausible length and a non-JSON header
SECRET="SECRETSECRET$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf 'root:*:%s:19000:0:99999:7:::\nbin:*:%s\n' "$SECRET" "$SECRET" >"$IN/secret1"
python3 - "$IN/secret2" "$SECRET" <<'PY'
import struct, sys
body = ("root:*:%s:19000:0:99999:7:::" % sys.argv[2]).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(body)) + body)
PY
chmod 600 "$IN/secret1" "$IN/secret2"
# the number the first 8 bytes decode to, and the file's first word: neither may appear
HLEN=$(python3 -c "import struct,sys; print(struct.unpack('<Q', open(sys.argv[1],'rb').read(8))[0])" "$IN/secret1")
for s in 1 2; do
	case_ "secret$s.job" "weights \"$IN/secret$s\"" -- "$good" output="$OUT/s$s.y4m" format=y4m decoder=taesd \
		weights="$IN/secret$s"
done
case_ secretlat.job "latents \"$IN/secret1\"" -- latents="$IN/secret1" output="$OUT/sl.y4m" format=y4m

# ---- (4) overwrite = yes ----
echo "old bytes" >"$OUT/repl.y4m"
job repl.job "$good" output="$OUT/repl.y4m" format=y4m overwrite=yes
check "overwrite = yes: a regular file replaced" [ "$(wait_ended repl.job)" = done ]
check "  ... by the y4m" bash -c "head -c 9 '$OUT/repl.y4m' | grep -q YUV4MPEG2"
case_ ow-dir.job "output \"$OUT/frames\"" "egressd did not create" -- "$good" output="$OUT/frames" format=png overwrite=yes
case_ ow-device.job "output \"$OUT/null\"" "never replaces" -- "$good" output="$OUT/null" format=y4m overwrite=yes
case_ ow-latents.job "output \"$OUT/lat.npy\"" "the job's latents" -- latents="$OUT/lat.npy" output="$OUT/lat.npy" \
	format=y4m overwrite=yes
job mine.job "$good" output="$OUT/mine" format=png
check "a png directory made" [ "$(wait_ended mine.job)" = done ]
check "  ... with egressd's marker" [ -f "$OUT/mine/.egressd-output" ]
case_ mine-no.job "output \"$OUT/mine\"" "overwrite = yes" -- "$good" output="$OUT/mine" format=png
case_ mine-y4m.job "output \"$OUT/mine\"" "writes a file" -- "$good" output="$OUT/mine" format=y4m overwrite=yes
ino=$(stat -c %i "$OUT/mine")
job mine2.job "$good" output="$OUT/mine" format=png overwrite=yes
check "overwrite = yes: egressd's own png directory replaced" [ "$(wait_ended mine2.job)" = done ]
check "  ... by a new directory of 4 frames" [ "$(stat -c %i "$OUT/mine")" != "$ino" -a "$(ls "$OUT/mine" | wc -l)" = 4 ]
cp "$IN/good.npy" "$OUT/mine/in.npy"
case_ ow-holds.job "output \"$OUT/mine\"" "holding the job's latents" -- latents="$OUT/mine/in.npy" \
	output="$OUT/mine" format=png overwrite=yes
check "no temporary left in out/" [ -z "$(find "$OUT" -name '*.egressd-tmp')" ]

# ---- (5) links planted at temporary-looking names: none is followed ----
for n in 0000000000000000 ffffffffffffffff 0123456789abcdef $(head -c 24 /dev/urandom | od -An -tx8 | tr -s ' ' '\n'); do
	ln -s "$C/victim" "$OUT/.plant.y4m.$n.egressd-tmp"
done
ln -s "$C/victim" "$OUT/.plant.y4m.egressd-tmp"
ln -s "$C/victim" "$OUT/.plant.y4m.tmp"
links=$(find "$OUT" -name '.plant.y4m*' -printf '%p -> %l\n' | sort)
job plant.job "$good" output="$OUT/plant.y4m" format=y4m
check "planted links: the job is done" [ "$(wait_ended plant.job)" = done ]
check "  ... its output a regular file" [ -f "$OUT/plant.y4m" -a ! -L "$OUT/plant.y4m" ]
check "  ... the links untouched" [ "$(find "$OUT" -name '.plant.y4m*' -printf '%p -> %l\n' | sort)" = "$links" ]
check "  ... the canary untouched" [ "$(canary_snap)" = "$CANARY0" ]

# ---- (6) the spool ----
# a job file that is not a plain file; each is refused into failed/, none stays in incoming/
spool_case() {	# NAME WANT
	refused "$1" "job file" "$2"
	[ -z "$(ls -A "$T/spool/incoming")" ] || fail "$1: left in incoming/: $(ls -A "$T/spool/incoming")"
	grep -qF "job $1 refused" "$T/daemon.log" || fail "$1: no log line"
	serves "$1"
}
ln -s "$C/job.txt" "$T/spool/incoming/symlink.job"
spool_case symlink.job "symbolic link"
mkfifo "$T/spool/incoming/fifo.job"
spool_case fifo.job "FIFO"
mkdir "$T/spool/incoming/dir.job" && echo x >"$T/spool/incoming/dir.job/inner"
spool_case dir.job "directory"
printf '[job]\nlatents = %s\noutput = %s/hl.y4m\nformat = y4m\n' "$IN/good.npy" "$OK" >"$T/hl"
ln "$T/hl" "$T/spool/incoming/hardlink.job"
spool_case hardlink.job "hard links"
printf '[job]\nlatents = %s\noutput = %s/big.y4m\nformat = y4m\n' "$IN/good.npy" "$OK" >"$T/spool/.big"
truncate -s 100M "$T/spool/.big" && mv "$T/spool/.big" "$T/spool/incoming/big.job"
spool_case big.job "104857600 bytes"
check "the symlinked job file's target untouched" [ "$(canary_snap)" = "$CANARY0" ]
check "nothing decoded from the refused job files" test ! -e "$OUT/vialink.y4m" -a ! -e "$OK/hl.y4m" -a ! -e "$OK/big.y4m"

# the same name twice: both records kept, the second under a new id
job dup.job "$good" output="$OK/dup1.y4m" format=y4m
check "dup.job: first done" [ "$(wait_ended dup.job)" = done ]
first=$(cat "$T/spool/done/dup.job.result")
job dup.job "$good" output="$OK/dup2.y4m" format=y4m
check "dup.job: the second gets id dup.job.2" [ "$(wait_ended dup.job.2)" = done ]
check "  ... the first record kept as it was" [ "$(cat "$T/spool/done/dup.job.result")" = "$first" ]
check "  ... the second record names its own output" grep -qx "output = $OK/dup2.y4m" "$T/spool/done/dup.job.2.result"
check "  ... the log names the new id" grep -q "job dup.job.2 claimed" "$T/daemon.log"

# a name with a newline and an ESC trying to forge log lines and result keys
evil=$'evil\n<0>egressd[supervisor 1]: forged\n\e[31mstatus = forged.job'
shown='evil_<0>egressd[supervisor 1]: forged__[31mstatus = forged.job'
job "$evil" "$good" output="$OK/evil.y4m" format=y4m
refused "$shown" "control characters"
check "evil: nothing of it decoded" test ! -e "$OK/evil.y4m"
check "evil: no spool entry has a control byte" bash -c "! find '$T/spool' | grep -qP '[\x00-\x1f\x7f]'"
serves evil
# a job file whose contents carry an ESC and a CR: the log and the .error carry none raw
printf '[job]\nlatents = %s\noutput = %s/e\x1b[2J.y4m\nformat = y\x1b[31m4m\r\n' "$IN/good.npy" "$OK" >"$T/spool/.esc"
mv "$T/spool/.esc" "$T/spool/incoming/esc.job"
refused esc.job "esc.job"
check "esc.job: the .error has no control byte" bash -c "! grep -qP '[\x00-\x09\x0b-\x1f\x7f]' '$T/spool/failed/esc.job.error'"
serves esc

# a second daemon on the spool: refused with the clear message, the first serves on
sed "s/^instance = .*/instance = ${INSTANCE}b/" "$T/egressd.ini" >"$T/egressd2.ini"
for ini in egressd.ini egressd2.ini; do
	out=$(timeout 20 "$EGR_BIN/egressd" -c "$T/$ini" 2>&1); rc=$?
	check "second daemon ($ini): exit status $rc is not 0" [ "$rc" != 0 -a "$rc" != 124 ]
	check "second daemon ($ini): 'in use by another egressd (pid $DAEMON_PID)'" \
		grep -qF "spool $T/spool is in use by another egressd (pid $DAEMON_PID); give each daemon its own spool" <<<"$out"
done
check "the first daemon still running" kill -0 "$DAEMON_PID"
serves "a second daemon"

# mode: a 0600 latents file gives a 0600 output
cp "$IN/good.npy" "$IN/private.npy" && chmod 600 "$IN/private.npy"
job private.job latents="$IN/private.npy" output="$OK/private.y4m" format=y4m
check "0600 latents: done" [ "$(wait_ended private.job)" = done ]
check "  ... the output is 0600" [ "$(stat -c %a "$OK/private.y4m")" = 600 ]
check "records are 0640" [ "$(stat -c %a "$T/spool/done/private.job.result" "$T/spool/failed/y4m-file.job.error" | sort -u)" = 640 ]
check "the result records the owner's uid" grep -qx "owner_uid = $(id -u)" "$T/spool/done/private.job.result"
stop_daemon || fail "daemon exit status"

# ---- (7) nothing of the secret anywhere in the spool or the log, no raw control byte or forged line in the log ----
for s in "$SECRET" "SECRETSECRET" "root:*" "$HLEN"; do
	check "no '$s' in the log, results, errors or status files" \
		bash -c "! { cat '$T/daemon.log'; find '$T/spool' -type f -size -1M -exec cat {} +; } | grep -qF -- '$s'"
done
check "no ESC in the daemon log" bash -c "! grep -qP '\x1b' '$T/daemon.log'"
check "no CR in the daemon log" bash -c "! grep -qP '\r' '$T/daemon.log'"
check "no log line but the daemon's (none starts with a forged '<0>')" \
	bash -c "! grep -vE '^<[3-7]>egressd\[[a-z]+ [0-9]+\]: ' '$T/daemon.log' | grep -q ."
check "the canary is byte-identical at the end" [ "$(canary_snap)" = "$CANARY0" ]

# ---- (8) as root: the daemon as nobody, end to end ----
if [ "$(id -u)" = 0 ]; then
	RUNAS=nobody
	N=$T/nout
	mkdir -p "$N" && chown nobody "$N"
	echo "nobody's" >"$N/exists.y4m" && chown nobody "$N/exists.y4m"
	cp "$IN/good.npy" "$IN/rootonly.npy" && chmod 600 "$IN/rootonly.npy"
	INSTANCE="${INSTANCE}n"
	conf allow_read="$IN" allow_write="$N" max_pixels=65536 max_frames=64 slots=3 slot_bytes=256K
	start_daemon
	check "nobody: the daemon runs as uid 65534" [ "$(stat -c %u /proc/$DAEMON_PID)" = "$(id -u nobody)" ]
	job nb.job "$good" output="$N/nb.y4m" format=y4m
	check "nobody: a job done" [ "$(wait_ended nb.job)" = done ]
	check "nobody: its output is nobody's" [ "$(stat -c %U "$N/nb.y4m" 2>/dev/null)" = nobody ]
	job nb-exists.job "$good" output="$N/exists.y4m" format=y4m
	refused nb-exists.job "output \"$N/exists.y4m\"" "overwrite = yes"
	check "nobody: the existing file kept" [ "$(cat "$N/exists.y4m")" = "nobody's" ]
	job nb-read.job latents="$IN/rootonly.npy" output="$N/r.y4m" format=y4m
	refused nb-read.job "latents \"$IN/rootonly.npy\"" "not readable by egressd (uid $(id -u nobody))"
	job nb-secret.job "$good" output="$N/s.y4m" format=y4m decoder=taesd weights="$IN/secret1"
	refused nb-secret.job "weights \"$IN/secret1\"" "not readable"
	job nb-ok.job "$good" output="$N/nb2.y4m" format=y4m
	check "nobody: serves on" [ "$(wait_ended nb-ok.job)" = done ]
	stop_daemon || fail "daemon exit status (nobody)"
else
	echo "not root: the unprivileged run is the one above"
fi
finish
