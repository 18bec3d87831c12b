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

from ..errors import InputError
from ..trajectories import HeatmapData

__all__ = [
    "caption", "step_slider", "heatmap_chart", "pair_heatmaps_chart", "pca_paths_chart",
    "norms_chart", "distance_chart",
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


# ----------------------------------------------------------------------------- heatmaps
def _heatmap(frame: pd.DataFrame, domain: tuple[float, float], title: str, slider: alt.Parameter | None,
             width: int, height: int) -> alt.LayerChart | alt.Chart:
    color = alt.Color("value:Q", title="state value",
                      scale=alt.Scale(domain=list(domain), scheme="redblue", reverse=True, clamp=True),
                      legend=alt.Legend(orient="right", gradientLength=min(height, 200)))
    base = alt.Chart(frame, title=title)
    rect = base.mark_rect().encode(
        x=alt.X("step:O", title="step"),
        y=alt.Y("unit:O", title="unit"),
        color=color,
        tooltip=[alt.Tooltip("step:O"), alt.Tooltip("unit:O"), alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=width, height=height)
    if slider is None:
        return rect
    rule = base.mark_rect(filled=False, stroke="black", strokeWidth=2).encode(x="step:O").transform_filter(
        alt.datum.step == slider).transform_aggregate(groupby=["step"])
    return alt.layer(rect, rule)


def heatmap_chart(heat: HeatmapData, seq: Any = None, *, title: str | None = None, scrubber: bool = True,
                  width: int = 360, height: int = 240) -> alt.LayerChart | alt.Chart:
    """Units x time heatmap of one sequence, coloured on the set's shared range ``heat.domain``.

    ``seq``: the id (``seq`` column) to draw; None takes the first one in ``heat.frame``.
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
    slider = step_slider(int(sub["step"].max())) if scrubber else None
    chart = _heatmap(sub, heat.domain, title or f"Sequence {seq}", slider, width, height)
    if slider is not None:
        chart = chart.add_params(slider)
    return chart.properties(description=heatmap_caption(heat.domain))


def heatmap_caption(domain: tuple[float, float]) -> str:
    lo, hi = domain
    return (f"Each row is one hidden unit and each column one step of the sequence; red means the unit's value "
            f"is high (up to {hi:.2g}), blue low (down to {lo:.2g}) and white near zero, on the same colour range "
            f"for every sequence shown.")


def pair_heatmaps_chart(heat: HeatmapData, seq_a: Any, seq_b: Any, *, titles: Sequence[str] | None = None,
                        scrubber: bool = True, width: int = 300, height: int = 240) -> alt.HConcatChart:
    """Two sequences' heatmaps side by side on one shared colour scale and one step slider."""
    if not isinstance(heat, HeatmapData):
        raise InputError("pair_heatmaps_chart needs the HeatmapData returned by heatmap_data.")
    frame = heat.frame
    parts = []
    for s in (seq_a, seq_b):
        if not (frame["seq"] == s).any():
            raise InputError(f"Sequence {s!r} is not in this heatmap data; compute heatmap_data for both sequences.")
    steps = int(frame.loc[frame["seq"].isin([seq_a, seq_b]), "step"].max())
    slider = step_slider(steps) if scrubber else None
    names = titles or (f"Sequence A ({seq_a})", f"Sequence B ({seq_b})")
    for s, t in zip((seq_a, seq_b), names):
        parts.append(_heatmap(frame[frame["seq"] == s], heat.domain, t, slider, width, height))
    if slider is not None:
        parts[0] = parts[0].add_params(slider)
    chart = alt.hconcat(*parts).resolve_scale(color="shared")
    return chart.properties(description=heatmap_caption(heat.domain)
                            + " Compare the two blocks column by column to see where the sequences' states differ.")


# ----------------------------------------------------------------------------- PCA paths
def pca_paths_chart(paths: pd.DataFrame, seqs: Sequence[Any] | None = None, *, cloud: bool = True,
                    scrubber: bool = True, cloud_max: int = CLOUD_MAX, width: int = 420, height: int = 360,
                    random_state: int = 0) -> alt.LayerChart:
    """Paths of a few sequences through the shared PCA picture, coloured by time, drawn over a
    faint cloud of every sequence's states.

    ``paths`` is the frame of :func:`rnnviz_core.trajectories.pca_paths`; ``seqs`` the ids to
    draw as paths (default: the first two). The cloud is a fixed-seed sample of at most
    ``cloud_max`` points. With ``scrubber``, a slider shows each path up to the chosen step.
    """
    _require(paths, ["seq", "step", "pc1", "pc2"], "pca_paths_chart")
    ids = list(pd.unique(paths["seq"]))
    if seqs is None:
        seqs = ids[:2]
    seqs = list(seqs)
    missing = [s for s in seqs if s not in set(ids)]
    if missing:
        raise InputError(f"Sequences {missing} are not in the paths frame.")
    evr = paths.attrs.get("explained_variance_ratio") or []
    xt = f"PC1 ({evr[0]:.0%} of variance)" if len(evr) > 0 else "PC1"
    yt = f"PC2 ({evr[1]:.0%} of variance)" if len(evr) > 1 else "PC2"
    sel = paths[paths["seq"].isin(seqs)].copy()
    sel["sequence"] = sel["seq"].astype(str)
    max_step = int(sel["step"].max())
    x = alt.X("pc1:Q", title=xt)
    y = alt.Y("pc2:Q", title=yt)
    layers = []
    if cloud:
        pts = paths[["pc1", "pc2"]]
        if len(pts) > cloud_max:
            pts = pts.sample(n=cloud_max, random_state=random_state)
        layers.append(alt.Chart(pts).mark_circle(size=8, color="#bbbbbb", opacity=0.25).encode(x=x, y=y))
    slider = step_slider(max_step) if scrubber else None
    base = alt.Chart(sel)
    if slider is not None:
        base = base.transform_filter(alt.datum.step <= slider)
    line = base.mark_line(strokeWidth=1.2, color="#555555").encode(
        x=x, y=y, order="step:Q", detail="sequence:N", strokeDash=alt.StrokeDash("sequence:N", title="sequence"))
    dots = base.mark_circle(size=45, opacity=0.9).encode(
        x=x, y=y, color=alt.Color("step:Q", title="step", scale=alt.Scale(scheme="viridis", domain=[0, max(max_step, 1)])),
        shape=alt.Shape("sequence:N", title="sequence"),
        tooltip=["sequence:N", "step:Q", alt.Tooltip("pc1:Q", format=".3f"), alt.Tooltip("pc2:Q", format=".3f")])
    layers += [line, dots]
    if slider is not None:
        now = alt.Chart(sel).transform_filter(alt.datum.step == slider).mark_point(
            size=160, filled=False, color="black", strokeWidth=2).encode(x=x, y=y, shape="sequence:N")
        layers.append(now)
    chart = alt.layer(*layers).properties(width=width, height=height)
    if slider is not None:
        chart = chart.add_params(slider)
    return chart.properties(description=pca_caption(evr))


def pca_caption(evr: Sequence[float] = ()) -> str:
    share = f" (together {sum(list(evr)[:2]):.0%} of how the states vary)" if len(evr) >= 2 else ""
    return ("Each dot is the network's memory at one step, squeezed onto the two directions in which the "
            f"states vary most{share}; a path runs from dark (early) to yellow (late) steps, and grey dots "
            "are all other sequences for reference.")


# ----------------------------------------------------------------------------- |h| over time
def norms_chart(norms: pd.DataFrame, seqs: Sequence[Any] | None = None, *, scrubber: bool = True,
                width: int = 420, height: int = 160) -> alt.VConcatChart:
    """Sum of |h| (top) and step change ||h_t - h_(t-1)|| (bottom) over time for a few
    sequences, with each sequence's plateau step marked as a dashed rule.

    ``norms`` is the frame of :func:`rnnviz_core.trajectories.state_norms`.
    """
    _require(norms, ["seq", "step", "sum_abs", "step_change", "plateau_step"], "norms_chart")
    ids = list(pd.unique(norms["seq"]))
    seqs = ids[:2] if seqs is None else list(seqs)
    sel = norms[norms["seq"].isin(seqs)].copy()
    if sel.empty:
        raise InputError("None of these sequences is in the norms frame.")
    sel["sequence"] = sel["seq"].astype(str)
    plateaus = sel.groupby("sequence", as_index=False)["plateau_step"].first()
    plateaus = plateaus[plateaus["plateau_step"] >= 0]
    color = alt.Color("sequence:N", title="sequence")
    max_step = int(sel["step"].max())
    xscale = alt.Scale(domain=[0, max(max_step, 1)], nice=False)
    x = alt.X("step:Q", title="step", scale=xscale)
    slider = step_slider(max_step) if scrubber else None
    top_layers = [
        alt.Chart(sel).mark_line(point=True).encode(x=x, y=alt.Y("sum_abs:Q", title="sum of |h|"), color=color,
                                                   tooltip=["sequence:N", "step:Q", alt.Tooltip("sum_abs:Q", format=".3f")]),
        alt.Chart(plateaus).mark_rule(strokeDash=[6, 4], strokeWidth=2).encode(
            x=alt.X("plateau_step:Q", scale=xscale), color=color, tooltip=[alt.Tooltip("plateau_step:Q", title="plateau from step")]),
    ]
    bottom_layers = [
        alt.Chart(sel.dropna(subset=["step_change"])).mark_line(point=True).encode(
            x=x, y=alt.Y("step_change:Q", title="change from previous step"), color=color,
            tooltip=["sequence:N", "step:Q", alt.Tooltip("step_change:Q", format=".3f")]),
    ]
    if slider is not None:
        now = alt.Chart(pd.DataFrame({"step": [0]})).mark_rule(color="black", opacity=0.5).encode(
            x=alt.X("now:Q")).transform_calculate(now=slider.name)
        top_layers.append(now)
        bottom_layers.append(now)
    top = alt.layer(*top_layers).properties(width=width, height=height)
    bottom = alt.layer(*bottom_layers).properties(width=width, height=height)
    if slider is not None:
        top = top.add_params(slider)
    chart = alt.vconcat(top, bottom)
    rel_tol = norms.attrs.get("plateau_rule", {}).get("rel_tol", 0.1)
    return chart.properties(description=norms_caption(plateaus["plateau_step"].tolist(), rel_tol))


def norms_caption(plateaus: Sequence[int] = (), rel_tol: float = 0.1) -> str:
    where = ""
    if len(plateaus):
        where = f" (here from step {', '.join(str(int(p)) for p in plateaus)})"
    return ("The top panel shows how much is stored in the network's memory at each step (the sum of all units' "
            "absolute values) and the bottom one how much it changed from the step before; the dashed line marks "
            f"where the total settles within {rel_tol:.0%} of its final level{where}.")


# ----------------------------------------------------------------------------- two sequences
def distance_chart(distance: pd.DataFrame, parting: int | None = None, *, rel_threshold: float | None = None,
                   scrubber: bool = True, width: int = 420, height: int = 200) -> alt.LayerChart:
    """Distance between sequences A and B at each aligned step, with the parting step marked
    (dashed rule) and the threshold of the parting rule (dotted line) when given.

    ``distance`` is the frame of :func:`rnnviz_core.trajectories.pair_distance`; ``parting``
    the result of :func:`parting_step` (-1 or None: not drawn).
    """
    _require(distance, ["step", "distance"], "distance_chart")
    align = distance.attrs.get("align", "start")
    xt = "step" if align == "start" else "steps before the end (0 = last step)"
    base = alt.Chart(distance)
    layers = [base.mark_line(point=True, color="#4c78a8").encode(
        x=alt.X("step:Q", title=xt), y=alt.Y("distance:Q", title="distance between A and B"),
        tooltip=["step:Q", "step_a:Q", "step_b:Q", alt.Tooltip("distance:Q", format=".3f")]
        if {"step_a", "step_b"} <= set(distance.columns) else ["step:Q", "distance:Q"])]
    if rel_threshold is not None and "scale" in distance.attrs:
        thr = float(rel_threshold) * float(distance.attrs["scale"])
        layers.append(alt.Chart(pd.DataFrame({"threshold": [thr]})).mark_rule(strokeDash=[2, 3], color="gray").encode(
            y="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", title="parting threshold", format=".3f")]))
    if parting is not None and parting >= 0:
        layers.append(alt.Chart(pd.DataFrame({"parting": [int(parting)]})).mark_rule(
            strokeDash=[6, 4], strokeWidth=2, color="#e45756").encode(
            x="parting:Q", tooltip=[alt.Tooltip("parting:Q", title="the sequences part at step")]))
    slider = None
    if scrubber and len(distance):
        lo, hi = int(distance["step"].min()), int(distance["step"].max())
        slider = alt.param(name=STEP_PARAM, value=hi, bind=alt.binding_range(min=lo, max=hi, step=1, name="Step "))
        layers.append(alt.Chart(pd.DataFrame({"step": [0]})).mark_rule(color="black", opacity=0.5).encode(
            x="now:Q").transform_calculate(now=slider.name))
    chart = alt.layer(*layers).properties(width=width, height=height)
    if slider is not None:
        chart = chart.add_params(slider)
    return chart.properties(description=distance_caption(parting, align))


def distance_caption(parting: int | None = None, align: str = "start") -> str:
    when = ("the dashed red line marks where they part for good" if parting is not None and parting >= 0
            else "they never move far enough apart to count as parted")
    lined = "step by step from the start" if align == "start" else "lined up at their last steps"
    return (f"The line shows how far apart the network's memory is for sequence A and sequence B, compared "
            f"{lined}; {when}.")
