"""What a person can see: long step axes, wide unit axes and many features reduced for display.

A chart of units x steps at real sizes (10,000 steps x 1,024 units) holds ten million cells; a
screen shows a few thousand. Every chart builder in :mod:`rnnviz_core.charts` goes through this
module so that the data it embeds stays under :data:`ROW_BUDGET` rows whatever the sizes, and
its caption says what one drawn cell stands for:

- **steps** are binned (:class:`StepBins`): each column is ``k`` consecutive steps, reduced by the
  mean (states, inputs, shares over time), the maximum (saturation: a unit pinned in any step of
  the column shows), or the signed value of largest size (``"absmax"``: scores, so the one step
  that drove the answer is not averaged away);
- **rows** (units, features) beyond what fits are cut to the most active ones, and the caption
  says how many of how many are drawn;
- **points** of a cloud are sampled with a fixed seed.

Short sequences are drawn as they are (``k == 1``): nothing here changes a chart that fits.
Labels are trimmed with an ellipsis (:func:`short_label`), never cut mid-word without one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import InputError

__all__ = ["ROW_BUDGET", "MAX_COLUMNS", "MAX_LINE_POINTS", "MAX_UNITS", "MAX_FEATURES", "StepBins", "step_bins",
           "bin_steps", "bin_tidy", "rows_shown", "heat_bins", "top_rows", "sample_index", "short_label",
           "step_label", "bin_words", "HOW_WORDS", "robust_range",
           "distinct_labels"]

#: the most rows any one dataset of a chart embeds (Altair refuses more than 5,000)
ROW_BUDGET = 4000
#: the most step columns a heatmap or bar chart draws (~2 px each on a 440 px axis)
MAX_COLUMNS = 200
#: the most points a line draws per sequence
MAX_LINE_POINTS = 500
#: the most unit rows a heatmap draws when steps are binned (the most active ones)
MAX_UNITS = 32
#: the most features an input strip or per-feature heatmap draws
MAX_FEATURES = 24
#: steps per column are chosen from these (then multiples of 10,000)
_NICE = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 16, 20, 25, 30, 40, 50, 60, 75, 80, 100, 120, 125, 150, 200, 250,
         300, 400, 500, 600, 750, 800, 1000, 1250, 1500, 2000, 2500, 3000, 4000, 5000, 10000)

#: how a column's value is computed, in words for captions
HOW_WORDS = {"mean": "the mean over them", "max": "the largest of them",
             "absmax": "the one of largest size (its sign kept)", "min": "the smallest of them"}


@dataclass(frozen=True)
class StepBins:
    """Columns of ``k`` consecutive steps covering steps ``start`` .. ``stop - 1``.

    Column ``c`` holds steps ``start + c * k`` .. ``min(start + (c + 1) * k, stop) - 1`` and is
    named by its first step (the x value charts draw).
    """
    start: int
    stop: int
    k: int

    @property
    def n_steps(self) -> int:
        return self.stop - self.start

    @property
    def n_cols(self) -> int:
        return max(1, math.ceil(self.n_steps / self.k))

    @property
    def binned(self) -> bool:
        return self.k > 1

    @property
    def windowed(self) -> bool:
        return self.start > 0

    def starts(self) -> list[int]:
        """First step of each column."""
        return [self.start + c * self.k for c in range(self.n_cols)]

    def column(self, steps: Any) -> np.ndarray:
        """First step of the column holding each step (steps outside the window are -1)."""
        s = np.asarray(steps, dtype=np.int64)
        inside = (s >= self.start) & (s < self.stop)
        return np.where(inside, self.start + (s - self.start) // self.k * self.k, -1)

    def words(self, how: str = "mean") -> str:
        """What one column stands for, for a caption ("" when every column is one step of the
        whole sequence)."""
        parts = []
        if self.binned:
            parts.append(f"each column is {self.k} steps; the value shown is {HOW_WORDS[how]}")
        if self.windowed or self.binned:
            parts.append(f"steps {self.start} to {self.stop - 1} are drawn")
        return "; ".join(parts)


def _nice_k(n_steps: int, max_columns: int) -> int:
    need = max(1, math.ceil(n_steps / max(int(max_columns), 1)))
    for k in _NICE:
        if k >= need:
            return k
    return int(math.ceil(need / 10000) * 10000)


def step_bins(n_steps: int, *, max_columns: int = MAX_COLUMNS, window: Sequence[int] | None = None) -> StepBins:
    """Columns for ``n_steps`` steps (or the steps ``window = (start, end)``, end exclusive), at
    most ``max_columns`` of them, each a "nice" number of steps (1, 2, 3, 4, 5, 6, 8, 10, ...)."""
    n_steps = max(int(n_steps), 1)
    start, stop = 0, n_steps
    if window is not None:
        start, stop = int(window[0]), int(window[1])
        start = min(max(start, 0), n_steps - 1)
        stop = min(max(stop, start + 1), n_steps)
    return StepBins(start, stop, _nice_k(stop - start, max_columns))


def rows_shown(n_rows: int, n_steps: int, *, budget: int = ROW_BUDGET, cap: int = MAX_UNITS) -> int:
    """How many rows (units, features) a rows x steps heatmap draws: all when every cell fits the
    budget, else at least ``cap`` (fewer only when there are fewer) and as many as one cell per
    step allows."""
    n_rows, n_steps = max(int(n_rows), 1), max(int(n_steps), 1)
    if n_rows * n_steps <= budget:
        return n_rows
    return min(n_rows, max(cap, budget // n_steps))


def heat_bins(n_rows: int, n_steps: int, *, budget: int = ROW_BUDGET, cap: int = MAX_UNITS,
              window: Sequence[int] | None = None, max_columns: int = MAX_COLUMNS) -> tuple[int, StepBins]:
    """(rows drawn, step columns) of a heatmap whose cells stay within ``budget``."""
    span = n_steps if window is None else max(1, min(int(window[1]), n_steps) - max(int(window[0]), 0))
    rows = rows_shown(n_rows, span, budget=budget, cap=cap)
    return rows, step_bins(n_steps, max_columns=min(max_columns, max(1, budget // rows)), window=window)


def _reduce(blocks: np.ndarray, how: str, axis: int) -> np.ndarray:
    """nan-aware reduction of ``blocks`` along ``axis``; an all-NaN block gives NaN."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if how == "mean":
            return np.nanmean(blocks, axis=axis)
        if how == "max":
            return np.nanmax(blocks, axis=axis)
        if how == "min":
            return np.nanmin(blocks, axis=axis)
        if how == "absmax":
            mag = np.where(np.isnan(blocks), -np.inf, np.abs(blocks))
            idx = np.expand_dims(np.argmax(mag, axis=axis), axis)
            out = np.take_along_axis(blocks, idx, axis=axis).squeeze(axis)
            return out
    raise InputError(f"how must be one of {', '.join(HOW_WORDS)}; got {how!r}.")


def bin_steps(values: Any, bins: StepBins, how: str = "mean") -> np.ndarray:
    """Reduce the step axis (axis 0) of ``values`` [T, ...] to ``bins.n_cols`` columns.

    Steps past the array's end count as missing (NaN); a column with no value is NaN.
    """
    arr = np.asarray(values, dtype=np.float64)
    part = arr[bins.start:bins.stop]
    c, k = bins.n_cols, bins.k
    pad = c * k - part.shape[0]
    if pad:
        part = np.concatenate([part, np.full((pad,) + part.shape[1:], np.nan)], axis=0)
    return _reduce(part.reshape((c, k) + part.shape[1:]), how, axis=1)


def bin_tidy(frame: pd.DataFrame, bins: StepBins, values: dict[str, str], keys: Sequence[str] = (),
             step: str = "step", first: Sequence[str] = ()) -> pd.DataFrame:
    """A tidy frame with one row per (keys, step) reduced to one row per (keys, column).

    ``values``: column -> how ("mean", "max", "min", "absmax"); ``first``: columns that are
    constant within a key (kept as they are). The step column then holds each column's first step
    and ``step_end`` its last step present in the data. Rows outside the window are dropped.
    """
    col = bins.column(frame[step].to_numpy())
    keep = col >= 0
    sub = frame.loc[keep]
    if not bins.binned:
        out = sub.copy()
        out.attrs = dict(frame.attrs)
        return out
    col = col[keep]
    work = sub[list(keys)].copy()
    work["_col"] = col
    g = pd.concat([work, sub[list(values) + list(first)], sub[[step]].rename(columns={step: "_end"})], axis=1)
    grouped = g.groupby(list(keys) + ["_col"], sort=True, observed=True)
    parts = {}
    for name, how in values.items():
        if how == "absmax":
            s = g[name].astype(float)
            mag = s.abs().fillna(-1.0)
            idx = mag.groupby([g[k] for k in keys] + [g["_col"]], sort=True, observed=True).idxmax()
            parts[name] = s.loc[idx.to_numpy()].to_numpy()
        else:
            parts[name] = grouped[name].agg(how).to_numpy()
    ends = grouped["_end"].max()
    out = ends.reset_index()
    for name in first:
        out[name] = grouped[name].first().to_numpy()
    for name, v in parts.items():
        out[name] = v
    out = out.rename(columns={"_col": step, "_end": "step_end"})
    out.attrs = dict(frame.attrs)
    return out


def robust_range(values: Any, lo_pct: float = 2.0, hi_pct: float = 98.0) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``values`` [T, R]: (its ``lo_pct`` percentile, its ``hi_pct`` percentile) over
    the finite values, widened to (min, max) where the two meet (a column mostly constant but for a
    few spikes still shows them); (0, 1) for a column with no finite value."""
    import warnings
    arr = np.asarray(values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanpercentile(arr, lo_pct, axis=0)
        hi = np.nanpercentile(arr, hi_pct, axis=0)
        mn, mx = np.nanmin(arr, axis=0), np.nanmax(arr, axis=0)
    flat = ~(hi > lo)
    lo, hi = np.where(flat, mn, lo), np.where(flat, mx, hi)
    bad = ~np.isfinite(lo) | ~np.isfinite(hi)
    return np.where(bad, 0.0, lo), np.where(bad, 1.0, hi)


def top_rows(values: Any, n: int, *, order: Sequence[int] | None = None) -> np.ndarray:
    """Indices of the ``n`` rows (last axis of ``values`` [T, R]) that vary most over the
    finite steps (variance; all-NaN rows last), in ``order``'s order when given (else by index)."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr.reshape(-1, arr.shape[-1])
    r = arr.shape[-1]
    if n >= r:
        return np.asarray(order if order is not None else np.arange(r), dtype=np.int64)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        var = np.nanvar(arr, axis=0)
    var = np.where(np.isfinite(var), var, -1.0)
    chosen = set(np.argsort(-var, kind="stable")[:n].tolist())
    base = list(order) if order is not None else list(range(r))
    return np.asarray([u for u in base if u in chosen], dtype=np.int64)


def sample_index(n: int, max_n: int, *, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_n`` of ``n`` items, chosen with a fixed seed (all when n <= max_n)."""
    if n <= max_n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_n, replace=False))


def short_label(text: Any, max_chars: int) -> str:
    """``text`` trimmed to ``max_chars`` characters, ending in "…" when cut (never cut without it)."""
    s = str(text)
    max_chars = max(int(max_chars), 2)
    return s if len(s) <= max_chars else s[: max_chars - 1].rstrip() + "…"


def distinct_labels(names: Sequence[Any], max_chars: int) -> list[str]:
    """Row labels of at most ``max_chars`` characters that stay apart: names that fit are kept; a
    name too long keeps its start and as short an end as tells the labels apart, with "…" between
    ("sensor_000" .. "sensor_199" at 8 characters: "sens…000" .. "sens…199"); the full names when no
    such cut keeps them apart (a tooltip always shows the full name)."""
    full = [str(n) for n in names]
    max_chars = max(int(max_chars), 4)
    if all(len(n) <= max_chars for n in full):
        return full

    def cut(n: str, tail: int) -> str:
        return n if len(n) <= max_chars else n[: max_chars - 1 - tail] + "…" + (n[len(n) - tail:] if tail else "")

    for tail in range(0, max_chars - 1):
        out = [cut(n, tail) for n in full]
        if len(set(out)) == len(out):
            return out
    return full


def steps_words(steps: Sequence[int]) -> str:
    """Steps in words, runs of three or more consecutive steps as ranges: "step 3", "steps 0 and 4",
    "steps 30 and 31", "steps 15–46", "steps 2, 5–9 and 12" (sorted, repeats dropped)."""
    s = sorted({int(m) for m in steps})
    if not s:
        return "no steps"
    runs: list[list[int]] = []
    for m in s:
        if runs and m == runs[-1][1] + 1:
            runs[-1][1] = m
        else:
            runs.append([m, m])
    parts: list[str] = []
    for a, b in runs:
        parts += [str(a)] if a == b else [str(a), str(b)] if b == a + 1 else [f"{a}–{b}"]
    if len(s) == 1:
        return f"step {parts[0]}"
    return "steps " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" and {parts[-1]}")


def step_label(start: int, end: int) -> str:
    """A column's steps in words: "step 7" or "steps 16–23"."""
    return f"step {int(start)}" if int(end) <= int(start) else f"steps {int(start)}–{int(end)}"


def bin_words(words: Sequence[str], bins: StepBins, *, max_chars: int = 40) -> list[str]:
    """The words of each column, joined and trimmed ("the movie was…"), for tooltips."""
    out = []
    for s in bins.starts():
        part = [str(w) for w in words[s: min(s + bins.k, bins.stop)]]
        out.append(short_label(" ".join(part), max_chars))
    return out
