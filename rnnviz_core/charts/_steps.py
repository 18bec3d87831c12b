"""One step axis for every chart: binned columns (:mod:`rnnviz_core.display`), whole-number
ticks, and the words of a text model in the axis labels and tooltips."""
from __future__ import annotations

import json
from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

from .. import display as dp

#: characters of a word shown under a tick (the tooltip shows it whole)
AXIS_WORD_CHARS = 7


def tick_every(n: int, length_px: float, min_gap_px: float = 36.0) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... columns between labels that keeps them apart."""
    per = max(float(length_px), 1.0) / max(int(n), 1)
    for base in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000):
        if base * per >= min_gap_px:
            return base
    return 100000


#: the widest a binned step axis is drawn (px), whatever ``step_width`` asks for
MAX_AXIS_PX = 600


def column_px(bins: dp.StepBins, step_width: float | None, width: float) -> float:
    """Pixels of one drawn column: ``step_width`` (px per step) times the steps per column, or
    ``width`` spread over the columns. A binned axis is never wider than :data:`MAX_AXIS_PX` (a
    caller's floor of 2 px per step would make 10,000 steps 20,000 px wide); charts stacked on one
    step scale get the same width, since they share ``bins`` and ``step_width``."""
    if step_width is None:
        return float(width) / bins.n_cols
    px = float(step_width) * bins.k
    if bins.binned:
        px = min(px, MAX_AXIS_PX / bins.n_cols)
    return px


def step_axis(bins: dp.StepBins, col_px: float, words: Sequence[str] | None = None, *, title: str = "step",
              **kw: Any) -> alt.Axis:
    """An ordinal axis over the columns' first steps, labelled every 1, 2, 5, 10 ... columns; with
    ``words`` (one per step) and one step per column, each label is the step's word, trimmed with an
    ellipsis."""
    starts = bins.starts()
    every = tick_every(len(starts), len(starts) * col_px)
    values = starts[::every]
    extra: dict[str, Any] = {}
    if words is not None and not bins.binned:
        labels = [" ".join(dp.short_label(words[s], AXIS_WORD_CHARS).split()) if 0 <= s < len(words) else str(s)
                  for s in values]  # line and paragraph separators become spaces (a string literal cannot hold them)
        extra["labelExpr"] = (f"{json.dumps(labels, ensure_ascii=False)}[indexof({json.dumps([int(v) for v in values])}, "
                              "toNumber(datum.value))]")
        title = "word" if title == "step" else title
    if bins.binned and title == "step":
        title = f"step (each column {bins.k} steps)"
    return alt.Axis(values=values, labelAngle=0, title=title, **extra, **kw)


def step_scale(bins: dp.StepBins, padding_inner: float = 0.0) -> alt.Scale:
    return alt.Scale(domain=bins.starts(), paddingInner=padding_inner, paddingOuter=0)


def step_x(bins: dp.StepBins, col_px: float, words: Sequence[str] | None = None, *, field: str = "step",
           padding_inner: float = 0.0, axis: bool = True, **kw: Any) -> alt.X:
    return alt.X(f"{field}:O", scale=step_scale(bins, padding_inner),
                 axis=step_axis(bins, col_px, words) if axis else None, **kw)


def decorate(frame: pd.DataFrame, bins: dp.StepBins, words: Sequence[str] | None = None,
             step: str = "step") -> tuple[pd.DataFrame, list[alt.Tooltip]]:
    """Columns for the tooltips of a drawn frame (``steps``: "steps 16–23" when binned;
    ``word``/``words`` for text) and the tooltip entries that name the step."""
    out = frame
    tips: list[alt.Tooltip] = []
    if bins.binned:
        ends = out["step_end"] if "step_end" in out else out[step] + bins.k - 1
        out = out.assign(steps=[dp.step_label(s, e) for s, e in zip(out[step], ends)])
        tips.append(alt.Tooltip("steps:N", title="steps"))
    else:
        tips.append(alt.Tooltip(f"{step}:O", title="step"))
    if words is not None:
        if bins.binned:
            by_col = dict(zip(bins.starts(), dp.bin_words(words, bins)))
            out = out.assign(words=[by_col.get(int(s), "") for s in out[step]])
            tips.append(alt.Tooltip("words:N", title="words"))
        else:
            out = out.assign(word=[str(words[int(s)]) if 0 <= int(s) < len(words) else "" for s in out[step]])
            tips.append(alt.Tooltip("word:N", title="word"))
    return out, tips


def more_words(n_shown: int, n_total: int, what: str, how: str = "most active") -> str:
    """ "; only the 32 most active of the 512 units are drawn" ("" when all are)."""
    if n_shown >= n_total:
        return ""
    return f"; only the {n_shown} {how} of the {n_total:,} {what} are drawn"


def finite_range(values: Any) -> tuple[float, float] | None:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if v.size else None


def seq_words(frame: pd.DataFrame, words: dict | None, bins: dp.StepBins, seq: str = "sequence",
              step: str = "step") -> pd.DataFrame:
    """``frame`` with a ``word`` column (one step per row) or ``words`` (a column's words, trimmed),
    from ``words``: {value of the ``seq`` column: that sequence's words, one per step}."""
    if not words:
        return frame
    if bins.binned:
        cols = {name: dict(zip(bins.starts(), dp.bin_words(list(w), bins))) for name, w in words.items()}
        return frame.assign(words=[cols.get(n, {}).get(int(s), "") for n, s in zip(frame[seq], frame[step])])
    return frame.assign(word=[str(words[n][int(s)]) if n in words and 0 <= int(s) < len(words[n]) else ""
                              for n, s in zip(frame[seq], frame[step])])
