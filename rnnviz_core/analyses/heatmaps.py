"""Heatmap rows (units x time) with one shared colour range, and the order to show units in.

Inputs as in :mod:`rnnviz_core.trajectories`: ``states`` [N, T, H] padded past each length (or a
``Trace``), ``lengths`` ints [N] or ``None`` (inferred from NaN padding). Steps are numbered from 0;
padding never appears in a result.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..arrays import as_states as _as_states, blocks as _blocks, check_positive_int as _check_positive_int
from ..arrays import seq_ids as _seq_ids
from ..arrays import valid_mask
from ..errors import InputError

__all__ = ["HeatmapData", "heatmap_data", "unit_order"]


# ----------------------------------------------------------------------------- heatmaps
class HeatmapData(NamedTuple):
    """Tidy heatmap rows and the one colour range shared by every sequence in them.

    ``frame`` has columns ``seq, step, unit, value`` (valid steps only); ``domain`` is
    ``(-m, m)`` with m the largest |value| over the whole set, so zero sits in the middle of a
    diverging colour scale and equal colours mean equal values in every sequence.
    """

    frame: pd.DataFrame
    domain: tuple[float, float]


def heatmap_data(
    states: Any,
    lengths: Any = None,
    *,
    seqs: Sequence[int] | None = None,
    ids: Any = None,
    units: Sequence[int] | None = None,
    domain: tuple[float, float] | None = None,
) -> HeatmapData:
    """Heatmap rows (units x time) for a set of sequences, with one shared colour range.

    Parameters
    ----------
    seqs : row indices of the sequences to include (default all).
    units : unit indices to include (default all).
    domain : force a colour range (e.g. (-1, 1) for tanh states); default symmetric max |value|
        over the included sequences' valid steps.
    """
    arr, lens = _as_states(states, lengths)
    n, t, h = arr.shape
    seq_ids = _seq_ids(ids, n)
    rows = np.arange(n) if seqs is None else np.asarray(seqs, dtype=np.int64).reshape(-1)
    if rows.size == 0 or rows.min() < -n or rows.max() >= n:
        raise InputError(f"seqs must be row indices between 0 and {n - 1}.")
    cols = np.arange(h) if units is None else np.asarray(units, dtype=np.int64).reshape(-1)
    if cols.size == 0 or cols.min() < -h or cols.max() >= h:
        raise InputError(f"units must be unit indices between 0 and {h - 1}.")
    sub = arr[rows][:, :, cols]  # (S, T, U)
    mask = valid_mask(lens[rows], t)
    s_idx, t_idx = np.nonzero(mask)
    vals = sub[s_idx, t_idx]  # (P, U)
    u = cols.size
    frame = pd.DataFrame({
        "seq": np.repeat(seq_ids[rows][s_idx], u),
        "step": np.repeat(t_idx, u),
        "unit": np.tile(cols, s_idx.size),
        "value": vals.reshape(-1),
    }, copy=False)  # fresh arrays: no copy into one block (seconds at 10M rows)
    if domain is None:
        m = float(np.nanmax(np.abs(vals))) if vals.size and np.isfinite(vals).any() else 1.0
        m = m if m > 0 else 1.0
        domain = (-m, m)
    else:
        domain = (float(domain[0]), float(domain[1]))
        if not domain[0] < domain[1]:
            raise InputError(f"domain must be (low, high) with low < high; got {domain}.")
    frame.attrs["unit_order"] = [int(c) for c in cols]
    frame.attrs["n_units_total"] = int(h)
    return HeatmapData(frame, domain)


def _finite_variance(arr: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Per unit (last axis of ``arr`` [N, T, H]): the variance over the points ``keep`` [N, T]
    marks, in float64, two passes over blocks of sequences (zeros when none is kept)."""
    h = arr.shape[2]
    n_pts = int(keep.sum())
    if not n_pts:
        return np.zeros(h)
    total = np.zeros(h)
    for sl in _blocks(arr):
        total += arr[sl][keep[sl]].sum(axis=0, dtype=np.float64)
    mean = total / n_pts
    sq = np.zeros(h)
    for sl in _blocks(arr):
        sq += ((arr[sl][keep[sl]].astype(np.float64) - mean) ** 2).sum(axis=0)
    return sq / n_pts


def unit_order(states: Any, lengths: Any = None, *, order: str = "similarity", top: int | None = None) -> np.ndarray:
    """Unit indices in a readable order for a heatmap's rows (pass to :func:`heatmap_data` ``units=``).

    Parameters
    ----------
    states : [N, T, H] (or a Trace); lengths : [N] or None.
    order : ``"similarity"`` puts units that rise and fall together next to each other (average-
        linkage clustering of the units' values over every valid step, distance 1 - correlation,
        leaves in dendrogram order); ``"variance"`` puts the units that vary most first;
        ``"index"`` keeps 0..H-1.
    top : keep only the ``top`` units that vary most (then ordered by ``order``); None keeps all.

    Returns
    -------
    int64 array of unit indices, at most ``top`` long.
    """
    arr, lens = _as_states(states, lengths)
    if order not in ("similarity", "variance", "index"):
        raise InputError(f"order must be 'similarity', 'variance' or 'index'; got {order!r}.")
    h = arr.shape[2]
    # the finite valid points are read a block of sequences at a time and only the sampled ones are
    # copied (a float64 copy of every point cost seconds at 1,000 x 1,000 x 128)
    keep = valid_mask(lens, arr.shape[1])
    for sl in _blocks(arr):
        keep[sl] &= np.isfinite(arr[sl]).all(axis=2)
    n_pts = int(keep.sum())
    var = _finite_variance(arr, keep) if (top is not None or order == "variance") else None
    units = np.arange(h)
    if top is not None:
        top = _check_positive_int(top, "top")
        units = np.sort(np.argsort(-var, kind="stable")[:top])
    if order == "index" or units.size < 3:
        return units.astype(np.int64) if order != "variance" else units[np.argsort(-var[units], kind="stable")]
    if order == "variance":
        return units[np.argsort(-var[units], kind="stable")].astype(np.int64)
    from scipy.cluster.hierarchy import leaves_list, linkage

    s_idx, t_idx = np.nonzero(keep)
    if n_pts > 20000:  # the order needs only a sample of steps
        pick = np.random.default_rng(0).choice(n_pts, 20000, replace=False)
        s_idx, t_idx = s_idx[pick], t_idx[pick]
    sub = arr[s_idx, t_idx][:, units].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(sub, rowvar=False)
    corr = np.nan_to_num(corr, nan=0.0)
    dist = np.clip(1.0 - corr, 0.0, 2.0)
    iu = np.triu_indices(units.size, k=1)
    leaves = leaves_list(linkage(dist[iu], method="average"))
    return units[leaves].astype(np.int64)

