"""The inputs of one sequence over time, drawn to sit above its heatmap on the same step scale.

:func:`input_strip_chart` picks the drawing from the data: one small line panel per feature for
a few features, a feature x step heatmap for many, and the tokens as text for token data.
:func:`marker_steps` finds the steps a known-answer task marks (the marker demo keeps them in
its ``marker`` feature: 1 at the two steps that decide the label, 0 elsewhere), so charts can
show whether a method points at the right steps.

Like the other chart modules, every chart's ``description`` holds its caption.
"""
from __future__ import annotations

from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from .. import display as dp
from ..arrays import valid_mask
from ..errors import InputError
from . import _steps as st
from .trajectories import Y_EXTENT

__all__ = ["input_strip_chart", "marker_steps", "marker_mask", "MARK_COLOUR"]

MARK_COLOUR = "#e45756"


def marker_steps(x: Any, length: int | None = None, feature_names: Sequence[str] | None = None, *,
                 feature: str = "marker") -> list[int] | None:
    """Steps of one sequence where the feature named ``feature`` is non-zero.

    Parameters
    ----------
    x : one sequence's inputs [T, F] (padding past ``length`` is ignored).
    length : its length (default T).
    feature_names : the dataset's feature names; the feature is found by name.

    Returns
    -------
    The marked steps in order, or None when the data has no feature of that name (so nothing is
    known to mark; an empty list means the feature exists but marks no step here).
    """
    if feature_names is None or feature not in list(feature_names):
        return None
    arr = np.asarray(x)
    if arr.ndim != 2:
        return None
    j = list(feature_names).index(feature)
    n = arr.shape[0] if length is None else int(length)
    col = arr[:n, j].astype(np.float64)
    return [int(t) for t in np.flatnonzero(np.isfinite(col) & (col != 0))]


def marker_mask(x: Any, lengths: Any = None, feature_names: Sequence[str] | None = None, *,
                feature: str = "marker") -> np.ndarray | None:
    """Bool [N, T]: True at the steps the feature named ``feature`` marks (non-zero) inside each
    sequence's length; None when the data has no such feature. Pass it to
    :func:`rnnviz_core.findings.known_step_hits`."""
    if feature_names is None or feature not in list(feature_names):
        return None
    arr = np.asarray(x)
    if arr.ndim != 3:
        return None
    col = arr[:, :, list(feature_names).index(feature)].astype(np.float64)
    n, t = col.shape
    lens = np.full(n, t) if lengths is None else np.asarray(lengths)
    inside = valid_mask(lens, t)
    return inside & np.isfinite(col) & (col != 0)


#: characters of a row label beside a heatmap (its y axis is Y_EXTENT px wide)
ROW_LABEL_CHARS = 8

#: height (px) of a strip of rotated tokens
_TOKEN_STRIP = 70

#: tallest line panel (px) a long feature name may ask for
_MAX_ROW = 96


def _title_px(name: str) -> int:
    """Room (px) a y title needs: ~6.5 px per character of an 11 px bold label, plus margins."""
    return int(np.ceil(6.5 * len(str(name)))) + 8


def _value_scale(col: np.ndarray) -> alt.Scale:
    """A line panel's y scale; a feature constant over the sequence gets a band around its value
    (a zero-width domain makes Vega label the axis "7.000000")."""
    v = col[np.isfinite(col)]
    if v.size and float(v.max()) == float(v.min()):
        c = float(v[0])
        pad = max(abs(c) * 0.1, 1.0)
        return alt.Scale(domain=[c - pad, c + pad], zero=False)
    return alt.Scale(zero=False)


_steps_words = dp.steps_words      # "steps 15–46": runs of steps as ranges


def input_strip_chart(x: Any, length: int | None = None, *, feature_names: Sequence[str] | None = None,
                      vocabulary: Sequence[str] | None = None, marks: Sequence[int] | None = None,
                      width: int = 360, step_width: float | None = None, n_steps: int | None = None,
                      max_lines: int = 6, row_height: int = 44, title: str | None = None,
                      bins: dp.StepBins | None = None, window: Sequence[int] | None = None,
                      max_features: int = dp.MAX_FEATURES, budget: int = dp.ROW_BUDGET) -> alt.TopLevelMixin:
    """The inputs of one sequence over time.

    Parameters
    ----------
    x : one sequence's inputs: floats [T, F], or integer token ids [T] (or [T, 1]).
    length : its length (default: T, or the last step with a finite value).
    feature_names : names of the F features (default "feature 0" ...).
    vocabulary : token strings by id (token data); ids outside it are shown as "#id".
    marks : steps to mark (e.g. :func:`marker_steps`), drawn as red dashed rules / red tokens.
    step_width, n_steps : pixels per step and the number of step columns, to sit on the step
        scale of the heatmap below (default ``width`` / length and the length).
    max_lines : up to this many features are drawn as one line panel each (own y scale); more
        are drawn as a feature x step heatmap, each feature's row on its own range over the drawn
        steps (its 2nd to 98th percentile), so a feature running 0-6,557 is as readable as one
        running 0-1; at most ``max_features`` rows (the first ones; the caption says so).
    bins, window : columns of steps shared with the charts below (default: chosen here so that
        the drawn cells stay within ``budget``; each column is the mean of its steps) and the steps
        ``(start, end)`` to draw.

    Returns
    -------
    An Altair chart whose caption says which drawing was chosen and what the marks are.
    """
    arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
    tokens = np.issubdtype(arr.dtype, np.integer) and (arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1))
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise InputError(f"input_strip_chart needs one sequence's inputs [T, F] or token ids [T]; got {arr.shape}.")
    t, f = arr.shape
    if length is None:
        if tokens:
            length = t
        else:
            real = np.isfinite(arr.astype(np.float64)).any(axis=1)
            length = int(np.flatnonzero(real)[-1]) + 1 if real.any() else 0
    length = int(length)
    if not 1 <= length <= t:
        raise InputError(f"length must be between 1 and {t}; got {length}.")
    arr = arr[:length]
    n = length if n_steps is None else max(int(n_steps), length)
    n_rows = 1 if tokens else (f if f <= max_lines else min(f, max_features))
    if bins is None:
        bins = dp.step_bins(n, max_columns=max(1, min(dp.MAX_COLUMNS, budget // n_rows)), window=window)
    sw = st.column_px(bins, step_width, width)
    # a band scale for every mark, points and text at the band's centre: Vega-Lite's default for a
    # text or line mark on an ordinal axis is a point scale, whose steps do not line up with the
    # heatmap's and the bars' bands below (the text demo's tokens drifted off their bars)
    xscale = alt.Scale(type="band", domain=bins.starts(), paddingInner=0, paddingOuter=0)
    x_enc = alt.X("step:O", scale=xscale, axis=st.step_axis(bins, sw), bandPosition=0.5)
    marks = [int(m) for m in (marks or []) if 0 <= int(m) < length]
    mark_text = (f" Red marks show {_steps_words(marks)}, the steps known to decide the answer." if marks else "")
    mark_cols = sorted({int(c) for c in bins.column(marks) if c >= 0}) if marks else []
    head = title or "Inputs"
    cells = ""
    if bins.binned or bins.windowed:
        cells = " " + bins.words("mean")[0].upper() + bins.words("mean")[1:] + "."
        if tokens and bins.binned:
            cells = (f" Each column is {bins.k} words, showing the first of them (the tooltip lists them); steps "
                     f"{bins.start} to {bins.stop - 1} are drawn.")
    steps_in = f"over its {length} steps"

    if tokens:
        ids = arr[:, 0].astype(np.int64)
        vocab = list(vocabulary) if vocabulary is not None else None
        words = [(vocab[i] if vocab is not None and 0 <= i < len(vocab) else f"#{i}") for i in ids]
        frame = pd.DataFrame({"step": np.arange(length), "token": words, "marked": np.isin(np.arange(length), marks)})
        if bins.binned or bins.windowed:
            cols = bins.starts()
            cols = [c for c in cols if c < length]
            frame = pd.DataFrame({"step": cols, "token": [dp.short_label(words[c], 6) if bins.binned else words[c]
                                                          for c in cols],
                                  "words": [dp.short_label(" ".join(words[c:min(c + bins.k, bins.stop)]), 60)
                                            for c in cols],
                                  "marked": np.isin(cols, mark_cols)})
        angle = 0 if sw >= 40 else 270     # Vega-Lite takes 0..360: 270 reads bottom to top
        # rotated tokens start at the strip's bottom edge and run up (at most the strip's height), so a
        # long word never runs down across the step axis
        chart = alt.Chart(frame).mark_text(angle=angle, align="center" if angle == 0 else "left", baseline="middle",
                                           dx=0 if angle == 0 else 3, fontSize=11 if sw >= 9 else 8,
                                           limit=80 if angle == 0 else _TOKEN_STRIP - 8).encode(
            x=x_enc, text="token:N",
            color=alt.condition(alt.datum.marked, alt.value(MARK_COLOUR), alt.value("black")),
            tooltip=["step:O", "words:N" if "words" in frame else "token:N"],
        ).properties(width=alt.Step(sw), height=24 if angle == 0 else _TOKEN_STRIP, title=head)
        # y on [0, 1]: level 0.5 (the middle) for level text; 0 (the bottom edge) for rotated tokens
        chart = chart.encode(y=alt.Y("row:Q", title="text", scale=alt.Scale(domain=[0, 1]),
                                     axis=alt.Axis(labels=False, ticks=False, domain=False, grid=False,
                                                   minExtent=Y_EXTENT, maxExtent=Y_EXTENT))
                             ).transform_calculate(row="0.5" if angle == 0 else "0")
        how = "the text of the sequence, one token per step" + ("" if vocab is not None else
                                                                 " (as token ids: no vocabulary is loaded)")
        return chart.properties(description=f"The inputs of this sequence {steps_in}: {how}.{mark_text}{cells}")

    vals = arr.astype(np.float64)
    names = [str(s) for s in feature_names] if feature_names is not None else [f"feature {i}" for i in range(f)]
    if len(names) != f:
        raise InputError(f"feature_names has {len(names)} names but the inputs have {f} features.")
    rules = None
    if marks:
        rules = alt.Chart(pd.DataFrame({"step": mark_cols})).mark_rule(color=MARK_COLOUR, strokeDash=[4, 3],
                                                                    strokeWidth=1.5).encode(x=alt.X("step:O", bandPosition=0.5))
    if f <= max_lines:
        panels = []
        # each feature's name is its panel's (vertical) y title: the panel is made tall enough for the
        # longest name (up to _MAX_ROW px), so "days_since" is not cut to "days_s..."
        height = int(min(max(row_height, max(_title_px(nm) for nm in names)), _MAX_ROW))
        for j, nm in enumerate(names):
            frame = pd.DataFrame({"step": np.arange(length), "value": vals[:, j]})
            if bins.binned or bins.windowed:
                frame = dp.bin_tidy(frame, bins, {"value": "mean"})
            line = alt.Chart(frame).mark_line(point=len(frame) <= 60, color="#4c78a8").encode(
                x=alt.X("step:O", scale=xscale, axis=st.step_axis(bins, sw) if j == f - 1 else None,
                        bandPosition=0.5),
                y=alt.Y("value:Q", title=nm, scale=_value_scale(vals[:, j]),
                        axis=alt.Axis(tickCount=2, format=".4~g", titleLimit=height + 6,
                                      minExtent=Y_EXTENT, maxExtent=Y_EXTENT)),
                tooltip=["step:O", alt.Tooltip("value:Q", format=".4g", title=nm)])
            layer = alt.layer(line, rules) if rules is not None else line
            panels.append(layer.properties(width=alt.Step(sw), height=height))
        chart = alt.vconcat(*panels, spacing=2, title=head)
        how = f"one small line per feature ({', '.join(names)}), each on its own scale"
    else:
        r = min(f, max_features, max(1, budget // bins.n_cols))
        shown = names[:r]
        binned = dp.bin_steps(vals[:, :r], bins, "mean")                   # (C, r)
        lo, hi = dp.robust_range(binned)
        scaled = np.clip((binned - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0) * 2.0 - 1.0
        starts = bins.starts()
        full, shown = shown, dp.distinct_labels(shown, ROW_LABEL_CHARS)   # "sens…012": the end that tells them apart
        frame = pd.DataFrame({"step": np.repeat(starts, r), "feature": np.tile(shown, len(starts)),
                              "name": np.tile(full, len(starts)), "scaled": scaled.reshape(-1),
                              "value": binned.reshape(-1)})
        frame = frame[np.isfinite(frame["value"])]
        if bins.binned:
            frame["steps"] = [dp.step_label(a, min(a + bins.k, bins.stop) - 1) for a in frame["step"]]
        rect = alt.Chart(frame).mark_rect().encode(
            x=x_enc, y=alt.Y("feature:N", sort=shown, title="feature",
                             axis=alt.Axis(values=shown[::max(1, int(np.ceil(12 * r / max(8 * r, 60))))],
                                           minExtent=Y_EXTENT, maxExtent=Y_EXTENT, labelLimit=Y_EXTENT - 6)),
            color=alt.Color("scaled:Q", title="within its own range",
                            scale=alt.Scale(domain=[-1, 1], scheme="purpleorange", clamp=True),
                            legend=alt.Legend(values=[-1, 0.0, 1], labelExpr=
                                              "datum.value < 0 ? 'low' : datum.value > 0 ? 'high' : 'middle'")),
            tooltip=["steps:N" if bins.binned else "step:O", alt.Tooltip("name:N", title="feature"),
                     alt.Tooltip("value:Q", format=".4g", title="mean value" if bins.binned else "value")])
        layer = alt.layer(rect, rules) if rules is not None else rect
        chart = layer.properties(width=alt.Step(sw), height=max(60, min(240, 8 * r)), title=head)
        which = f"its {f} features" if r == f else f"the first {r} of its {f:,} features"
        how = (f"a small heatmap of {which}, each row on that feature's own range over the drawn steps (from its "
               "2nd to its 98th percentile, purple at the low end and orange at the high end; values beyond are "
               "drawn at the ends), so the hover shows the real value")
    return chart.properties(description=f"The inputs of this sequence {steps_in}: {how}.{mark_text}{cells}")
