"""Charts for the saturation page, from the tidy frames of :mod:`rnnviz_core.saturation` and
:mod:`rnnviz_core.groups`.

As in :mod:`rnnviz_core.charts.trajectories`, each chart's ``description`` holds a one-sentence
plain-language caption (read it with :func:`caption`), and time charts carry a step slider
that works in the browser.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

import altair as alt
import pandas as pd

from .. import display as dp
from ..errors import InputError
from . import _steps as st
from .trajectories import caption, step_slider
from .trajectories import int_axis as _int_axis, require as _require, unit_axis as _unit_axis

__all__ = [
    "caption", "saturation_time_chart", "unit_saturation_chart", "gate_scatter_chart",
    "group_metric_chart", "resilience_chart", "distribution_chart", "shared_units",
]


#: the gates as PyTorch names them (GRU r, z; LSTM i, f, o), in words for the legend
GATE_NAMES = {"r": "reset gate (r)", "z": "update gate (z)", "i": "input gate (i)", "f": "forget gate (f)",
              "o": "output gate (o)"}


def _top_share(df: pd.DataFrame) -> float:
    """Top of the share axis: a little above the highest line or band (at most 100%), so a
    few-percent saturation is not drawn as a flat line at the bottom of a 0-100% axis."""
    cols = [c for c in ("hi", "frac_saturated") if c in df]
    top = float(np.nanmax(df[cols].to_numpy(dtype=float))) if len(df) else 0.0
    if not np.isfinite(top) or top <= 0:
        return 0.05
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0):
        if top * 1.1 <= step:
            return step
    return 1.0


def saturation_time_chart(over_time: pd.DataFrame, *, threshold: float = 0.9, scrubber: bool = True,
                          width: int = 420, height: int = 220, window: Sequence[int] | None = None,
                          max_points: int = dp.MAX_LINE_POINTS) -> alt.LayerChart:
    """Mean share of saturated units at each step, one line per group, with its 95% interval
    band (± 1.96 standard errors over the group's sequences at that step). ``over_time`` is the frame of
    :func:`rnnviz_core.saturation.saturation_over_time`.

    Long sequences are drawn with at most ``max_points`` points per line: each point the mean share
    over a run of steps, its band spanning those steps' intervals (the caption says so);
    ``window = (start, end)`` draws those steps."""
    _require(over_time, ["group", "step", "frac_saturated"], "saturation_time_chart")
    df = over_time.copy()
    df["group"] = df["group"].astype(str)
    if "sem" in df:
        df["lo"] = (df["frac_saturated"] - 1.96 * df["sem"].fillna(0)).clip(lower=0)
        df["hi"] = (df["frac_saturated"] + 1.96 * df["sem"].fillna(0)).clip(upper=1)
    bins = dp.step_bins(int(df["step"].max()) + 1 if len(df) else 1, max_columns=max_points, window=window)
    if len(df) and (bins.binned or bins.windowed):
        how = {"frac_saturated": "mean"}
        how.update({c: h for c, h in (("lo", "min"), ("hi", "max"), ("n_sequences", "min"), ("sem", "max"))
                    if c in df})
        df = dp.bin_tidy(df, bins, how, keys=["group"])
        if bins.binned:
            df["steps"] = [dp.step_label(a, b) for a, b in zip(df["step"], df["step_end"])]
    color = alt.Color("group:N", title="group",
                      legend=alt.Legend(symbolType="stroke", symbolOpacity=1, symbolStrokeWidth=2.5, labelLimit=0))
    n_steps = bins.n_steps
    x = alt.X("step:Q", title="step", scale=alt.Scale(domain=[bins.start, max(bins.stop - 1, bins.start + 1)],
                                                      nice=False), axis=_int_axis(n_steps, width))
    layers = []
    if "sem" in df:
        # band and line share one colour legend (Vega-Lite merges the legends of one field, so a band
        # with legend=None dropped the lines' legend and nothing said which line was which group); the
        # legend draws each group as a solid line, not as the band's 20%-opacity swatch
        layers.append(alt.Chart(df).mark_area(opacity=0.2).encode(x=x, y="lo:Q", y2="hi:Q", color=color))
    tooltip = ["group:N", "steps:N" if bins.binned else "step:Q", alt.Tooltip("frac_saturated:Q", format=".1%")]
    if "n_sequences" in df:
        tooltip.append(alt.Tooltip("n_sequences:Q", title="sequences"))
    layers.append(alt.Chart(df).mark_line(point=bins.n_cols <= 100).encode(
        x=x, y=alt.Y("frac_saturated:Q", title="share of units saturated", axis=alt.Axis(format="%"),
                     scale=alt.Scale(domain=[0, _top_share(df)], nice=False)),
        color=color, tooltip=tooltip))
    slider = step_slider(int(over_time["step"].max())) if scrubber and len(df) else None
    if slider is not None:
        layers.append(alt.Chart(pd.DataFrame({"step": [0]})).mark_rule(color="black", opacity=0.5).encode(
            x="now:Q").transform_calculate(now=slider.name))
    chart = alt.layer(*layers).properties(width=width, height=height)
    if slider is not None:
        chart = chart.add_params(slider)
    text = (f"Each line shows, for one group of sequences, the share of the network's units that sit at their "
            f"limits (|value| at least {threshold:g}) at each step; a higher line means more of the memory is pinned "
            f"and can no longer change smoothly" + ("; the shaded band around each line is its 95% interval."
                                                    if "sem" in df else "."))
    if bins.binned:
        text = text.rstrip(".") + (f"; each point is the mean over {bins.k} steps"
                                   + ("; its band spans the 95% intervals of those steps." if "sem" in df else "."))
    if bins.binned or bins.windowed:
        text = text.rstrip(".") + f"; steps {bins.start} to {bins.stop - 1} are drawn."
    if len(df) and float(df["frac_saturated"].max()) == 0.0:
        text += (f" Here no unit reaches {threshold:g} at any step, so every line lies flat at 0%; lower the "
                 f"threshold (the distribution of |value| shows where the values lie).")
    return chart.properties(description=text)


def shared_units(*unit_tables: pd.DataFrame, n_steps: int, window: Sequence[int] | None = None,
                 budget: int = dp.ROW_BUDGET) -> list[int] | None:
    """The units :func:`unit_saturation_chart` draws for every table shown together: all of them when
    the cells fit the budget, else the ones saturated most often (highest mean share over the tables'
    steps), in unit order. None when there is no table."""
    tables = [t for t in unit_tables if t is not None and len(t)]
    if not tables:
        return None
    units = sorted(set().union(*(pd.unique(t["unit"]).tolist() for t in tables)))
    n_units, _ = dp.heat_bins(len(units), int(n_steps), budget=budget, window=window)
    if n_units >= len(units):
        return units
    both = pd.concat([t[["unit", "frac_saturated"]] for t in tables])
    mean = both.groupby("unit")["frac_saturated"].mean().reindex(units).fillna(-1.0)
    keep = set(mean.sort_values(ascending=False, kind="stable").index[:n_units].tolist())
    return [u for u in units if u in keep]


def unit_saturation_chart(unit_time: pd.DataFrame, *, threshold: float = 0.9, scrubber: bool = True,
                          width: int = 420, height: int = 260, top: float | None = None,
                          n_steps: int | None = None, units: Sequence[int] | None = None,
                          window: Sequence[int] | None = None, words: Sequence[str] | None = None,
                          budget: int = dp.ROW_BUDGET) -> alt.LayerChart | alt.Chart:
    """Per-unit saturation heatmap: units x steps, coloured by the share of sequences whose unit
    is saturated there (0 to 1). ``unit_time`` is the frame of
    :func:`rnnviz_core.saturation.unit_saturation_over_time`, or the drawn units' rows of it
    (:meth:`rnnviz_core.unit_saturation.UnitShares.frame`, whose ``attrs["n_units_total"]`` the caption counts).

    ``top``: the share drawn in the darkest colour (default 1 = 100%). Where every share is a few
    percent a 0-100% scale draws the heatmap blank; pass the highest share of all the heatmaps shown
    side by side (one scale for all) and the caption says where the scale ends. ``n_steps``: the
    steps the x axis spans (default: this frame's); pass the longest of the heatmaps drawn one above
    the other so that each column is the same step in all of them.

    At real sizes the cells stay within ``budget``: each column is a run of steps showing the
    highest share among them (a unit pinned in any of its steps shows), and only the units saturated
    most often are drawn (``units``: pass :func:`shared_units` of every heatmap shown together so
    they draw the same rows); the caption says both. ``window = (start, end)`` draws those steps.
    """
    _require(unit_time, ["unit", "step", "frac_saturated"], "unit_saturation_chart")
    own = int(unit_time["step"].max()) + 1 if len(unit_time) else 1
    n_steps = own if n_steps is None else max(int(n_steps), own)
    all_units = sorted(pd.unique(unit_time["unit"]).tolist())
    if units is None:
        units = shared_units(unit_time, n_steps=n_steps, window=window, budget=budget) or all_units
    units = [u for u in units]
    bins = dp.step_bins(n_steps, max_columns=max(1, min(dp.MAX_COLUMNS, budget // max(len(units), 1))),
                        window=window)
    data = unit_time[unit_time["unit"].isin(set(units))]
    cols = {"frac_saturated": "max"}
    if "n_sequences" in data:
        cols["n_sequences"] = "min"
    data = dp.bin_tidy(data, bins, cols, keys=["unit"])
    data, tips = st.decorate(data, bins, words)
    tooltip = [alt.Tooltip("unit:O")] + tips + [alt.Tooltip("frac_saturated:Q", format=".1%", title="saturated")]
    if "n_sequences" in data:
        tooltip.append(alt.Tooltip("n_sequences:Q", title="sequences"))
    base = alt.Chart(data)
    scale_top = 1 if top is None or not np.isfinite(top) or top <= 0 or top >= 1 else float(top)
    col_px = max(1.0, float(int(width // bins.n_cols))) if bins.binned else st.column_px(bins, None, width)
    if bins.binned:  # whole pixels per column: fractional ones leave hairline seams between columns
        width = int(col_px * bins.n_cols)
    rect = base.mark_rect().encode(
        x=st.step_x(bins, col_px, words),
        y=alt.Y("unit:O", scale=alt.Scale(domain=units), axis=_unit_axis(units, height)),
        color=alt.Color("frac_saturated:Q", title="share saturated",
                        scale=alt.Scale(domain=[0, scale_top], scheme="oranges", clamp=True),
                        # below the heatmap: beside it, the title was cut ("share satu") in a half-width column
                        legend=alt.Legend(format="%", orient="bottom", direction="horizontal",
                                          values=[0, scale_top / 2, scale_top], gradientLength=max(60, min(int(width), 200)))),
        tooltip=tooltip).properties(width=width, height=height)
    chart: alt.LayerChart | alt.Chart = rect
    if scrubber and len(unit_time):
        slider = step_slider(int(unit_time["step"].max()))
        if bins.binned or bins.windowed:
            at = (f"{bins.start} + floor((clamp({slider.name}, {bins.start}, {bins.stop - 1}) - {bins.start}) "
                  f"/ {bins.k}) * {bins.k}")
            hit = f"datum.step == {at}"
        else:
            hit = alt.datum.step == slider
        now = base.mark_rect(filled=False, stroke="black", strokeWidth=2).encode(x="step:O").transform_filter(
            hit).transform_aggregate(groupby=["step"])
        chart = alt.layer(rect, now).add_params(slider)
    column = "one step" if not bins.binned else f"{bins.k} steps, showing the highest share among them"
    text = (f"Each row is one unit and each column {column}; the darker the cell, the more sequences have that unit "
            f"pinned at its limit (|value| at least {threshold:g}) at that step, so dark rows are units that are "
            f"almost always saturated.")
    if scale_top < 1:
        text = text.replace("almost always saturated.", f"saturated in many sequences. The darkest colour stands for "
                            f"{scale_top:.0%} of the sequences or more, not 100%.")
    if bins.binned or bins.windowed:
        text = text.rstrip(".") + f"; steps {bins.start} to {bins.stop - 1} are drawn."
    n_all = max(len(all_units), int(unit_time.attrs.get("n_units_total", 0)))  # a frame of the drawn units only
    if len(units) < n_all:
        text = text.rstrip(".") + (f"; only the {len(units)} units saturated most often of the {n_all:,} "
                                   "are drawn.")
    if len(unit_time) and float(unit_time["frac_saturated"].max()) == 0.0:
        text += f" Here no unit reaches {threshold:g} at any step, so every cell is blank."
    return chart.properties(description=text)


def gate_scatter_chart(gates: pd.DataFrame, *, low: float = 0.1, high: float = 0.9,
                       width: int = 240, height: int = 240) -> alt.LayerChart:
    """Karpathy et al.'s gate scatter: one dot per gate unit, x = share of steps left-saturated
    (gate < low, nearly shut), y = share right-saturated (gate > high, nearly open), coloured by
    gate (legend below the plot, so two scatters fit side by side in a 1,100 px window).
    ``gates`` is the frame of :func:`rnnviz_core.saturation.gate_saturation`."""
    _require(gates, ["gate", "unit", "left", "right"], "gate_scatter_chart")
    total = len(gates)
    if total > dp.ROW_BUDGET:   # 4 gates x 1,024 units: a fixed-seed sample, named in the caption
        gates = gates.iloc[dp.sample_index(total, dp.ROW_BUDGET)]
    gates = gates.assign(gate=[GATE_NAMES.get(str(g), str(g)) for g in gates["gate"]])
    axis = alt.Scale(domain=[0, 1])
    edge = alt.Chart(pd.DataFrame({"left": [0.0, 1.0], "right": [1.0, 0.0]})).mark_line(
        color="gray", strokeDash=[4, 4]).encode(x=alt.X("left:Q", scale=axis), y=alt.Y("right:Q", scale=axis))
    pts = alt.Chart(gates).mark_circle(size=40, opacity=0.7).encode(
        x=alt.X("left:Q", title=f"share of steps nearly shut (< {low:g})", scale=axis, axis=alt.Axis(format="%")),
        y=alt.Y("right:Q", title=f"share of steps nearly open (> {high:g})", scale=axis, axis=alt.Axis(format="%")),
        color=alt.Color("gate:N", title="gate", legend=alt.Legend(orient="bottom", direction="horizontal", columns=2)),
        tooltip=["gate:N", "unit:Q", alt.Tooltip("left:Q", format=".1%"), alt.Tooltip("right:Q", format=".1%")])
    chart = alt.layer(edge, pts).properties(width=width, height=height)
    return chart.properties(description=(
        "Each dot is one gate of one unit: far right means it is nearly shut most of the time, high up that it is "
        "nearly open most of the time, and dots near the bottom-left corner are gates that really open and close "
        "with the input; no dot can lie beyond the dashed line."
        + ("" if total <= dp.ROW_BUDGET else f" {len(gates):,} of the {total:,} gate units, sampled at random, are "
           "drawn.")))


def group_metric_chart(summary: pd.DataFrame, metric: str = "accuracy", *, title: str | None = None,
                       width: int = 300, height: int = 200) -> alt.Chart:
    """Bars of one per-group statistic from :func:`rnnviz_core.groups.group_summary` (e.g.
    ``accuracy``, ``mean_loss``, ``mean_confidence``, ``flip_rate``), with group sizes in the
    tooltip."""
    _require(summary, ["group", "size", metric], "group_metric_chart")
    df = summary.copy()
    df["group"] = df["group"].astype(str)
    label = title or metric.replace("_", " ")
    percent = metric in ("accuracy", "mean_confidence", "flip_rate", "sat_mean", "share", "agreement")
    lo, hi = f"{metric}_low", f"{metric}_high"
    has_ci = lo in df and hi in df and df[[lo, hi]].notna().any().any()
    tip = ["group:N", "size:Q", alt.Tooltip(f"{metric}:Q", format=".1%" if percent else ".3f")]
    if has_ci:
        tip += [alt.Tooltip(f"{lo}:Q", format=".1%" if percent else ".3f", title="95% interval from"),
                alt.Tooltip(f"{hi}:Q", format=".1%" if percent else ".3f", title="to")]
    bars = alt.Chart(df).mark_bar().encode(
        x=alt.X("group:N", title="group", sort=None, axis=alt.Axis(labelAngle=0, labelLimit=0)),
        y=alt.Y(f"{metric}:Q", title=label, axis=alt.Axis(format="%") if percent else alt.Axis()),
        color=alt.Color("group:N", legend=None),
        tooltip=tip,
    )
    chart = bars
    if has_ci:
        chart = alt.layer(bars, alt.Chart(df).mark_rule(color="black", strokeWidth=1.5).encode(
            x=alt.X("group:N", sort=None), y=f"{lo}:Q", y2=f"{hi}:Q"))
    chart = chart.properties(width=width, height=height)
    text = (f"Each bar is one group of sequences and its height the group's {label}; hover a bar to see how many "
            f"sequences it holds")
    text += (", and the black line on each bar spans its 95% interval (long lines: unreliable bars)." if has_ci
             else ", since small groups give unreliable bars.")
    return chart.properties(description=text)


def resilience_chart(summary: pd.DataFrame, *, metric: str = "mean_output_change", width: int = 420,
                     height: int = 220) -> alt.Chart:
    """Grouped bars of resilience per condition and group, from
    :func:`rnnviz_core.groups.resilience_summary` (``metric``: ``mean_output_change``,
    ``median_output_change`` or ``flip_rate``)."""
    _require(summary, ["condition", "group", metric], "resilience_chart")
    if metric not in ("mean_output_change", "median_output_change", "flip_rate"):
        raise InputError("metric must be mean_output_change, median_output_change or flip_rate.")
    df = summary.copy()
    df["group"] = df["group"].astype(str)
    title = {"mean_output_change": "mean change of the output", "median_output_change": "median change of the output",
             "flip_rate": "share of predictions that flip"}[metric]
    lo, hi = f"{metric}_low", f"{metric}_high"
    has_ci = lo in df and hi in df and df[[lo, hi]].notna().any().any()
    enc = dict(x=alt.X("condition:N", title=None, sort=None, axis=alt.Axis(labelLimit=0)),
               xOffset=alt.XOffset("group:N"))
    chart = alt.Chart(df).mark_bar().encode(
        y=alt.Y(f"{metric}:Q", title=title, axis=alt.Axis(format="%") if metric == "flip_rate" else alt.Axis()),
        color=alt.Color("group:N", title="group"),
        tooltip=["condition:N", "group:N", "size:Q", alt.Tooltip(f"{metric}:Q", format=".3f")], **enc,
    )
    if has_ci:
        chart = alt.layer(chart, alt.Chart(df).mark_rule(color="black", strokeWidth=1.5).encode(
            y=f"{lo}:Q", y2=f"{hi}:Q", **enc))
    chart = chart.properties(width=width, height=height)
    text = ("Each bar shows how much the model's answer moves when the input is damaged in the way named below it, "
            "one colour per group of sequences; taller bars mean a more fragile group")
    return chart.properties(description=text + ("; black lines span 95% intervals." if has_ci else "."))


def distribution_chart(dist: pd.DataFrame, *, threshold: float | None = None, low: float | None = None,
                       high: float | None = None, width: int = 300, height: int = 140) -> alt.TopLevelMixin:
    """How the values are spread, to choose thresholds by eye: one histogram for |h| (with the
    saturation threshold as a red rule) and one per gate (with the "nearly shut" and "nearly
    open" limits). ``dist`` is the frame of :func:`rnnviz_core.saturation.value_distribution`;
    the caption quotes the exact shares it stores in ``attrs`` (computed for these limits)."""
    _require(dist, ["what", "bin_start", "bin_end", "share"], "distribution_chart")
    panels = []
    for what in pd.unique(dist["what"]):
        sub = dist[dist["what"] == what]
        bars = alt.Chart(sub).mark_bar(color="#7f8fa6", binSpacing=0).encode(
            x=alt.X("bin_start:Q", bin="binned", title=what if what == "|h|" else f"{what} value",
                    scale=alt.Scale(domain=[0, float(sub["bin_end"].max())])),
            x2="bin_end:Q",
            y=alt.Y("share:Q", title="share of unit-steps", axis=alt.Axis(format="%")),
            tooltip=[alt.Tooltip("bin_start:Q", format=".2f", title="from"),
                     alt.Tooltip("bin_end:Q", format=".2f", title="to"), alt.Tooltip("share:Q", format=".2%")])
        cuts = ([threshold] if what == "|h|" and threshold is not None else
                [v for v in (low, high) if v is not None] if what != "|h|" else [])
        layers = [bars]
        if cuts:
            layers.append(alt.Chart(pd.DataFrame({"cut": [float(c) for c in cuts]})).mark_rule(
                color="#e45756", strokeWidth=2).encode(x="cut:Q", tooltip=[alt.Tooltip("cut:Q", title="limit")]))
        panels.append(alt.layer(*layers).properties(width=width, height=height, title=str(what)))
    rows = [alt.hconcat(*panels[i:i + 2]) for i in range(0, len(panels), 2)]
    chart = alt.vconcat(*rows) if len(rows) > 1 else rows[0]
    text = "Each bar shows how many of all units' values over all steps fall in that range"
    share = dist.attrs.get("share_saturated")
    if threshold is not None:
        text += f"; the red line on |h| is the saturation threshold {threshold:g}"
        if share is not None:
            if share == 0:
                text += ", and no value reaches it"
            else:
                text += f", and {_share_words(share)} of the values lie at or beyond it"
    gs = dist.attrs.get("gate_shares")
    if gs and low is not None and high is not None:
        text += (f"; on the gates the red lines are the limits {low:g} (nearly shut) and {high:g} (nearly open)")
    return chart.properties(description=text + ".")


def _share_words(v: float) -> str:
    return "less than 0.1%" if 0 < v < 0.001 else f"{v:.1%}"
