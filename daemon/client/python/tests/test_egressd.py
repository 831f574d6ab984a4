"""Tests of the egressd package against a real daemon (tests/it/it_python.sh starts one).

$EGRESSD_CONFIG names the daemon's configuration, $EGR_TEST_DIR a scratch
directory, $EGR_FAULT_WRITE_DELAY_MS how slow the daemon's writes were made.
Runs under pytest, or alone: python3 test_egressd.py (exit 0 pass, 1 fail).
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import egressd  # noqa: E402
from egressd import _latents  # noqa: E402

DIR = os.environ.get("EGR_TEST_DIR", "/tmp")


def latents(frames, seed=1, h=8, w=16):
    return np.random.default_rng(seed).standard_normal((frames, 4, h, w), dtype=np.float32)


def test_numpy_array_to_video():
    job = egressd.submit(latents(8), output=os.path.join(DIR, "np.y4m"), chunk_frames=4)
    staged = job._staged
    assert staged and os.path.exists(staged)
    assert job.wait(timeout=60) == "done", job.result
    r = job.result
    assert r["frames"] == 8 and r["width"] == 128 and r["height"] == 64, r
    assert os.path.getsize(os.path.join(DIR, "np.y4m")) == r["bytes"]
    assert job.progress()["frames_done"] == 8
    assert not os.path.exists(staged), "the staged latents are removed once the job ended"


def test_progress_then_cancel():
    out = os.path.join(DIR, "long.y4m")
    job = egressd.submit(latents(400, seed=2), output=out, chunk_frames=1)
    seen = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        p = job.progress()
        if p["state"] == "running" and p["frames_done"] > 0:
            seen = p
            break
        time.sleep(0.02)
    assert seen, f"no progress seen: {job.progress()}"
    assert seen["frames_total"] == 400 and seen["frames_per_s"] > 0 and seen["eta_s"] is not None, seen
    assert job.cancel() is True
    assert job.state() == "cancelled"
    assert job.result["error"].startswith("cancelled by uid "), job.result
    assert not os.path.exists(out)
    assert not [f for f in os.listdir(DIR) if f.startswith(".long.y4m")], os.listdir(DIR)


def test_bfloat16_goes_as_safetensors():
    f32 = latents(6, seed=3)
    bits = f32.view(np.uint32) >> 16  # bfloat16: the top half of each float32
    exact = (bits << 16).astype(np.uint32).view(np.float32)
    st = os.path.join(DIR, "bf16.safetensors")
    with open(st, "wb") as f:
        f.write(_latents.safetensors_bytes("latents", "BF16", f32.shape, bits.astype("<u2").tobytes()))
    a = egressd.submit(st, output=os.path.join(DIR, "bf16.y4m"))
    b = egressd.submit(exact, output=os.path.join(DIR, "f32.y4m"))
    assert a.wait(60) == "done" and b.wait(60) == "done", (a.result, b.result)
    with open(os.path.join(DIR, "bf16.y4m"), "rb") as x, open(os.path.join(DIR, "f32.y4m"), "rb") as y:
        assert x.read() == y.read(), "bfloat16 safetensors decode exactly as the same values in float32"


def test_torch_tensor():
    try:
        import torch
    except ImportError:
        print("skip: torch not installed")
        return
    t = torch.randn(5, 4, 8, 16).to(torch.bfloat16)
    job = egressd.submit(t, output=os.path.join(DIR, "torch.y4m"))
    assert job._staged.endswith(".safetensors")
    assert job.wait(60) == "done", job.result
    assert job.result["frames"] == 5


def test_failed_job_says_why():
    job = egressd.submit(latents(2), output=os.path.join(DIR, "bad.y4m"), decoder="nope")
    assert job.wait(60) == "failed"
    assert "decoder" in job.error, job.error


def test_png_directory_and_keys():
    out = os.path.join(DIR, "frames")
    job = egressd.submit(latents(3).astype(np.float64), output=out, fps="30000/1001")
    assert job.wait(60) == "done", job.result
    # the frames, and the marker that says egressd made the directory (overwrite = yes may replace it)
    assert sorted(os.listdir(out)) == [".egressd-output", "frame_000001.png", "frame_000002.png", "frame_000003.png"]


def main():
    failed = 0
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                print(f"ok: {name}")
            except Exception as e:  # noqa: BLE001 - a test runner reports every failure
                failed += 1
                print(f"FAIL: {name}: {type(e).__name__}: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
