"""Paths through state space (PCA) and |h| over time, with their captions."""
from __future__ import annotations

from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from .. import display as dp
from ..errors import InputError
from . import _steps as st
from .axes import require as _require, step_slider

__all__ = ["pca_paths_chart", "pca_caption", "norms_chart", "norms_caption", "CLOUD_MAX", "DASHES", "SHAPES"]

CLOUD_MAX = 3000
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


