#!/usr/bin/env python3
"""Drop job files into a running daemon's spool at once and time them.

    spool_run.py SPOOL STAGE_DIR [--timeout S]

Renames every file of STAGE_DIR (same filesystem as SPOOL; sorted by name)
into SPOOL/incoming/ back to back, then polls SPOOL/done/ and SPOOL/failed/
every 2 ms until each job has its record.  The wall time runs from the first
rename to the last record seen: what a user dropping the jobs waits.  Prints
one line:

    SPOOLRUN jobs=N done=N failed=N wall_s=S frames=F bytes=B frames_per_s=X
             gbps=G d2h_gbps=D queue_wait_avg=A queue_wait_max=M error=...

(bytes: the results' bytes; d2h_gbps: the mean of the results' d2h_gbps,
empty on the CPU backend; error, last: the first failed job's .error line.)  Exit
0 when every job is done, 1 otherwise (failed, or timed out: status in the
line).  Standard library only.
"""
import os
import sys
import time


def result(path):
    kv = {}
    try:
        for line in open(path):
            k, _, v = line.rstrip("\n").partition(" = ")
            kv[k] = v
    except OSError:
        pass
    return kv


def main():
    args = sys.argv[1:]
    timeout = 300.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 64
    spool, stage = args
    names = sorted(n for n in os.listdir(stage) if not n.startswith("."))
    done_dir, failed_dir = os.path.join(spool, "done"), os.path.join(spool, "failed")
    want = set(names)
    t0 = time.perf_counter()
    for n in names:
        os.rename(os.path.join(stage, n), os.path.join(spool, "incoming", n))
    done, failed = set(), set()
    status = "done"
    while True:
        # a job's record (.result / .error) is written before the job file moves beside it
        for n in os.listdir(done_dir):
            if n in want and os.path.exists(os.path.join(done_dir, n + ".result")):
                done.add(n)
        for n in os.listdir(failed_dir):
            if n in want and os.path.exists(os.path.join(failed_dir, n + ".error")):
                failed.add(n)
        if len(done) + len(failed) >= len(want):
            break
        if time.perf_counter() - t0 > timeout:
            status = "timeout"
            break
        time.sleep(0.002)
    wall = time.perf_counter() - t0
    frames = byt = 0
    waits, d2h = [], []
    for n in done:
        kv = result(os.path.join(done_dir, n + ".result"))
        frames += int(kv.get("frames", 0))
        byt += int(kv.get("bytes", 0))
        waits.append(float(kv.get("queue_wait_s", 0)))
        if kv.get("d2h_gbps"):
            d2h.append(float(kv["d2h_gbps"]))
    err = ""
    if failed:
        try:
            err = open(os.path.join(failed_dir, sorted(failed)[0] + ".error")).readline().strip()
        except OSError:
            err = "?"
        status = "failed"
    elif status == "timeout":
        err = "%d of %d jobs ended within %.0f s" % (len(done) + len(failed), len(want), timeout)
    print("SPOOLRUN status=%s jobs=%d done=%d failed=%d wall_s=%.6f frames=%d bytes=%d frames_per_s=%.3f "
          "gbps=%.4f d2h_gbps=%s queue_wait_avg=%s queue_wait_max=%s error=%s" % (
              status, len(want), len(done), len(failed), wall, frames, byt, frames / wall if wall else 0,
              byt / wall / 1e9 if wall else 0, "%.2f" % (sum(d2h) / len(d2h)) if d2h else "",
              "%.6f" % (sum(waits) / len(waits)) if waits else "", "%.6f" % max(waits) if waits else "",
              err), flush=True)
    return 0 if status == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
