"""Per-unit saturation over time as arrays (issue 18 at real sizes).

:func:`rnnviz_core.saturation.unit_saturation_over_time` returns one row per (unit, step): ten
million rows at 10,000 steps x 1,024 units, of which a heatmap draws a few thousand. Here the
shares stay a [T, H] array (:class:`UnitShares`); the rows a chart draws (:meth:`UnitShares.frame`
with ``units``) and the units it draws (:func:`shared_saturated_units`, the rule of
:func:`rnnviz_core.charts.saturation.shared_units`) are taken from the arrays, and the full frame is
built only when asked for (a CSV download).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import display as dp
from .arrays import as_states as _as_states

__all__ = ["UnitShares", "unit_saturation_shares", "shared_saturated_units"]


@dataclass(frozen=True)
class UnitShares:
    """``frac[t, u]``: the share of the sequences still running at step ``t`` (``alive[t]`` of them)
    whose unit ``u`` is saturated there."""
    frac: np.ndarray   # [T, H] float64
    alive: np.ndarray  # [T] int64

    @property
    def steps(self) -> np.ndarray:
        """The steps some sequence reaches."""
        return np.flatnonzero(self.alive > 0)

    @property
    def n_units(self) -> int:
        return int(self.frac.shape[1])

    @property
    def n_steps(self) -> int:
        """Last step some sequence reaches, plus one (1 when none)."""
        s = self.steps
        return int(s[-1]) + 1 if s.size else 1

    @property
    def top(self) -> float | None:
        """The highest share at any reached step; None when nothing is saturated."""
        s = self.steps
        m = float(np.nanmax(self.frac[s])) if s.size else 0.0
        return m if m > 0 else None

    def frame(self, units: Sequence[int] | None = None) -> pd.DataFrame:
        """The rows of :func:`rnnviz_core.saturation.unit_saturation_over_time` (``unit, step,
        frac_saturated, n_sequences``), only those of ``units`` when given (in unit order);
        ``attrs["n_units_total"]`` holds the number of units of the states."""
        cols = np.arange(self.n_units) if units is None else np.sort(np.asarray(list(units), dtype=np.int64))
        steps = self.steps
        out = pd.DataFrame({
            "unit": np.tile(cols, steps.size),
            "step": np.repeat(steps, cols.size),
            "frac_saturated": self.frac[np.ix_(steps, cols)].reshape(-1),
            "n_sequences": np.repeat(self.alive[steps], cols.size),
        }, copy=False)
        out.attrs["n_units_total"] = self.n_units
        return out


def unit_saturation_shares(states: Any, lengths: Any = None, rows: Any = None, *,
                           threshold: float = 0.9) -> UnitShares:
    """:class:`UnitShares` of the sequences ``rows`` (a boolean mask or indices; default all) at
    ``threshold`` (saturated when ``|h| >= threshold``), read one sequence (its valid steps) at a time."""
    from .saturation import check_threshold as _check_threshold
    arr, lens = _as_states(states, lengths)
    thr = _check_threshold(threshold)
    n, t, h = arr.shape
    idx = np.arange(n) if rows is None else np.arange(n)[np.asarray(rows)]
    count = np.zeros((t, h), dtype=np.int64)
    alive = np.zeros(t, dtype=np.int64)
    for i in idx:  # one sequence at a time, its valid steps only: no [N, T, H] temporary, no mask
        n_i = int(lens[i])
        count[:n_i] += np.abs(arr[i, :n_i]) >= thr
        alive[:n_i] += 1
    return UnitShares(count / np.maximum(alive, 1)[:, None], alive)


def shared_saturated_units(*shares: UnitShares | None, n_steps: int, window: Sequence[int] | None = None,
                           budget: int = dp.ROW_BUDGET) -> list[int] | None:
    """The units a per-unit heatmap draws for every one of ``shares`` shown together (the rule of
    :func:`rnnviz_core.charts.saturation.shared_units` on their frames): all when the cells fit
    the budget, else those with the highest mean share over the reached steps of all of them, in
    unit order. None when none has a reached step."""
    parts = [s for s in shares if s is not None and s.steps.size]
    if not parts:
        return None
    n_all = max(s.n_units for s in parts)
    n_units, _ = dp.heat_bins(n_all, int(n_steps), budget=budget, window=window)
    if n_units >= n_all:
        return list(range(n_all))
    total = sum(s.frac[s.steps].sum(axis=0) for s in parts)
    rows = sum(s.steps.size for s in parts)
    mean = total / rows
    keep = set(np.argsort(-mean, kind="stable")[:n_units].tolist())
    return [u for u in range(n_all) if u in keep]
