"""The daemon's spool as a client sees it (the C client, daemon/client/client.h, does the same).

Submission is Maildir's: the job file is written to <spool>/tmp/ID, then
renamed into <spool>/incoming/ID.  A job is looked up in its record
(cancelled/ID.error, failed/ID.error, done/ID.result), its status file
(status/ID.status), then active/ or incoming/, then its record once more:
the daemon writes the record before it moves the job file and removes the
status file, so a job that ends during a lookup is never missed.
"""
import configparser
import glob
import os
import re
import secrets
import time

DEFAULT_CONFIG = "/etc/egressd/egressd.ini"
ENDED = ("done", "failed", "cancelled")


class Error(Exception):
    """Something the client could not do (no spool, a refused cancel, ...)."""


def _ini(path):
    p = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None, strict=False)
    with open(path, encoding="utf-8") as f:
        p.read_file(f)
    return p


def find_spool(spool=None, config=None):
    """The spool directory: spool itself, or [daemon] spool of the daemon's config."""
    if spool:
        return os.path.abspath(spool)
    config = config or os.environ.get("EGRESSD_CONFIG") or DEFAULT_CONFIG
    try:
        value = _ini(config).get("daemon", "spool", fallback="/var/spool/egressd")
    except (OSError, configparser.Error) as e:
        raise Error(f"reading the daemon's configuration {config}: {e}") from e
    if not os.path.isdir(value):
        raise Error(f"spool {value} (from {config}) is not a directory: is egressd running?")
    return value


def new_id(hint):
    """A unique job id: the hint's stem, the time, the pid, random bits (as egressctl makes them)."""
    stem = os.path.basename(str(hint or "job")).split(".")[0]
    stem = re.sub(r"[^A-Za-z0-9_-]", "_", stem)[:48] or "job"
    return f"{stem}-{int(time.time())}-{os.getpid()}-{secrets.token_hex(4)}"


def write_new(path, data, mode=0o640):
    """Create path (never an existing one) with data, fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def submit_text(spool, job_id, text):
    tmp = os.path.join(spool, "tmp", job_id)
    try:
        write_new(tmp, text.encode("utf-8"))
    except FileNotFoundError as e:
        raise Error(f"{spool} has no tmp/ directory: is egressd running?") from e
    try:
        os.rename(tmp, os.path.join(spool, "incoming", job_id))
    except OSError:
        os.unlink(tmp)
        raise


def _number(v):
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def _first_line(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().rstrip("\n")


def _records(spool, job_id):
    for state, name in (("cancelled", "cancelled/%s.error"), ("failed", "failed/%s.error")):
        try:
            return {"state": state, "error": _first_line(os.path.join(spool, name % job_id))}
        except FileNotFoundError:
            pass
    try:
        p = _ini(os.path.join(spool, "done", job_id + ".result"))
    except FileNotFoundError:
        return None
    result = {k: _number(v) for k, v in p.items("result")} if p.has_section("result") else {}
    return {"state": "done", "result": result}


def lookup(spool, job_id):
    """What the spool says of job_id: a dict with "state" (queued, running,
    cancelling, done, failed, cancelled) and, as known, frames_done,
    frames_total, frames_per_s, eta_s, error, result; None when unknown."""
    rec = _records(spool, job_id)
    if rec:
        return rec
    try:
        p = _ini(os.path.join(spool, "status", job_id + ".status"))
        if p.has_section("status"):
            return {k: _number(v) for k, v in p.items("status")}
    except (FileNotFoundError, configparser.Error):
        pass
    waiting = any(os.path.exists(os.path.join(spool, d, job_id)) for d in ("active", "incoming"))
    # shared_spool (docs/SCALING.md): each daemon's jobs are in active/<host_id>.<instance>/
    waiting = waiting or bool(glob.glob(os.path.join(glob.escape(spool), "active", "*", glob.escape(job_id))))
    rec = _records(spool, job_id)
    if rec:
        return rec
    return {"state": "queued"} if waiting else None
