"""egressd: decode latents into video files with the egressd daemon.

    import egressd
    job = egressd.submit(latents, output="/data/clip.y4m")   # a numpy array or a torch tensor
    print(job.wait(), job.result["frames_per_s"])           # "done", 1843.2

The daemon is found through its configuration (config=, $EGRESSD_CONFIG,
/etc/egressd/egressd.ini) or spool= directly.  Latents go to a directory the
daemon reads (staging=, default <spool>/staging/) and are removed once the
job has ended and wait() saw it.  Everything goes through the spool's files,
as egressctl does: no socket, no daemon-side library.
"""
import os
import time

from . import _latents, _spool
from ._spool import ENDED, Error

__all__ = ["submit", "Job", "Error", "ENDED"]
__version__ = "0.1.0"


class Job:
    """A submitted job.  id is its name in every spool directory."""

    def __init__(self, job_id, spool, staged=None):
        self.id = job_id
        self.spool = spool
        self._staged = staged  # latents this package wrote, removed when the job ends

    def __repr__(self):
        return f"<egressd.Job {self.id} {self.state()}>"

    def _info(self):
        return _spool.lookup(self.spool, self.id)

    def state(self):
        """queued, running, cancelling, done, failed or cancelled ("unknown" if the spool has no such job)."""
        info = self._info()
        return info["state"] if info else "unknown"

    def progress(self):
        """{"state", "frames_done", "frames_total", "frames_per_s", "eta_s"} as the daemon last wrote them."""
        info = self._info() or {"state": "unknown"}
        res = info.get("result", {})
        done = info["state"] == "done"
        return {
            "state": info["state"],
            "frames_done": info.get("frames_done", res.get("frames", 0) if done else 0),
            "frames_total": info.get("frames_total", res.get("frames", 0)),
            "frames_per_s": info.get("frames_per_s", res.get("frames_per_s", 0.0)),
            "eta_s": info.get("eta_s", 0.0 if done else None),
        }

    def _cleanup(self):
        if self._staged:
            try:
                os.unlink(self._staged)
            except FileNotFoundError:
                pass
            self._staged = None

    def wait(self, timeout=None, interval=0.2):
        """Block until the job ends; its final state (done, failed, cancelled).
        Raises TimeoutError after timeout seconds, Error if the job is unknown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        sleep, missing = 0.01, 0
        while True:
            state = self.state()
            if state in ENDED:
                self._cleanup()
                return state
            missing = missing + 1 if state == "unknown" else 0
            if missing > 20:
                raise Error(f"no job {self.id} in {self.spool}")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.id} still {state} after {timeout} s")
            time.sleep(sleep)
            sleep = min(sleep * 2, interval)

    def cancel(self, timeout=30):
        """Ask the daemon to cancel the job (only its owner or root may), and wait for
        the answer: True once it is cancelled, False if it had ended before.
        Raises Error if the daemon refused."""
        if self.state() in ENDED:
            return self.state() == "cancelled"
        req = os.path.join(self.spool, "cancel", self.id)
        try:
            _spool.write_new(req, b"")
        except FileExistsError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = os.path.exists(req)  # first: once it is gone, the job shows the answer
            state = self.state()
            if state in ENDED:
                self._cleanup()
                return state == "cancelled"
            if not pending and state in ("queued", "running"):
                raise Error(f"egressd refused to cancel job {self.id} (only its owner or root may)")
            time.sleep(0.05)
        raise TimeoutError(f"job {self.id}: cancel not answered after {timeout} s")

    @property
    def result(self):
        """The job's record once it ended, else None: for a done job the result file
        (frames, width, height, bytes, wall_s, frames_per_s, ...), numbers as numbers;
        for a failed or cancelled one {"status": ..., "error": the daemon's one line}."""
        info = self._info()
        if not info or info["state"] not in ENDED:
            return None
        if info["state"] == "done":
            return info["result"]
        return {"status": info["state"], "error": info["error"]}

    @property
    def error(self):
        """The daemon's one-line reason for a failed or cancelled job, else None."""
        r = self.result
        return r.get("error") if r else None


def _format_for(output):
    if output.endswith(".y4m"):
        return "y4m"
    if "." not in os.path.basename(output.rstrip("/")):
        return "png"
    raise Error(f"output {output}: pass format='y4m' or 'png'")


def submit(latents, output, decoder=None, format=None, spool=None, config=None, staging=None, **keys):
    """Submit one job; returns its Job at once.

    latents: a numpy array or torch tensor ([frames, channels, h, w], or 5-D
    as the job file's layout key says), or the path of a .npy/.safetensors
    file the daemon can read.  output: the y4m file or png directory to write
    (made absolute).  decoder: latent2rgb (default), taesd, taehv or wan_vae
    (then weights=; taehv also taehv_model=).
    format: y4m or png (default: from output's name).  keys: any other job key
    (fps=24, chunk_frames=8, l2r_preset="wan21", layout="bcthw", ...)."""
    spool = _spool.find_spool(spool, config)
    output = os.path.abspath(os.fspath(output))
    job_id = _spool.new_id(output)
    staged = None
    if isinstance(latents, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(latents))
    else:
        staging = staging or os.path.join(spool, "staging")
        if not os.path.isdir(staging):
            raise Error(f"staging directory {staging} does not exist (pass staging=)")
        path = staged = _latents.stage(latents, staging, job_id)
    fields = {"latents": path, "output": output, "format": format or _format_for(output)}
    if decoder:
        fields["decoder"] = decoder
    for k, v in keys.items():
        if k in ("weights", "vae_config") and v is not None:
            v = os.path.abspath(os.fspath(v))
        fields[k] = v
    lines = ["[job]"]
    for k, v in fields.items():
        v = ",".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)
        if "\n" in v or "\r" in v:
            raise Error(f"job key {k}: the value must be one line")
        lines.append(f"{k} = {v}")
    try:
        _spool.submit_text(spool, job_id, "\n".join(lines) + "\n")
    except BaseException:
        if staged:
            os.unlink(staged)
        raise
    return Job(job_id, spool, staged)
