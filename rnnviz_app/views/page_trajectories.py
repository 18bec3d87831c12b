"""Glue of the Trajectories page: the play control's panels (A's and B's states, their inputs,
the known steps) and the unit-order choice. Every number comes from ``rnnviz_core``."""
from __future__ import annotations

import numpy as np
import streamlit as st

from rnnviz_app.inputs.page_pair import true_steps
from rnnviz_app.sources.context import Loaded
from rnnviz_app.sources.sequences import ids_to_words, vocabulary
from rnnviz_app.state import state_url as su
from rnnviz_app.state.compute import compute
from rnnviz_app.views.play import panel, play_heatmaps, shared_domain, token_panel

__all__ = ["ORDERS", "unit_choice", "play_view", "input_panels", "SIGMOID_KINDS"]

ORDERS = {"similarity": "units that move together side by side", "variance": "most active units first",
          "index": "unit number"}
SIGMOID_KINDS = {"r", "z", "i", "f", "o"}  # gates: values between 0 and 1
MAX_STRIP_FEATURES = 16


def unit_choice(n_units: int) -> tuple[str, int | None]:
    """Widgets for the heatmap rows' order and how many units to show; returns (order, top)."""
    c1, c2 = st.columns(2)
    c1.selectbox("Order the units by", list(ORDERS), format_func=ORDERS.get,
                 key=su.widget_key("order", "similarity", list(ORDERS)),
                 help="Rows of the heatmaps; the same order for A and B.")
    from rnnviz_app.views.play import MAX_PLAY_ROWS
    # "all" only while every unit gets a readable row; above that the most active ones
    tops = ([0] if n_units <= MAX_PLAY_ROWS else []) + [k for k in (8, 16, 32, 64, 128) if k < n_units]
    default = 0 if n_units <= MAX_PLAY_ROWS else 64
    c2.selectbox("Units shown", tops, format_func=lambda k: f"all {n_units}" if k == 0 else f"the {k} most active",
                 key=su.widget_key("top", default, tops, int),
                 help=None if n_units <= MAX_PLAY_ROWS else
                 f"{n_units:,} units do not fit one row each; the heatmaps show the most active ones.")
    top = su.value("top")
    return su.value("order"), (top or None)


def input_panels(ctx: Loaded, rows: tuple[int, int], marks: tuple, window: tuple[int, int] | None = None
                 ) -> list[dict | None]:
    """Input strips of A and B: one row per feature, each feature on its own range over the
    sequence's drawn steps (its 2nd to 98th percentile: a feature running 0-6,557 is as readable as
    one running 0-1; darker = larger; the hover shows the real value); for token data the words,
    one per step. ``window``: the (start, end) steps drawn."""
    from rnnviz_core.display import robust_range
    ds = ctx.data
    w0, w1 = (0, ds.X.shape[1]) if window is None else window
    if getattr(ds, "is_tokens", False):
        vocab = vocabulary(ctx)
        out = []
        for side, r in zip("AB", rows):
            ids = ds.X[r, w0: min(int(ds.lengths[r]), w1)].tolist()
            out.append(None if not ids else token_panel(
                ids_to_words(vocab, ids), title=f"{side}: words"))
        return out
    if ds.X.ndim != 3:
        return [None, None]
    feats = np.arange(ds.X.shape[2])[:MAX_STRIP_FEATURES]
    out = []
    for side, r, mk in zip("AB", rows, marks):
        n = min(int(ds.lengths[r]), w1) - w0
        if n < 1:
            out.append(None)
            continue
        x = ds.X[r, w0:w0 + n][:, feats].astype(np.float64)
        lo, hi = robust_range(x)
        more = f" (first {len(feats)} of {ds.X.shape[2]:,} features)" if ds.X.shape[2] > len(feats) else ""
        out.append(panel(np.clip((x - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0), n,
                         title=f"{side}: inputs{more}, each on its own range", domain=(0.0, 1.0),
                         labels=[ds.feature_names[f] for f in feats], raw=x,
                         marks=[m - w0 for m in (mk or ()) if w0 <= m < w0 + n], strip=True,
                         cell_h=8 if len(feats) > 4 else 12))
    return out


def play_view(src, H: np.ndarray, a: int, b: int, ids: list, kind: str, kind_label: str,
              order: str, top: int | None, key: tuple, window: tuple[int, int] | None = None) -> str:
    """The play control on A's and B's states (rows in the chosen unit order), over the steps
    ``window = (start, end)`` when given; returns its caption. ``src``: a source
    (:mod:`rnnviz_app.sources.source`); its inputs, when it has them, are drawn above the states,
    with the known steps."""
    from rnnviz_core.trajectories import unit_order
    lens = src.lengths
    ctx = src.input_view()
    units = compute(unit_order, H, lens, order=order, top=top, key=("unit_order",) + key)
    w0, w1 = (0, H.shape[1]) if window is None else window
    la, lb = max(1, min(int(lens[a]), w1) - w0), max(1, min(int(lens[b]), w1) - w0)
    sa, sb = H[a][w0:w0 + la][:, units], H[b][w0:w0 + lb][:, units]
    if kind in SIGMOID_KINDS:
        domain = (0.0, 1.0)
    else:
        domain = shared_domain(sa, sb, la, lb)
    marks = (None, None) if ctx is None else (true_steps(ctx, a), true_steps(ctx, b))
    known = [m or () for m in marks]
    return play_heatmaps(sa, sb, steps_a=la, steps_b=lb, colour_domain=domain, key="play_traj",
                         titles=(f"A: {ids[a]}", f"B: {ids[b]}"), labels=[f"unit {u}" for u in units],
                         strips=(None, None) if ctx is None else input_panels(ctx, (a, b), known, window), step0=w0,
                         marks=[[m - w0 for m in mk if w0 <= m < w1] for mk in known], legend=kind_label.lower(),
                         marks_legend="step the answer depends on (known for this demo)",
                         rows=f"unit of the {kind_label[0].lower() + kind_label[1:]}", n_units_total=H.shape[2])
