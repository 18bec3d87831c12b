"""Saturation: which units and gates pin at their limits, and when.

Definitions (thresholds are parameters everywhere):

* a **unit is saturated** at a step when ``|h| >= threshold`` (default 0.9). This is meant for
  tanh-bounded states (GRU, LSTM, tanh RNN), whose values lie in (-1, 1); for a ReLU RNN the
  threshold has no natural meaning.
* a **gate unit is left-saturated** at a step when its value is ``< low`` (default 0.1: the gate is
  almost shut) and **right-saturated** when ``> high`` (default 0.9: almost fully open), as in
  Karpathy, Johnson and Fei-Fei (2015), "Visualizing and Understanding Recurrent Networks".
  Only sigmoid gates are meant (GRU ``r``, ``z``; LSTM ``i``, ``f``, ``o``); the tanh candidates
  (GRU ``n``, LSTM ``g``) are not gates and are left out by :func:`trace_gates`.

Every fraction counts valid steps only: padding past a sequence's length never enters a
numerator or a denominator. Inputs are plain arrays (``states`` [N, T, H], ``gates`` a dict
name -> [N, T, H], ``lengths`` [N] or None to infer from NaN padding) or a Trace.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import numpy as np
import pandas as pd

from .errors import InputError
from .arrays import as_states as _as_states, blocks as _blocks, check_lengths as _check_lengths
from .arrays import seq_ids as _seq_ids, valid_mask

__all__ = [
    "DEFAULT_THRESHOLD", "DEFAULT_LOW", "DEFAULT_HIGH", "SIGMOID_GATES",
    "saturated_units", "saturation_by_step", "saturation_by_unit", "unit_saturation_over_time",
    "saturation_by_sequence", "saturation_over_time", "gate_saturation", "saturation_by_gate", "gate_saturation_over_time",
    "trace_gates", "value_distribution", "suggest_threshold", "ThresholdSuggestion",
]

DEFAULT_THRESHOLD = 0.9
DEFAULT_LOW = 0.1
DEFAULT_HIGH = 0.9
#: sigmoid gates per recurrent mode, as PyTorch names them
SIGMOID_GATES = {"GRU": ("r", "z"), "LSTM": ("i", "f", "o")}


def _check_threshold(threshold: Any) -> float:
    try:
        v = float(threshold)
    except (TypeError, ValueError):
        raise InputError(f"threshold must be a number between 0 and 1; got {threshold!r}.") from None
    if not (np.isfinite(v) and v > 0):
        raise InputError(f"threshold must be a positive number (|h| >= threshold counts as saturated); got {threshold!r}.")
    return v


def _check_low_high(low: Any, high: Any) -> tuple[float, float]:
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        raise InputError(f"low and high must be numbers; got {low!r} and {high!r}.") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise InputError(f"Gate thresholds need 0 <= low < high <= 1; got low={low}, high={high}.")
    return lo, hi


def saturated_units(states: Any, lengths: Any = None, *, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Boolean [N, T, H]: True where ``|h| >= threshold`` at a valid step (False at padding)."""
    arr, lens = _as_states(states, lengths)
    thr = _check_threshold(threshold)
    return (np.abs(arr) >= thr) & valid_mask(lens, arr.shape[1])[..., None]


def saturation_by_step(
    states: Any, lengths: Any = None, *, threshold: float = DEFAULT_THRESHOLD, ids: Any = None
) -> pd.DataFrame:
    """Per sequence and valid step: ``frac_saturated`` (share of units saturated) and
    ``n_saturated``. Columns ``seq, step, n_saturated, frac_saturated``."""
    arr, lens = _as_states(states, lengths)
    sat = saturated_units(arr, lens, threshold=threshold)
    n, t, h = arr.shape
    s_idx, t_idx = np.nonzero(valid_mask(lens, t))
    cnt = sat.sum(axis=2)[s_idx, t_idx]
    return pd.DataFrame({"seq": _seq_ids(ids, n)[s_idx], "step": t_idx,
                         "n_saturated": cnt, "frac_saturated": cnt / h})


def saturation_by_unit(states: Any, lengths: Any = None, *, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """Per unit over all sequences' valid steps: ``frac_saturated`` (share of steps with
    |h| >= threshold), ``frac_positive`` / ``frac_negative`` (saturated at +1 / -1) and
    ``mean_abs``. Columns ``unit, frac_saturated, frac_positive, frac_negative, mean_abs``."""
    arr, lens = _as_states(states, lengths)
    thr = _check_threshold(threshold)
    mask = valid_mask(lens, arr.shape[1])
    pts = arr[mask]  # (P, H)
    p = pts.shape[0]
    return pd.DataFrame({
        "unit": np.arange(arr.shape[2]),
        "frac_saturated": (np.abs(pts) >= thr).sum(0) / p,
        "frac_positive": (pts >= thr).sum(0) / p,
        "frac_negative": (pts <= -thr).sum(0) / p,
        "mean_abs": np.abs(pts).mean(0),
    })


def unit_saturation_over_time(
    states: Any, lengths: Any = None, *, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """Per unit and step: the share of sequences (still running at that step) whose unit is
    saturated there. Columns ``unit, step, frac_saturated, n_sequences`` (for the per-unit
    heatmap)."""
    arr, lens = _as_states(states, lengths)
    thr = _check_threshold(threshold)
    n, t, h = arr.shape
    mask = valid_mask(lens, t)
    alive = mask.sum(0)  # (T,)
    count = np.zeros((t, h), dtype=np.int64)
    for sl in _blocks(arr):  # a block of sequences at a time: no [N, T, H] temporary
        count += ((np.abs(arr[sl]) >= thr) & mask[sl, :, None]).sum(0)
    frac = count / np.maximum(alive, 1)[:, None]  # (T, H)
    steps = np.flatnonzero(alive > 0)
    return pd.DataFrame({
        "unit": np.tile(np.arange(h), steps.size),
        "step": np.repeat(steps, h),
        "frac_saturated": frac[steps].reshape(-1),
        "n_sequences": np.repeat(alive[steps], h),
    }, copy=False)  # fresh arrays: no copy into one block (seconds at 10M rows)


def _as_gates(gates: Any, lengths: Any, n_expected: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    if hasattr(gates, "gate_kinds") and hasattr(gates, "lengths"):
        if lengths is None:
            lengths = gates.lengths
        gates = trace_gates(gates)
    if not isinstance(gates, Mapping) or len(gates) == 0:
        raise InputError("gates must be a dict of gate name -> array [N, T, H] (or a Trace with gates).")
    out: dict[str, np.ndarray] = {}
    lens_out = None
    shape = None
    for name, g in gates.items():
        arr, lens = _as_states(g, lengths, name=f"gate {name!r}")
        if shape is not None and arr.shape[:2] != shape[:2]:
            raise InputError(f"Gate {name!r} has shape {arr.shape}, unlike the others {shape}; pass gates of one layer.")
        shape = arr.shape
        out[str(name)] = arr
        lens_out = lens if lens_out is None else np.minimum(lens_out, lens)
    if n_expected is not None and shape[0] != n_expected:
        raise InputError(f"gates hold {shape[0]} sequences but states hold {n_expected}; pass both from one trace.")
    return out, lens_out


def gate_saturation(
    gates: Any, lengths: Any = None, *, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH, rows: Any = None
) -> pd.DataFrame:
    """Per gate unit: the share of all sequences' valid steps it is left-saturated (< low) and
    right-saturated (> high) — the data of Karpathy et al.'s classic scatter.

    ``rows``: a boolean mask [N] (or row numbers) of the sequences to count, read in place a block
    at a time (no copy of the group's gates); default every sequence.
    Columns ``gate, unit, left, right, neither``.
    """
    g, lens = _as_gates(gates, lengths)
    lo, hi = _check_low_high(low, high)
    n, t_len = next(iter(g.values())).shape[:2]
    idx = np.arange(n) if rows is None else np.asarray(rows)
    if idx.dtype == bool:
        if idx.shape != (n,):
            raise InputError(f"rows must be a mask of the {n} sequences or row numbers.")
        idx = np.flatnonzero(idx)
    frames = []
    for name, arr in g.items():
        h = arr.shape[2]
        left = np.zeros(h, dtype=np.int64)
        right = np.zeros(h, dtype=np.int64)
        n_steps = 0
        per = max(1, (1 << 22) // max(1, t_len * h))
        for s in range(0, len(idx), per):
            sel = idx[s : s + per]
            blk = arr[sel[0] : sel[-1] + 1] if sel[-1] - sel[0] + 1 == len(sel) else arr[sel]  # a run: a view
            bl = lens[sel]
            blk = blk[valid_mask(bl, t_len)] if (bl < t_len).any() else blk.reshape(-1, h)  # (P, H)
            n_steps += blk.shape[0]
            left += np.count_nonzero(blk < lo, axis=0)
            right += np.count_nonzero(blk > hi, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            lf, rt = left / n_steps, right / n_steps
        frames.append(pd.DataFrame({"gate": name, "unit": np.arange(h),
                                    "left": lf, "right": rt, "neither": 1.0 - lf - rt}))
    return pd.concat(frames, ignore_index=True)


def saturation_by_gate(
    gates: Any, lengths: Any = None, *, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH
) -> pd.DataFrame:
    """Per gate over all units and valid steps: ``left``, ``right`` and ``saturated``
    (left + right) fractions. Columns ``gate, left, right, saturated``."""
    per_unit = gate_saturation(gates, lengths, low=low, high=high)
    out = per_unit.groupby("gate", sort=False)[["left", "right"]].mean().reset_index()
    out["saturated"] = out["left"] + out["right"]
    return out


def gate_saturation_over_time(
    gates: Any, lengths: Any = None, *, groups: Any = None, low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH
) -> pd.DataFrame:
    """Per gate, group and step: the mean share of gate units left-saturated (``left``) and
    right-saturated (``right``) over the group's sequences still running at that step.
    Columns ``gate, group, step, left, right, n_sequences``."""
    g, lens = _as_gates(gates, lengths)
    lo, hi = _check_low_high(low, high)
    frames = []
    for name, arr in g.items():
        mask = valid_mask(lens, arr.shape[1])
        left = _group_time_mean(np.where(mask, (arr < lo).mean(axis=2), 0.0), mask, groups)
        right = _group_time_mean(np.where(mask, (arr > hi).mean(axis=2), 0.0), mask, groups)
        frames.append(pd.DataFrame({"gate": name, "group": left["group"], "step": left["step"],
                                    "left": left["frac_saturated"], "right": right["frac_saturated"],
                                    "n_sequences": left["n_sequences"]}))
    return pd.concat(frames, ignore_index=True)


def saturation_by_sequence(
    states: Any,
    lengths: Any = None,
    *,
    gates: Any = None,
    threshold: float = DEFAULT_THRESHOLD,
    low: float = DEFAULT_LOW,
    high: float = DEFAULT_HIGH,
    ids: Any = None,
) -> pd.DataFrame:
    """One row per sequence: how saturated its states (and gates) are.

    Columns: ``seq``, ``length``, ``frac_saturated`` (share of the sequence's unit-steps with
    |h| >= threshold), ``frac_saturated_final`` (share of units saturated at its last step, the
    state the output reads) and, per gate g when ``gates`` is given (a dict or a Trace),
    ``{g}_left`` and ``{g}_right`` (share of its gate unit-steps below low / above high).
    When ``states`` is a Trace and ``gates`` is None, the trace's sigmoid gates are included.
    """
    if gates is None and hasattr(states, "gate_kinds"):
        gates = trace_gates(states)
        gates = gates or None
    cols, _ = saturation_columns(states, lengths, gates=gates, threshold=threshold, low=low, high=high)
    return pd.DataFrame({"seq": _seq_ids(ids, len(cols["length"])), **cols})


def saturation_columns(states: Any, lengths: Any = None, *, gates: Any = None, threshold: float = DEFAULT_THRESHOLD,
                       low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH) -> tuple[dict, np.ndarray]:
    """The columns of :func:`saturation_by_sequence` but ``seq``, as arrays (``gates`` as given,
    not taken from a Trace), and the count of saturated units at each step (int64 [N, T]; the
    bundle stores its share per step, so it is counted once)."""
    arr, lens = _as_states(states, lengths)
    thr = _check_threshold(threshold)
    n, t, h = arr.shape
    mask = valid_mask(lens, t)
    # units counted per step ([N, T], a block of sequences at a time: no [N, T, H] temporaries
    # beyond one block's comparison), then over each sequence's valid steps
    per_step = _units_per_step(arr, lambda a: np.abs(a) >= thr)
    n_sat = np.where(mask, per_step, 0).sum(axis=1)
    final = per_step[np.arange(n), lens - 1]  # units saturated at the last real step
    cols = {"length": lens, "frac_saturated": n_sat / (lens * h), "frac_saturated_final": final / h}
    if gates is not None:
        g, glens = _as_gates(gates, lens, n_expected=n)
        lo, hi = _check_low_high(low, high)
        for name, garr in g.items():
            denom = glens * garr.shape[2]
            left = _units_in_steps(garr, glens, lambda a: a < lo)
            right = _units_in_steps(garr, glens, lambda a: a > hi)
            cols[f"{name}_left"] = left / denom
            cols[f"{name}_right"] = right / denom
    return cols, per_step


def _units_in_steps(arr: np.ndarray, lens: np.ndarray, test) -> np.ndarray:
    """int64 [N]: how many unit-steps of each sequence's valid steps pass ``test``. The steps every
    sequence has are counted a row at a time (one count over a row's contiguous values: about 3x
    sooner than counting each step's units and adding the steps), the rest step by step."""
    n, t = arr.shape[:2]
    common = int(min(int(np.min(lens)), t)) if n else 0
    out = np.zeros(n, dtype=np.int64)
    width = int(np.prod(arr.shape[2:]))
    if common > 0 and common * width >= 1024:   # rows long enough for a count per row to pay
        for sl in _blocks(arr):
            hit = test(arr[sl, :common])   # a new [rows, common, H] boolean array
            out[sl] = [np.count_nonzero(r) for r in hit.reshape(hit.shape[0], -1)]
    elif common > 0:
        out += _units_per_step(arr[:, :common], test).sum(axis=1)
    if common < t:
        tail = _units_per_step(arr[:, common:], test)
        out += np.where(valid_mask(lens - common, t - common), tail, 0).sum(axis=1)
    return out


def _units_per_step(arr: np.ndarray, test) -> np.ndarray:
    """int64 [N, T]: how many units of each step pass ``test`` (a vectorised predicate)."""
    n, t = arr.shape[:2]
    out = np.empty((n, t), dtype=np.int64)
    for sl in _blocks(arr):   # booleans summed as bytes (counts of at most H fit int32): half the time of a bool sum
        out[sl] = test(arr[sl]).view(np.uint8).sum(axis=2, dtype=np.int32)
    return out


def saturation_over_time(
    states: Any,
    lengths: Any = None,
    *,
    groups: Any = None,
    threshold: float = DEFAULT_THRESHOLD,
    rows: Any = None,
) -> pd.DataFrame:
    """Mean share of saturated units at each step, per group of sequences.

    Each sequence contributes to the steps it reaches; ``frac_saturated`` is the mean over the
    group's sequences still running at that step (``n_sequences`` of them) and ``sem`` its
    standard error. ``groups``: one label per sequence (e.g. from
    :func:`rnnviz_core.groups.assign_groups`); None puts every sequence in group "all".
    ``rows``: a boolean mask [N] of the sequences to use (default all); the same as passing
    ``states[rows]``, ``lengths[rows]`` and ``groups[rows]``, without copying the selected states.
    Columns ``group, step, frac_saturated, sem, n_sequences``.
    """
    arr, lens = _as_states(states, lengths)
    n, t, h = arr.shape
    thr = _check_threshold(threshold)
    if rows is None:
        return _group_time_mean(_per_step_fraction(arr, lens, thr), valid_mask(lens, t), groups)
    keep = np.asarray(rows, dtype=bool)
    if keep.shape != (n,):
        raise InputError(f"rows must be one True/False per sequence ({n}); got shape {keep.shape}.")
    idx = np.flatnonzero(keep)
    counts = np.empty((idx.size, t), dtype=np.int64)
    per = max(1, (1 << 22) // max(1, t * h))
    for i in range(0, idx.size, per):   # a block of the selected sequences at a time
        counts[i:i + per] = (np.abs(arr[idx[i:i + per]]) >= thr).sum(axis=2)
    sub_lens = lens[idx]
    mask = valid_mask(sub_lens, t)
    labels = None if groups is None else np.asarray(groups, dtype=object)
    if labels is not None and labels.shape != (n,):
        raise InputError(f"groups must hold one label per sequence ({n}); got shape {labels.shape}.")
    return _group_time_mean(np.where(mask, counts / h, 0.0), mask, None if labels is None else labels[idx])


def _per_step_fraction(arr: np.ndarray, lens: np.ndarray, thr: float) -> np.ndarray:
    """Share of units with |h| >= thr per (sequence, step) [N, T]; 0 at padding."""
    counts = np.empty(arr.shape[:2], dtype=np.int64)
    for sl in _blocks(arr):  # a block of sequences at a time: no [N, T, H] temporary
        counts[sl] = (np.abs(arr[sl]) >= thr).sum(axis=2)
    return np.where(valid_mask(lens, arr.shape[1]), counts / arr.shape[2], 0.0)


def _group_time_mean(per_step: np.ndarray, mask: np.ndarray, groups: Any) -> pd.DataFrame:
    n, t = per_step.shape
    labels = np.full(n, "all", dtype=object) if groups is None else np.asarray(groups, dtype=object)
    if labels.shape != (n,):
        raise InputError(f"groups must hold one label per sequence ({n}); got shape {labels.shape}.")
    cats, first, inv = np.unique(labels.astype(str), return_index=True, return_inverse=True)
    # per (group, step) sums via one scatter-add
    k = cats.size
    cnt = np.zeros((k, t))
    s1 = np.zeros((k, t))
    s2 = np.zeros((k, t))
    np.add.at(cnt, inv, mask.astype(float))
    np.add.at(s1, inv, np.where(mask, per_step, 0.0))
    np.add.at(s2, inv, np.where(mask, per_step**2, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        var = np.maximum(s2 / cnt - mean**2, 0.0) * cnt / np.maximum(cnt - 1, 1)
        sem = np.sqrt(var / cnt)
    gi, si = np.nonzero(cnt > 0)
    return pd.DataFrame({
        "group": labels[first[gi]],
        "step": si,
        "frac_saturated": mean[gi, si],
        "sem": np.where(cnt[gi, si] > 1, sem[gi, si], np.nan),
        "n_sequences": cnt[gi, si].astype(np.int64),
    })


def trace_gates(trace: Any, *, layer: int = -1, direction: str = "fwd", module: int = -1,
                kinds: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The sigmoid gates of one layer of a Trace, as a dict name -> [N, T, H].

    ``kinds`` defaults to the module's sigmoid gates (GRU r, z; LSTM i, f, o; none for a plain
    RNN, which returns an empty dict).
    """
    if kinds is None:
        available = tuple(trace.gate_kinds(module=module))
        kinds = tuple(k for k in available if k not in ("n", "g"))
    return {k: np.asarray(trace.get(k, layer=layer, direction=direction, module=module)) for k in kinds}


# ----------------------------------------------------------------------------- choosing thresholds by eye
def value_distribution(
    states: Any,
    lengths: Any = None,
    *,
    gates: Any = None,
    bins: int = 100,
    threshold: float | None = None,
    low: float | None = None,
    high: float | None = None,
) -> pd.DataFrame:
    """Histogram of |h| (and of each sigmoid gate's values) over every valid step and unit.

    ``|h|`` is binned on ``[0, max(1, largest |h|)]`` and gates on ``[0, 1]``, in ``bins`` equal
    bins (default 100, so thresholds on a 0.01 grid fall on bin edges). When ``states`` is a
    Trace and ``gates`` is None, its sigmoid gates are included.

    Returns
    -------
    frame with columns ``what`` ("|h|", or "gate z" ...), ``bin_start``, ``bin_end``, ``count``,
    ``share`` (count / all of that kind's unit-steps). ``attrs`` hold the exact shares the
    captions quote: ``share_saturated`` (|h| >= threshold) when ``threshold`` is given, and
    ``gate_shares`` {gate: (share < low, share > high)} when ``low``/``high`` are given.
    """
    if gates is None and hasattr(states, "gate_kinds"):
        gates = trace_gates(states) or None
    arr, lens = _as_states(states, lengths)
    bins = int(bins)
    if bins < 2:
        raise InputError("bins must be at least 2.")
    thr = None if threshold is None else _check_threshold(threshold)
    # one pass over blocks of sequences (no copy of every value at once) counts on [0, 1], where the
    # states of tanh/sigmoid units lie; only a state beyond 1 (ReLU, cell states) bins them again
    size, largest, n_sat = 0, -np.inf, 0
    count = np.zeros(bins, dtype=np.int64)
    for a in _abs_values(arr, lens):
        size += a.size
        if a.size:
            largest = max(largest, float(a.max()))
        count += _bin_counts(a, 1.0, bins)
        if thr is not None:
            n_sat += int(np.count_nonzero(a >= thr))
    top = max(1.0, largest if size else 1.0)
    if top > 1.0:
        count = np.zeros(bins, dtype=np.int64)
        for a in _abs_values(arr, lens):
            count += _bin_counts(a, top, bins)
    frames = [_histogram_frame("|h|", count, size, top, bins)]
    attrs: dict[str, Any] = {}
    if threshold is not None:
        attrs["share_saturated"] = float(n_sat / size) if size else 0.0
        attrs["threshold"] = float(threshold)
    if gates is not None:
        g, glens = _as_gates(gates, lens, n_expected=arr.shape[0])
        shares = {}
        for name, garr in g.items():
            gsize, gcount, n_low, n_high = 0, np.zeros(bins, dtype=np.int64), 0, 0
            lo_hi = _check_low_high(low, high) if low is not None and high is not None else None
            for v in _abs_values(garr, glens, absolute=False):
                gsize += v.size
                gcount += _bin_counts(v, 1.0, bins)
                if lo_hi is not None:
                    n_low += int(np.count_nonzero(v < lo_hi[0]))
                    n_high += int(np.count_nonzero(v > lo_hi[1]))
            frames.append(_histogram_frame(f"gate {name}", gcount, gsize, 1.0, bins))
            if lo_hi is not None:
                shares[name] = (n_low / gsize if gsize else 0.0, n_high / gsize if gsize else 0.0)
        if shares:
            attrs["gate_shares"] = shares
            attrs["low"], attrs["high"] = float(low), float(high)
    frame = pd.concat(frames, ignore_index=True)
    frame.attrs.update(attrs)
    return frame


def _abs_values(arr: np.ndarray, lens: np.ndarray, cells: int = 1 << 22, absolute: bool = True):
    """|value| (the value itself when not ``absolute``) of every finite valid unit-step of ``arr``
    [N, T, H], one 1-D array per block of sequences (about ``cells`` values each), in row order.
    A block of full-length, finite sequences skips the mask and the finite filter (a copy each)."""
    t_len = arr.shape[1]
    for sl in _blocks(arr, cells):
        a = arr[sl]
        a = a[valid_mask(lens[sl], t_len)] if (lens[sl] < t_len).any() else a
        a = np.abs(a).reshape(-1) if absolute else np.ascontiguousarray(a).reshape(-1)
        yield a if np.isfinite(a).all() else a[np.isfinite(a)]


def _bin_counts(values: np.ndarray, top: float, bins: int) -> np.ndarray:
    """Counts of ``values`` in ``bins`` equal bins of [0, top] (np.histogram's rule: the last bin
    includes its right edge; values outside go to the first or last bin). torch's ``histc`` takes
    half the time of a bincount of bin numbers on this machine."""
    import torch
    v = torch.from_numpy(np.clip(values, 0.0, top, dtype=np.float32) if values.size else
                         np.zeros(0, np.float32))
    return torch.histc(v, bins=bins, min=0.0, max=float(top)).numpy().astype(np.int64)


def _histogram_frame(what: str, count: np.ndarray, size: int, top: float, bins: int) -> pd.DataFrame:
    edges = np.linspace(0.0, top, bins + 1)
    total = max(int(size), 1)
    return pd.DataFrame({"what": what, "bin_start": edges[:-1], "bin_end": edges[1:], "count": count,
                         "share": count / total})



class ThresholdSuggestion(NamedTuple):
    """A starting threshold for "saturated when |h| >= threshold", and why.

    ``share``: the share of unit-steps saturated at ``threshold``; ``max_abs``: the largest |h|
    seen; ``message``: a plain sentence to show beside the slider ("" when the default shows
    something and needs no word).
    """

    threshold: float
    share: float
    max_abs: float
    message: str


def suggest_threshold(
    states: Any,
    lengths: Any = None,
    *,
    default: float = DEFAULT_THRESHOLD,
    lo: float = 0.5,
    hi: float = 0.99,
    step: float = 0.01,
    min_share: float = 0.01,
) -> ThresholdSuggestion:
    """A threshold that shows something on these states.

    Rule: keep ``default`` when at least ``min_share`` (1%) of all valid unit-steps have
    ``|h| >= default``; otherwise take the highest threshold on the grid ``lo, lo + step, ...,
    hi`` (the app's slider) where at least ``min_share`` do. When none does, return ``lo`` if some
    unit-step reaches it (few saturate at any threshold), and ``default`` with a sentence saying
    nothing saturates at any threshold on the grid when the largest |h| is below ``lo``.
    """
    arr, lens = _as_states(states, lengths)
    default = _check_threshold(default)
    grid = np.round(np.arange(round(lo / step), round(hi / step) + 1) * step, 10)
    # blocks of sequences (no copy of every value at once): one pass counts; only when the default
    # shows too little does a second pass keep each block's values that can count, sorted
    size, max_abs, n0 = 0, 0.0, 0
    for a in _abs_values(arr, lens):
        size += a.size
        if a.size:
            max_abs = max(max_abs, float(a.max()))
            n0 += int(np.count_nonzero(a >= default))
    n = max(size, 1)
    s0 = float(n0) / n
    if s0 >= min_share:
        return ThresholdSuggestion(default, s0, max_abs, "")
    tops = [np.sort(a[a >= min(lo, default)]) for a in _abs_values(arr, lens)]  # usually few

    def share(t: float) -> float:
        return float(sum(top.size - np.searchsorted(top, t, side="left") for top in tops)) / n

    shares = np.array([share(t) for t in grid])
    ok = np.flatnonzero(shares >= min_share)
    if ok.size:
        t = float(grid[ok[-1]])
        return ThresholdSuggestion(t, float(shares[ok[-1]]), max_abs, (
            f"At |value| {default:g} or more, {_pct(s0)} of the unit-steps saturate, so the threshold starts at "
            f"{t:g}, where {_pct(shares[ok[-1]])} do; move it to see more or fewer."))
    if max_abs >= lo:
        return ThresholdSuggestion(float(lo), share(lo), max_abs, (
            f"Few units saturate at any threshold: even at |value| {lo:g} or more, {_pct(share(lo))} of the "
            f"unit-steps do (the largest |value| is {max_abs:.2f})."))
    return ThresholdSuggestion(default, s0, max_abs, (
        f"Nothing saturates at any threshold from {lo:g} to {hi:g}: the largest |value| any unit reaches on these "
        f"sequences is {max_abs:.2f}."))


def _pct(v: float) -> str:
    """A share for people: 0% only when it is zero, "< 0.1%" for tiny shares."""
    v = float(v)
    if v == 0:
        return "0%"
    if v < 0.001:
        return "under 0.1%"
    return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"


# shared with groups, unit_saturation and the bundle under public names (no module reads another's privates)
check_threshold = _check_threshold
per_step_fraction = _per_step_fraction
group_time_mean = _group_time_mean
