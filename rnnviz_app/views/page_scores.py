"""The Contributions page's scores for any source: the methods it has, the sentence on what is
explained, the frames of A and B, their top steps and the position curves. A live source scores
with the model (:mod:`rnnviz_app.views.page_contributions`); an analysis bundle reads its stored
scores for A and B's rows only and the build-time position aggregates
(:func:`rnnviz_app.sources.bundle_view.contribution_frames`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rnnviz_app.views.text import md_escape

__all__ = ["Scores", "explaining", "layout_source", "methods", "scores"]


def methods(src) -> list[str]:
    """The methods a page offers: every method live; a bundle's stored ones (known names only)."""
    from rnnviz_core.contributions import METHODS
    if src.bundle:
        return [m for m in src.b.methods if m in METHODS]
    return list(METHODS)


def explaining(src) -> str:
    """The second line under the method's meaning: which output the scores explain (Markdown)."""
    if src.bundle:
        return md_escape(src.cannot("target"), max_len=1000)
    from rnnviz_app.sources import context as cx
    ctx = src.ctx
    name = cx.target_options(ctx).get("predicted" if ctx.target is None else str(ctx.target))
    return f"Explaining: {md_escape(name.lower())} (change it under 'Target output' in the sidebar)."


@dataclass
class Scores:
    """``sc``: every sequence's scores [N, T] (live only, else None); ``frame``: A's and B's per-step
    scores; ``top``: their top steps; ``pos`` / ``by_group``: the position curves (None when
    missing, ``note`` says why)."""
    sc: Any
    frame: pd.DataFrame
    top: pd.DataFrame
    pos: pd.DataFrame | None
    by_group: pd.DataFrame | None
    note: str | None = None


def scores(src, method: str, a: int, b: int) -> Scores:
    """The scores of ``method`` for A and B (positions in ``src.ids``) and over every sequence."""
    if src.bundle:
        from rnnviz_app.sources import bundle_view as bv
        frame, top, pos, by_class, note = bv.contribution_frames(src.b, method, src.row(a), src.row(b))
        return Scores(None, frame, top, pos, by_class, note)
    from rnnviz_app.state import compute as cp
    from rnnviz_app.views import messages as msg
    from rnnviz_app.views import page_contributions as pc
    ctx = src.ctx
    sc, _ = msg.guarded(pc.scores, ctx, method)
    frame, top, pos, by_group = msg.guarded(cp.compute, pc.contribution_views, ctx, sc, a, b, method,
                                            key=("views", method, ctx.target, a, b))
    return Scores(sc, frame, top, pos, by_group)


def layout_source(src):
    """What :func:`rnnviz_app.views.page_contributions.stack_layout` reads (``.data``: ids, lengths,
    X, is_tokens) for the rows of ``src.states()``: the loaded context, or a bundle's sampled rows."""
    if not src.bundle:
        return src.ctx
    from rnnviz_app.sources import bundle_view as bv
    return bv.as_source(src.b, src.rows)


def inputs_of(src, pos: int) -> tuple[Any, int, Any]:
    """(x [T, F] or None, length, feature names) for the stacked chart's input strip: a numeric
    sequence's inputs (a bundle's sampled ones when it holds them); none for a text model."""
    view = None if src.is_tokens else src.input_view()
    if view is None or getattr(view.data.X, "ndim", 0) != 3:
        return None, int(src.lengths[pos]), None
    return view.data.X[pos], int(src.lengths[pos]), view.data.feature_names


def known(src):
    """bool [N, T] of the steps known to decide each answer (the marker demo), or None."""
    from rnnviz_app.views import page_contributions as pc
    view = src.input_view()
    return None if view is None else pc.known_steps(view)


def marks_of(known_steps, r: int):
    return None if known_steps is None else [int(t) for t in np.asarray(known_steps[r]).nonzero()[0]]
