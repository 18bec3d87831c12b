"""Paths through state space: PCA, |h| over time, plateaus, two-sequence drift, pairs, heatmaps.

Every function takes plain arrays so that a notebook user can call it on anything:

- ``states``: float array [N, T, H], one row per sequence, padded past each length (padding
  may be NaN, as in ``Trace.hidden``, or anything else: it is never read);
- ``lengths``: ints [N] (1 <= length <= T); ``None`` means "infer from the NaN padding"
  (a step counts as padding when all of its units are NaN), or all T steps when there is none.

A :class:`rnnviz_core.Trace` may be passed wherever ``states`` is expected: its ``hidden`` and
``lengths`` are used. Steps are numbered from 0. Results are tidy pandas DataFrames (one row per
observation) or numpy arrays; padding never appears in a result.

Rules, stated once:

* **Plateau** (:func:`plateau_steps`): the plateau step of a curve (default: the sum of |h| over
  units) is the first step ``p`` such that for every step ``t >= p`` of the sequence,
  ``|curve[t] - final| <= max(rel_tol * |final|, abs_tol)``, where ``final`` is the mean of the
  curve over its last ``final_window`` steps. If fewer than ``min_steps`` steps lie in that
  final band, or if the least-squares line through them drifts by more than the band
  half-width (a slow ramp), the curve has not settled and the plateau step is -1. Defaults: ``rel_tol=0.1``,
  ``abs_tol=1e-6``, ``final_window=3``, ``min_steps=3``.
* **Parting** (:func:`parting_step`): two sequences part at the first aligned step where the
  distance between their states exceeds ``rel_threshold * scale`` and stays above it for ``k``
  consecutive steps (or until the shorter sequence ends, if that comes first). ``scale`` is the
  typical state size: the mean Euclidean norm ||h_t|| over both sequences' valid steps, unless
  given (:func:`typical_state_norm` gives a dataset-wide one). -1 when they never part.
  Defaults: ``rel_threshold=0.25``, ``k=3``. :func:`parting_summary` tells the whole story in
  one of three cases: never parted; parted and rejoined (the distance drops back below the
  threshold and no later run above it lasts ``k`` steps); parted for good (the last run above
  the threshold reaches the last compared step) — "apart from the start" when that run begins
  at the first compared step.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = [
    "StatePCA",
    "pca_paths",
    "state_norms",
    "plateau_steps",
    "pair_distance",
    "parting_step",
    "Parting",
    "parting_summary",
    "similar_pairs",
    "HeatmapData",
    "heatmap_data",
    "unit_order",
    "valid_mask",
    "typical_state_norm",
]


# ----------------------------------------------------------------------------- input helpers
# shared with saturation, groups and the bundle: one home, public there (rnnviz_core.arrays)
from .arrays import as_states as _as_states, blocks as _blocks, check_lengths as _check_lengths  # noqa: E402
from .arrays import infer_lengths as _infer_lengths, seq_ids as _seq_ids, to_numpy as _to_numpy  # noqa: E402
from .arrays import valid_mask  # noqa: E402,F401  (re-exported: rv.trajectories.valid_mask)


def _check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}; got {value!r}.")
    return int(value)


def _check_nonneg(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {value!r}.") from None
    if not np.isfinite(v) or v < 0:
        raise InputError(f"{name} must be a finite number >= 0; got {value!r}.")
    return v


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
    mask = valid_mask(lens, arr.shape[1])
    n, t = mask.shape
    sums = np.empty((n, t), dtype=arr.dtype)
    diff = np.empty((n, max(t - 1, 0)), dtype=arr.dtype)
    for sl in _blocks(arr):  # a block of sequences at a time: the temporaries stay small
        part = arr[sl]
        sums[sl] = np.abs(part).sum(axis=2)
        diff[sl] = np.linalg.norm(part[:, 1:] - part[:, :-1], axis=2)  # (n, T-1)
    sum_abs = np.where(mask, sums, np.nan)  # (N, T)
    mean_abs = sum_abs / arr.shape[2]
    change = np.full(sum_abs.shape, np.nan)
    change[:, 1:] = np.where(mask[:, 1:], diff, np.nan)
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
    mask = steps < lens[:, None]
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


# ----------------------------------------------------------------------------- two sequences
def _single_sequence(a: Any, length: Any, name: str) -> tuple[np.ndarray, int]:
    arr = _to_numpy(a, name)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"{name} must be one sequence's states [T, H]; got shape {arr.shape}.")
    arr = arr.astype(np.float64, copy=False)
    if length is None:
        length = int(_infer_lengths(arr[None])[0])
    else:
        length = int(_check_lengths(np.array([length]), 1, arr.shape[0])[0])
    if length < 1:
        raise InputError(f"{name} has no valid steps; pass its length.")
    return arr[:length], length


def pair_distance(
    a: Any,
    b: Any,
    length_a: int | None = None,
    length_b: int | None = None,
    *,
    align: str = "start",
    scale: float | None = None,
) -> pd.DataFrame:
    """Distance between two sequences' states at each aligned step.

    Parameters
    ----------
    a, b : states [T, H] of one sequence each (same number of units).
    length_a, length_b : their lengths (None: inferred from NaN padding).
    align : ``"start"`` compares step t of A with step t of B (t = 0 .. min length - 1);
        ``"end"`` lines the two sequences up at their last steps, so that the final states
        (the ones the model's output reads) meet at aligned step 0 and earlier steps are
        negative (-1 = one step before the end).
    scale : the typical state size used for ``rel_distance``; default the mean ||h_t|| over both
        sequences' valid steps.

    Returns
    -------
    frame with columns ``step`` (aligned step), ``step_a``, ``step_b``, ``distance`` (Euclidean
    ||a - b||), ``rel_distance`` (distance / scale), in chronological order;
    ``frame.attrs["scale"]`` holds the scale.
    """
    sa, la = _single_sequence(a, length_a, "a")
    sb, lb = _single_sequence(b, length_b, "b")
    if sa.shape[1] != sb.shape[1]:
        raise InputError(f"a has {sa.shape[1]} units and b has {sb.shape[1]}; compare states of one model.")
    m = min(la, lb)
    if align == "start":
        ia = ib = np.arange(m)
        step = np.arange(m)
    elif align == "end":
        ia = np.arange(la - m, la)
        ib = np.arange(lb - m, lb)
        step = np.arange(-(m - 1), 1)
    else:
        raise InputError(f"align must be 'start' or 'end'; got {align!r}.")
    dist = np.linalg.norm(sa[ia] - sb[ib], axis=1)
    if scale is None:
        norms = np.concatenate([np.linalg.norm(sa, axis=1), np.linalg.norm(sb, axis=1)])
        scale = float(np.nanmean(norms))
    scale = _check_nonneg(scale, "scale")
    rel = dist / scale if scale > 0 else np.where(dist > 0, np.inf, 0.0)
    frame = pd.DataFrame({"step": step, "step_a": ia, "step_b": ib, "distance": dist, "rel_distance": rel})
    frame.attrs["scale"] = scale
    frame.attrs["align"] = align
    return frame


def typical_state_norm(states: Any, lengths: Any = None) -> float:
    """Mean Euclidean norm ||h_t|| over every sequence's valid steps: a dataset-wide ``scale``
    for :func:`pair_distance`, so that parting thresholds mean the same for every pair."""
    arr, lens = _as_states(states, lengths)
    norms = np.linalg.norm(arr, axis=2)[valid_mask(lens, arr.shape[1])]
    return float(np.nanmean(norms))


def parting_step(distance: Any, *, rel_threshold: float = 0.25, k: int = 3, scale: float | None = None) -> int:
    """The aligned step where two sequences part, or -1 if they never do.

    Rule: the first step whose distance exceeds ``rel_threshold * scale`` and stays above it
    for ``k`` consecutive steps (or until the end of the compared steps, if fewer than ``k``
    remain).

    Parameters
    ----------
    distance : the frame from :func:`pair_distance` (its ``rel_distance`` and ``step`` are used,
        so the answer is in aligned steps), or a 1-D array of distances (then ``scale`` is
        required and the answer is an index into the array).
    rel_threshold : threshold as a fraction of the typical state size (default 0.25).
    k : consecutive steps the distance must stay above the threshold (default 3).
    scale : typical state size, only for a raw distance array.
    """
    rel_threshold = _check_nonneg(rel_threshold, "rel_threshold")
    k = _check_positive_int(k, "k")
    if isinstance(distance, pd.DataFrame):
        if "rel_distance" not in distance or "step" not in distance:
            raise InputError("Pass the frame returned by pair_distance (it needs rel_distance and step).")
        rel = distance["rel_distance"].to_numpy(dtype=np.float64)
        steps = distance["step"].to_numpy()
    else:
        d = _to_numpy(distance, "distance").astype(np.float64)
        if d.ndim != 1:
            raise InputError(f"distance must be one curve [T]; got shape {d.shape}.")
        if scale is None:
            raise InputError("Pass scale (the typical state size) with a raw distance array, or pass pair_distance's frame.")
        scale = _check_nonneg(scale, "scale")
        rel = d / scale if scale > 0 else np.where(d > 0, np.inf, 0.0)
        steps = np.arange(d.shape[0])
    above = rel > rel_threshold
    m = above.shape[0]
    if m == 0:
        return -1
    # run[t] = length of the run of True starting at t (computed from the end, vectorised)
    idx = np.arange(m)
    nxt_false = np.where(~above, idx, m)
    nxt_false = np.minimum.accumulate(nxt_false[::-1])[::-1]
    run = nxt_false - idx
    ok = above & ((run >= k) | (nxt_false == m))
    hits = np.flatnonzero(ok)
    return int(steps[hits[0]]) if hits.size else -1


class Parting(NamedTuple):
    """What the distance between two sequences does, against one threshold (rule in :func:`parting_summary`).

    ``kind``: ``"never"`` (never parted), ``"rejoined"`` (parted, then back together) or
    ``"for good"`` (apart at the last compared step). Steps are aligned steps (the ``step``
    column of :func:`pair_distance`); None where they do not apply.
    """

    kind: str
    part_step: int | None        #: first step of the first run above the threshold lasting k steps
    rejoin_step: int | None      #: "rejoined": first step after the last such run (below threshold)
    last_part_step: int | None   #: "for good": first step of the run that lasts to the end
    first_step: int              #: first compared (aligned) step
    last_step: int               #: last compared (aligned) step
    threshold: float             #: the threshold in distance units (rel_threshold * scale)
    rel_threshold: float
    k: int
    n_partings: int              #: how many runs above the threshold last k steps (or reach the end)
    max_distance: float
    min_distance: float

    @property
    def apart_from_start(self) -> bool:
        """True when the sequences are already apart at the first compared step and stay apart."""
        return self.kind == "for good" and self.last_part_step == self.first_step


def step_words(step: int, align: str) -> str:
    """An aligned step in words: "step 7", or with the end alignment "3 steps before the end"
    (steps aligned at the end count back from 0 = the last step)."""
    step = int(step)
    if align != "end":
        return f"step {step}"
    if step == 0:
        return "the last step"
    return "1 step before the end" if step == -1 else f"{-step} steps before the end"


def parting_summary(distance: pd.DataFrame, *, rel_threshold: float = 0.25, k: int = 3) -> Parting:
    """Classify the distance curve of :func:`pair_distance` against a threshold.

    A *parting* is a run of steps where ``rel_distance > rel_threshold`` that lasts at least
    ``k`` steps or reaches the last compared step (the rule of :func:`parting_step`; shorter
    runs are blips and do not count). Then:

    * no parting: ``kind="never"``;
    * the last parting reaches the last compared step: ``kind="for good"`` with
      ``last_part_step`` the step that run starts (``part_step`` is the first parting, the
      same when there is only one);
    * otherwise ``kind="rejoined"`` with ``rejoin_step`` the first step after the last parting
      (the distance is at or below the threshold there, and no later run lasts ``k`` steps).

    Parameters
    ----------
    distance : the frame of :func:`pair_distance` (``step``, ``distance``, ``rel_distance``;
        ``attrs["scale"]``).
    rel_threshold, k : as in :func:`parting_step`.
    """
    rel_threshold = _check_nonneg(rel_threshold, "rel_threshold")
    k = _check_positive_int(k, "k")
    if not isinstance(distance, pd.DataFrame) or not {"rel_distance", "step", "distance"} <= set(distance.columns):
        raise InputError("Pass the frame returned by pair_distance (it needs step, distance and rel_distance).")
    if len(distance) == 0:
        raise InputError("The distance frame is empty; the two sequences share no step to compare.")
    rel = distance["rel_distance"].to_numpy(dtype=np.float64)
    steps = distance["step"].to_numpy().astype(np.int64)
    dist = distance["distance"].to_numpy(dtype=np.float64)
    scale = float(distance.attrs.get("scale", np.nan))
    above = rel > rel_threshold
    m = above.size
    # runs of True: starts and (exclusive) ends
    edges = np.diff(np.r_[0, above.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    keep = ((ends - starts) >= k) | (ends == m)
    starts, ends = starts[keep], ends[keep]
    common = dict(first_step=int(steps[0]), last_step=int(steps[-1]),
                  threshold=rel_threshold * scale if np.isfinite(scale) else float("nan"),
                  rel_threshold=rel_threshold, k=k, n_partings=int(starts.size),
                  max_distance=float(np.nanmax(dist)), min_distance=float(np.nanmin(dist)))
    if starts.size == 0:
        return Parting("never", None, None, None, **common)
    first = int(steps[starts[0]])
    if ends[-1] == m:
        return Parting("for good", first, None, int(steps[starts[-1]]), **common)
    return Parting("rejoined", first, int(steps[ends[-1]]), None, **common)


# ----------------------------------------------------------------------------- pairs worth comparing
def _summaries(arr: np.ndarray, lens: np.ndarray, summary: str) -> np.ndarray:
    if summary == "final":
        return arr[np.arange(arr.shape[0]), lens - 1]
    if summary == "mean":
        mask = valid_mask(lens, arr.shape[1])
        return np.where(mask[..., None], arr, 0.0).sum(axis=1) / lens[:, None]
    raise InputError(f"summary must be 'final' or 'mean'; got {summary!r}.")


def similar_pairs(
    states: Any,
    lengths: Any = None,
    labels: Any = None,
    *,
    mode: str = "within",
    classes: Sequence[Any] | None = None,
    summary: str = "final",
    n_pairs: int = 1,
    max_candidates: int = 2000,
    random_state: int = 0,
    ids: Any = None,
) -> pd.DataFrame:
    """The most and least similar pairs of sequences, within a class or across classes.

    Each sequence is summarised by one state (``summary="final"``: its last valid state, the one
    the model's output reads; ``"mean"``: its mean state over valid steps) and pairs are ranked
    by the Euclidean distance between summaries.

    Parameters
    ----------
    labels : per-sequence class labels (None: all sequences form one class; then only
        ``mode="within"`` makes sense).
    mode : ``"within"`` (both sequences share a label) or ``"across"`` (labels differ).
    classes : restrict to these labels (``within``: pairs from any of them; ``across`` with two
        labels: one sequence from each).
    n_pairs : how many pairs of each kind to return.
    max_candidates : when more sequences qualify, this many are sampled without replacement
        with ``numpy.random.default_rng(random_state)`` before the all-pairs search (the search
        itself is one vectorised distance matrix, so memory grows with its square).

    Returns
    -------
    frame with columns ``kind`` ("most similar"/"least similar"), ``rank`` (1 = most extreme),
    ``seq_a``, ``seq_b`` (ids), ``label_a``, ``label_b``, ``distance``; ``attrs["sampled"]`` says
    whether candidates were sampled.
    """
    arr, lens = _as_states(states, lengths)
    n = arr.shape[0]
    seq_ids = _seq_ids(ids, n)
    lab = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels)
    if lab.shape != (n,):
        raise InputError(f"labels must hold one label per sequence ({n}); got shape {lab.shape}.")
    if mode not in ("within", "across"):
        raise InputError(f"mode must be 'within' or 'across'; got {mode!r}.")
    n_pairs = _check_positive_int(n_pairs, "n_pairs")
    max_candidates = _check_positive_int(max_candidates, "max_candidates", minimum=2)
    cand = np.arange(n)
    if classes is not None:
        classes = list(classes)
        cand = cand[np.isin(lab, classes)]
    sampled = cand.size > max_candidates
    if sampled:
        rng = np.random.default_rng(random_state)
        cand = np.sort(rng.choice(cand, size=max_candidates, replace=False))
    summ = _summaries(arr, lens, summary)[cand]  # (M, H)
    cl = lab[cand]
    sq = np.einsum("ij,ij->i", summ, summ)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (summ @ summ.T), 0.0))  # (M, M)
    same = cl[:, None] == cl[None, :]
    allowed = np.triu(np.ones(dist.shape, dtype=bool), k=1)
    if mode == "within":
        allowed &= same
    else:
        allowed &= ~same
        if classes is not None and len(classes) == 2:
            ca, cb = classes
            allowed &= ((cl[:, None] == ca) & (cl[None, :] == cb)) | ((cl[:, None] == cb) & (cl[None, :] == ca))
    n_allowed = int(allowed.sum())
    if n_allowed == 0:
        raise InputError(
            f"No pair of sequences fits mode={mode!r}"
            + (f" and classes={classes!r}" if classes is not None else "")
            + "; choose other classes or the other mode."
        )
    take = min(n_pairs, n_allowed)
    flat = dist.reshape(-1)
    ok = allowed.reshape(-1)
    m = dist.shape[0]
    rows = []
    for kind, key in (("most similar", np.where(ok, flat, np.inf)), ("least similar", np.where(ok, -flat, np.inf))):
        part = np.argpartition(key, take - 1)[:take] if take < key.size else np.arange(key.size)
        part = part[np.lexsort((part, key[part]))]  # by distance, ties by position: deterministic
        ia, ib = np.divmod(part, m)
        a, b = cand[ia], cand[ib]
        exact = np.linalg.norm(summ[ia] - summ[ib], axis=1)  # the Gram trick above ranks; report exactly
        rows.append(pd.DataFrame({
            "kind": kind, "rank": np.arange(1, take + 1),
            "seq_a": seq_ids[a], "seq_b": seq_ids[b],
            "label_a": lab[a], "label_b": lab[b], "distance": exact,
        }))
    frame = pd.concat(rows, ignore_index=True)
    frame.attrs["sampled"] = bool(sampled)
    frame.attrs["n_candidates"] = int(cand.size)
    return frame


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

