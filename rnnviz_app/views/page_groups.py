"""The Saturation page's controls and group comparison for any source (a live model or an
analysis bundle): the thresholds, the grouping and its two groups, saturation over time and the
comparison table (:func:`rnnviz_core.analyses.tables.comparison_table`, Benjamini–Hochberg
corrected p-values), each asked of the source. The live-only sections (value spread, per-unit
heatmaps, gates, resilience) stay in :mod:`rnnviz_app.views.page_saturation`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from rnnviz_app.state import state_url as su
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_saturation as ps

__all__ = ["Groups", "Settings", "comparison", "controls", "groups", "n_steps", "over_time"]


@dataclass
class Settings:
    """The thresholds and the states they apply to (``H`` None on a bundle: its shares are stored)."""
    layer: int
    direction: str
    thr: float
    low: float
    high: float
    gated: bool
    hint: Any = None
    H: Any = None


def controls(src) -> Settings:
    """Layer, direction and thresholds: widgets on a live source; on a bundle the values it was
    built with, said in its sentence."""
    if src.bundle:
        st.info(src.cannot("thresholds"))
        a = src.b.manifest["analysis"]
        return Settings(-1, "fwd", float(a["threshold"]), float(a["gate_low"]), float(a["gate_high"]), False)
    from rnnviz_app.sources import sequences as sq
    from rnnviz_app.state import compute as cp
    from rnnviz_core import saturation as sa
    ctx = src.ctx
    layers, dirs, kinds = msg.guarded(sq.layer_options, ctx)
    c4, c5, _ = st.columns([1, 1.4, 3.6])  # wide enough for "backward" and a two-digit layer
    c1, c2, c3 = st.columns([3, 2, 2])
    c4.selectbox("Layer", layers, key=su.widget_key("layer", layers[-1], layers, int))
    c5.selectbox("Direction", dirs, key=su.widget_key("dir", "fwd", dirs),
                 format_func={"fwd": "forward", "bwd": "backward"}.get)
    layer, direction = su.value("layer"), su.value("dir")
    H = msg.guarded(sq.states, ctx, "h", layer, direction)
    hint = msg.guarded(cp.compute, sa.suggest_threshold, H, ctx.data.lengths, key=("suggest", layer, direction))
    c1.slider("Saturated when |value| is at least", min_value=0.5, max_value=0.99, step=0.01,
              key=su.widget_key("thr", float(hint.threshold), cast=float, bounds=(0.5, 0.99)),
              help="Hidden states of GRU/LSTM/tanh units lie between -1 and 1. The start value shows something on "
                   "this model; the bars below show how the values are spread.")
    gated = bool(kinds.keys() - {"h", "c"})
    c2.slider("Gate nearly shut below", min_value=0.0, max_value=0.49, step=0.01, disabled=not gated,
              key=su.widget_key("shut", 0.1, cast=float, bounds=(0.0, 0.49)))
    c3.slider("Gate nearly open above", min_value=0.51, max_value=1.0, step=0.01, disabled=not gated,
              key=su.widget_key("open", 0.9, cast=float, bounds=(0.51, 1.0)))
    thr, low, high = su.value("thr"), su.value("shut"), su.value("open")
    if hint.message:
        st.info(pf.plain(hint.message))
    return Settings(layer, direction, thr, low, high, gated, hint, H)


@dataclass
class Groups:
    """The sequence table (one row per sequence), the grouping and the two groups chosen (a bundle
    whose build-time comparisons cover the grouping: no table and no labels, its sizes stored)."""
    table: pd.DataFrame | None
    by: str
    labels: pd.Series | None
    ga: str
    gb: str
    key: tuple

    @property
    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.labels == self.ga).to_numpy(), (self.labels == self.gb).to_numpy()


def _table(src, s: Settings) -> tuple[pd.DataFrame, dict]:
    if src.bundle:
        from rnnviz_app.sources import bundle_view as bv
        return None, bv.groupings(src.b)
    table = msg.guarded(ps.saturation_table, src.ctx, s.layer, s.direction, s.thr, s.low, s.high)
    return table, ps.groupings(src.ctx, table)


def groups(src, s: Settings) -> Groups:
    """The grouping and group A and B pickers (the same keys and link names on every source); stops
    the page with a sentence naming the control when the grouping makes one group only."""
    table, options = _table(src, s)
    if not options:
        st.info("These sequences hold no grouping to compare.")
        st.stop()
    if src.bundle:
        default = "correct" if "correct" in options else next(iter(options))
    else:
        default = ps.default_grouping(table, options)
    g1, g2, g3 = st.columns([2, 1, 1])
    g1.selectbox("Group the sequences by", list(options), format_func=options.get,
                 key=su.widget_key("by", default, list(options)))
    by = su.value("by")
    sizes = None
    if src.bundle:
        from rnnviz_app.sources import bundle_view as bv
        # the groups and their sizes from the build-time comparisons (no row read), else the
        # one-value columns of every sequence (never the per-step lists)
        sizes = src.b.group_sizes(bv.stored_grouping(src.b, by))
        if sizes is None:
            table = bv.group_table(src.b, by)
            labels = table["_group"].astype(str).reset_index(drop=True)
        else:
            table, labels = None, None
    else:
        labels = msg.guarded(ps.group_labels, table, by)
    present = list(sizes) if sizes is not None else list(dict.fromkeys(sorted(labels.unique(), key=str)))
    if len(present) < 2:
        st.warning(f"Grouping by '{pf.plain(options[by])}' puts every sequence in one group; choose another grouping "
                   "under 'Group the sequences by'" + ("." if src.bundle else " or move the thresholds."))
        st.stop()
    g2.selectbox("Group A", present, key=su.widget_key("ga", present[0], present))
    g3.selectbox("Group B", present, key=su.widget_key("gb", present[-1], present))
    ga, gb = su.value("ga"), su.value("gb")
    if ga == gb:
        st.warning("Group A and group B are the same group; choose another one under 'Group B'.")
    out = Groups(table, by, labels, ga, gb, (s.layer, s.direction, s.thr, s.low, s.high, by, ga, gb))
    na, nb = (sizes[ga], sizes[gb]) if sizes is not None else (int(m.sum()) for m in out.masks)
    st.caption(f"Grouped by {pf.plain(options[by])}. Group A: **{pf.plain(ga)}** ({na:,} sequences) · "
               f"Group B: **{pf.plain(gb)}** ({nb:,} sequences)")
    return out


def n_steps(src, g: Groups) -> int:
    """The longest sequence of group A and B (a bundle: its longest sequence)."""
    if src.bundle:
        return int(src.b.max_length)
    ma, mb = g.masks
    return int(np.asarray(src.ctx.data.lengths)[ma | mb].max())


def over_time(src, s: Settings, g: Groups) -> pd.DataFrame:
    """Share of units saturated at each step, per group (A and B only)."""
    from rnnviz_app.state import compute as cp
    from rnnviz_core import saturation as sa
    if src.bundle:
        from rnnviz_app.sources import bundle_view as bv
        over = src.b.saturation_over_time(bv.stored_grouping(src.b, g.by))
        return over[over["group"].astype(str).isin([g.ga, g.gb])].reset_index(drop=True)
    ma, mb = g.masks
    sub = g.labels.where(g.labels.isin([g.ga, g.gb]))
    # the groups' rows are read in place (a copy of their states cost seconds per rerun at 1,000 x 128)
    return cp.compute(sa.saturation_over_time, s.H, src.ctx.data.lengths, groups=sub.to_numpy(), threshold=s.thr,
                      rows=ma | mb, key=g.key)


def comparison(src, g: Groups) -> pd.DataFrame:
    """The two-group tests (:func:`rnnviz_app.views.page_saturation.compare`) of the outcome and
    saturation measures on the source's sequence table: the same measures, so the same
    Benjamini–Hochberg family and corrected p-values, on a live model and on its bundle (resilience,
    live only, is compared in its own table: :func:`rnnviz_app.views.page_saturation.resilience_section`).
    A bundle's comparison is the one stored at build time (:meth:`rnnviz_core.bundle.Bundle.group_comparison`)
    when it holds one for these groups, else computed from its lazily read columns."""
    from rnnviz_app.state import compute as cp
    if src.bundle:
        from rnnviz_app.sources import bundle_view as bv
        built = src.b.group_comparison(bv.stored_grouping(src.b, g.by), g.ga, g.gb)   # computed at build time
        if built is not None:
            return built
        table = g.table if g.table is not None else bv.group_table(src.b, g.by)
        return ps.compare(table, "_group", g.ga, g.gb)
    return cp.compute(ps.compare, g.table, g.by, g.ga, g.gb, key=g.key + ("cmp",))
