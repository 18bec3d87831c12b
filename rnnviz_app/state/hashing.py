"""Content digests used as cache keys: SHA-256 over every byte (never sampled)."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def digest(*parts: Any) -> str:
    """SHA-256 over every byte of the parts (arrays hashed in full with dtype and shape).

    Parameters
    ----------
    *parts : ndarray, torch tensor, bytes or any object with a stable ``repr``

    Returns
    -------
    str
        64 hex digits.
    """
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"nd{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        elif hasattr(p, "detach") and hasattr(p, "cpu"):  # torch tensor
            h.update(digest(p.detach().cpu().numpy()).encode())
        elif isinstance(p, (bytes, bytearray, memoryview)):
            h.update(b"b" + bytes(p))
        else:
            h.update(repr(p).encode())
        h.update(b"\x00")
    return h.hexdigest()
