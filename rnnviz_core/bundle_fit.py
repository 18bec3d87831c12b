"""The bundle's shared PCA basis, fitted before the one pass over the data (issue 21).

The build traces every sequence once: the analyses of each block need the basis to place its
states (``step:pc1 ..``), so the basis is fitted first on a bounded, seeded sample of whole
sequences: rows drawn at random until their valid steps reach :data:`FIT_POINTS` (every row when
the data holds fewer steps: the basis is then the exact PCA of every valid step, as before). The
live Trajectories page fits its basis on at most 20,000 sampled states too
(:class:`rnnviz_core.trajectories.StatePCA`); every state is then placed on the basis exactly.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

#: valid steps the basis is fitted on, at most (plus the rest of the last sequence drawn)
FIT_POINTS = 20_000
#: the manifest's words for the rule (``analysis.pca.rule``)
RULE = ("PCA of the valid steps of whole sequences drawn at random (seed 0) until they hold 20,000 steps "
        "(every step when the data holds fewer); every step of every sequence is placed on it exactly")


def fit_rows(lengths: np.ndarray, points: int = FIT_POINTS, seed: int = 0) -> np.ndarray:
    """Rows (sorted) whose valid steps the basis is fitted on: all rows when they hold at most
    ``points`` steps, else rows drawn at random (``seed``) until their steps reach ``points``."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if int(lengths.sum()) <= points:
        return np.arange(len(lengths), dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(lengths))
    k = int(np.searchsorted(np.cumsum(lengths[order]), points)) + 1
    return np.sort(order[:k]).astype(np.int64)


def source_lengths(src: Any) -> np.ndarray:
    """Every sequence's length, in row order (the length column only of a sequence file)."""
    if src.ds is not None:
        return np.asarray(src.ds.lengths, dtype=np.int64)
    import pyarrow.parquet as pq

    return pq.read_table(src.path, columns=["length"])["length"].to_numpy().astype(np.int64)


def fit(src: Any, worker: Any, block_arrays: Any, pca_from_moments: Any, points: int | None = None) -> dict:
    """Trace the fit rows (no gates) and fit the basis on their valid steps.

    Returns ``{"pca": <pca.safetensors arrays>, "first": {modules, logit_shape, units},
    "fitted_points": int, "points": int}`` (``points``: valid steps of every sequence)."""
    import torch

    from .trajectories import valid_mask

    lengths = source_lengths(src)
    rows = fit_rows(lengths, FIT_POINTS if points is None else points)
    total = int(lengths.sum())
    pts, first = [], None
    wanted = rows
    for tbl in src.tables():
        r = tbl["row"].to_numpy()
        keep = np.flatnonzero(np.isin(r, wanted))
        if not keep.size:
            continue
        b = block_arrays(tbl.take(keep), src.meta)
        tr = worker._trace(b, gates=False)
        h = tr.get("h", layer=-1, direction="fwd")
        pts.append(torch.from_numpy(h[valid_mask(b["lengths"], h.shape[1])]).double())
        if first is None:
            first = {"modules": [dataclasses.asdict(m) for m in tr.modules], "logit_shape": list(tr.logits.shape[1:]),
                     "units": int(h.shape[2])}
        wanted = wanted[~np.isin(wanted, r)]
        if not wanted.size:
            break
    # float64 in torch: it keeps to torch's thread setting (numpy's BLAS starts its own threads)
    allp = torch.cat(pts)
    mean = allp.mean(dim=0)
    c = allp - mean
    pca = pca_from_moments(int(allp.shape[0]), mean.numpy(), (c.T @ c).numpy(), min(2, first["units"]))
    return {"pca": pca, "first": first, "fitted_points": int(allp.shape[0]), "points": total, "rule": RULE}


def block_hash(tbl: Any, meta: Mapping, block_arrays: Any, row_hash_sum: Any) -> int:
    """The data hash's part of one block (no trace)."""
    b = block_arrays(tbl, meta)
    return row_hash_sum(b["rows"], b["ids"], b["lengths"], b["X"], b["y"])
