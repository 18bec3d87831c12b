"""Sequences A and B: one choice shared by every page and kept in the URL (``a=``, ``b=``).

The choice lives in the view (the URL's parameters, kept in the session), not in the widgets:
Streamlit drops a widget's state on a page that does not draw it, so each widget is set from the
view before it is drawn and writes back to it in its ``on_change`` callback. "By class" shows
each sequence's class beside it (a new class picks that class's first sequence); "Most different
pair" sets A and B to the pair whose final states are furthest apart, and they stay chosen on the
other pages.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from rnnviz_app.sources import sequences as sq
from rnnviz_app.sources.context import Loaded
from rnnviz_app.state import state_url as su
from rnnviz_app.views import messages as msg
from rnnviz_app.views.text import md_escape

__all__ = ["MODES", "modes_for", "pick_pair"]

MODES = ["By id", "By class", "Most different pair"]


def _set(name: str, value) -> None:
    su.remember(name, value)


def _on_sequence(side: str) -> None:
    _set(side, st.session_state["w_" + side])


def _on_class(side: str, ctx: Loaded) -> None:
    pool = sq.ids_of_class(ctx, int(st.session_state["w_c" + side]))
    other = su.view().get("b" if side == "a" else "a")
    if pool:
        _set(side, next((i for i in pool if i != other), pool[0]))


def _on_mode() -> None:
    _set("pick", st.session_state["w_pick"])


def modes_for(ctx: Loaded) -> list[str]:
    """The ways to choose A and B for this data: "By class" only when the sequences have classes
    (never for regression or unlabelled data)."""
    y, names = sq.labels_of(ctx)
    return list(MODES) if y is not None and names else [m for m in MODES if m != "By class"]


def _valid(ids: list[str], a: str | None, b: str | None) -> tuple[str, str]:
    a = a if a in ids else ids[0]
    b = b if b in ids else ids[min(1, len(ids) - 1)]
    return a, b


def pick_pair(ctx: Loaded | None, labels: dict, *, kind: str = "h", layer: int = -1, direction: str = "fwd",
              modes: bool = True, rows: dict | None = None) -> tuple[int, int]:
    """Draw the A/B choice and return the row indices (a, b) of the chosen sequences.

    Parameters
    ----------
    labels : sequence id -> label (:func:`rnnviz_app.sources.sequences.sequence_labels`).
    kind, layer, direction : the states "Most different pair" compares.
    modes : offer the "By id / By class / Most different pair" choice (else two plain pickers).
    rows : sequence id -> row (default: the loaded data's; an analysis bundle passes its own, ``ctx`` None).
    """
    ids = list(labels)
    rows = sq.row_of(ctx) if rows is None else rows
    view = su.view()
    a_id, b_id = _valid(ids, view.get("a"), view.get("b"))
    mode = MODES[0]
    if modes:
        offered = modes_for(ctx)
        mode = view.get("pick") if view.get("pick") in offered else offered[0]
        st.session_state["w_pick"] = mode
        st.radio("Choose A and B", offered, horizontal=True, key="w_pick", on_change=_on_mode)
        _set("pick", mode)
    if mode == "Most different pair":
        ra, rb, note = msg.guarded(sq.most_different_pair, ctx, kind, layer, direction)
        a_id, b_id = ids[ra], ids[rb]
        st.info(f"**A** = {md_escape(labels[a_id])}, **B** = {md_escape(labels[b_id])}. {md_escape(note)}")
    else:
        y, names = sq.labels_of(ctx) if mode == "By class" else (None, None)
        by_class = mode == "By class" and y is not None
        cols = st.columns(2)
        for col, side, cur in ((cols[0], "a", a_id), (cols[1], "b", b_id)):
            pool = ids
            if by_class:
                cls = int(y[rows[cur]])
                st.session_state["w_c" + side] = cls
                col.selectbox(f"Class of {side.upper()}", list(range(len(names))), format_func=names.__getitem__,
                              key="w_c" + side, on_change=_on_class, args=(side, ctx))
                _set("c" + side, cls)
                pool = sq.ids_of_class(ctx, cls) or ids
            st.session_state["w_" + side] = cur
            col.selectbox(f"Sequence {side.upper()}", pool, format_func=labels.get, key="w_" + side,
                          on_change=_on_sequence, args=(side,))
    _set("a", a_id)
    _set("b", b_id)
    if a_id == b_id:
        st.warning("A and B are the same sequence, so every comparison on this page is flat; "
                   "choose another sequence under 'Sequence B'.")
    return rows[a_id], rows[b_id]


def true_steps(ctx: Loaded, row: int) -> list[int] | None:
    """Steps known to decide the answer for one sequence (the marker demo's marked steps), or None."""
    from rnnviz_core.charts.inputs import marker_steps
    ds = ctx.data
    if getattr(ds, "is_tokens", False):
        return None
    return marker_steps(np.asarray(ds.X[row]), int(ds.lengths[row]), getattr(ds, "feature_names", None))
