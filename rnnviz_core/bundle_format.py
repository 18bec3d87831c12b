"""The bundle format's shared facts (split from :mod:`rnnviz_core.bundle`, issue 20): the format
name and version, the default options and read limits, the names of the per-step columns, the
hashes (model, data, files) and the PCA basis as a fitted ``StatePCA``."""
from __future__ import annotations

import builtins
import hashlib
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import BundleError

FORMAT = "rnnviz-bundle"
FORMAT_VERSION = 1
#: cheap methods (one backward pass each); pass ``methods=`` for more
DEFAULT_METHODS = ("grad_norm", "input_x_grad")
DEFAULT_BATCH = 256
DEFAULT_SAMPLE = 64
#: read limits (bundles may be uploaded): the whole bundle, the manifest, the number of files
DEFAULT_MAX_BYTES = 2 * 1024**3
MAX_MANIFEST_BYTES = 8 * 1024**2
SAFE_NAME = re.compile(r"^(sequences/)?[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
STEP_PREFIX = "step:"
SCORE_PREFIX = "score:"


# ============================================================================ hashing
def model_hash(model: Any) -> str:
    """SHA-256 of a model's parameters and buffers (names, dtypes, shapes, values), hex.

    The same weights give the same hash whatever file format they were saved in.
    """
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def row_hash_sum(rows: np.ndarray, ids: np.ndarray, lens: np.ndarray, X: np.ndarray, y: np.ndarray | None) -> int:
    """Sum modulo 2**256 of the SHA-256 of each sequence (row, id, length, values, label).

    A sum of per-sequence hashes does not depend on how the data is cut into blocks, so every
    engine reports the same data hash.
    """
    n = len(rows)
    if n == 0:
        return 0
    X = np.asarray(X)
    # each sequence's values as bytes, step after step: a slice of its row of one contiguous copy
    # (no copy per sequence); the same bytes as ``X[i, :length].tobytes()``
    flat = np.ascontiguousarray(X).reshape(n, -1).view(np.uint8)
    step_bytes = flat.shape[1] // X.shape[1] if X.shape[1] else 0
    labels = None
    if y is not None:
        ya = np.asarray(y)
        if ya.dtype != object:   # each label's bytes, as ``np.ascontiguousarray(y[i]).tobytes()``
            labels = np.ascontiguousarray(ya).reshape(n, -1).view(np.uint8)
    total = 0
    for i, (row, length) in enumerate(zip(np.asarray(rows).tolist(), np.asarray(lens).tolist())):
        h = hashlib.sha256(f"{int(row)}|{ids[i]}|{int(length)}|".encode())
        h.update(flat[i, : int(length) * step_bytes])
        if y is not None:
            h.update(b"|")
            h.update(labels[i] if labels is not None else np.ascontiguousarray(y[i]).tobytes())
        total += int.from_bytes(h.digest(), "big")
    return total % (1 << 256)


def file_sha256(path: Path, limit: int | None = None) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with builtins.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            if limit is not None and size > limit:
                raise BundleError(f"'{path.name}' is larger than its manifest entry says; the bundle is damaged. "
                                  f"Build it again.")
            h.update(chunk)
    return h.hexdigest(), size


def fitted_pca(state: Mapping) -> Any:
    from .trajectories import StatePCA

    pca = StatePCA(n_components=int(np.asarray(state["components"]).shape[0]), max_points=None)
    pca.mean_ = np.asarray(state["mean"], dtype=np.float64)
    pca.components_ = np.asarray(state["components"], dtype=np.float64)
    pca.explained_variance_ = np.asarray(state["explained_variance"], dtype=np.float64)
    pca.explained_variance_ratio_ = np.asarray(state["explained_variance_ratio"], dtype=np.float64)
    pca.n_samples_ = int(np.asarray(state["n_samples"]).reshape(-1)[0])
    return pca
