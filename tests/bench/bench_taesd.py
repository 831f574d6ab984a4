#!/usr/bin/env python3
"""TAESD decode-alone benchmark: egressd vs PyTorch fp16 channels_last.

    bench_taesd.py EGRESSD_TEST_BIN|- [BATCH] [--sizes 512,1024] [--compile-sizes 512]

Runs `EGRESSD_TEST_BIN --bench BATCH` (egressd's decoder, fp16 latents in,
I420 frames out, CUDA-event timed, median of 7; it measures 512x512 and
1024x1024; "-" skips it) and the same network in PyTorch (taesd.py's layers
from taesd_torch_check.py; fp16, channels_last, inference_mode; eager, then
torch.compile at --compile-sizes unless EGR_NO_COMPILE is set) at --sizes
output.  torch.compile's mode is EGR_COMPILE_MODE (default
max-autotune-no-cudagraphs: issue 12's reference; max-autotune adds CUDA
graphs), one fresh compile per size (dynamic=False).  PyTorch is timed on the
network alone (no clamp, quantisation or colour conversion), which favours
it.  Prints one table; fraction of tensor-core peak against a measured fp16
GEMM and the H100 SXM datasheet (989 TFLOP/s dense fp16); and machine lines
for tests/bench/lib.sh: "GEMM tflops=T", "TORCH size=S eager=F compile=F|-".
"""
import os
import re
import subprocess
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu"))
from taesd_torch_check import Decoder  # noqa: E402


def flops(s):
    lat = s // 8
    f = 2 * 9 * 4 * 64 * lat * lat
    for shift, n in ((0, 9), (1, 10), (2, 10), (3, 4)):
        f += n * 2 * 9 * 64 * 64 * (lat << shift) ** 2
    f += 2 * 9 * 64 * 3 * (lat << 3) ** 2
    return f


def time_fn(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    res = []
    for _ in range(7):
        e0 = torch.cuda.Event(enable_timing=True)
        e1 = torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(iters):
            fn()
        e1.record()
        e1.synchronize()
        res.append(e0.elapsed_time(e1) / iters)
    return sorted(res)[3]


def parse_args(argv):
    pos, opt = [], {"--sizes": "512,1024", "--compile-sizes": "512,1024"}
    i = 0
    while i < len(argv):
        if argv[i] in opt and i + 1 < len(argv):
            opt[argv[i]] = argv[i + 1]
            i += 2
        else:
            pos.append(argv[i])
            i += 1
    sizes = [int(x) for x in opt["--sizes"].replace(" ", ",").split(",") if x]
    csizes = {int(x) for x in opt["--compile-sizes"].replace(" ", ",").split(",") if x}
    return pos[0], int(pos[1]) if len(pos) > 1 else 8, sizes, csizes


def egressd_alone(binp, batch):
    """size -> (fps, warps), the best warps count of `binp --bench batch`."""
    egr = {}
    if binp == "-":
        return egr
    try:
        out = subprocess.run([binp, "--bench", str(batch)], capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("egressd bench failed: %s" % e, flush=True)
        return egr
    for line in out.stdout.splitlines():
        m = re.match(r"EGRBENCH size=(\d+) batch=(\d+) warps=(\d+) ms_per_batch=([\d.]+) fps=([\d.]+)", line)
        if m:
            print(line, flush=True)
            s, w, fps = int(m.group(1)), int(m.group(3)), float(m.group(5))
            if fps > egr.get(s, (0, 0))[0]:
                egr[s] = (fps, w)
    if out.returncode:
        print("egressd bench failed:", out.stdout[-2000:], out.stderr[-2000:])
    return egr


def torch_alone(net, s, batch, compile_it, mode):
    x = [torch.randn(batch, 4, s // 8, s // 8, device="cuda").half().to(memory_format=torch.channels_last)
         for _ in range(3)]
    it = [0]
    iters = max(2, int(20 * (512 / s) ** 2)) if s <= 512 else 6

    def run(m):
        it[0] += 1
        return m(x[it[0] % 3])
    with torch.inference_mode():
        eager = batch * 1000 / time_fn(lambda: run(net), iters)
        print("TORCH size=%d eager=%.1f compile=-" % (s, eager), flush=True)
        comp = None
        if compile_it:
            try:
                t0 = time.time()
                torch._dynamo.reset()
                cnet = torch.compile(net, mode=mode, dynamic=False)
                cnet(x[0])
                comp = batch * 1000 / time_fn(lambda: run(cnet), iters)
                print("BENCH torch.compile(mode=%s) %d: compiled in %.0f s" % (mode, s, time.time() - t0), flush=True)
            except Exception as e:  # noqa: BLE001
                print("BENCH torch.compile failed: %s" % str(e).splitlines()[0][:200], flush=True)
    if comp:
        print("TORCH size=%d eager=%.1f compile=%.1f" % (s, eager, comp), flush=True)
    return eager, comp


def main():
    binp, batch, sizes, csizes = parse_args(sys.argv[1:])
    mode = os.environ.get("EGR_COMPILE_MODE", "max-autotune-no-cudagraphs")
    dev = torch.cuda.get_device_name(0)
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.half)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.half)
    ms = time_fn(lambda: a @ b, 10)
    peak = 2 * 8192 ** 3 / ms / 1e9
    del a, b
    print("BENCH device %s; measured fp16 GEMM %.0f TFLOP/s" % (dev, peak), flush=True)
    print("GEMM tflops=%.1f" % peak, flush=True)

    egr = egressd_alone(binp, batch)
    net = Decoder(4).cuda().half().to(memory_format=torch.channels_last).eval()
    rows = []
    for s in sizes:
        eager, comp = torch_alone(net, s, batch, s in csizes and not os.environ.get("EGR_NO_COMPILE"), mode)
        rows.append((s, eager, comp))

    print("\nTAESD decode alone, batch %d, %s; torch.compile mode %s" % (batch, dev, mode))
    print("%-9s %12s %12s %12s %8s %8s %9s %9s" % ("output", "egressd f/s", "eager f/s", "compile f/s",
                                                   "x eager", "x comp", "TFLOP/s", "%peak(m/d)"))
    for s, eager, comp in rows:
        e, w = egr.get(s, (0.0, 0))
        tf = e * flops(s) / 1e12
        print("%-9s %12s %12.1f %12s %8s %8s %9s %4.0f/%-4.0f%s" % (
            "%dx%d" % (s, s), "%.1f" % e if e else "-", eager, "%.1f" % comp if comp else "-",
            "%.2f" % (e / eager) if e else "-", "%.2f" % (e / comp) if comp and e else "-",
            "%.1f" % tf if e else "-", 100 * tf / peak, 100 * tf / 989, " (warps %d)" % w if e else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
