"""Glue of the Trajectories page: the play control's panels (A's and B's states, their inputs,
the known steps) and the unit-order choice. Every number comes from ``rnnviz_core``."""
from __future__ import annotations

import numpy as np
import streamlit as st

from rnnviz_app import state_url as su
from rnnviz_app.compute import compute
from rnnviz_app.context import Loaded
from rnnviz_app.page_pair import true_steps
from rnnviz_app.play import panel, play_heatmaps, shared_domain, token_panel

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
    tops = [0] + [k for k in (8, 16, 32, 64) if k < n_units]
    c2.selectbox("Units shown", tops, format_func=lambda k: f"all {n_units}" if k == 0 else f"the {k} most active",
                 key=su.widget_key("top", 0, tops, int))
    top = su.value("top")
    return su.value("order"), (top or None)


def _feature_range(X: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from rnnviz_core.trajectories import valid_mask
    pts = X[valid_mask(lengths, X.shape[1])].astype(np.float64)  # (P, F)
    return np.nanmin(pts, axis=0), np.nanmax(pts, axis=0)


def input_panels(ctx: Loaded, rows: tuple[int, int], marks: tuple) -> list[dict | None]:
    """Input strips of A and B: one row per feature, each feature on its own range over the data
    (darker = larger; the hover shows the real value); for token data the words, one per step."""
    ds = ctx.data
    if getattr(ds, "is_tokens", False):
        vocab = getattr(ds, "vocabulary", None) or getattr(ctx.model, "vocabulary", None)
        return [token_panel([vocab[i] if vocab is not None and 0 <= i < len(vocab) else f"#{i}"
                             for i in ds.X[r, : int(ds.lengths[r])].tolist()], title=f"{side}: words")
                for side, r in zip("AB", rows)]
    if ds.X.ndim != 3:
        return [None, None]
    lo, hi = compute(_feature_range, ds.X, ds.lengths, key=("feature_range",))
    feats = np.arange(ds.X.shape[2])[:MAX_STRIP_FEATURES]
    span = np.where(hi - lo > 0, hi - lo, 1.0)[feats]
    out = []
    for side, r, mk in zip("AB", rows, marks):
        n = int(ds.lengths[r])
        x = ds.X[r, :n][:, feats].astype(np.float64)
        more = f" (first {len(feats)} of {ds.X.shape[2]} features)" if ds.X.shape[2] > len(feats) else ""
        out.append(panel((x - lo[feats]) / span, n, title=f"{side}: inputs{more}", domain=(0.0, 1.0),
                         labels=[ds.feature_names[f] for f in feats], raw=x, marks=mk or (), strip=True,
                         cell_h=8 if len(feats) > 4 else 12))
    return out


def play_view(ctx: Loaded, H: np.ndarray, a: int, b: int, ids: list, kind: str, kind_label: str,
              order: str, top: int | None, key: tuple) -> str:
    """The play control on A's and B's states (rows in the chosen unit order); returns its caption."""
    from rnnviz_core.trajectories import unit_order
    lens = ctx.data.lengths
    units = compute(unit_order, H, lens, order=order, top=top, key=("unit_order",) + key)
    la, lb = int(lens[a]), int(lens[b])
    sa, sb = H[a][:, units], H[b][:, units]
    if kind in SIGMOID_KINDS:
        domain = (0.0, 1.0)
    else:
        domain = shared_domain(sa, sb, la, lb)
    marks = (true_steps(ctx, a), true_steps(ctx, b))
    known = [m or () for m in marks]
    return play_heatmaps(sa, sb, steps_a=la, steps_b=lb, colour_domain=domain, key="play_traj",
                         titles=(f"A: {ids[a]}", f"B: {ids[b]}"), labels=[f"unit {u}" for u in units],
                         strips=input_panels(ctx, (a, b), known), marks=known, legend=kind_label.lower(),
                         marks_legend="step the answer depends on (known for this demo)",
                         rows=f"unit of the {kind_label[0].lower() + kind_label[1:]}")
