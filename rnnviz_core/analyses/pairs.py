"""Two sequences side by side: the distance between their states, where they part, and pairs
worth comparing.

Inputs as in :mod:`rnnviz_core.trajectories`: ``states`` [N, T, H] padded past each length (or a
``Trace``), ``lengths`` ints [N] or ``None`` (inferred from NaN padding). Steps are numbered from 0;
padding never appears in a result.

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

from ..arrays import as_states as _as_states, check_lengths as _check_lengths
from ..arrays import check_nonneg as _check_nonneg, check_positive_int as _check_positive_int
from ..arrays import infer_lengths as _infer_lengths, seq_ids as _seq_ids, to_numpy as _to_numpy
from ..arrays import valid_mask
from ..errors import InputError

__all__ = ["pair_distance", "typical_state_norm", "parting_step", "Parting", "step_words",
           "parting_summary", "similar_pairs"]


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


