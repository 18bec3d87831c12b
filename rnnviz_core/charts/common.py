"""Shared chart pieces: one colour per compared thing, a diverging state scale, a time scrubber,
and small building blocks (heatmap, curves over time with a marked step) that the chart
modules and the app compose. Every function takes a tidy DataFrame and returns an Altair chart.
"""
from __future__ import annotations

from typing import Sequence

import altair as alt
import pandas as pd

__all__ = ["PAIR_COLORS", "STATE_SCHEME", "pair_scale", "time_scrubber", "heatmap", "curves_over_time",
           "step_rules"]

#: sequence (or group, or method) A and B, everywhere in the app
PAIR_COLORS = ("#1f77b4", "#d95f02")
#: diverging scheme for signed states: equal colours mean equal values in every panel
STATE_SCHEME = "redblue"


def pair_scale(labels: Sequence[str]) -> alt.Scale:
    """Colour scale giving ``labels[0]`` and ``labels[1]`` the A/B colours."""
    labels = list(labels)
    return alt.Scale(domain=labels, range=list(PAIR_COLORS[: len(labels)]) or list(PAIR_COLORS))


def time_scrubber(n_steps: int, name: str = "scrub", label: str = "Time step ") -> alt.Parameter:
    """A slider over steps 0..n_steps-1 that moves marks in the browser (no server round-trip)."""
    return alt.param(name=name, value=0,
                     bind=alt.binding_range(min=0, max=max(int(n_steps) - 1, 0), step=1, name=label))


def heatmap(frame: pd.DataFrame, domain: tuple[float, float], *, x: str = "step", y: str = "unit",
            color: str = "value", title: str = "", color_title: str = "value",
            scheme: str = STATE_SCHEME, height: int = 220, width: int | str = "container",
            scrub: alt.Parameter | None = None, legend: bool = True) -> alt.Chart:
    """Units x time heatmap with a fixed colour ``domain`` (share it between panels).

    With ``scrub`` (see :func:`time_scrubber`) a vertical rule follows the slider.
    """
    enc_legend = alt.Legend(title=color_title, orient="right") if legend else None
    base = alt.Chart(frame, title=title).mark_rect().encode(
        x=alt.X(f"{x}:O", title="time step", axis=alt.Axis(labelOverlap=True)),
        y=alt.Y(f"{y}:O", title=y, axis=alt.Axis(labelOverlap=True)),
        color=alt.Color(f"{color}:Q", scale=alt.Scale(scheme=STATE_SCHEME if scheme is None else scheme,
                                                       domain=list(domain), clamp=True),
                        legend=enc_legend),
        tooltip=[alt.Tooltip(f"{x}:O", title="step"), alt.Tooltip(f"{y}:O"),
                 alt.Tooltip(f"{color}:Q", format=".3f")],
    ).properties(height=height, width=width)
    if scrub is None:
        return base
    rule = alt.Chart(frame).mark_rule(color="black", strokeWidth=2).encode(
        x=alt.X(f"{x}:O")).transform_filter(alt.datum[x] == scrub)
    return alt.layer(base, rule)


def curves_over_time(frame: pd.DataFrame, y: str, *, color: str = "label", x: str = "step",
                     y_title: str | None = None, title: str = "", labels: Sequence[str] | None = None,
                     height: int = 200, width: int | str = "container") -> alt.Chart:
    """One line per ``color`` value over ``x``; A/B colours when ``labels`` are given."""
    scale = pair_scale(labels) if labels is not None else alt.Undefined
    return alt.Chart(frame, title=title).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X(f"{x}:Q", title="time step"),
        y=alt.Y(f"{y}:Q", title=y_title or y),
        color=alt.Color(f"{color}:N", scale=scale, title=None),
        tooltip=[alt.Tooltip(f"{color}:N"), alt.Tooltip(f"{x}:Q", title="step"),
                 alt.Tooltip(f"{y}:Q", format=".3f")],
    ).properties(height=height, width=width)


def step_rules(marks: pd.DataFrame, *, x: str = "step", color: str = "label", text: str = "text",
               labels: Sequence[str] | None = None) -> alt.Chart:
    """Dashed vertical rules with a short text at marked steps (plateau, parting...)."""
    scale = pair_scale(labels) if labels is not None else alt.Undefined
    base = alt.Chart(marks)
    rules = base.mark_rule(strokeDash=[5, 4], strokeWidth=2).encode(
        x=alt.X(f"{x}:Q"), color=alt.Color(f"{color}:N", scale=scale, title=None, legend=None),
        tooltip=[alt.Tooltip(f"{text}:N", title="mark"), alt.Tooltip(f"{x}:Q", title="step")])
    texts = base.mark_text(align="left", dx=4, dy=-4, baseline="top", fontSize=11).encode(
        x=alt.X(f"{x}:Q"), y=alt.value(0), text=alt.Text(f"{text}:N"),
        color=alt.Color(f"{color}:N", scale=scale, legend=None))
    return alt.layer(rules, texts)
