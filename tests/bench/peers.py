#!/usr/bin/env python3
"""PyTorch peers for the compute-bound regime of `make bench`.

    peers.py --latents L.npy --weights W.safetensors --out DIR
             [--chunk 8] [--workers 4] [--buffers 8] [--vram-buffers 2]
             [--fps 24:1] [--modes naive,full] [--ref EGRESSD.y4m] [--check-frames 16]

The same job egressd runs (the same .npy latents, the same TAESD safetensors
weights, the same output bytes: a y4m stream with egressd's header, I420
BT.601 limited range per daemon/frame.h, clamp/quantise per daemon/taesd.h),
done the two ways a PyTorch user would:

  naive  the loop everyone starts with: upload a chunk, decode (fp16,
         channels_last), `.cpu()`, write the frames, repeat; fsync at the end.
  full   the recipe egressd implements, in PyTorch: latents through pinned
         staging buffers on the compute stream, decode into one of
         --vram-buffers device buffers, D2H on a separate copy stream into
         --buffers pinned host buffers, CUDA events as the only barriers, a
         pool of --workers writer threads (os.pwritev at each chunk's offset,
         GIL released), fsync at the end.

The network is taesd.py's Decoder from tests/gpu/taesd_torch_check.py (the
flux_2 variant when the weights have its pool tensors: taef2), loaded with
load_state_dict(strict=True); cudnn.benchmark on, one untimed warm-up
chunk, no torch.compile.  Timing: from the first latent read to the fsync and
rename of the output, like egressd's wall_s (which starts when the producer
claims the job and ends when the output is in place).

Prints, per mode: "PEER mode=M frames=N wall_s=S frames_per_s=F bytes=B"; with
--ref, "PEERCHECK mode=M ..." comparing the first --check-frames frames with
egressd's output (different fp16 kernels: a few code values apart, not
identical).  Exit 0, 1 on error, 77 without PyTorch or CUDA.
"""
import argparse
import concurrent.futures
import os
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:
    print("peers: %s, skipped" % e)
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu"))
from taesd_torch_check import Decoder, load_safetensors  # noqa: E402

TAG = b"FRAME\n"


def y4m_header(w, h, fps):
    num, _, den = fps.partition(":")
    return ("YUV4MPEG2 W%d H%d F%s:%s Ip A1:1 C420jpeg XCOLORRANGE=LIMITED\n" % (w, h, num, den or "1")).encode()


def to_i420(y):
    """[n, 3, H, W] network output -> [n, H*W*3/2] uint8 I420, on y's device.

    Quantisation as egr_taesd_quant_u8: clamp to [0, 1] with NaN -> 0, then
    one binary32 multiply by 255 and one add of 0.5 (two separate kernels,
    so no FMA), truncated.  Colour as egr_frame_rgb_to_i420: integer BT.601
    limited range, chroma from rounded 2x2 means; floor division by 256 is
    the C arithmetic shift.
    """
    v = torch.nan_to_num(y.float(), nan=0.0).clamp_(0.0, 1.0)
    # contiguous: the network's output is channels_last, and the views below
    # need NCHW
    q = ((v * 255.0) + 0.5).to(torch.int32).contiguous()
    n, _, h, w = q.shape
    r, g, b = q[:, 0], q[:, 1], q[:, 2]
    yy = torch.div(66 * r + 129 * g + 25 * b + 128, 256, rounding_mode="floor") + 16
    m = q.view(n, 3, h // 2, 2, w // 2, 2).sum(dim=(3, 5))
    m = torch.div(m + 2, 4, rounding_mode="floor")
    r2, g2, b2 = m[:, 0], m[:, 1], m[:, 2]
    cb = torch.div(-38 * r2 - 74 * g2 + 112 * b2 + 128, 256, rounding_mode="floor") + 128
    cr = torch.div(112 * r2 - 94 * g2 - 18 * b2 + 128, 256, rounding_mode="floor") + 128
    return torch.cat([yy.reshape(n, -1), cb.reshape(n, -1), cr.reshape(n, -1)], dim=1).to(torch.uint8)


def decode(net, x):
    return net(x.half().contiguous(memory_format=torch.channels_last))


def pwritev_all(fd, bufs, off):
    views = [memoryview(b).cast("B") for b in bufs]
    while views:
        w = os.pwritev(fd, views, off)
        off += w
        while views and w >= len(views[0]):
            w -= len(views[0])
            views.pop(0)
        if views and w:
            views[0] = views[0][w:]


def finish(fd, tmp, path):
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, path)


def run_naive(net, lat, path, hdr, chunk):
    n_all = lat.shape[0]
    tmp = path + ".tmp"
    t0 = time.perf_counter()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(os.dup(fd), "wb", buffering=1 << 20) as f:
        f.write(hdr)
        for i in range(0, n_all, chunk):
            x = torch.from_numpy(lat[i:i + chunk]).to("cuda")
            fr = to_i420(decode(net, x)).cpu().numpy()
            for k in range(fr.shape[0]):
                f.write(TAG)
                f.write(fr[k].data)
    finish(fd, tmp, path)
    return time.perf_counter() - t0


def run_full(net, lat, path, hdr, chunk, workers, nhost, nvram):
    n_all, c, lh, lw = lat.shape
    fb = 64 * lh * lw * 3 // 2
    ofb = len(TAG) + fb
    dev = torch.device("cuda")
    comp = torch.cuda.Stream()
    copy = torch.cuda.Stream()
    nstage = 3
    ldt = torch.from_numpy(lat[:1]).dtype
    stage = [torch.empty((chunk, c, lh, lw), dtype=ldt).pin_memory() for _ in range(nstage)]
    stage_np = [s.numpy() for s in stage]
    host = [torch.empty((chunk, fb), dtype=torch.uint8).pin_memory() for _ in range(nhost)]
    host_np = [h.numpy() for h in host]
    dout = [torch.empty((chunk, fb), dtype=torch.uint8, device=dev) for _ in range(nvram)]
    stage_ev = [None] * nstage	# H2D from staging s issued and recorded
    copied_ev = [None] * nvram	# D2H out of device buffer k done
    fut = [None] * nhost	# writer of host buffer j
    tmp = path + ".tmp"
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)

    def write_chunk(ev, j, first, n):
        ev.synchronize()	# the D2H into host[j] is complete (GIL released while waiting)
        bufs = []
        for k in range(n):
            bufs += [TAG, host_np[j][k]]
        pwritev_all(fd, bufs, len(hdr) + first * ofb)

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, hdr, 0)
    for ci, first in enumerate(range(0, n_all, chunk)):
        n = min(chunk, n_all - first)
        k, j, s = ci % nvram, ci % nhost, ci % nstage
        if fut[j] is not None:		# backpressure: host buffer j still being written
            fut[j].result()
        if stage_ev[s] is not None:	# staging s still being uploaded
            stage_ev[s].synchronize()
        stage_np[s][:n] = lat[first:first + n]
        with torch.cuda.stream(comp):
            if copied_ev[k] is not None:	# device buffer k still being copied out
                comp.wait_event(copied_ev[k])
            x = stage[s][:n].to(dev, non_blocking=True)
            stage_ev[s] = torch.cuda.Event(blocking=True)
            stage_ev[s].record(comp)
            dout[k][:n].copy_(to_i420(decode(net, x)))
            decoded = torch.cuda.Event()
            decoded.record(comp)
        with torch.cuda.stream(copy):
            copy.wait_event(decoded)
            host[j][:n].copy_(dout[k][:n], non_blocking=True)
            ev = torch.cuda.Event(blocking=True)
            ev.record(copy)
        copied_ev[k] = ev
        fut[j] = pool.submit(write_chunk, ev, j, first, n)
    for f in fut:
        if f is not None:
            f.result()
    finish(fd, tmp, path)
    dt = time.perf_counter() - t0
    pool.shutdown()
    return dt


def read_y4m_frames(path, nframes):
    with open(path, "rb") as f:
        hdr = f.readline()
        t = hdr.split()
        w, h = int(t[1][1:]), int(t[2][1:])
        fb = w * h * 3 // 2
        raw = f.read(nframes * (len(TAG) + fb))
    a = np.frombuffer(raw, np.uint8).reshape(-1, len(TAG) + fb)
    return hdr, a[:, len(TAG):]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latents", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True, help="directory for the outputs (removed after the check)")
    ap.add_argument("--chunk", type=int, default=8)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--buffers", type=int, default=8, help="pinned host buffers (egressd: ring slots)")
    ap.add_argument("--vram-buffers", type=int, default=2)
    ap.add_argument("--fps", default="24:1")
    ap.add_argument("--modes", default="naive,full")
    ap.add_argument("--ref", help="egressd's output of the same job, to compare frames with")
    ap.add_argument("--check-frames", type=int, default=16)
    ap.add_argument("--keep", action="store_true", help="keep the outputs")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("peers: no CUDA device, skipped")
        return 77
    torch.backends.cudnn.benchmark = True
    lat = np.load(a.latents, mmap_mode="c")	# copy-on-write: writable for torch, nothing copied
    n_all, c, lh, lw = lat.shape
    sd = load_safetensors(a.weights)
    # flux_2 (taef2): the GroupNorm pool branch's tensors say so (docs/TAESD.md)
    net = Decoder(c, use_midblock_gn=any(".pool." in k for k in sd))
    net.load_state_dict(sd, strict=True)
    net = net.cuda().half().to(memory_format=torch.channels_last).eval()
    hdr = y4m_header(8 * lw, 8 * lh, a.fps)
    print("peers: %s, torch %s, %d frames of %dx%d, chunk %d, %d writer threads, %d pinned host buffers" % (
        torch.cuda.get_device_name(0), torch.__version__, n_all, 8 * lw, 8 * lh, a.chunk, a.workers, a.buffers),
        flush=True)
    bad = 0
    with torch.inference_mode():
        # warm-up: CUDA context, cuDNN autotuning for this shape, allocator
        for _ in range(2):
            to_i420(decode(net, torch.from_numpy(lat[:a.chunk]).cuda())).cpu()
        torch.cuda.synchronize()
        for mode in a.modes.split(","):
            path = os.path.join(a.out, "peer-%s.y4m" % mode)
            if mode == "naive":
                dt = run_naive(net, lat, path, hdr, a.chunk)
            elif mode == "full":
                dt = run_full(net, lat, path, hdr, a.chunk, a.workers, a.buffers, a.vram_buffers)
            else:
                print("peers: unknown mode %r" % mode)
                return 1
            size = os.path.getsize(path)
            want = len(hdr) + n_all * (len(TAG) + 64 * lh * lw * 3 // 2)
            print("PEER mode=%s frames=%d wall_s=%.6f frames_per_s=%.3f bytes=%d" % (mode, n_all, dt, n_all / dt, size),
                  flush=True)
            if size != want:
                print("peers: %s wrote %d bytes, expected %d" % (mode, size, want))
                bad += 1
            if a.ref:
                k = min(a.check_frames, n_all)
                h0, mine = read_y4m_frames(path, k)
                h1, ref = read_y4m_frames(a.ref, k)
                d = np.abs(mine.astype(np.int16) - ref.astype(np.int16))
                print("PEERCHECK mode=%s vs egressd: %d frames, header %s, max |diff| %d, %.2f%% of bytes differ, "
                      "mean |diff| %.4f" % (mode, k, "equal" if h0 == h1 else "DIFFERS", d.max(),
                                           100.0 * (d > 0).mean(), d.mean()), flush=True)
                if h0 != h1:
                    bad += 1
            if not a.keep:
                os.unlink(path)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
