"""What every step chart shares: the caption reader, the step slider, whole-number step and unit
axes, the y-label width that lines stacked charts up, and the stacking itself.
"""
from __future__ import annotations

from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from ..errors import InputError

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


def on_one_step_axis(*charts: Any) -> alt.VConcatChart:
    """Stack charts drawn on one step scale (input strip, heatmap, per-step bars, per-feature
    heatmap built with the same ``step_width``): each reserves :data:`Y_EXTENT` px for its y
    labels, so their steps line up column by column; the captions are joined in order."""
    parts = [c for c in charts if c is not None]
    if not parts:
        raise InputError("on_one_step_axis needs at least one chart.")
    text = " ".join(caption(c) for c in parts if caption(c))
    return alt.vconcat(*parts, spacing=10).properties(description=text)




# public names for the sibling chart modules and charts.saturation (no module reads another's privates)
int_axis = _int_axis
unit_axis = _unit_axis
require = _require
tick_every = _tick_every
num = _num
step_axis = _step_axis
