"""Glue of the Saturation page: the per-sequence table, groupings, group comparison,
resilience and gate summaries (every number from ``rnnviz_core``, cached by content hash)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from rnnviz_app.sources.context import Loaded
from rnnviz_app.sources.sequences import full_trace
from rnnviz_app.state.compute import compute, compute_status

BUILTIN_GROUPINGS = {"true_class": "True class", "predicted_class": "Predicted class",
                     "correct": "Correct vs wrong", "error_size": "Error size (quarters)",
                     "target_range": "True value (quarters)", "prediction_range": "Prediction (quarters)",
                     "saturation": "Saturation level"}
#: the column a grouping needs in the sequence table (regression groupings: see rnnviz_core.regression)
_NEEDS = {"correct": "outcome", "error_size": "abs_error", "target_range": "abs_error", "prediction_range": "pred"}


def _sat_table(tr, y, columns, class_names, layer, direction, threshold, low, high):
    from rnnviz_core.groups import sequence_table
    from rnnviz_core.saturation import trace_gates
    gates = trace_gates(tr, layer=layer, direction=direction) or None
    from rnnviz_app.views.summary import n_one
    # one logit with two classes is a binary classifier (class 1 when the logit is above 0), not a number
    task = "binary" if y is not None and class_names is not None and len(class_names) == 2 and n_one(tr.logits) \
        else "auto"
    return sequence_table(tr.logits, y, states=tr.get("h", layer=layer, direction=direction), lengths=tr.lengths,
                          gates=gates, columns=columns, class_names=class_names, threshold=threshold, low=low,
                          high=high, task=task)


def saturation_table(ctx: Loaded, layer: int, direction: str, threshold: float,
                     low: float, high: float):
    """One row per sequence: outcomes, saturation shares, dataset columns (cached)."""
    tr = full_trace(ctx)
    ds = ctx.data
    return compute(_sat_table, tr, ds.y, ds.groups, ds.class_names, layer, direction, threshold, low, high,
                   key=("sat_table", layer, direction, threshold, low, high))


def groupings(ctx: Loaded, table) -> dict:
    """Grouping choices available for this data: built-in ones plus dataset columns."""
    from rnnviz_core.regression import RANGE_GROUPINGS, is_regression_table
    regression = is_regression_table(table)
    out = {k: v for k, v in BUILTIN_GROUPINGS.items()
           if _NEEDS.get(k, k) in table.columns and (k in RANGE_GROUPINGS) == regression
           or (k == "saturation" and k in table.columns)}
    for col in getattr(ctx.data.groups, "columns", []):
        if col in table.columns or f"{col}_data" in table.columns:
            out[col if col in table.columns else f"{col}_data"] = f"Data column: {col}"
    return out


def default_grouping(table, options: dict) -> str:
    """The first grouping (correct vs wrong, then true class; for regression error size, true
    value, prediction; then the rest but saturation level, which would only compare saturation
    with itself) that splits the sequences into at least two groups; the first option when none
    does."""
    order = ("correct", "true_class", "error_size", "target_range", "prediction_range",
             *[k for k in options if k != "saturation"], "saturation")
    for k in order:
        if k in options and group_labels(table, k).nunique() >= 2:
            return k
    return next(iter(options))


def group_labels(table, by: str):
    """Group label per row of ``table`` under grouping ``by`` (strings)."""
    from rnnviz_core.groups import assign_groups
    return assign_groups(table, by).astype(str)


#: resilience re-runs the model once per damage condition on at most this much work per run (the
#: sum over the sequences used of length x the elements a step of the fused forward holds, as
#: rnnviz_core.trace sizes its batches): about a quarter of a second a run on this 2-core machine; beyond it,
#: evenly spaced sequences, said in a sentence under the table
RESILIENCE_WORK = 25_000_000


def resilience_rows(model, lengths) -> np.ndarray:
    """The rows the page's resilience sweep runs on (:func:`rnnviz_core.analyses.resilience.sweep_rows`
    within :data:`RESILIENCE_WORK`)."""
    from rnnviz_core.analyses.resilience import sweep_rows
    return sweep_rows(model, lengths, work=RESILIENCE_WORK)


def _resilience(model, X, lengths, device, rows=None, base_logits=None):
    from rnnviz_core.groups import resilience_sweep
    if rows is None:
        return resilience_sweep(model, X, lengths, device=device, base_logits=base_logits)
    rows = np.asarray(rows)
    base = None if base_logits is None else np.asarray(base_logits)[rows]
    out = resilience_sweep(model, X[rows], np.asarray(lengths)[rows], device=device, base_logits=base)
    out["seq"] = rows[out["seq"].to_numpy()]
    return out


def resilience_results(ctx: Loaded):
    """Output change per sequence under noise and missing steps (cached; one batched run each) on
    :func:`resilience_rows` (``.attrs["rows"]``: how many sequences were damaged)."""
    from rnnviz_app.views.summary import predictions
    rows = resilience_rows(ctx.model, ctx.data.lengths)
    every = len(rows) == len(ctx.data.X)
    res = compute_status("Damaging the inputs (noise, missing steps) and re-running the model…",
                         _resilience, ctx.model, ctx.data.X, ctx.data.lengths, key=("resilience", len(rows)),
                         device=ctx.device, rows=None if every else rows,
                         base_logits=np.asarray(predictions(ctx)))
    res.attrs["rows"] = len(rows)
    return res


def resilience_note(res, n: int) -> str | None:
    """The sentence under the comparison when resilience ran on fewer sequences than loaded."""
    k = int(res.attrs.get("rows", n)) if res is not None else n
    if k >= n:
        return None
    return (f"Output change under damage is measured on {k:,} evenly spaced sequences of the {n:,} loaded "
            "(each damage re-runs the model; this bounds the wait), so its rows compare those sequences only.")


def with_resilience(table, results):
    """``table`` plus one ``change: <condition>`` column per damage condition."""
    out = table.copy()
    for cond, part in results.groupby("condition", sort=False):
        out[f"change: {cond}"] = part.set_index("seq")["output_change"].reindex(out["seq"]).to_numpy()
    return out


def _distribution(tr, layer, direction, threshold, low, high, prefetch_key=None):
    if prefetch_key is not None:   # the default view, maybe computed in the background already
        from rnnviz_app.state import prefetch
        done = prefetch.result(prefetch_key)
        if done is not None and done[0] == (float(threshold), float(low), float(high)):
            return done[1]
    from rnnviz_core.saturation import trace_gates, value_distribution
    gates = trace_gates(tr, layer=layer, direction=direction) or None
    return value_distribution(tr.get("h", layer=layer, direction=direction), tr.lengths, gates=gates,
                              threshold=threshold, low=low, high=high)


def _distribution_key(ctx: Loaded, layer: int, direction: str) -> tuple:
    return ("value_dist", ctx.key, int(layer), str(direction))


def distribution(ctx: Loaded, layer: int, direction: str, threshold: float, low: float, high: float):
    """Histogram of |h| and of each gate's values (cached), with the shares at these limits."""
    return compute(_distribution, full_trace(ctx), layer, direction, threshold, low, high,
                   _distribution_key(ctx, layer, direction), key=("value_dist", layer, direction, threshold, low, high))


def prefetch_distribution(ctx: Loaded, tr) -> None:
    """Start the page's first view of the value spread (the last layer's forward states at the
    suggested threshold and the default gate limits) in the background, after the gates: the
    largest piece of a first Saturation visit at real sizes (about a second at 1,000 x 128)."""
    from rnnviz_app.state import prefetch
    from rnnviz_core.saturation import DEFAULT_HIGH, DEFAULT_LOW, suggest_threshold
    layer = tr.modules[-1].num_layers - 1
    key = _distribution_key(ctx, layer, "fwd")

    def job():
        try:
            tr.arrays   # after the gates (the trace's own thread computes them once)
        except Exception:  # noqa: BLE001 - the page says why when it needs them
            return None
        if not prefetch.claim(key).take():   # the page asked first and computes it itself
            return None
        thr = suggest_threshold(tr.get("h", layer=layer, direction="fwd"), tr.lengths).threshold
        limits = (float(thr), float(DEFAULT_LOW), float(DEFAULT_HIGH))
        return limits, _distribution(tr, layer, "fwd", *limits)

    prefetch.start(key, job, claimable=True)


def _gate_scatter(tr, layer, direction, mask, low, high):
    from rnnviz_core.saturation import gate_saturation, trace_gates
    # the group's rows are read in place (a copy of their gates cost about a second at 1,000 x 128)
    return gate_saturation(trace_gates(tr, layer=layer, direction=direction), tr.lengths, low=low, high=high,
                           rows=np.asarray(mask, dtype=bool))


def gate_scatter_data(ctx: Loaded, layer: int, direction: str, mask, low: float, high: float, key: tuple):
    """Per gate unit: share of steps nearly shut / nearly open, over the sequences in ``mask``."""
    return compute(_gate_scatter, full_trace(ctx), layer, direction, mask, low, high, key=("gates",) + key)


def compare(table, by: str, a: str, b: str):
    """Two-group tests on the outcome and saturation columns (and resilience columns
    ``change: <condition>`` when ``table`` has them; the page tests those on their own:
    :func:`compare_resilience`)."""
    from rnnviz_core.groups import compare_groups, metric_columns
    from rnnviz_core.regression import is_regression_table
    skip = ("output_change", "flipped") + (("loss", "confidence") if is_regression_table(table) else ())
    metrics = [m for m in metric_columns(table) if m not in skip]
    metrics += [c for c in table.columns if str(c).startswith("change: ")]
    return compare_groups(table, by, a, b, metrics=metrics)


def compare_resilience(table, by: str, a: str, b: str):
    """Two-group tests on the resilience columns (``change: <condition>``) only: one
    Benjamini–Hochberg family of its own."""
    from rnnviz_core.groups import compare_groups
    return compare_groups(table, by, a, b, metrics=[c for c in table.columns if str(c).startswith("change: ")])


def resilience_by_group(results, table, labels, a: str, b: str):
    """Resilience per damage condition for groups ``a`` and ``b`` only."""
    from rnnviz_core.groups import resilience_summary
    out = resilience_summary(results, table, labels)
    return out[out["group"].astype(str).isin([a, b])].reset_index(drop=True)


def shared_top(*unit_tables) -> float | None:
    """The highest share saturated over the per-unit tables drawn side by side (one colour scale
    for all, so shares of a few percent are not drawn blank on a 0-100% scale); None when nothing
    is saturated anywhere (the charts then keep their 0-100% scale and say so)."""
    import numpy as np
    vals = [float(np.nanmax(t["frac_saturated"].to_numpy(dtype=float))) for t in unit_tables
            if t is not None and len(t) and np.isfinite(t["frac_saturated"].to_numpy(dtype=float)).any()]
    top = max(vals, default=0.0)
    return top if top > 0 else None


# ----------------------------------------------------------------------------- live-only sections
def _show(build, *args, csv, name, key, **kw):
    import streamlit as st

    from rnnviz_app.views import widgets as wg
    st.caption(wg.chart(build, *args, key=key + (name,), **kw))
    wg.csv_button(csv, "Download the data of this view (CSV)", f"{name}.csv", f"dl_{name}")


def spread_section(ctx: Loaded, s) -> None:
    """The value spread under the thresholds (an expander, open when almost nothing saturates)."""
    import streamlit as st

    from rnnviz_app.views import messages as msg
    from rnnviz_app.views import widgets as wg
    from rnnviz_core.charts import saturation as sc
    with st.expander("How the values are spread (choose the thresholds by eye)", expanded=s.hint.share < 0.01):
        dist = msg.guarded(distribution, ctx, s.layer, s.direction, s.thr, s.low, s.high)
        st.caption(wg.chart(sc.distribution_chart, dist, threshold=s.thr, low=s.low if s.gated else None, width=235,
                            high=s.high if s.gated else None,
                            key=(s.layer, s.direction, s.thr, s.low, s.high, "dist")))


def unit_section(ctx: Loaded, s, g, window) -> None:
    """Per-unit saturation heatmaps of group A above group B, one colour scale and the same units."""
    import streamlit as st

    from rnnviz_app.state.compute import compute
    from rnnviz_app.views import widgets as wg
    from rnnviz_app.views.page_findings import plain
    from rnnviz_core import unit_saturation as us
    from rnnviz_core.charts import saturation as sc
    wkey = g.key + (window,)
    mask_a, mask_b = g.masks
    # [T, H] shares per group; only the drawn units' rows become a frame (all of them only for the CSV)
    shares = {side: compute(us.unit_saturation_shares, s.H, ctx.data.lengths, m, threshold=s.thr, key=g.key + (side,))
              for m, side in ((mask_a, "a"), (mask_b, "b"))}
    top = max((x.top or 0.0 for x in shares.values()), default=0.0) or None  # one colour scale, to the highest share
    n_steps = max(x.n_steps for x in shares.values())
    drawn = compute(us.shared_saturated_units, *shares.values(), n_steps=n_steps, window=window,
                    key=wkey + ("shared_units",))  # the same rows for A and B
    for grp, side in ((g.ga, "a"), (g.gb, "b")):
        st.markdown(f"**Group {side.upper()}: {plain(grp)}**")
        st.caption(wg.chart(sc.unit_saturation_chart, shares[side].frame(drawn), threshold=s.thr, width=550, top=top,
                            n_steps=n_steps, units=drawn, window=window,
                            height=max(120, min(320, 8 * len(drawn or [0]))), key=wkey + (f"units_{side}",)))
        wg.csv_button(shares[side].frame, "Download the data of this view (CSV)", f"units_{side}.csv",
                      f"dl_units_{side}")


def gate_section(ctx: Loaded, s, g) -> None:
    """Per gate unit: the share of steps nearly shut and nearly open, group A beside group B."""
    import streamlit as st

    from rnnviz_app.views import widgets as wg
    from rnnviz_app.views.page_findings import plain
    from rnnviz_core.charts import saturation as sc
    cols = st.columns(2)
    for col, grp, m, side in ((cols[0], g.ga, g.masks[0], "a"), (cols[1], g.gb, g.masks[1], "b")):
        with col, wg.section(f"Group {side.upper()}'s gate chart"):
            st.markdown(f"**Group {side.upper()}: {plain(grp)}**")
            gs = gate_scatter_data(ctx, s.layer, s.direction, m, s.low, s.high, key=g.key + (side,))
            _show(sc.gate_scatter_chart, gs, low=s.low, high=s.high, csv=gs, name=f"gates_{side}", key=g.key)


def resilience_section(ctx: Loaded, g, res) -> pd.DataFrame | None:
    """Resilience of group A and B: how many sequences were damaged, the output change per
    condition as a chart, and the two-group tests of the output change (their own table and
    Benjamini–Hochberg family, so the outcome and saturation table above reads the same on a live
    model and on its analysis bundle). Returns the comparison frame (None when it cannot be made)."""
    import streamlit as st

    from rnnviz_app.state.compute import compute
    from rnnviz_app.views import messages as msg
    from rnnviz_app.views import widgets as wg
    from rnnviz_core.analyses.tables import comparison_table
    from rnnviz_core.charts import saturation as sc
    note = resilience_note(res, len(ctx.data.X))
    if note:
        st.caption(note)
    rs = msg.guarded(compute, resilience_by_group, res, g.table, g.labels.to_numpy(), g.ga, g.gb, key=g.key + ("res",))
    _show(sc.resilience_chart, rs, width=520, csv=rs, name="resilience", key=g.key)
    with wg.section("The comparison under damage"):
        cmp = compute(compare_resilience, with_resilience(g.table, res), g.by, g.ga, g.gb, key=g.key + ("cmp_res",))
        shown = comparison_table(cmp)
        st.dataframe(shown, hide_index=True, width="stretch")
        st.caption(shown.attrs.get("caption", "") + " Output change: how much the answer moves when the input gets "
                   "noise or loses steps.")
        wg.csv_button(cmp, "Download the comparison under damage (CSV)", "comparison_damage.csv", "dl_cmp_res")
        return cmp
    return None
