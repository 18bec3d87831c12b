"""The Contributions page's stacked chart of one sequence, written once for every source: its
inputs (when the source has them), its hidden state and its step scores on one step scale.

The bundle page calls it now; the live page (``pages/3_Contributions.py``) builds the same three
parts inline and can call :func:`stacked` with ``inputs=input_strip_chart(...)``.
"""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ["stacked"]


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
