"""The distance between two sequences' states over time, where they part, and its caption."""
from __future__ import annotations

from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from .. import display as dp
from ..analyses.pairs import Parting, parting_summary, step_words
from .axes import STEP_PARAM, require as _require

__all__ = ["distance_chart", "distance_caption"]


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
