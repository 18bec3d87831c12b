"""The bundle's shared PCA basis, fitted before any part is written (issue 21).

The build traces every sequence once: the analyses of each block need the basis to place its
states (``step:pc1 ..``), so the basis is fitted first on a bounded, seeded sample of whole
sequences: rows drawn at random (a few from each of the input's groups, the groups in random
order, so that reading them reads a few groups) until their valid steps reach :data:`FIT_POINTS`
(every row when the data holds fewer steps: the basis is then the exact PCA of every valid step,
as before). The live Trajectories page fits its basis on at most 20,000 sampled states too
(:class:`rnnviz_core.trajectories.StatePCA`); every state is then placed on the basis exactly.

Where those rows' states come from: when the groups that hold them are the build's blocks and
their states fit in ``bundle_engines.HOLD_BYTES``, the local engine analyses those blocks first,
holds them (their parts wait for the basis) and fits on the rows' states from that pass
(:func:`held_groups`, :func:`fit_from_held`); otherwise (and on Ray) the rows are traced on
their own before the pass (:func:`fit`). The two give the same basis.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import numpy as np

#: valid steps the basis is fitted on, at most (plus the rest of the last sequence drawn)
FIT_POINTS = 20_000
#: rows drawn from each group of the input (see :func:`fit_rows`)
PER_GROUP = 16
#: the manifest's words for the rule (``analysis.pca.rule``)
RULE = ("PCA of the valid steps of whole sequences drawn at random (seed 0; up to 16 from each of the input's "
        "groups, taken in random order) until they hold 20,000 steps (every step when the data holds fewer); "
        "every step of every sequence is placed on it exactly")


def fit_rows(lengths: np.ndarray, points: int = FIT_POINTS, seed: int = 0, starts: np.ndarray | None = None,
             per_group: int = PER_GROUP) -> np.ndarray:
    """Rows (sorted) whose valid steps the basis is fitted on: all rows when they hold at most
    ``points`` steps, else rows drawn at random (``seed``) until their steps reach ``points``.

    ``starts`` (the first row of each group the input is stored in, then the number of rows:
    ``Source.group_starts``): the groups are taken in a random order, ``per_group`` rows at random
    from each, in rounds (a second round when the first falls short), so that reading the rows
    reads a few groups, not most of the input (200 rows drawn at random from 1M sequences touch
    200 of its 489 groups). None: one group."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    if int(lengths.sum()) <= points:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if starts is None:
        order = rng.permutation(n)
    else:   # rounds over the groups (in one random order): the next per_group rows of each group's own shuffle
        starts = np.asarray(starts, dtype=np.int64)
        groups = rng.permutation(len(starts) - 1)
        shuffled = [starts[g] + rng.permutation(int(starts[g + 1] - starts[g])) for g in groups]
        longest = max((len(s_) for s_ in shuffled), default=0)
        order = np.concatenate([s_[r:r + per_group] for r in range(0, longest, per_group) for s_ in shuffled])
    k = int(np.searchsorted(np.cumsum(lengths[order]), points)) + 1
    return np.sort(order[:k]).astype(np.int64)


def source_lengths(src: Any) -> np.ndarray:
    """Every sequence's length, in row order (the length column only of a sequence file)."""
    if src.ds is not None:
        return np.asarray(src.ds.lengths, dtype=np.int64)
    import pyarrow.parquet as pq

    return pq.read_table(src.path, columns=["length"])["length"].to_numpy().astype(np.int64)


def model_facts(tr: Any) -> dict:
    """The manifest's facts about the model from a trace: its recurrent modules, its output shape
    and the analysed layer's units."""
    return {"modules": [dataclasses.asdict(m) for m in tr.modules], "logit_shape": list(tr.logits.shape[1:]),
            "units": int(tr.get("h", layer=-1, direction="fwd").shape[2])}


def fit(src: Any, worker: Any, block_arrays: Any, pca_from_moments: Any, points: int | None = None,
        lengths: np.ndarray | None = None) -> dict:
    """Trace the fit rows (no gates) and fit the basis on their valid steps (``lengths``: every
    sequence's, when the caller has read them already).

    Returns ``{"pca": <pca.safetensors arrays>, "first": {modules, logit_shape, units},
    "fitted_points": int, "points": int}`` (``points``: valid steps of every sequence)."""
    from .trajectories import valid_mask

    lengths = source_lengths(src) if lengths is None else lengths
    rows = fit_rows(lengths, FIT_POINTS if points is None else points, starts=src.group_starts())
    # the fit rows read together (only the groups that hold them) and traced in one call
    b = block_arrays(src.read_rows(rows), src.meta)
    tr = worker._trace(b, gates=False)
    h = tr.get("h", layer=-1, direction="fwd")
    first = model_facts(tr)
    states = h if b["lengths"].min() >= h.shape[1] else h[valid_mask(b["lengths"], h.shape[1])]
    return basis(states.reshape(-1, h.shape[2]), first, int(lengths.sum()), pca_from_moments)


def basis(states: np.ndarray, first: Mapping, total: int, pca_from_moments: Any) -> dict:
    """The fit's result (see :func:`fit`) from the fit rows' valid states [steps, H], row by row."""
    import warnings

    import torch

    # in torch: it keeps to torch's thread setting (numpy's BLAS starts its own threads). The mean
    # in float64; the centred states' product in float32, as the states are stored (the float64
    # product took 2.5x longer; the two covariances differ by about 4e-7 of their largest entry)
    with warnings.catch_warnings():   # a trace's arrays are read-only; this only reads them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        allp = torch.from_numpy(states)
    mean = allp.double().mean(dim=0)
    c = allp - mean.to(allp.dtype)
    pca = pca_from_moments(int(allp.shape[0]), mean.numpy(), (c.T @ c).double().numpy(), min(2, first["units"]))
    return {"pca": pca, "first": dict(first), "fitted_points": int(allp.shape[0]), "points": int(total), "rule": RULE}


def held_groups(src: Any, lengths: np.ndarray, block_bytes_per_step: int,
                budget: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(fit rows, the input's groups that hold them) of sequences of ``lengths`` when those groups
    are the build's blocks and their states (``block_bytes_per_step`` bytes a sequence-step) take
    at most ``budget`` bytes; None otherwise. The build then analyses those blocks first and fits
    the basis on the fit rows' states from that pass (no trace of their own); their parts wait
    for the basis, so their states are held meanwhile."""
    if not src.blocks_are_groups():
        return None
    starts = src.group_starts()
    rows = fit_rows(lengths, FIT_POINTS, starts=starts)
    groups = np.unique(np.searchsorted(starts, rows, side="right") - 1)
    held = int(sum(int(lengths[starts[g]:starts[g + 1]].sum()) for g in groups)) * int(block_bytes_per_step)
    return (rows, groups) if held <= budget else None


def fit_from_held(held: Mapping[int, Mapping], rows: np.ndarray, lengths: np.ndarray, pca_from_moments: Any) -> dict:
    """:func:`fit` from the states of the held blocks (``held``: block -> its ``rows``, ``offsets``
    (each sequence's first valid step in ``hv``, then the number of steps), ``hv`` (the valid
    steps' states) and ``first``), on the fit rows, in row order: the basis the fit rows' own trace
    gives."""
    parts = []
    wanted = np.asarray(rows, dtype=np.int64)
    for k in sorted(held):
        blk = held[k]
        local = np.flatnonzero(np.isin(blk["rows"], wanted))
        off = blk["offsets"]
        idx = np.concatenate([np.arange(off[i], off[i + 1]) for i in local]) if local.size else np.zeros(0, np.int64)
        parts.append(np.asarray(blk["hv"])[idx])
    first = held[min(held)]["first"]
    return basis(np.ascontiguousarray(np.concatenate(parts)), first, int(np.sum(lengths)), pca_from_moments)


def block_hash(tbl: Any, meta: Mapping, block_arrays: Any, row_hash_sum: Any) -> int:
    """The data hash's part of one block (no trace)."""
    b = block_arrays(tbl, meta)
    return row_hash_sum(b["rows"], b["ids"], b["lengths"], b["X"], b["y"])
