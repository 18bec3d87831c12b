"""Charts for the trajectory page, from the tidy frames of :mod:`rnnviz_core.trajectories`.

Every chart function returns an Altair chart whose ``description`` holds its caption: one
plain sentence that says what the chart shows and how to read it, for people who do not
program. :func:`caption` reads it back (``st.caption(caption(chart))``). Charts with a time axis
carry a step slider (an Altair param bound to ``alt.binding_range``), so moving through the
steps happens in the browser without a round trip to the server.

Charts embed their data; keep frames to a few thousand rows (Altair's default limit is 5,000)
by choosing the sequences to draw — the functions sample large clouds themselves.
"""
from __future__ import annotations

from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from .. import display as dp
from ..errors import InputError
from ..trajectories import HeatmapData, Parting, parting_summary, step_words
from . import _steps as st

__all__ = [
    "caption", "step_slider", "heatmap_chart", "pair_heatmaps_chart", "pca_paths_chart",
    "norms_chart", "distance_chart", "distance_caption", "norms_caption", "heatmap_caption", "on_one_step_axis",
]

#: name of the step param every time chart shares (one slider drives all views of a page)
STEP_PARAM = "step_now"
CLOUD_MAX = 3000


def caption(chart: alt.TopLevelMixin) -> str:
    """The plain-language caption stored in a chart's ``description``."""
    desc = getattr(chart, "description", None)
    return desc if isinstance(desc, str) else ""


def step_slider(max_step: int, *, value: int | None = None, name: str = STEP_PARAM,
                label: str = "Step ") -> alt.Parameter:
    """An Altair param bound to a range slider over steps 0..max_step (starts at the last)."""
    max_step = max(int(max_step), 0)
    return alt.param(name=name, value=max_step if value is None else int(value),
                     bind=alt.binding_range(min=0, max=max_step, step=1, name=label))


def _require(frame: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} needs a pandas DataFrame.")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise InputError(f"{what} needs the columns {', '.join(missing)}; pass the frame the matching rnnviz_core function returns.")


def _tick_every(n_steps: int, length_px: float, min_gap_px: float = 36.0) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... steps between labels that keeps them apart."""
    per = max(float(length_px), 1.0) / max(int(n_steps), 1)
    for base in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000):
        if base * per >= min_gap_px:
            return base
    return 100000


def _int_axis(n_steps: int, length_px: float, **kw) -> alt.Axis:
    """A quantitative step axis with whole-number ticks only, spaced to stay readable."""
    return alt.Axis(format="d", tickMinStep=_tick_every(n_steps, length_px), **kw)


# ----------------------------------------------------------------------------- heatmaps
def _num(v: float) -> str:
    """A number as a caption shows it (3 significant digits), the same text the colour bar labels use."""
    text = f"{float(v):.3g}"
    return "0" if text in ("-0", "0") else text


#: width (px) every step-scale chart reserves for its y-axis labels, so that charts stacked with
#: :func:`on_one_step_axis` line their steps up column by column
Y_EXTENT = 56


def _unit_axis(units: Sequence[Any], height: float, min_gap_px: float = 12.0) -> alt.Axis:
    """A unit axis that labels every k-th unit so labels never overlap (one label per ~12 px)."""
    n = max(len(units), 1)
    every = max(1, int(np.ceil(min_gap_px * n / max(float(height), 1.0))))
    return alt.Axis(values=list(units)[::every], labelOverlap=False, title="unit", minExtent=Y_EXTENT,
                    maxExtent=Y_EXTENT)


def _step_axis(n_steps: int, step_width: float) -> alt.Axis:
    """An ordinal step axis labelled every 1, 2, 5, 10, 20, 50 ... steps (whole numbers only)."""
    every = _tick_every(n_steps, n_steps * step_width)
    return alt.Axis(values=list(range(0, int(n_steps), every)), labelAngle=0, title="step")


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


# ----------------------------------------------------------------------------- PCA paths
DASHES = [[1, 0], [6, 4], [2, 2], [8, 3, 2, 3]]
SHAPES = ["circle", "square", "triangle-up", "diamond"]


def _legend_scale(names: list[str], rng: list) -> dict:
    """Scale and sort of a legend that lists ``names`` in the given order with ``rng`` in that order.

    When the names already sort in that order (the page's "A: ...", "B: ..."), the domain is left
    to the data, sorted ascending: the chart's definition then names no sequence, so a chart of
    another pair is the same definition with other data (the browser swaps the data in place
    instead of rebuilding the chart). Otherwise the names are spelled out in the scale.
    """
    if names == sorted(names):
        return {"sort": "ascending", "scale": alt.Scale(range=rng)}
    return {"sort": names, "scale": alt.Scale(domain=names, range=rng)}


def pca_paths_chart(paths: pd.DataFrame, seqs: Sequence[Any] | None = None, *, cloud: bool = True,
                    scrubber: bool = True, cloud_max: int = CLOUD_MAX, width: int = 420, height: int = 360,
                    random_state: int = 0, names: Sequence[str] | None = None,
                    window: Sequence[int] | None = None, max_points: int = dp.MAX_LINE_POINTS,
                    words: Sequence[Sequence[str]] | None = None) -> alt.LayerChart:
    """Paths of a few sequences through the shared PCA picture, coloured by time, drawn over a
    faint cloud of every sequence's states.

    ``paths`` is the frame of :func:`rnnviz_core.trajectories.pca_paths`; ``seqs`` the ids to
    draw as paths (default: the first two); ``names`` their legend names (default "A: id",
    "B: id", ...). The first path is solid with round dots, the second dashed with squares, and
    the legend lists every path (even when two names share one id). The cloud is a fixed-seed
    sample of at most ``cloud_max`` points. With ``scrubber``, a slider over the steps of the
    whole frame shows each path up to the chosen step, with a ring on each path's point at that
    step (at its last step once it has ended).

    The definition of the chart depends on the frame (its PCA axes, its longest sequence), not on
    which sequences are drawn, when the default names are used: see :func:`_legend_scale`.

    Long paths are drawn with at most ``max_points`` dots each (each dot the mean of a run of
    consecutive steps, the caption says how many); ``window = (start, end)`` draws those steps.
    """
    _require(paths, ["seq", "step", "pc1", "pc2"], "pca_paths_chart")
    ids = list(pd.unique(paths["seq"]))
    if seqs is None:
        seqs = ids[:2]
    seqs = list(seqs)
    missing = [s for s in seqs if s not in set(ids)]
    if missing:
        raise InputError(f"Sequences {missing} are not in the paths frame.")
    if len(seqs) > len(DASHES):
        raise InputError(f"Draw at most {len(DASHES)} paths at once; pass fewer seqs.")
    if names is None:
        names = [f"{chr(65 + i)}: {s}" for i, s in enumerate(seqs)]
    names = [str(n) for n in names]
    if len(names) != len(seqs) or len(set(names)) != len(names):
        raise InputError("names must give one distinct name per sequence drawn.")
    evr = paths.attrs.get("explained_variance_ratio") or []
    xt = f"PC1 ({evr[0]:.0%} of variance)" if len(evr) > 0 else "PC1"
    yt = f"PC2 ({evr[1]:.0%} of variance)" if len(evr) > 1 else "PC2"
    sel = pd.concat([paths.loc[paths["seq"] == s, ["step", "pc1", "pc2"]].assign(sequence=n)
                     for s, n in zip(seqs, names)], ignore_index=True)
    bins = dp.step_bins(int(sel["step"].max()) + 1 if len(sel) else 1, max_columns=max_points, window=window)
    sel = dp.bin_tidy(sel, bins, {"pc1": "mean", "pc2": "mean"}, keys=["sequence"])
    if bins.binned:
        sel = sel.assign(steps=[dp.step_label(a, b) for a, b in zip(sel["step"], sel["step_end"])])
    if words is not None:  # a text model: each drawn sequence's words, in the order of seqs
        sel = st.seq_words(sel, dict(zip(names, words)), bins)
    word_tip = [] if words is None else [alt.Tooltip("words:N" if bins.binned else "word:N")]
    # axes over every sequence's states, fixed whichever pair is drawn: the cloud then never moves,
    # and the browser does not redraw it point by point when the pair changes
    def extent(col: str) -> list[float]:
        v = paths[col].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        return [float(v.min()), float(v.max())] if v.size else [0.0, 1.0]
    x = alt.X("pc1:Q", title=xt, scale=alt.Scale(domain=extent("pc1"), zero=False))
    y = alt.Y("pc2:Q", title=yt, scale=alt.Scale(domain=extent("pc2"), zero=False))
    dash = alt.StrokeDash("sequence:N", title="sequence", legend=alt.Legend(symbolStrokeWidth=2, labelLimit=0),
                          **_legend_scale(names, DASHES[:len(names)]))
    shape = alt.Shape("sequence:N", title="sequence", legend=alt.Legend(labelLimit=0),
                      **_legend_scale(names, SHAPES[:len(names)]))
    # colour by step over the drawn paths' own steps (from the unfiltered data, so the colours stay
    # put while the slider hides later steps)
    step_colour = alt.Color("step:Q", title="step", scale=alt.Scale(scheme="viridis"),
                            legend=alt.Legend(format="d", tickMinStep=1))
    layers = []
    if cloud:
        pts = paths[["pc1", "pc2"]]
        cloud_n = (min(len(pts), cloud_max), len(pts))
        if len(pts) > cloud_max:
            pts = pts.sample(n=cloud_max, random_state=random_state)
        layers.append(alt.Chart(pts).mark_circle(size=8, color="#bbbbbb", opacity=0.25).encode(x=x, y=y))
    slider = step_slider(int(paths["step"].max())) if scrubber else None
    base = alt.Chart(sel)
    layers.append(base.mark_point(opacity=0).encode(x=x, y=y, color=step_colour))  # sets the colour range only
    shown = base.transform_filter(alt.datum.step <= slider) if slider is not None else base
    line = shown.mark_line(strokeWidth=1.5, color="#555555").encode(
        x=x, y=y, order="step:Q", detail="sequence:N", strokeDash=dash)
    dots = shown.mark_point(size=45, opacity=0.9, filled=True).encode(
        x=x, y=y, color=step_colour, shape=shape,
        tooltip=["sequence:N", "steps:N" if bins.binned else "step:Q"] + word_tip + [
            alt.Tooltip("pc1:Q", format=".3f"), alt.Tooltip("pc2:Q", format=".3f")])
    layers += [line, dots]
    if slider is not None:
        now = base.transform_joinaggregate(last="max(step)", groupby=["sequence"]).transform_filter(
            f"datum.step == min({slider.name}, datum.last)").mark_point(
            size=160, filled=False, color="black", strokeWidth=2).encode(x=x, y=y, shape=shape)
        layers.append(now)
    chart = alt.layer(*layers).properties(width=width, height=height)
    if slider is not None:
        chart = chart.add_params(slider)
    fitted = (paths.attrs.get("fitted_points"), paths.attrs.get("points"))
    return chart.properties(description=pca_caption(evr, names, cloud=cloud, bins=bins,
                                                    cloud_n=cloud_n if cloud else None, fitted=fitted))


def pca_caption(evr: Sequence[float] = (), names: Sequence[str] = (), *, cloud: bool = True,
                bins: dp.StepBins | None = None, cloud_n: tuple[int, int] | None = None,
                fitted: tuple[int | None, int | None] = (None, None)) -> str:
    sampled = fitted[0] is not None and fitted[1] is not None and fitted[0] < fitted[1]
    how = (f"; the directions and this share are computed from {fitted[0]:,} states sampled at random from all "
           f"{fitted[1]:,}, and every state is placed on them exactly" if sampled else "")
    share = f" (together {sum(list(evr)[:2]):.0%} of how the states vary{how})" if len(evr) >= 2 else ""
    if sampled and len(evr) < 2:
        share = (f" (directions computed from {fitted[0]:,} states sampled at random from all {fitted[1]:,}; "
                 "every state is placed on them exactly)")
    styles = ["a solid line with round dots", "a dashed line with squares", "a dotted line with triangles",
              "a dash-dot line with diamonds"]
    who = ""
    if len(names):
        who = "; " + ", ".join(f"{n} is {styles[i]}" for i, n in enumerate(names))
    dot = "one step" if bins is None or not bins.binned else f"{bins.k} consecutive steps (their mean)"
    text = ("Each dot is the network's memory at " + dot + ", squeezed onto the two directions in which the "
            f"states vary most{share}; a path runs from dark (early) to yellow (late) steps{who}")
    if bins is not None and (bins.binned or bins.windowed):
        text += f"; steps {bins.start} to {bins.stop - 1} are drawn"
    if not cloud:
        return text + "."
    if cloud_n is not None and cloud_n[0] < cloud_n[1]:
        return text + (f", and grey dots are {cloud_n[0]:,} states sampled at random from all {cloud_n[1]:,} "
                       "states of every sequence, for reference.")
    return text + ", and grey dots are all other sequences for reference."


# ----------------------------------------------------------------------------- |h| over time
def _column_expr(param: str, bins: dp.StepBins, last: str = "datum.last") -> str:
    """Vega expression: the first step of the column that holds the slider's step (at most ``last``)."""
    if not (bins.binned or bins.windowed):
        return f"min({param}, {last})"
    return f"{bins.start} + floor((clamp({param}, {bins.start}, {last}) - {bins.start}) / {bins.k}) * {bins.k}"


def norms_chart(norms: pd.DataFrame, seqs: Sequence[Any] | None = None, *, scrubber: bool = True,
                width: int = 420, height: int = 160, names: Sequence[str] | None = None,
                window: Sequence[int] | None = None, max_points: int = dp.MAX_LINE_POINTS,
                words: Sequence[Sequence[str]] | None = None) -> alt.VConcatChart:
    """Sum of |h| (top) and step change ||h_t - h_(t-1)|| (bottom) over time for a few
    sequences, with each sequence's plateau step marked as a dashed rule (only for the
    sequences that have one; the caption says which do and which do not settle).

    ``norms`` is the frame of :func:`rnnviz_core.trajectories.state_norms`; ``names``: how the
    caption and legend call the sequences (default their ids). The step axis spans the drawn
    sequences; with ``scrubber``, a slider over the steps of the whole frame moves a rule that
    stops at the drawn sequences' last step. The chart's definition names no sequence when
    ``names`` sort in the order of ``seqs`` (e.g. "A: ...", "B: ..."): see :func:`_legend_scale`.
    Long sequences are drawn with at most ``max_points`` points per line, each the mean of a run of
    consecutive steps (the caption says how many); ``window = (start, end)`` draws those steps.
    """
    _require(norms, ["seq", "step", "sum_abs", "step_change", "plateau_step"], "norms_chart")
    ids = list(pd.unique(norms["seq"]))
    seqs = ids[:2] if seqs is None else list(seqs)
    sel = norms.loc[norms["seq"].isin(seqs), ["seq", "step", "sum_abs", "step_change", "plateau_step"]].copy()
    if sel.empty:
        raise InputError("None of these sequences is in the norms frame.")
    label = {s: str(s) for s in seqs} if names is None else {s: str(n) for s, n in zip(seqs, names)}
    sel["sequence"] = sel.pop("seq").map(label)
    order = list(dict.fromkeys(label[s] for s in seqs if label[s] in set(sel["sequence"])))
    first = sel.groupby("sequence", sort=False)["plateau_step"].first()
    per_seq = [(n, int(first[n])) for n in order]
    bins = dp.step_bins(int(sel["step"].max()) + 1, max_columns=max_points, window=window)
    if bins.binned or bins.windowed:
        sel = dp.bin_tidy(sel, bins, {"sum_abs": "mean", "step_change": "mean"}, keys=["sequence"],
                          first=["plateau_step"])
        # the plateau rule is drawn at the true step, from the point of the column that holds it
        sel["plateau_col"] = bins.column(sel["plateau_step"].to_numpy())
        if bins.binned:
            sel["steps"] = [dp.step_label(a, b) for a, b in zip(sel["step"], sel["step_end"])]
    step_tip = "steps:N" if bins.binned else "step:Q"
    if words is not None:  # a text model: each drawn sequence's words, in the order of seqs
        sel = st.seq_words(sel, dict(zip([label[s] for s in seqs], words)), bins)
        step_tip = [step_tip, "words:N" if bins.binned else "word:N"]
    else:
        step_tip = [step_tip]
    hit = "datum.step == datum.plateau_col" if bins.binned or bins.windowed else "datum.step == datum.plateau_step"
    color = alt.Color("sequence:N", title="sequence", **_legend_scale(order, alt.Undefined))
    longest = int(norms["step"].max())
    # x domain from the drawn data: [0, last step of the longer sequence]
    x = alt.X("step:Q", title="step", scale=alt.Scale(nice=False, zero=True), axis=alt.Axis(format="d", tickMinStep=1))
    slider = step_slider(longest) if scrubber else None
    pts = bins.n_cols <= 200
    base = alt.Chart(sel)
    top_layers = [
        base.mark_line(point=pts).encode(x=x, y=alt.Y("sum_abs:Q", title="sum of |h|"), color=color,
                                         tooltip=["sequence:N", *step_tip, alt.Tooltip("sum_abs:Q", format=".3f")]),
        # one row per sequence that settles: its plateau step
        base.transform_filter(hit).mark_rule(strokeDash=[6, 4], strokeWidth=2).encode(
            x=alt.X("plateau_step:Q"), color=color,
            tooltip=["sequence:N", alt.Tooltip("plateau_step:Q", title="settles from step")]),
    ]
    bottom_layers = [
        base.transform_filter("isFinite(datum.step_change)").mark_line(point=pts).encode(
            x=x, y=alt.Y("step_change:Q", title="change from previous step"), color=color,
            tooltip=["sequence:N", *step_tip, alt.Tooltip("step_change:Q", format=".3f")]),
    ]
    if slider is not None:
        now = base.transform_joinaggregate(last="max(step)").transform_filter(
            f"datum.step == {_column_expr(slider.name, bins)}").transform_aggregate(
            at="min(step)").mark_rule(color="black", opacity=0.5).encode(x=alt.X("at:Q"))
        top_layers.append(now)
        bottom_layers.append(now)
    top = alt.layer(*top_layers).properties(width=width, height=height)
    bottom = alt.layer(*bottom_layers).properties(width=width, height=height)
    if slider is not None:
        top = top.add_params(slider)
    chart = alt.vconcat(top, bottom)
    rel_tol = norms.attrs.get("plateau_rule", {}).get("rel_tol", 0.1)
    return chart.properties(description=norms_caption(per_seq, rel_tol, bins=bins))


def norms_caption(plateaus: Sequence[Any] = (), rel_tol: float = 0.1, bins: dp.StepBins | None = None) -> str:
    """Caption of :func:`norms_chart`. ``plateaus``: (name, plateau step or -1) per drawn
    sequence; the dashed line is mentioned only when one is drawn."""
    head = ("The top panel shows how much is stored in the network's memory at each step (the sum of all units' "
            "absolute values) and the bottom one how much it changed from the step before")
    if bins is not None and (bins.binned or bins.windowed):
        head += "; " + bins.words("mean").replace("each column is", "each point is")
    items = [(str(n), int(p)) for n, p in plateaus] if plateaus and not np.isscalar(plateaus[0]) else \
        [(str(i), int(p)) for i, p in enumerate(plateaus)]
    settled = [(n, p) for n, p in items if p >= 0]
    moving = [n for n, p in items if p < 0]
    band = f"within {rel_tol:.0%} of its final level"
    if not settled:
        who = "the total never settles" if len(items) <= 1 else "neither total settles"
        return head + f"; {who} {band} before the end (it is still moving), so no plateau line is drawn."
    parts = [f"sequence {n} from step {p}" for n, p in settled]
    text = head + f"; the dashed line marks where the total settles {band} ({', '.join(parts)})"
    if moving:
        text += f", while sequence {' and '.join(moving)} never settles before the end"
    return text + "."


# ----------------------------------------------------------------------------- two sequences
def _distance_col(param: str, bins: dp.StepBins, lo: int) -> str:
    inside = f"clamp({param}, datum.first, datum.last)"
    if not (bins.binned or bins.windowed):
        return inside
    return f"{lo} + floor(({inside} - {lo}) / {bins.k}) * {bins.k}"


def distance_chart(distance: pd.DataFrame, parting: Any = None, *, rel_threshold: float | None = 0.25,
                   k: int = 3, scrubber: bool = True, width: int = 420, height: int = 200,
                   steps: int | None = None, window: Sequence[int] | None = None,
                   max_points: int = dp.MAX_LINE_POINTS,
                   words: Sequence[Sequence[str]] | None = None) -> alt.LayerChart:
    """Distance between sequences A and B at each aligned step, with the parting threshold
    (dotted grey line), where they part (dashed red rule) and where they come back together
    (dashed green rule), all from :func:`rnnviz_core.trajectories.parting_summary`.

    ``distance`` is the frame of :func:`rnnviz_core.trajectories.pair_distance`. ``parting``:
    a :class:`~rnnviz_core.trajectories.Parting` computed by the caller (it must be of this
    frame); anything else (an int from :func:`parting_step`, None) is ignored and the summary is
    computed here with ``rel_threshold`` (None: 0.25) and ``k``, so the caption always describes
    the drawn curve. The caption is :func:`distance_caption` of that summary.

    The rules are rows of one small table (column ``kind``: "threshold", "part", "first part",
    "part for good", "rejoin"), so the chart's definition is the same whichever rules a pair has.
    ``steps``: the slider spans this many aligned steps (pass the longest sequence's length so
    that every pair of the data gets the same chart definition; default: this pair's steps); the
    step rule stops at the pair's first or last compared step. Long pairs are drawn with at most
    ``max_points`` points, each the mean distance over a run of steps (the caption says how many;
    the parting rules stay at their true steps); ``window = (start, end)`` draws those steps.
    ``words``: a text model's words of A and of B (one per step): the tooltips name A's and B's
    word at each point (a point of several steps: their words, trimmed).
    """
    _require(distance, ["step", "distance", "rel_distance"], "distance_chart")
    align = distance.attrs.get("align", "start")
    if isinstance(parting, Parting):
        summary = parting
    else:
        summary = parting_summary(distance, rel_threshold=0.25 if rel_threshold is None else rel_threshold, k=k)
    xt = "step" if align == "start" else "steps before the end (0 = last step)"
    lo, hi = (int(distance["step"].min()), int(distance["step"].max())) if len(distance) else (0, 0)
    n_slider = hi - lo + 1 if steps is None else max(int(steps), 1)
    s_lo, s_hi = (0, n_slider - 1) if align == "start" else (-(n_slider - 1), 0)
    # x domain from the drawn data (it includes 0: the first step, or the last one when aligned at the end)
    x = alt.X("step:Q", title=xt, scale=alt.Scale(nice=False, zero=True), axis=alt.Axis(format="d", tickMinStep=1))
    cols = [c for c in ("step", "step_a", "step_b", "distance") if c in distance.columns]
    drawn = distance[cols]
    bins = dp.step_bins(hi - lo + 1, max_columns=max_points, window=None if window is None else
                        (int(window[0]) - lo, int(window[1]) - lo))
    if bins.binned or bins.windowed:
        # binned on steps counted from the first compared one (aligned at the end, steps are negative)
        moved = drawn.assign(step=drawn["step"] - lo)
        drawn = dp.bin_tidy(moved, bins, {"distance": "mean"})
        drawn["step_end"] += lo
        drawn["step"] += lo
        drawn["steps"] = [dp.step_label(a, b) for a, b in zip(drawn["step"], drawn["step_end"])]
        cols = ["step", "steps", "distance"]
    word_tips = []
    if words is not None and len(words) == 2 and len(distance) and {"step_a", "step_b"} <= set(distance.columns):
        def word(seq_words, i) -> str:
            i = int(i)
            return str(seq_words[i]) if 0 <= i < len(seq_words) else ""
        wa = [word(words[0], i) for i in distance["step_a"]]
        wb = [word(words[1], i) for i in distance["step_b"]]
        if "steps" in cols:   # one point per run of steps (rows of distance are consecutive steps from lo)
            ka, kb = (dict(zip(bins.starts(), dp.bin_words(w, bins))) for w in (wa, wb))
            drawn = drawn.assign(words_a=[ka.get(int(v) - lo, "") for v in drawn["step"]],
                                 words_b=[kb.get(int(v) - lo, "") for v in drawn["step"]])
            cols += ["words_a", "words_b"]
            word_tips = [alt.Tooltip("words_a:N", title="A's words"), alt.Tooltip("words_b:N", title="B's words")]
        else:
            drawn = drawn.assign(word_a=wa, word_b=wb)
            cols += ["word_a", "word_b"]
            word_tips = [alt.Tooltip("word_a:N", title="A's word"), alt.Tooltip("word_b:N", title="B's word")]
    base = alt.Chart(drawn[cols])
    layers = [base.mark_line(point=bins.n_cols <= 200, color="#4c78a8").encode(
        x=x, y=alt.Y("distance:Q", title="distance between A and B"),
        tooltip=["step:Q", "step_a:Q", "step_b:Q"] + word_tips + [alt.Tooltip("distance:Q", format=".3f")]
        if {"step_a", "step_b"} <= set(cols) else ["steps:N" if "steps" in cols else "step:Q"] + word_tips + [
            alt.Tooltip("distance:Q", format=".3f")])]
    rows = []
    if np.isfinite(summary.threshold):
        rows.append({"kind": "threshold", "at": None, "value": float(summary.threshold)})
    if summary.kind != "never":
        rows.append({"kind": "part" if summary.n_partings == 1 or summary.kind == "rejoined" else "first part",
                     "at": int(summary.part_step), "value": None})
    if summary.kind == "for good" and summary.n_partings > 1:
        rows.append({"kind": "part for good", "at": int(summary.last_part_step), "value": None})
    if summary.kind == "rejoined":
        rows.append({"kind": "rejoin", "at": int(summary.rejoin_step), "value": None})
    marks = alt.Chart(pd.DataFrame(rows, columns=["kind", "at", "value"]))
    layers.append(marks.transform_filter("datum.kind == 'threshold'").mark_rule(strokeDash=[2, 3], color="gray").encode(
        y="value:Q", tooltip=[alt.Tooltip("value:Q", title="parting threshold", format=".3f")]))
    layers.append(marks.transform_filter("indexof(['part', 'first part', 'part for good'], datum.kind) >= 0").mark_rule(
        strokeDash=[6, 4], strokeWidth=2, color="#e45756").encode(
        x=alt.X("at:Q"), tooltip=[alt.Tooltip("kind:N", title="the sequences"), alt.Tooltip("at:Q", title="at step")]))
    layers.append(marks.transform_filter("datum.kind == 'rejoin'").mark_rule(
        strokeDash=[6, 4], strokeWidth=2, color="#54a24b").encode(
        x=alt.X("at:Q"), tooltip=[alt.Tooltip("at:Q", title="back together at step")]))
    slider = None
    if scrubber and len(distance):
        slider = alt.param(name=STEP_PARAM, value=s_hi, bind=alt.binding_range(min=s_lo, max=s_hi, step=1, name="Step "))
        layers.append(base.transform_joinaggregate(first="min(step)", last="max(step)").transform_filter(
            f"datum.step == {_distance_col(slider.name, bins, lo)}").mark_rule(
            color="black", opacity=0.5).encode(x=alt.X("step:Q")))
    chart = alt.layer(*layers).properties(width=width, height=height)
    if slider is not None:
        chart = chart.add_params(slider)
    return chart.properties(description=distance_caption(summary, align, distance, bins=bins, offset=lo))


def distance_caption(parting: Parting | None = None, align: str = "start",
                     distance: pd.DataFrame | None = None, bins: dp.StepBins | None = None, offset: int = 0) -> str:
    """The distance chart's caption, true for the curve ``parting`` summarises, and what one point
    stands for when ``bins`` group steps (``offset``: the first compared step)."""
    text = _distance_caption(parting, align, distance)
    if bins is not None and (bins.binned or bins.windowed):
        lo, hi = bins.start + offset, bins.stop - 1 + offset
        part = f"each point is the mean distance over {bins.k} steps" if bins.binned else ""
        span = f"steps {lo} to {hi} are drawn" if bins.windowed or bins.binned else ""
        text = text.rstrip(".") + "; " + "; ".join(x for x in (part, span) if x) + "."
    return text


def _distance_caption(parting: Parting | None = None, align: str = "start",
                     distance: pd.DataFrame | None = None, bins: dp.StepBins | None = None, offset: int = 0) -> str:
    """The distance chart's caption, true for the curve ``parting`` summarises (three cases:
    never parted, parted and rejoined, parted for good; "apart from the start" when the
    sequences are already apart at the first compared step)."""
    lined = "step by step from the start" if align == "start" else "lined up at their last steps"
    head = (f"The line shows how far apart the network's memory is for sequence A and sequence B, compared "
            f"{lined}; the dotted grey line is the parting threshold")
    if not isinstance(parting, Parting):
        return head + "."
    p = parting
    thr = f" ({p.threshold:.3g})" if np.isfinite(p.threshold) else ""
    head += thr
    rel = distance["rel_distance"].to_numpy(dtype=np.float64) if distance is not None else None
    steps = distance["step"].to_numpy() if distance is not None else None
    if p.kind == "never":
        if p.max_distance <= p.threshold:
            return head + ", and the distance never rises above it, so the two never part."
        return (head + f", and the distance never stays above it for {p.k} steps in a row, so the two never "
                "count as parted.")
    if p.kind == "for good":
        if p.apart_from_start:
            ratio = ""
            if rel is not None and p.rel_threshold > 0:
                ratio = f" ({rel[0] / p.rel_threshold:.1f} times the threshold)"
            return (head + f"; the sequences are already apart at the first compared step{ratio} and stay apart "
                    "to the end (the dashed red line marks that first step).")
        if p.n_partings == 1:
            return (head + f"; they part at {step_words(p.part_step, align)} (dashed red line) and stay apart to "
                    "the end.")
        return (head + f"; they first part at {step_words(p.part_step, align)}, come back together, and part for "
                f"good at {step_words(p.last_part_step, align)} (dashed red lines).")
    # rejoined
    after = ""
    if rel is not None and steps is not None:
        tail = rel[steps >= p.rejoin_step]
        after = (" and stay within it to the end" if (tail <= p.rel_threshold).all()
                 else f" and never again stay above it for {p.k} steps in a row")
    start = ("are already apart at the first compared step (dashed red line)" if p.part_step == p.first_step
             else f"part at {step_words(p.part_step, align)} (dashed red line)")
    return (head + f"; they {start}, come back together at {step_words(p.rejoin_step, align)} (dashed green "
            f"line){after}.")


def on_one_step_axis(*charts: Any) -> alt.VConcatChart:
    """Stack charts drawn on one step scale (input strip, heatmap, per-step bars, per-feature
    heatmap built with the same ``step_width``): each reserves :data:`Y_EXTENT` px for its y
    labels, so their steps line up column by column; the captions are joined in order."""
    parts = [c for c in charts if c is not None]
    if not parts:
        raise InputError("on_one_step_axis needs at least one chart.")
    text = " ".join(caption(c) for c in parts if caption(c))
    return alt.vconcat(*parts, spacing=10).properties(description=text)


# shared with charts.saturation under public names (no module reads another's privates)
int_axis = _int_axis
unit_axis = _unit_axis
require = _require
