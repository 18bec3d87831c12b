"""The Contributions page's stacked chart of one sequence, written once for every source: its
inputs (when the source has them), its hidden state and its step scores on one step scale.

The bundle page calls :func:`stacked`; the live page (``pages/3_Contributions.py``) calls
:func:`stacked_with_inputs`, which draws a numeric sequence's input strip on top and then calls it.
"""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ["stacked", "stacked_with_inputs"]


def stacked(hm, seq_id: str, side: str, frame, *, step_w: float, n_steps: int, bins=None,
            words: Sequence[str] | None = None, marks: Sequence[int] | None = None, inputs: Any = None):
    """``inputs`` (an Altair chart, optional) above the hidden-state heatmap ``hm`` of ``seq_id``
    and its step scores (``frame``: :func:`rnnviz_core.rankings.scores_frame`), on the shared
    step columns ``bins``; the caption joins the parts' captions."""
    import altair as alt

    from rnnviz_core.charts import contributions as cc
    from rnnviz_core.charts.trajectories import heatmap_chart
    parts = [] if inputs is None else [inputs]
    parts.append(heatmap_chart(hm, seq_id, title=f"{side}: {seq_id}, hidden state", scrubber=False, step_width=step_w,
                               height=max(100, min(260, 6 * hm.frame["unit"].nunique())), bins=bins, words=words,
                               n_steps=n_steps))
    parts.append(cc.step_scores_chart(frame, seq_id, step_width=step_w, n_steps=n_steps, marks=marks, bins=bins,
                                      words=words))
    return alt.vconcat(*parts, spacing=6).properties(description=" ".join(cc.caption(c) for c in parts))


def stacked_with_inputs(x, length: int, feature_names, hm, seq_id: str, side: str, frame, step_w: float,
                        n_steps: int, bins=None, words: Sequence[str] | None = None,
                        marks: Sequence[int] | None = None):
    """:func:`stacked` with the input strip of one numeric sequence (``x`` [T, F], its ``length``
    real steps) on top; ``x=None`` (a text model, whose words are shown as text) draws no strip.
    Arguments are positional-friendly so the page's chart cache keys them by its own key."""
    from rnnviz_core.charts.inputs import input_strip_chart
    inputs = None if x is None else input_strip_chart(x, int(length), feature_names=feature_names, marks=marks,
                                                      step_width=step_w, n_steps=n_steps, bins=bins,
                                                      title=f"{side}: inputs")
    return stacked(hm, seq_id, side, frame, step_w=step_w, n_steps=n_steps, bins=bins, words=words, marks=marks,
                   inputs=inputs)
