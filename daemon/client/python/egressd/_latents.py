"""Latents to a file the daemon reads: .npy (float16, float32) or .safetensors (bfloat16)."""
import io
import json
import os
import struct

import numpy as np

from ._spool import write_new


def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"


def safetensors_bytes(name, dtype, shape, data):
    """One tensor as a .safetensors file: an 8-byte header length, the JSON header
    (padded to 8 bytes with blanks), the raw little-endian data."""
    header = {name: {"dtype": dtype, "shape": [int(s) for s in shape], "data_offsets": [0, len(data)]}}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + bytes(data)


def encode(latents):
    """(suffix, bytes) for a numpy array or a torch tensor.

    float16 and float32 become .npy; bfloat16 (torch) becomes .safetensors,
    the one format the daemon reads it from; other float types become float32."""
    if _is_torch(latents):
        import torch

        t = latents.detach().cpu().contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().astype("<i2").tobytes()
            return ".safetensors", safetensors_bytes("latents", "BF16", t.shape, raw)
        if t.dtype not in (torch.float16, torch.float32):
            t = t.float()
        latents = t.numpy()
    a = np.asarray(latents)
    if a.dtype not in (np.float16, np.float32):
        a = a.astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return ".npy", buf.getbuffer()


def stage(latents, directory, job_id):
    """Write latents into directory under the job's id; the path."""
    suffix, data = encode(latents)
    path = os.path.join(os.path.abspath(directory), job_id + suffix)
    write_new(path, data)
    return path
