#!/usr/bin/env bash
# Integration: the command line.  --help, --version, -t (valid and invalid
# configurations), --oneshot (success, failure), backend = cuda without a GPU
# failing clearly, and the io_uring -> pwrite fallback giving the same bytes.
# san: yes
. "$(dirname "$0")/lib.sh"
E=$EGR_BIN/egressd
check "--help" bash -c "'$E' --help | grep -q oneshot"
check "--version" bash -c "'$E' --version | grep -q '^egressd '"
"$E" --bogus >/dev/null 2>&1; check "bad option exits 64" [ $? = 64 ]

conf
out=$("$E" -t -c "$T/egressd.ini"); rc=$?
check "-t on a valid file exits 0" [ $rc = 0 ]
check "-t prints effective settings" grep -q '^slots = 4' <<<"$out"
check "-t prints defaults too" grep -q '^vram_buffers = 2' <<<"$out"
echo "$out" | grep -v '^#' >"$T/dump.ini"
check "-t output is itself a valid config" "$E" -t -c "$T/dump.ini"
printf '[ring]\nsloots = 3\n' >"$T/bad.ini"
err=$("$E" -t -c "$T/bad.ini" 2>&1); rc=$?
check "-t on a bad file exits 78" [ $rc = 78 ]
check "-t names file, line and key" grep -q "bad.ini:2.*sloots" <<<"$err"
err=$("$E" -t -c "$T/none.ini" 2>&1)
check "-t on a missing file names it" grep -q 'none.ini' <<<"$err"

mklatents -o "$T/l.npy" -f 4 -c 4 -H 8 -W 8
mkdir -p "$T/out"
printf '[job]\nlatents = %s\noutput = %s/out/o.y4m\nformat = y4m\noverwrite = yes\n' "$T/l.npy" "$T" >"$T/o.job"
res=$("$E" --oneshot "$T/o.job" -c "$T/egressd.ini" 2>"$T/oneshot.log"); rc=$?
check "--oneshot good job exits 0" [ $rc = 0 ]
check "--oneshot prints the result" grep -q '^status = done' <<<"$res"
check "--oneshot output exists" [ -s "$T/out/o.y4m" ]
check "--oneshot removes its shared memory" [ -z "$(ls /dev/shm | grep "$INSTANCE.oneshot")" ]
printf '[job]\nlatents = %s/none.npy\noutput = %s/out/p.y4m\nformat = y4m\n' "$T" "$T" >"$T/p.job"
res=$("$E" --oneshot "$T/p.job" -c "$T/egressd.ini" 2>>"$T/oneshot.log"); rc=$?
check "--oneshot failing job exits 1" [ $rc = 1 ]
check "--oneshot says why" grep -q 'No such file' <<<"$res"

# the pwrite fallback writes the same bytes as io_uring
EGR_FORCE_PWRITE=1 "$E" --oneshot "$T/o.job" -c "$T/egressd.ini" >/dev/null 2>"$T/pw.log"
cp "$T/out/o.y4m" "$T/pw.y4m"
"$E" --oneshot "$T/o.job" -c "$T/egressd.ini" >/dev/null 2>"$T/ur.log"
check "fallback path logged" grep -q 'pwrite' "$T/pw.log"
check "pwrite output == io_uring output" cmp "$T/pw.y4m" "$T/out/o.y4m"
grep -h 'write path' "$T/pw.log" "$T/ur.log" | sort -u

# a full disk (test-build fault: the first write of each worker fails ENOSPC):
# the job fails with the reason, is not retried, leaves no partial output
rm -f "$T/out/o.y4m"
res=$(EGR_FAULT_WRITE_ERRNO=ENOSPC EGR_FAULT_WRITE_AT=1 "$E" --oneshot "$T/o.job" -c "$T/egressd.ini" 2>"$T/enospc.log"); rc=$?
check "ENOSPC fails the job (exit 1)" [ $rc = 1 ]
check "ENOSPC named in the error" grep -q 'No space left on device' <<<"$res"
check "ENOSPC: no output under the final name" [ ! -e "$T/out/o.y4m" ]
check "ENOSPC: no temporary left" [ -z "$(ls -A "$T/out")" ]

# backend = cuda without a usable GPU: a clear error, exit 69, no respawn loop
if nvidia-smi -L >/dev/null 2>&1; then
	echo "a GPU is present: the no-GPU case is checked in CI"
else
	conf backend=cuda
	res=$(timeout 30 "$E" --oneshot "$T/o.job" -c "$T/egressd.ini" 2>"$T/cuda.log"); rc=$?
	cat "$T/cuda.log"
	check "backend = cuda without GPU exits 69" [ $rc = 69 ]
	check "and says so" grep -qi 'backend = cuda: .*\(GPU\|CUDA\)' "$T/cuda.log"
	check "producer started once" [ "$(grep -c 'started producer' "$T/cuda.log")" = 1 ]
	conf backend=auto
	res=$("$E" --oneshot "$T/o.job" -c "$T/egressd.ini" 2>"$T/auto.log"); rc=$?
	check "backend = auto falls back to cpu" [ $rc = 0 ]
	check "and logs it" grep -q 'using the cpu backend' "$T/auto.log"
fi
finish
