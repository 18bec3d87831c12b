"""Heatmaps of states (units x steps) with one shared colour range, one sequence or a pair."""
from __future__ import annotations

from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from .. import display as dp
from ..analyses.heatmaps import HeatmapData
from ..errors import InputError
from . import _steps as st
from .axes import num as _num, require as _require, step_slider, unit_axis as _unit_axis

__all__ = ["heatmap_chart", "heatmap_caption", "pair_heatmaps_chart"]


def _heatmap(frame: pd.DataFrame, domain: tuple[float, float], title: str, slider: alt.Parameter | None,
             width: float | None, height: int, *, step_width: float | None = None, n_steps: int | None = None,
             value_title: str = "state value", bins: dp.StepBins | None = None,
             words: Sequence[str] | None = None) -> alt.LayerChart | alt.Chart:
    """One units x steps heatmap of an already reduced frame (``step`` = each column's first
    step); the x scale has one band per column (``step_width`` px per step)."""
    n_steps = int(frame["step"].max()) + 1 if n_steps is None else int(n_steps)
    bins = bins or dp.StepBins(0, n_steps, 1)
    col_px = st.column_px(bins, step_width, width or 360)
    order = frame.attrs.get("unit_order")
    units = list(order) if order is not None else sorted(pd.unique(frame["unit"]).tolist())
    lo, hi = domain
    ticks = [lo, 0.0, hi] if lo < 0 < hi else [lo, hi]
    color = alt.Color("value:Q", title=value_title,
                      scale=alt.Scale(domain=[lo, hi], scheme="redblue", reverse=True, clamp=True),
                      legend=alt.Legend(orient="right", gradientLength=min(height, 200), values=ticks, format=".3~g"))
    data, tips = st.decorate(frame, bins, words)
    base = alt.Chart(data, title=title)
    rect = base.mark_rect().encode(
        x=st.step_x(bins, col_px, words),
        y=alt.Y("unit:O", sort=units, scale=alt.Scale(domain=units), axis=_unit_axis(units, height)),
        color=color,
        tooltip=tips + [alt.Tooltip("unit:O"), alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=alt.Step(col_px), height=height)
    if slider is None:
        return rect
    last = bins.starts()[-1]
    # the frame stays on the last column of a sequence that ends before the slider's step
    now = f"min({slider.name}, datum.last)"
    if bins.binned or bins.windowed:
        now = (f"{bins.start} + floor((clamp({slider.name}, {bins.start}, datum.last) - {bins.start}) / {bins.k}) "
               f"* {bins.k}")
    rule = alt.Chart(pd.DataFrame({"last": [last]})).mark_rect(filled=False, stroke="black", strokeWidth=2).encode(
        x=alt.X("now:O", scale=st.step_scale(bins))).transform_calculate(now=now)
    return alt.layer(rect, rule)


def _reduce_heat(sub: pd.DataFrame, n_steps: int, *, budget: int, bins: dp.StepBins | None,
                 window: Sequence[int] | None) -> tuple[pd.DataFrame, dp.StepBins, int]:
    """One sequence's heatmap rows cut to the budget: the most active units (by the variance of
    their values over the drawn steps) and binned steps (mean). Returns (frame, bins, units before
    the cut)."""
    order = sub.attrs.get("unit_order")
    units = list(order) if order is not None else sorted(pd.unique(sub["unit"]).tolist())
    if bins is None:
        n_units, bins = dp.heat_bins(len(units), n_steps, budget=budget, window=window)
    else:
        n_units = min(len(units), max(1, budget // bins.n_cols))
    inside = sub[(sub["step"] >= bins.start) & (sub["step"] < bins.stop)]
    if n_units < len(units):
        var = inside.groupby("unit")["value"].var().reindex(units).fillna(-1.0)
        keep = set(var.sort_values(ascending=False, kind="stable").index[:n_units].tolist())
        units = [u for u in units if u in keep]
        inside = inside[inside["unit"].isin(keep)]
    out = dp.bin_tidy(inside, bins, {"value": "mean"}, keys=["seq", "unit"])
    out.attrs = dict(sub.attrs)
    out.attrs["unit_order"] = units
    return out, bins, len(order) if order is not None else len(pd.unique(sub["unit"]))


def heatmap_chart(heat: HeatmapData, seq: Any = None, *, title: str | None = None, scrubber: bool = True,
                  width: int = 360, height: int = 240, step_width: float | None = None,
                  value_title: str = "state value", n_steps: int | None = None, bins: dp.StepBins | None = None,
                  window: Sequence[int] | None = None, words: Sequence[str] | None = None,
                  budget: int = dp.ROW_BUDGET) -> alt.LayerChart | alt.Chart:
    """Units x time heatmap of one sequence, coloured on the set's shared range ``heat.domain``.

    ``seq``: the id (``seq`` column) to draw; None takes the first one in ``heat.frame``.
    ``step_width``: pixels per step (default ``width`` / number of steps); pass the same value
    for several charts to put them on one step scale. Units are drawn in the order of
    ``heat.frame.attrs["unit_order"]`` when set (see :func:`rnnviz_core.trajectories.unit_order`).

    At real sizes the drawn cells stay within ``budget``: steps are binned (each column the mean
    of ``bins.k`` steps; pass ``bins`` to share columns with charts stacked above or below) and
    only the most active units are kept; ``window = (start, end)`` draws those steps only. The
    caption says what one cell stands for. ``words``: a text model's words, one per step, shown
    in the tooltips (and under the ticks when every column is one step).
    """
    if not isinstance(heat, HeatmapData):
        raise InputError("heatmap_chart needs the HeatmapData returned by rnnviz_core.trajectories.heatmap_data.")
    frame = heat.frame
    _require(frame, ["seq", "step", "unit", "value"], "heatmap_chart")
    if seq is None:
        seq = frame["seq"].iloc[0]
    sub = frame[frame["seq"] == seq]
    if sub.empty:
        raise InputError(f"Sequence {seq!r} is not in this heatmap data; pass one of its seq ids.")
    sub.attrs = dict(frame.attrs)
    own = int(sub["step"].max()) + 1
    drawn, bins, n_units = _reduce_heat(sub, own if n_steps is None else max(int(n_steps), own), budget=budget,
                                        bins=bins, window=window)
    slider = step_slider(int(sub["step"].max())) if scrubber else None
    chart = _heatmap(drawn, heat.domain, title or f"Sequence {seq}", slider, width, height, step_width=step_width,
                     value_title=value_title, bins=bins, words=words)
    if slider is not None:
        chart = chart.add_params(slider)
    return chart.properties(description=heatmap_caption(heat.domain, drawn["value"].to_numpy(),
                                                        *_units_shown(drawn, n_units), bins=bins))


def heatmap_caption(domain: tuple[float, float], values: Any = None, n_units: int | None = None,
                    n_units_total: int | None = None, bins: dp.StepBins | None = None) -> str:
    """Caption of a heatmap: the colour bar's range exactly (``domain``), when ``values`` are
    given the range the drawn values actually span, "N of the H units" when only some are drawn,
    and what one column stands for when ``bins`` group steps."""
    lo, hi = float(domain[0]), float(domain[1])
    if lo < 0 < hi:
        scale = f"blue at {_num(lo)} through white at 0 to red at {_num(hi)}"
    else:
        scale = f"blue at {_num(lo)} to red at {_num(hi)}"
    column = "one step of the sequence" if bins is None or not bins.binned else \
        f"{bins.k} steps of the sequence (the value shown is the mean over them)"
    text = (f"Each row is one hidden unit and each column {column}; colours run from {scale}, as "
            f"on the colour bar: one colour range for every sequence shown")
    if values is not None:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size:
            text += f" (values here run from {_num(v.min())} to {_num(v.max())})"
    if bins is not None and (bins.binned or bins.windowed):
        text += f"; steps {bins.start} to {bins.stop - 1} are drawn"
    if n_units is not None and n_units_total is not None and n_units < n_units_total:
        text += f"; only {n_units} of the {n_units_total:,} units are drawn"
    return text + "."


def _units_shown(frame: pd.DataFrame, n_before: int | None = None) -> tuple[int | None, int | None]:
    order = frame.attrs.get("unit_order")
    total = frame.attrs.get("n_units_total")
    if total is None and n_before is not None:
        total = n_before
    return (len(order) if order is not None else None), total


def pair_heatmaps_chart(heat: HeatmapData, seq_a: Any, seq_b: Any, *, titles: Sequence[str] | None = None,
                        scrubber: bool = True, width: int = 300, height: int = 240,
                        step_width: float | None = None, value_title: str = "state value",
                        window: Sequence[int] | None = None, budget: int = dp.ROW_BUDGET) -> alt.HConcatChart:
    """Two sequences' heatmaps side by side on one colour scale, one step scale and one slider.

    Both panels use the same width per step (``step_width``, default ``width`` / the longer
    sequence's length), so a 5-step sequence is drawn narrower than an 18-step one and columns
    line up step for step; the slider's frame stops at the last step of the shorter sequence.
    At real sizes both panels share one binning and one set of units (each half the ``budget``).
    """
    if not isinstance(heat, HeatmapData):
        raise InputError("pair_heatmaps_chart needs the HeatmapData returned by heatmap_data.")
    frame = heat.frame
    parts = []
    for s in (seq_a, seq_b):
        if not (frame["seq"] == s).any():
            raise InputError(f"Sequence {s!r} is not in this heatmap data; compute heatmap_data for both sequences.")
    lens = [int(frame.loc[frame["seq"] == s, "step"].max()) + 1 for s in (seq_a, seq_b)]
    steps = max(lens) - 1
    if step_width is None:
        step_width = float(width) / max(lens)
    slider = step_slider(steps) if scrubber else None
    names = titles or (f"Sequence A ({seq_a})", f"Sequence B ({seq_b})")
    both = frame[frame["seq"].isin([seq_a, seq_b])]
    both.attrs = dict(frame.attrs)
    # one cut for both: units chosen on A and B together, the same columns
    half = max(1, budget // 2)
    pooled = both.assign(seq="both")
    pooled.attrs = dict(frame.attrs)
    chosen, bins, n_units = _reduce_heat(pooled, max(lens), budget=half, bins=None, window=window)
    kept = chosen.attrs["unit_order"]
    drawn = []
    for s, t, n in zip((seq_a, seq_b), names, lens):
        sub = both[(both["seq"] == s) & both["unit"].isin(kept)]
        sub.attrs = dict(frame.attrs)
        sub.attrs["unit_order"] = kept
        own = dp.StepBins(bins.start, max(min(bins.stop, n), bins.start + 1), bins.k)  # a shorter one is narrower
        red, _, _ = _reduce_heat(sub, n, budget=half, bins=own, window=window)
        drawn.append(red)
        parts.append(_heatmap(red, heat.domain, t, slider, None, height, step_width=step_width,
                              value_title=value_title, bins=own))
    if slider is not None:
        parts[0] = parts[0].add_params(slider)
    chart = alt.hconcat(*parts).resolve_scale(color="shared")
    sel = np.concatenate([d["value"].to_numpy() for d in drawn])
    same = lens[0] == lens[1]
    how = ("" if same else f" Both are drawn on one step scale ({lens[0]} and {lens[1]} steps), so ")
    tail = (" Compare the two blocks column by column to see where the sequences' states differ." if same else
            how + "each column of one lines up with the same step of the other.")
    shown = dict(frame.attrs)
    shown["unit_order"] = kept
    return chart.properties(description=heatmap_caption(heat.domain, sel, len(kept),
                                                        shown.get("n_units_total") or n_units, bins=bins) + tail)


