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

from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from .. import display as dp
from ..errors import InputError
from . import _steps as st
from .trajectories import Y_EXTENT

__all__ = ["caption", "CAPTIONS", "step_scores_chart", "under_heatmap", "top_steps_table",
           "position_chart", "deletion_chart", "aopc_chart", "faithfulness_table", "feature_scores_chart",
           "method_label", "is_signed", "METHOD_LABELS", "UNSIGNED_METHODS",
           "POSITIVE", "NEGATIVE", "NEUTRAL", "RANDOM"]

POSITIVE = "#d95f02"    # pushed the explained output up
NEGATIVE = "#1f77b4"    # pushed it down
NEUTRAL = "#5b6b7f"     # an unsigned score: how strongly, not which way
RANDOM = "#7f7f7f"      # the random reference in the deletion check

#: plain names of the contribution methods, for legends and tables
METHOD_LABELS = {
    "grad_norm": "gradient size",
    "grad_x_state": "gradient × memory",
    "input_x_grad": "input × gradient",
    "integrated_gradients": "integrated gradients",
    "occlusion": "occlusion",
    "prediction_delta": "change of the running answer",
    "mask": "perturbation mask",
    "mask_x_grad": "mask × gradient",
    "shapley": "Shapley values",
    "random": "random order",
}
#: methods whose scores are never negative (a size, not a direction)
UNSIGNED_METHODS = frozenset({"grad_norm", "mask", "mask_x_grad"})


def method_label(method: str) -> str:
    """The plain name of a method (unknown names are returned with underscores as spaces)."""
    return METHOD_LABELS.get(str(method), str(method).replace("_", " "))


def is_signed(method: str) -> bool:
    """Whether a method's scores carry a direction (pushed up / pushed down); False for sizes
    such as ``grad_norm``."""
    return str(method) not in UNSIGNED_METHODS

CAPTIONS = {
    "step_scores_chart": (
        "Each bar is one step of the sequence: the taller the bar, the more that step drove the "
        "model's answer; orange bars pushed the answer up, blue bars pushed it down, and the "
        "strongest steps are drawn darker."),
    "step_scores_chart_up_only": (
        "Each bar is one step of the sequence: the taller the bar, the more that step drove the "
        "model's answer; every step here pushed the answer up (none pushed it down), and the "
        "strongest steps are drawn darker."),
    "step_scores_chart_down_only": (
        "Each bar is one step of the sequence: the longer the bar, the more that step drove the "
        "model's answer; every step here pushed the answer down (none pushed it up), and the "
        "strongest steps are drawn darker."),
    "step_scores_chart_unsigned": (
        "Each bar is one step of the sequence: its height is how strongly the answer reacts to "
        "that step, a size that is never negative, so it says how much and not which way; the "
        "strongest steps are drawn darker."),
    "top_steps_table": (
        "The steps that drove the model's answer the most, strongest first, with where each "
        "step sits in its sequence (0% = first step, 100% = last)."),
    "position_chart": (
        "How much, on average over all sequences, the steps at each position drove the answer: "
        "a peak shows where in the sequences the model finds what it uses."),
    "deletion_chart": (
        "What happens to the model's answer when the steps a method ranks highest are blanked "
        "out first: the faster a line falls below the grey line (steps blanked in random "
        "order), the more the method's ranking can be trusted; each method has its own colour, "
        "dash and marker so that lines on top of each other stay visible."),
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
_steps_words = dp.steps_words      # "steps 15–46": runs of steps as ranges




def step_scores_chart(frame: pd.DataFrame, seq=None, *, top_k: int = 3, width: int = 360,
                      height: int = 110, title: str | None = None, signed: bool | None = None,
                      step_width: float | None = None, n_steps: int | None = None,
                      marks: Sequence[int] | None = None, bins: dp.StepBins | None = None,
                      window: Sequence[int] | None = None, words: Sequence[str] | None = None) -> alt.Chart:
    """Bars of one sequence's per-step scores (frame from ``rankings.scores_frame``).

    ``seq``: the ``seq`` id to draw (default: the first). With a ``method`` column holding
    several methods, one row of bars per method, each with its own y scale and a shared x axis.
    The ``top_k`` steps by |score| of each method are drawn opaque, the others faded.

    Colours: a signed method (see :func:`is_signed`; ``signed`` overrides) is drawn orange where
    it pushed the answer up and blue where it pushed it down; an unsigned one (``grad_norm``) in
    one neutral colour under a legend that says "strength (no direction)". ``step_width`` (px per
    step) and ``n_steps`` put the bars on the heatmap's step scale; ``marks``: steps known to
    decide the answer (e.g. the marker demo's), drawn as black triangles above the bars (one
    method only). The caption is chosen from the scores drawn (both directions, up only, down
    only, or strength).

    Long sequences are drawn with at most :data:`rnnviz_core.display.MAX_COLUMNS` bars: each bar a
    run of steps showing the score of largest size among them, its sign kept, so the step that drove
    the answer is never averaged away (``bins``: columns shared with the charts above;
    ``window = (start, end)``: those steps only). ``words``: a text model's words, one per step.
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
    signed_of = {m: (is_signed(m) if signed is None else bool(signed)) for m in pd.unique(sub["method"])}
    sgn = sub["method"].map(signed_of).to_numpy(dtype=bool)
    sub["direction"] = np.where(~sgn, "strength", np.where(sub["score"] >= 0, "up", "down"))
    rank = sub["score"].abs().groupby(sub["method"]).rank(method="first", ascending=False)
    top_steps = sub.loc[rank <= top_k, ["method", "step"]]
    n = int(sub["step"].max()) + 1 if n_steps is None else int(n_steps)
    if bins is None:
        bins = dp.step_bins(n, window=window)
    sub = dp.bin_tidy(sub, bins, {"score": "absmax"}, keys=["method"])
    if bins.binned or bins.windowed:
        sgn = sub["method"].map(signed_of).to_numpy(dtype=bool)
        sub["direction"] = np.where(~sgn, "strength", np.where(sub["score"] >= 0, "up", "down"))
    top_cols = set(zip(top_steps["method"], bins.column(top_steps["step"].to_numpy()).tolist()))
    sub["top"] = [(m, int(c)) in top_cols for m, c in zip(sub["method"], sub["step"])]
    sub, step_tips = st.decorate(sub, bins, words)
    sub["method"] = sub["method"].map(method_label)
    n_methods = sub["method"].nunique()
    present = [d for d in ("up", "down", "strength") if (sub["direction"] == d).any()]
    full = {"up": POSITIVE, "down": NEGATIVE, "strength": NEUTRAL}
    dom = ["up", "down"] if any(signed_of.values()) else []
    dom += ["strength"] if not all(signed_of.values()) else []
    sw = st.column_px(bins, step_width, width)
    base = alt.Chart(sub).mark_bar().encode(
        x=st.step_x(bins, sw, words, padding_inner=0.1 if sw >= 3 else 0.0),
        y=alt.Y("score:Q", title="contribution" if any(signed_of.values()) else "strength",
                axis=alt.Axis(minExtent=Y_EXTENT, maxExtent=Y_EXTENT, format=".2~g", tickCount=4)),
        color=alt.Color("direction:N", title=None,
                        scale=alt.Scale(domain=dom, range=[full[d] for d in dom]),
                        # below the bars: beside them "strength (no direction)" ran past a half-width column
                        legend=alt.Legend(orient="bottom", direction="horizontal", labelLimit=0, labelExpr=
                                          "datum.label == 'up' ? 'pushed up' : datum.label == 'down' "
                                          "? 'pushed down' : 'strength (no direction)'")),
        opacity=alt.condition(alt.datum.top, alt.value(1.0), alt.value(0.45)),
        tooltip=[alt.Tooltip("method:N")] + step_tips + [alt.Tooltip("score:Q", format=".4g")],
    )
    if n_methods > 1:
        chart = base.properties(width=alt.Step(sw), height=height).facet(
            row=alt.Row("method:N", title=None), title=title or f"Sequence {seq}").resolve_scale(y="independent")
    else:
        chart = base.properties(width=alt.Step(sw), height=height)
        if marks is not None and len(marks):
            top = float(np.nanmax(sub["score"].to_numpy(dtype=float))) if len(sub) else 1.0
            cols = sorted({int(c) for c in bins.column([int(m) for m in marks]) if c >= 0})
            mk = pd.DataFrame({"step": cols, "y": top})
            chart = alt.layer(chart, alt.Chart(mk).mark_point(
                shape="triangle-down", filled=True, color="black", size=60).encode(
                x=alt.X("step:O"), y="y:Q", tooltip=[alt.Tooltip("step:O", title="marked step")]))
        chart = chart.properties(title=title or f"Sequence {seq}: {sub['method'].iloc[0]}")
    text = CAPTIONS[_scores_caption_key(present)]
    if bins.binned:
        text = text.replace("Each bar is one step of the sequence",
                            f"Each bar is {bins.k} steps of the sequence, showing the score of largest size "
                            "among them (its sign kept)")
    if bins.binned or bins.windowed:
        text = text.rstrip(".") + f"; steps {bins.start} to {bins.stop - 1} are drawn."
    if "strength" in present and {"up", "down"} & set(present):
        text += " Grey bars are sizes with no direction (how strongly, not which way)."
    if marks is not None and len(marks) and n_methods == 1:
        text += f" Black triangles mark the steps known to decide the answer ({_steps_words(marks)})."
    return chart.properties(description=text)


def _scores_caption_key(present: Sequence[str]) -> str:
    """Which caption tells the truth about the bars drawn."""
    if "strength" in present and not ({"up", "down"} & set(present)):
        return "step_scores_chart_unsigned"
    if "up" in present and "down" not in present:
        return "step_scores_chart_up_only"
    if "down" in present and "up" not in present:
        return "step_scores_chart_down_only"
    return "step_scores_chart"


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
    if "word" in top.columns:  # a text model's word at that step (rankings.top_steps(words=...))
        out.insert(3, "Word", top["word"].astype(str).to_numpy())
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
         if relative else alt.X("position:Q", title="step", axis=alt.Axis(format="d", tickMinStep=1)))
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

_PALETTE = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"]
_DASHES = [[1, 0], [8, 3], [3, 3], [10, 3, 2, 3], [1, 3], [6, 2, 2, 2, 2, 2], [12, 4], [2, 6],
           [14, 2, 2, 2]]
_SHAPES = ["circle", "square", "triangle-up", "diamond", "cross", "triangle-down", "wedge",
           "triangle-right", "triangle-left"]


def deletion_chart(curves: pd.DataFrame, *, width: int = 360, height: int = 220,
                   title: str | None = None, y_title: str = "model output (mean)",
                   facet: bool = False) -> alt.Chart:
    """Deletion curves (``faithfulness.compare_methods(...).curves``): one line per method under
    its plain name, each with its own colour, dash and marker (so a line drawn on top of another
    still shows), the random order grey and dashed; the legend sits below the chart, two names
    per row, never cut. ``facet=True`` draws one small panel per method, each with the random
    order for reference."""
    _require(curves, ["method", "fraction", "mean_output", "is_random"], "deletion_chart")
    methods = [m for m in dict.fromkeys(curves["method"]) if m != "random"]
    has_random = bool((curves["method"] == "random").any())
    names = [method_label(m) for m in methods]
    domain = names + ([method_label("random")] if has_random else [])
    colours = [_PALETTE[i % len(_PALETTE)] for i in range(len(names))] + ([RANDOM] if has_random else [])
    dashes = [_DASHES[i % len(_DASHES)] for i in range(len(names))] + ([[6, 4]] if has_random else [])
    shapes = [_SHAPES[i % len(_SHAPES)] for i in range(len(names))] + (["stroke"] if has_random else [])
    data = curves.assign(method=curves["method"].map(method_label))
    legend = alt.Legend(orient="bottom", columns=2, labelLimit=0, symbolStrokeWidth=2, title=None)
    enc = dict(
        x=alt.X("fraction:Q", title="share of steps blanked out (most important first)",
                axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("mean_output:Q", title=y_title),
        color=alt.Color("method:N", title="method", scale=alt.Scale(domain=domain, range=colours), legend=legend),
        strokeDash=alt.StrokeDash("method:N", title="method", scale=alt.Scale(domain=domain, range=dashes),
                                  legend=legend),
        tooltip=[alt.Tooltip("method:N"), alt.Tooltip("fraction:Q", format=".0%"),
                 alt.Tooltip("mean_output:Q", format=".4g")],
    )
    shape = alt.Shape("method:N", title="method", scale=alt.Scale(domain=domain, range=shapes), legend=legend)
    if facet and methods:
        rand = data[data["method"] == method_label("random")]
        panels = []
        for nm in names:
            part = pd.concat([data[data["method"] == nm], rand], ignore_index=True)
            lines = alt.Chart(part).mark_line(point=True, strokeWidth=2).encode(**enc)
            panels.append(lines.properties(width=max(120, width // 3), height=max(90, height // 2), title=nm))
        rows = [alt.hconcat(*panels[i:i + 3]) for i in range(0, len(panels), 3)]
        chart = alt.vconcat(*rows, title=title or "Deletion check")
        return chart.properties(description=CAPTIONS["deletion_chart"])
    chart = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=40, filled=True), strokeWidth=2,
                                      opacity=0.9).encode(shape=shape, **enc).properties(
        width=width, height=height, title=title or "Deletion check")
    return chart.properties(description=CAPTIONS["deletion_chart"] + _same_curves(curves))


def _same_curves(curves: pd.DataFrame) -> str:
    """A sentence naming methods whose deletion curves coincide (drawn on top of each other)."""
    wide = curves.pivot_table(index="fraction", columns="method", values="mean_output")
    cols = [c for c in wide.columns if c != "random"]
    span = float(np.nanmax(np.abs(wide.to_numpy()))) if wide.size else 0.0
    tol = 1e-3 * max(span, 1e-12)
    groups: list[list[str]] = []
    for c in cols:
        for g in groups:
            if np.allclose(wide[c].to_numpy(), wide[g[0]].to_numpy(), rtol=0, atol=tol, equal_nan=True):
                g.append(c)
                break
        else:
            groups.append([c])
    same = [g for g in groups if len(g) > 1]
    if not same:
        return ""
    parts = [" and ".join(method_label(m) for m in g) for g in same]
    return " Here " + "; ".join(parts) + (" draw the same curve, one on top of the other." if len(same) == 1
                                          else " draw the same curves, one on top of the other.")


def aopc_chart(summary: pd.DataFrame, *, width: int = 360, height: int | None = None,
               title: str | None = None) -> alt.Chart:
    """Horizontal bars of AOPC minus random (``compare_methods(...).summary``) under plain method
    names, random left out."""
    _require(summary, ["method", "aopc", "aopc_minus_random"], "aopc_chart")
    data = summary[summary["method"] != "random"].copy()
    data["method"] = data["method"].map(method_label)
    data["beats_random"] = data["aopc_minus_random"] > 0
    bars = alt.Chart(data).mark_bar().encode(
        x=alt.X("aopc_minus_random:Q", title="advantage over a random order"),
        y=alt.Y("method:N", title=None, sort="-x", axis=alt.Axis(labelLimit=0)),
        color=alt.Color("beats_random:N", title=None, legend=None,
                        scale=alt.Scale(domain=[True, False], range=[POSITIVE, RANDOM])),
        tooltip=[alt.Tooltip("method:N"), alt.Tooltip("aopc:Q", format=".4g", title="average drop of the answer"),
                 alt.Tooltip("aopc_minus_random:Q", format=".4g", title="advantage over random")],
    )
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="black").encode(x="x:Q")
    chart = alt.layer(bars, zero).properties(
        width=width, height=height or max(60, 28 * len(data)),
        title=title or "Which ranking beats chance")
    return chart.properties(description=CAPTIONS["aopc_chart"])


def _cell(v: Any, fmt: str) -> str:
    """A number for a table cell; missing values are an empty cell, never "None" or "nan"."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if not np.isfinite(f) else format(f, fmt)


def faithfulness_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The deletion-check summary (``compare_methods(...).summary``) as a table people read:
    plain method names and column names, best method first, the random order last, and empty
    cells (never "None") where a figure does not apply.

    Columns: Method, Advantage over random order, Average drop of the answer, Answer with no
    step blanked, Answer with every step blanked, and for integrated gradients Scores miss the
    total change by (median) and Sequences refined to 1%.
    """
    _require(summary, ["method", "aopc", "aopc_minus_random"], "faithfulness_table")
    df = summary.copy()
    df["_r"] = df["method"] == "random"
    df = df.sort_values(["_r", "aopc_minus_random"], ascending=[True, False], kind="stable")
    out = pd.DataFrame({
        "Method": df["method"].map(method_label).to_numpy(),
        "Advantage over random order": [_cell(v, ".3g") if not r else "" for v, r in zip(df["aopc_minus_random"], df["_r"])],
        "Average drop of the answer": [_cell(v, ".3g") for v in df["aopc"]],
    })
    if "output_start" in df:
        out["Answer with no step blanked"] = [_cell(v, ".3g") for v in df["output_start"]]
    if "output_end" in df:
        out["Answer with every step blanked"] = [_cell(v, ".3g") for v in df["output_end"]]
    if "completeness_error" in df and df["completeness_error"].notna().any():
        out["Scores miss the total change by (median)"] = [_cell(v, ".1%") for v in df["completeness_error"]]
    if "converged_share" in df and df["converged_share"].notna().any():
        out["Sequences refined to 1%"] = [_cell(v, ".0%") for v in df["converged_share"]]
    out.attrs["caption"] = (
        "One row per method, the most trustworthy first: the advantage over a random order is how much faster the "
        "answer falls when the method's top steps are blanked first; empty cells are figures that do not apply "
        "to that method.")
    return out


def feature_scores_chart(scores: Any, *, length: int | None = None, feature_names: Sequence[str] | None = None,
                         signed: bool = True, width: int = 360, height: int | None = None,
                         step_width: float | None = None, title: str | None = None,
                         marks: Sequence[int] | None = None, bins: dp.StepBins | None = None,
                         window: Sequence[int] | None = None, max_features: int = dp.MAX_FEATURES,
                         words: Sequence[str] | None = None, budget: int = dp.ROW_BUDGET) -> alt.Chart:
    """Step x feature heatmap of one sequence's per-feature scores (``per_feature=True``
    contributions, shape [T, F]; padding NaN or cut by ``length``).

    Signed scores are coloured orange (pushed the answer up) through white to blue (pushed it
    down) on a range symmetric around 0 (the caption states it); unsigned ones (``signed=False``)
    on one neutral ramp from 0. ``step_width`` puts it on the heatmap's step scale; ``marks``:
    steps known to decide the answer, framed in black.

    At real sizes at most ``max_features`` rows are drawn (the features with the largest total
    |score| over the drawn steps) and each column is a run of steps showing the score of largest
    size among them (sign kept), so the cells stay within ``budget``; the caption says both.
    """
    arr = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"feature_scores_chart needs one sequence's scores shaped [T, F]; got {arr.shape}.")
    t, f = arr.shape
    if length is None:
        real = np.isfinite(arr).any(axis=1)
        length = int(np.flatnonzero(real)[-1]) + 1 if real.any() else 0
    if length < 1:
        raise InputError("These scores have no valid step.")
    arr = arr[:length]
    names = [str(n) for n in feature_names] if feature_names is not None else [f"feature {i}" for i in range(f)]
    if len(names) != f:
        raise InputError(f"feature_names has {len(names)} names but the scores have {f} features.")
    if bins is None:
        _, bins = dp.heat_bins(min(f, max_features), length, budget=budget, window=window)
    n_rows = min(f, max_features, max(1, budget // bins.n_cols))
    part = arr[bins.start:bins.stop]
    if n_rows < f:
        tot = np.nansum(np.abs(part), axis=0)
        keep = np.sort(np.argsort(-tot, kind="stable")[:n_rows])
    else:
        keep = np.arange(f)
    binned = dp.bin_steps(arr[:, keep], bins, "absmax")       # (C, R)
    full = [names[j] for j in keep]
    shown = dp.distinct_labels(full, 8)   # "sens…012": the end that tells the rows apart; the tooltip names it whole
    starts = np.asarray(bins.starts())
    frame = pd.DataFrame({"step": np.repeat(starts, len(keep)), "feature": np.tile(shown, len(starts)),
                          "name": np.tile(full, len(starts)), "score": binned.reshape(-1)})
    if bins.binned:
        frame["step_end"] = np.repeat(np.minimum(starts + bins.k, bins.stop) - 1, len(keep))
    frame = frame[np.isfinite(frame["score"])]
    frame, step_tips = st.decorate(frame, bins, words)
    m = float(np.nanmax(np.abs(binned))) if np.isfinite(binned).any() else 1.0
    m = m if m > 0 else 1.0
    if signed:
        domain, scale = [-m, m], alt.Scale(domain=[-m, m], scheme="blueorange", clamp=True)
    else:
        domain, scale = [0.0, m], alt.Scale(domain=[0.0, m], scheme="greys", clamp=True)
    sw = st.column_px(bins, step_width, width)
    ticks = [domain[0], 0.0, domain[1]] if signed else domain
    h = height or max(60, min(400, 16 * len(keep)))
    rect = alt.Chart(frame).mark_rect().encode(
        x=st.step_x(bins, sw, words),
        y=alt.Y("feature:N", sort=shown, title="feature",
                axis=alt.Axis(minExtent=Y_EXTENT, maxExtent=Y_EXTENT, labelLimit=Y_EXTENT - 6)),
        color=alt.Color("score:Q", title="contribution" if signed else "strength", scale=scale,
                        legend=alt.Legend(values=ticks, format=".3~g")),
        tooltip=step_tips + [alt.Tooltip("name:N", title="feature"), alt.Tooltip("score:Q", format=".4g")],
    ).properties(width=alt.Step(sw), height=h)
    chart: Any = rect
    if marks is not None and len(marks):
        cols = sorted({int(c) for c in bins.column([int(x) for x in marks if 0 <= int(x) < length]) if c >= 0})
        mk = pd.DataFrame({"step": cols})
        chart = alt.layer(rect, alt.Chart(mk).mark_rect(filled=False, stroke="black", strokeWidth=2).encode(
            x=alt.X("step:O")))
    chart = chart.properties(title=title or "Contribution of each feature at each step")
    lo, hi = (f"{v:.3g}" for v in domain)
    cell = "one input feature at one step" if not bins.binned else \
        f"one input feature over {bins.k} steps, showing the score of largest size among them (its sign kept)"
    if signed:
        text = (f"Each cell is {cell}: orange cells pushed the answer up and blue cells "
                f"pushed it down, on a colour bar from {lo} to {hi} with white at 0.")
    else:
        text = (f"Each cell is {cell}, darker where the answer reacts more strongly to it "
                f"(a size from 0 to {hi}, with no direction).")
    if bins.binned or bins.windowed:
        text = text.rstrip(".") + f"; steps {bins.start} to {bins.stop - 1} are drawn."
    if len(keep) < f:
        text = text.rstrip(".") + (f"; only the {len(keep)} features with the largest total contribution of the "
                                   f"{f:,} are drawn.")
    if marks is not None and len(marks):
        text += " Black frames mark the steps known to decide the answer."
    return chart.properties(description=text)
