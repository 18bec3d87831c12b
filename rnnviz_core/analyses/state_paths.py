"""Paths through state space: a PCA basis shared by every sequence, |h| over time, plateaus.

Inputs as in :mod:`rnnviz_core.trajectories`: ``states`` [N, T, H] padded past each length (or a
``Trace``), ``lengths`` ints [N] or ``None`` (inferred from NaN padding). Steps are numbered from 0;
padding never appears in a result.

* **Plateau** (:func:`plateau_steps`): the plateau step of a curve (default: the sum of |h| over
  units) is the first step ``p`` such that for every step ``t >= p`` of the sequence,
  ``|curve[t] - final| <= max(rel_tol * |final|, abs_tol)``, where ``final`` is the mean of the
  curve over its last ``final_window`` steps. If fewer than ``min_steps`` steps lie in that
  final band, or if the least-squares line through them drifts by more than the band
  half-width (a slow ramp), the curve has not settled and the plateau step is -1. Defaults: ``rel_tol=0.1``,
  ``abs_tol=1e-6``, ``final_window=3``, ``min_steps=3``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..arrays import as_states as _as_states, blocks as _blocks, check_lengths as _check_lengths
from ..arrays import check_nonneg as _check_nonneg, check_positive_int as _check_positive_int
from ..arrays import infer_lengths as _infer_lengths, seq_ids as _seq_ids, to_numpy as _to_numpy
from ..arrays import valid_mask
from ..errors import InputError

__all__ = ["StatePCA", "pca_paths", "norm_arrays", "state_norms", "plateau_steps"]


# ----------------------------------------------------------------------------- PCA
class StatePCA:
    """PCA of hidden states fitted once on all sequences' valid steps, then applied to each.

    Because one basis serves every sequence, the paths of different sequences share one picture.

    Parameters
    ----------
    n_components : int
        Number of principal components kept (default 2).
    max_points : int or None
        Fit on at most this many (sequence, step) points, sampled without replacement with
        ``random_state`` when there are more (default 20_000: the two leading directions of a
        128-unit state are then found to a few thousandths, in a tenth of the time of 200,000
        points; None = all). Transform always uses every point, so one basis places every
        state exactly; ``n_samples_`` says how many points the basis was fitted on.
    random_state : int
        Seed of that sample.

    Attributes (after ``fit``)
    --------------------------
    mean_ : [H] ; components_ : [n_components, H] (unit rows) ; explained_variance_ : [k] ;
    explained_variance_ratio_ : [k] (share of the total state variance each component explains) ;
    n_samples_ : number of points fitted.
    """

    def __init__(self, n_components: int = 2, *, max_points: int | None = 20_000, random_state: int = 0):
        self.n_components = n_components
        self.max_points = max_points
        self.random_state = random_state

    def fit(self, states: Any, lengths: Any = None) -> "StatePCA":
        """Fit on states [N, T, H] (padding excluded). Returns self."""
        from sklearn.decomposition import PCA

        arr, lens = _as_states(states, lengths)
        k = _check_positive_int(self.n_components, "n_components")
        # the (sequence, step) positions of the finite valid points, in row order; only the sampled
        # ones are gathered (copying every point first cost seconds at 1,000 x 1,000 x 128)
        keep = valid_mask(lens, arr.shape[1])
        for sl in _blocks(arr):
            keep[sl] &= np.isfinite(arr[sl]).all(axis=2)
        s_idx, t_idx = np.nonzero(keep)
        if self.max_points is not None and s_idx.size > self.max_points:
            rng = np.random.default_rng(self.random_state)
            pick = rng.choice(s_idx.size, size=int(self.max_points), replace=False)
            s_idx, t_idx = s_idx[pick], t_idx[pick]
        pts = arr[s_idx, t_idx]  # (P, H)
        if k > min(pts.shape):
            raise InputError(
                f"n_components={k} is more than the states allow (at most {min(pts.shape)} for "
                f"{pts.shape[0]} points of {pts.shape[1]} units); choose fewer components."
            )
        # many more points than units: the covariance route (H x H eigenproblem) is exact and ~20x
        # faster than a full SVD of the (P, H) matrix; older scikit-learn falls back to "full"
        try:
            pca = PCA(n_components=k, svd_solver="covariance_eigh").fit(pts)
        except ValueError:
            pca = PCA(n_components=k, svd_solver="full").fit(pts)
        self.mean_ = pca.mean_
        self.components_ = pca.components_
        self.explained_variance_ = pca.explained_variance_
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        self.n_samples_ = int(pts.shape[0])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise InputError("This StatePCA is not fitted yet; call fit(states, lengths) first.")

    def transform(self, states: Any, lengths: Any = None) -> np.ndarray:
        """Project states [N, T, H] -> [N, T, n_components]; NaN at padding."""
        self._check_fitted()
        arr, lens = _as_states(states, lengths)
        if arr.shape[2] != self.components_.shape[1]:
            raise InputError(
                f"These states have {arr.shape[2]} units but the PCA was fitted on "
                f"{self.components_.shape[1]}; fit it on states of the same model."
            )
        comp_t = self.components_.T
        out = np.empty(arr.shape[:2] + (comp_t.shape[1],), dtype=np.result_type(arr.dtype, comp_t.dtype))
        for sl in _blocks(arr):  # a block at a time: no float64 copy of every state at once
            out[sl] = (arr[sl] - self.mean_) @ comp_t  # (n, T, k)
        out[~valid_mask(lens, arr.shape[1])] = np.nan
        return out

    def fit_transform(self, states: Any, lengths: Any = None) -> np.ndarray:
        """``fit`` then ``transform`` on the same states."""
        return self.fit(states, lengths).transform(states, lengths)


def pca_paths(
    states: Any,
    lengths: Any = None,
    *,
    pca: StatePCA | None = None,
    n_components: int = 2,
    ids: Any = None,
    labels: Any = None,
) -> tuple[pd.DataFrame, StatePCA]:
    """Paths of every sequence in one shared PCA picture.

    Parameters
    ----------
    states : [N, T, H]; lengths : [N] or None
    pca : a fitted :class:`StatePCA` to reuse (e.g. fitted on the whole dataset while drawing a
        few sequences); None fits one on these states.
    ids : per-sequence ids for the ``seq`` column (default 0..N-1).
    labels : optional per-sequence labels, added as a ``label`` column.

    Returns
    -------
    (frame, pca): frame has one row per valid step with columns ``seq, step, pc1 .. pck``
    (and ``label``); ``frame.attrs["explained_variance_ratio"]`` holds the fitted ratios,
    ``frame.attrs["fitted_points"]`` how many states the basis was fitted on (a random sample of
    at most ``StatePCA.max_points`` when there are more) and ``frame.attrs["points"]`` how many
    valid states there are (every one projected).
    """
    arr, lens = _as_states(states, lengths)
    if pca is None:
        pca = StatePCA(n_components=n_components).fit(arr, lens)
    proj = pca.transform(arr, lens)
    n, t, k = proj.shape
    mask = valid_mask(lens, t)
    seq_idx, step_idx = np.nonzero(mask)
    data: dict[str, Any] = {"seq": _seq_ids(ids, n)[seq_idx], "step": step_idx}
    for j in range(k):
        data[f"pc{j + 1}"] = proj[seq_idx, step_idx, j]
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != (n,):
            raise InputError(f"labels must hold one label per sequence ({n}); got shape {lab.shape}.")
        data["label"] = lab[seq_idx]
    frame = pd.DataFrame(data, copy=False)  # fresh arrays: no copy into one block
    frame.attrs["explained_variance_ratio"] = [float(v) for v in pca.explained_variance_ratio_]
    frame.attrs["fitted_points"] = int(getattr(pca, "n_samples_", len(frame)))
    frame.attrs["points"] = int(len(frame))
    return frame, pca


# ----------------------------------------------------------------------------- |h| over time
def norm_arrays(arr: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import warnings

    import torch

    mask = valid_mask(lens, arr.shape[1])
    n, t = mask.shape
    sums = np.empty((n, t), dtype=arr.dtype)
    diff = np.empty((n, max(t - 1, 0)), dtype=arr.dtype)
    for sl in _blocks(arr):  # a block of sequences at a time: the temporaries stay small
        part = arr[sl]
        sums[sl] = np.abs(part).sum(axis=2)
        if part.dtype in (np.float32, np.float64) and all(v >= 0 for v in part.strides):
            # torch's norm of the differences in one pass (numpy's squares, sums and roots: 2.6x longer)
            with warnings.catch_warnings():   # a trace's arrays are read-only; this only reads them
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                tp = torch.from_numpy(part)
            diff[sl] = torch.linalg.vector_norm(tp[:, 1:] - tp[:, :-1], dim=2).numpy()  # (n, T-1)
        else:
            diff[sl] = np.linalg.norm(part[:, 1:] - part[:, :-1], axis=2)  # (n, T-1)
    full = bool(mask.all())   # every step valid (sequences of one length): no masking to do
    sum_abs = sums if full else np.where(mask, sums, np.nan)  # (N, T)
    mean_abs = sum_abs / arr.shape[2]
    change = np.full(sum_abs.shape, np.nan)
    change[:, 1:] = diff if full else np.where(mask[:, 1:], diff, np.nan)
    return sum_abs, mean_abs, change


def state_norms(
    states: Any,
    lengths: Any = None,
    *,
    ids: Any = None,
    rel_tol: float = 0.1,
    abs_tol: float = 1e-6,
    final_window: int = 3,
    min_steps: int = 3,
) -> pd.DataFrame:
    """Per sequence and step: the size of the state and how fast it moves.

    Returns a tidy frame, one row per valid step, with columns

    - ``seq``, ``step``;
    - ``sum_abs``: sum over units of |h_t|; ``mean_abs``: the same divided by the number of units;
    - ``step_change``: Euclidean distance ||h_t - h_{t-1}|| (NaN at step 0, which has no
      previous state in the trace);
    - ``plateau_step``: the sequence's plateau step of ``sum_abs`` (rule in
      :func:`plateau_steps`, with the keyword arguments given here), repeated on each row;
    - ``length``: the sequence's length.
    """
    arr, lens = _as_states(states, lengths)
    sum_abs, mean_abs, change = norm_arrays(arr, lens)
    plateau = plateau_steps(sum_abs, lens, rel_tol=rel_tol, abs_tol=abs_tol,
                            final_window=final_window, min_steps=min_steps)
    n, t = sum_abs.shape
    seq_idx, step_idx = np.nonzero(valid_mask(lens, t))
    frame = pd.DataFrame({
        "seq": _seq_ids(ids, n)[seq_idx],
        "step": step_idx,
        "sum_abs": sum_abs[seq_idx, step_idx],
        "mean_abs": mean_abs[seq_idx, step_idx],
        "step_change": change[seq_idx, step_idx],
        "plateau_step": plateau[seq_idx],
        "length": lens[seq_idx],
    }, copy=False)  # fresh arrays: no copy into one block (seconds at 10M rows)
    frame.attrs["plateau_rule"] = {"rel_tol": rel_tol, "abs_tol": abs_tol, "final_window": final_window,
                                   "min_steps": min_steps}
    return frame


def plateau_steps(
    curves: Any,
    lengths: Any = None,
    *,
    rel_tol: float = 0.1,
    abs_tol: float = 1e-6,
    final_window: int = 3,
    min_steps: int = 3,
) -> np.ndarray:
    """Step at which each curve reaches its plateau, or -1 when it has not settled.

    Rule: with ``final`` = the mean of the curve over its last ``final_window`` valid steps and
    the band half-width ``tol = max(rel_tol * |final|, abs_tol)``, the plateau step is the first
    step ``p`` such that every step ``t >= p`` of the sequence has ``|curve[t] - final| <= tol``.
    A plateau needs at least ``min_steps`` steps in the band (so a curve still moving at its end
    returns -1), and no trend across them: the least-squares line through the plateau's steps
    may change by at most ``tol`` from its first to its last step (so a slow ramp that happens
    to fit in the band is not a plateau). Vectorised over all sequences.

    Read -1 as "still moving": states driven by every input (e.g. a race-by-race form) often never
    settle, and saying so is more honest than forcing a step. Widen ``rel_tol`` for a looser
    notion of "settled".

    Parameters
    ----------
    curves : float [N, T] (e.g. the sum of |h| per step) or [T] for one curve.
    lengths : [N] or None (inferred from NaN padding).
    rel_tol : band half-width relative to the final level (default 10 %).
    abs_tol : floor on the band half-width, for curves that end near 0.
    final_window : steps averaged to define the final level (default 3, fewer in shorter
        sequences; 1 = the last value), so one noisy last step does not move the target.
    min_steps : fewest steps in the band that count as a plateau (default 3).

    Returns
    -------
    int64 [N] (or a Python int for a single curve).
    """
    arr = _to_numpy(curves, "curves").astype(np.float64)
    single = arr.ndim == 1
    if single:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InputError(f"curves must have shape [N, T] (or [T] for one curve); got {arr.shape}.")
    rel_tol = _check_nonneg(rel_tol, "rel_tol")
    abs_tol = _check_nonneg(abs_tol, "abs_tol")
    final_window = _check_positive_int(final_window, "final_window")
    min_steps = _check_positive_int(min_steps, "min_steps")
    n, t = arr.shape
    lens = _check_lengths(lengths, n, t) if lengths is not None else _infer_lengths(arr[..., None])
    if (lens < 1).any():
        raise InputError("Every curve needs at least one valid step.")
    steps = np.arange(t)[None, :]
    mask = valid_mask(lens, t)
    tail = mask & (steps >= (lens - final_window)[:, None])
    final = np.where(tail, arr, 0.0).sum(axis=1) / tail.sum(axis=1)  # (N,)
    tol = np.maximum(rel_tol * np.abs(final), abs_tol)
    outside = mask & ~(np.abs(arr - final[:, None]) <= tol[:, None])  # NaN inside counts as outside
    any_out = outside.any(axis=1)
    last_out = t - 1 - np.argmax(outside[:, ::-1], axis=1)
    plateau = np.where(any_out, last_out + 1, 0).astype(np.int64)
    # no trend across the plateau: the least-squares line through its steps may drift by at most
    # the band half-width from its first to its last step (a slow ramp is not a plateau)
    region = mask & (steps >= plateau[:, None])
    cnt = region.sum(axis=1)
    tt = np.broadcast_to(steps, arr.shape).astype(np.float64)
    yy = np.where(region, arr, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        t_mean = np.where(region, tt, 0.0).sum(axis=1) / cnt
        y_mean = yy.sum(axis=1) / cnt
        dt = np.where(region, tt - t_mean[:, None], 0.0)
        slope = (dt * np.where(region, arr - y_mean[:, None], 0.0)).sum(axis=1) / (dt**2).sum(axis=1)
    drift = np.abs(np.nan_to_num(slope)) * np.maximum(cnt - 1, 0)
    plateau = np.where((lens - plateau >= min_steps) & (drift <= tol * (1 + 1e-9)), plateau, -1)
    return int(plateau[0]) if single else plateau

