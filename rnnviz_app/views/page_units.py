"""Glue of the Units page: ``rv.unit_dictionary`` of the loaded model and data (cached), its table
filtered, sorted and paged, one unit's entry, and the link from a heatmap to that entry.

The chosen unit lives in the link as ``unit`` (the dictionary's name, "h 17" or "z 3"; a backward
direction's units end in " (bwd)"). Pages with a heatmap draw :func:`unit_link`, which stores the
unit in the view and switches to the Units page.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from rnnviz_app.sources.context import Loaded
from rnnviz_app.state import state_url as su
from rnnviz_app.state.compute import compute_status

UNITS_PAGE = "pages/5_Units.py"
PAGE_ROWS = 50
KIND_LABELS = {"h": "hidden state", "r": "reset gate", "z": "update gate", "i": "input gate", "f": "forget gate",
               "o": "output gate"}
SORTS = {"share_at_limit": "How often at its limit", "selectivity": "Class selectivity",
         "abs_corr": "Output correlation (size)", "unit": "Unit number"}


def _dictionary(model, X, lengths, y, class_names, feature_names, device):
    from rnnviz_core.units import unit_dictionary
    return unit_dictionary(model, X, lengths, y=y, class_names=class_names, feature_names=feature_names,
                           device=device)


def dictionary(ctx: Loaded) -> pd.DataFrame:
    """The unit dictionary of every loaded sequence (cached; computed in batches), with the
    column ``key``: the unit's name in the link."""
    from rnnviz_app.views.summary import is_regression
    ds = ctx.data
    y = None if is_regression(ctx) or ds.y is None else ds.y
    d = compute_status("Finding what drives each unit to its limits…", _dictionary, ctx.model, ds.X, ds.lengths, y,
                       ds.class_names, ds.feature_names, ctx.device, key=("unit_dictionary",))
    d = d.copy()
    d["key"] = [n if dr == "fwd" else f"{n} (bwd)" for n, dr in zip(d["name"], d["direction"])]
    return d


def table(d: pd.DataFrame, kinds=None, text: str = "", sort: str = "share_at_limit") -> pd.DataFrame:
    """The rows of ``d`` shown in the table: of ``kinds`` (all when empty), whose name, limit or
    sentence contains ``text`` (any case), sorted by ``sort`` (largest first; "unit": in order)."""
    rows = d if not kinds else d[d["kind"].isin(list(kinds))]
    t = str(text or "").strip().lower()
    if t:
        cols = ("key", "limit", "responds_to", "selective_for", "correlated_with")
        hay = [" ".join("" if v is None or v != v else str(v) for v in vals).lower()
               for vals in zip(*(rows[c] for c in cols))]  # a missing value (no class preferred) is no text
        rows = rows[np.array([t in h for h in hay], dtype=bool)]
    if sort == "unit":
        return rows
    value = rows["output_correlation"].abs() if sort == "abs_corr" else rows[sort]
    return rows.iloc[np.argsort(-value.fillna(-np.inf).to_numpy(), kind="stable")]


def shown(rows: pd.DataFrame) -> pd.DataFrame:
    """The columns of the table, in words."""
    return pd.DataFrame({
        "Unit": rows["key"].astype(str),
        "Gate": [KIND_LABELS.get(k, k) for k in rows["kind"]],
        "Limit reached": rows["limit"].astype(str),
        "How often (share of steps)": rows["share_at_limit"].astype(float),
        "What it responds to": rows["responds_to"].astype(str),
        "Class selectivity": rows["selectivity"].astype(float),
        "Selective for": rows["selective_for"].astype(object).where(rows["selective_for"].notna(), ""),
        "Output correlation": rows["output_correlation"].astype(float),
        "Correlated with": rows["correlated_with"].astype(object).where(rows["correlated_with"].notna(), ""),
    })


def pattern_frame(entry: pd.Series, feature_names) -> pd.DataFrame | None:
    """A numeric unit's mean input window before its events (z-scores): one row per step before
    the event (0 = the event's own step), one column per feature; None without a pattern."""
    p = entry.get("pattern")
    if p is None or not hasattr(p, "shape") or np.asarray(p).size == 0:
        return None
    p = np.asarray(p, dtype=float)
    w = p.shape[0]
    names = list(feature_names) if feature_names is not None and len(feature_names) == p.shape[1] else \
        [f"feature {j}" for j in range(p.shape[1])]
    return pd.DataFrame(p, columns=[str(n) for n in names]).assign(
        **{"Steps before the event": np.arange(w - 1, -1, -1)}).iloc[:, [-1, *range(p.shape[1])]]


def words_frame(entry: pd.Series) -> pd.DataFrame | None:
    """A text model's words over-represented at and just before the unit's events; None without."""
    w = entry.get("words")
    if w is None or not len(w):
        return None
    return pd.DataFrame([{"Word": str(a), "Steps before the event": int(b), "Times more often than usual": float(c),
                          "Times seen there": int(n)} for a, b, c, n in w])


def unit_link(n_units: int, key: str, label: str = "Unit", *, units=None, kind: str = "h",
              backward: bool = False, names: dict | None = None) -> None:
    """Under a heatmap: pick a row (of the hidden state ``h`` or of a gate ``kind``; ``backward``: the
    backward direction's) and open its entry on the Units page. ``units``: the rows drawn (default
    all ``n_units``), offered in that order; ``names``: row -> the unit's name in the dictionary,
    where rows are not all of one kind and direction."""
    rows = [int(u) for u in (range(int(n_units)) if units is None else units)]
    names = names or {u: f"{kind} {u}" + (" (bwd)" if backward else "") for u in rows}
    what = KIND_LABELS.get(kind, kind)
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    u = c1.selectbox(label, rows, format_func=names.get, key=f"unitlink_{key}",
                     help=f"A row of the {what} heatmap: open what drives it to its limits.")
    if c2.button("Open this unit in Units", key=f"unitlink_btn_{key}"):
        su.view()["unit"] = names[int(u)]
        st.session_state.pop("w_unit", None)   # the Units page's picker starts from the link's unit
        st.switch_page(UNITS_PAGE)
