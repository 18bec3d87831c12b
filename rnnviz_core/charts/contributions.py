"""Charts for the contributions page, from the tidy frames of :mod:`rnnviz_core.rankings` and
:mod:`rnnviz_core.faithfulness`.

Like the other chart modules, every chart stores its caption (one plain sentence for people who
do not program) in its ``description``; :func:`caption` reads it back. The same sentences are in
:data:`CAPTIONS`, keyed by function name, for the top-steps table, which is a DataFrame.

The per-step bars use the same x encoding as the hidden-state heatmap (``step`` as an ordinal
field, titled "step", same default width), so ``alt.vconcat(heatmap, bars)`` lines the steps up;
:func:`under_heatmap` does that and shares the x scale.
"""
from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["caption", "CAPTIONS", "step_scores_chart", "under_heatmap", "top_steps_table",
           "position_chart", "deletion_chart", "aopc_chart", "POSITIVE", "NEGATIVE", "RANDOM"]

POSITIVE = "#d95f02"    # pushed the explained output up
NEGATIVE = "#1f77b4"    # pushed it down
RANDOM = "#7f7f7f"      # the random reference in the deletion check

CAPTIONS = {
    "step_scores_chart": (
        "Each bar is one step of the sequence: the taller the bar, the more that step drove the "
        "model's answer; orange bars pushed the answer up, blue bars pushed it down, and the "
        "strongest steps are drawn darker."),
    "top_steps_table": (
        "The steps that drove the model's answer the most, strongest first, with where each "
        "step sits in its sequence (0% = first step, 100% = last)."),
    "position_chart": (
        "How much, on average over all sequences, the steps at each position drove the answer: "
        "a peak shows where in the sequences the model finds what it uses."),
    "deletion_chart": (
        "What happens to the model's answer when the steps a method ranks highest are blanked "
        "out first: the faster a line falls below the grey dashed line (steps blanked in random "
        "order), the more the method's ranking can be trusted."),
    "aopc_chart": (
        "How much better than a random guess each method picks the steps the model relies on: "
        "bars to the right of zero beat chance, longer is better."),
}


def caption(chart) -> str:
    """The plain-language caption stored in a chart's ``description``."""
    desc = getattr(chart, "description", None)
    return desc if isinstance(desc, str) else ""


def _require(frame, cols: Sequence[str], what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} needs a pandas DataFrame.")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise InputError(f"{what} needs the column(s) {', '.join(missing)}; pass the frame the "
                         "matching rnnviz_core function returns.")


# ------------------------------------------------------------------------- per-step bars

def step_scores_chart(frame: pd.DataFrame, seq=None, *, top_k: int = 3, width: int = 360,
                      height: int = 110, title: str | None = None) -> alt.Chart:
    """Bars of one sequence's per-step scores (frame from ``rankings.scores_frame``).

    ``seq``: the ``seq`` id to draw (default: the first). With a ``method`` column holding
    several methods, one row of bars per method, each with its own y scale and a shared x axis.
    The ``top_k`` steps by |score| of each method are drawn opaque, the others faded.
    """
    _require(frame, ["seq", "step", "score"], "step_scores_chart")
    if frame.empty:
        raise InputError("step_scores_chart got an empty frame.")
    if seq is None:
        seq = frame["seq"].iloc[0]
    sub = frame[frame["seq"] == seq].copy()
    if sub.empty:
        raise InputError(f"Sequence {seq!r} is not in this frame; pass one of its seq ids.")
    if "method" not in sub.columns:
        sub["method"] = "score"
    sub = sub[np.isfinite(sub["score"].to_numpy(dtype=float))]
    sub["direction"] = np.where(sub["score"] >= 0, "up", "down")
    rank = sub["score"].abs().groupby(sub["method"]).rank(method="first", ascending=False)
    sub["top"] = rank <= top_k
    n_methods = sub["method"].nunique()
    base = alt.Chart(sub).mark_bar().encode(
        x=alt.X("step:O", title="step", axis=alt.Axis(labelOverlap=True)),
        y=alt.Y("score:Q", title="contribution"),
        color=alt.Color("direction:N", title=None,
                        scale=alt.Scale(domain=["up", "down"], range=[POSITIVE, NEGATIVE]),
                        legend=alt.Legend(orient="right", labelExpr=
                                          "datum.label == 'up' ? 'pushed up' : 'pushed down'")),
        opacity=alt.condition(alt.datum.top, alt.value(1.0), alt.value(0.45)),
        tooltip=[alt.Tooltip("method:N"), alt.Tooltip("step:O"),
                 alt.Tooltip("score:Q", format=".4g")],
    ).properties(width=width, height=height)
    if n_methods > 1:
        chart = base.facet(row=alt.Row("method:N", title=None),
                           title=title or f"Sequence {seq}").resolve_scale(y="independent")
    else:
        chart = base.properties(title=title or f"Sequence {seq}: {sub['method'].iloc[0]}")
    return chart.properties(description=CAPTIONS["step_scores_chart"])


def under_heatmap(heatmap: alt.TopLevelMixin, bars: alt.TopLevelMixin) -> alt.VConcatChart:
    """Stack a hidden-state heatmap and the step bars with one shared step axis."""
    return alt.vconcat(heatmap, bars, spacing=6).resolve_scale(x="shared").properties(
        description=f"{caption(heatmap)} {caption(bars)}".strip())


# --------------------------------------------------------------------------- top steps

def top_steps_table(top: pd.DataFrame, *, method: str | None = None) -> pd.DataFrame:
    """Display-ready table from ``rankings.top_steps``: plain column names, positions in %.

    Columns: Sequence, Rank, Step, Contribution, Where in the sequence, Length (and Method when
    given). Its caption is ``CAPTIONS["top_steps_table"]`` (also in ``df.attrs["caption"]``).
    """
    _require(top, ["seq", "rank", "step", "score", "length", "relative_position"],
             "top_steps_table")
    out = pd.DataFrame({
        "Sequence": top["seq"].to_numpy(),
        "Rank": top["rank"].astype(int).to_numpy(),
        "Step": top["step"].astype(int).to_numpy(),
        "Contribution": top["score"].astype(float).round(4).to_numpy(),
        "Where in the sequence": [f"{100 * v:.0f}%" for v in top["relative_position"]],
        "Length": top["length"].astype(int).to_numpy(),
    })
    if method is not None:
        out.insert(0, "Method", method)
    out.attrs["caption"] = CAPTIONS["top_steps_table"]
    return out


# ------------------------------------------------------------------ position aggregates

def position_chart(frame: pd.DataFrame, *, group: str | None = None, width: int = 360,
                   height: int = 200, title: str | None = None) -> alt.Chart:
    """Mean |score| by position (frame from ``rankings.mean_abs_by_position`` / ``_by_group``).

    Relative frames (with ``bin_start``) get an x axis in % of the sequence; absolute ones the
    step. ``group``: the column holding group labels (default: the first column that is not a
    known numeric one), one coloured line per group.
    """
    _require(frame, ["position", "mean_abs", "n"], "position_chart")
    relative = "bin_start" in frame.columns
    known = {"bin", "bin_start", "bin_end", "position", "mean_abs", "n"}
    if group is None:
        extra = [c for c in frame.columns if c not in known]
        group = extra[0] if extra else None
    elif group not in frame.columns:
        raise InputError(f"position_chart: no column {group!r} in the frame.")
    x = (alt.X("position:Q", title="position in the sequence",
               axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1]))
         if relative else alt.X("position:Q", title="step"))
    enc = dict(x=x, y=alt.Y("mean_abs:Q", title="mean |contribution|"),
               tooltip=[alt.Tooltip("position:Q", format=".0%" if relative else "d"),
                        alt.Tooltip("mean_abs:Q", format=".4g"), alt.Tooltip("n:Q")])
    if group is not None:
        data = frame.assign(**{group: frame[group].astype(str)})
        enc["color"] = alt.Color(f"{group}:N", title=group)
        enc["tooltip"] = [alt.Tooltip(f"{group}:N")] + enc["tooltip"]
    else:
        data = frame
    chart = alt.Chart(data).mark_line(point=True).encode(**enc).properties(
        width=width, height=height, title=title or "Where the contributions are, on average")
    return chart.properties(description=CAPTIONS["position_chart"])


# ---------------------------------------------------------------------- faithfulness

def deletion_chart(curves: pd.DataFrame, *, width: int = 360, height: int = 220,
                   title: str | None = None, y_title: str = "model output (mean)") -> alt.Chart:
    """Deletion curves (``faithfulness.compare_methods(...).curves``): one line per method, the
    random ranking grey and dashed."""
    _require(curves, ["method", "fraction", "mean_output", "is_random"], "deletion_chart")
    methods = [m for m in dict.fromkeys(curves["method"]) if m != "random"]
    palette = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]
    domain = methods + (["random"] if (curves["method"] == "random").any() else [])
    rng = [palette[i % len(palette)] for i in range(len(methods))] + \
        ([RANDOM] if "random" in domain else [])
    chart = alt.Chart(curves).mark_line(point=True).encode(
        x=alt.X("fraction:Q", title="share of steps blanked out (most important first)",
                axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("mean_output:Q", title=y_title),
        color=alt.Color("method:N", title="method", scale=alt.Scale(domain=domain, range=rng)),
        strokeDash=alt.StrokeDash("is_random:N", title=None, legend=None,
                                  scale=alt.Scale(domain=[False, True], range=[[1, 0], [6, 4]])),
        tooltip=[alt.Tooltip("method:N"), alt.Tooltip("fraction:Q", format=".0%"),
                 alt.Tooltip("mean_output:Q", format=".4g")],
    ).properties(width=width, height=height, title=title or "Deletion check")
    return chart.properties(description=CAPTIONS["deletion_chart"])


def aopc_chart(summary: pd.DataFrame, *, width: int = 360, height: int | None = None,
               title: str | None = None) -> alt.Chart:
    """Horizontal bars of AOPC minus random (``compare_methods(...).summary``), random left out."""
    _require(summary, ["method", "aopc", "aopc_minus_random"], "aopc_chart")
    data = summary[summary["method"] != "random"].copy()
    data["beats_random"] = data["aopc_minus_random"] > 0
    bars = alt.Chart(data).mark_bar().encode(
        x=alt.X("aopc_minus_random:Q", title="better than random (AOPC minus random)"),
        y=alt.Y("method:N", title=None, sort="-x"),
        color=alt.Color("beats_random:N", title=None, legend=None,
                        scale=alt.Scale(domain=[True, False], range=[POSITIVE, RANDOM])),
        tooltip=[alt.Tooltip("method:N"), alt.Tooltip("aopc:Q", format=".4g"),
                 alt.Tooltip("aopc_minus_random:Q", format=".4g")],
    )
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="black").encode(x="x:Q")
    chart = alt.layer(bars, zero).properties(
        width=width, height=height or max(60, 28 * len(data)),
        title=title or "Which ranking beats chance")
    return chart.properties(description=CAPTIONS["aopc_chart"])
