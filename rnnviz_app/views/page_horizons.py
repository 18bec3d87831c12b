"""Glue of the Contributions page's horizon findings: decision step and memory horizon of every
loaded sequence, from the scores the page already computed (no second attribution run), and the
correct-vs-wrong (regression: smallest vs largest error quarter) comparison of the Saturation
page's statistics. Every number comes from ``rnnviz_core``, cached by content hash."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from rnnviz_app.sources.context import Loaded
from rnnviz_app.state.compute import compute


def _task(ctx: Loaded) -> str:
    from rnnviz_app.views.summary import is_regression, predictions
    if is_regression(ctx):
        return "regression"
    out = np.asarray(predictions(ctx))
    return "binary" if out.reshape(len(out), -1).shape[1] == 1 else "classification"


#: the group comparison's prefix outputs cost at most this many prefix-steps (the sum over its
#: sequences of length²; evenly spaced sequences beyond it): a model that pools over the steps
#: reads every step again for each prefix, so a sequence of T steps costs up to T² (the long demo,
#: 480 steps, took 35 s on a loaded machine for 136 sequences under a linear budget)
GROUP_COST = 2_000_000


def group_rows(lengths) -> np.ndarray:
    """The rows the group comparison uses: all when their squared lengths add up to at most
    :data:`GROUP_COST`, else evenly spaced rows whose mean squared length fits that budget."""
    from rnnviz_core.arrays import budget_rows
    return budget_rows(np.asarray(lengths, dtype=np.int64).astype(np.float64) ** 2, GROUP_COST, minimum=4)


def _decisions(model, X, lengths, rows, task, tol, device):
    from rnnviz_core.horizons import horizon
    rows = np.asarray(rows)
    n, T = len(rows), X.shape[1]
    return horizon(model, X[rows], lengths[rows], scores=np.zeros((n, T)), task=task, tol=tol, ids=rows,
                   device=device)


def tolerance(ctx: Loaded) -> float | None:
    """Regression: the decision tolerance over every loaded sequence's final output (see
    :func:`rnnviz_core.horizon_findings.regression_tolerance`); None for classes."""
    from rnnviz_app.views.summary import predictions
    from rnnviz_core.horizon_findings import regression_tolerance
    return regression_tolerance(np.asarray(predictions(ctx))) if _task(ctx) == "regression" else None


def horizon_frame(ctx: Loaded, sc, method: str, rows) -> pd.DataFrame:
    """rv.horizon of the loaded sequences ``rows`` with the page's scores ``sc`` of ``method``:
    the decision steps (one recurrence plus the output layer per prefix) are cached per rows
    whatever the method; the horizons are a cumulative sum over ``sc``. ``seq`` holds the rows."""
    from rnnviz_app.state.compute import compute_status
    from rnnviz_core.horizons import horizons_from_scores
    ds = ctx.data
    rows = np.asarray(rows, dtype=np.int64)
    base = compute_status("Finding the step where each answer is decided…", _decisions, ctx.model, ds.X,
                          ds.lengths, rows, _task(ctx), tolerance(ctx), ctx.device,
                          key=("decisions", tuple(rows.tolist()) if len(rows) < 64 else (len(rows), int(rows.sum()))))
    hz = horizons_from_scores(np.asarray(sc)[rows], ds.lengths[rows])
    return base.assign(horizon_50=hz[:, 0], horizon_90=hz[:, 1], method=method)


def _groups(frame, logits, y, class_names, task):
    from rnnviz_core.groups import sequence_table
    rows = frame["seq"].to_numpy()
    table = sequence_table(np.asarray(logits)[rows], np.asarray(y)[rows], task=task, class_names=class_names)
    table["seq"] = rows
    return _compare(frame, table, task == "regression")


def _compare(frame, table, regression: bool):
    """Wrong vs correct (regression: largest vs smallest error quarter): the core's rule, shared
    with the bundle build (:func:`rnnviz_core.bundle_horizon_tables.compare_wrong_right`)."""
    from rnnviz_core.bundle_horizon_tables import compare_wrong_right
    return compare_wrong_right(frame, table, regression)


def horizon_groups(ctx: Loaded, frame, method: str):
    """compare_horizons of wrong vs correct sequences (regression: the largest error quarter vs
    the smallest) among ``frame``'s rows, or None without true values or with fewer than 2
    sequences in a group."""
    from rnnviz_app.views.summary import predictions
    ds = ctx.data
    if ds.y is None:
        return None
    return compute(_groups, frame, np.asarray(predictions(ctx)), ds.y, ds.class_names, _task(ctx),
                   key=("horizon_groups", method, ctx.target, len(frame), int(frame["seq"].sum())))


def findings(ctx: Loaded, sc, method: str, a: int, b: int, names=("A", "B")) -> list[str]:
    """The horizon sentences for sequences ``a`` and ``b`` (rows) and the group comparison (on
    :func:`group_rows`, said in a sentence when that is not every sequence)."""
    from rnnviz_app.sources.sequences import words_of
    from rnnviz_core.charts.contributions import method_label
    from rnnviz_core.horizon_findings import (
        horizon_group_findings,
        horizon_pair_findings,
    )
    ds = ctx.data
    regression = _task(ctx) == "regression"
    words = [words_of(ctx, a), words_of(ctx, b)] if ds.is_tokens else None
    label = method_label(method)
    rows = group_rows(ds.lengths)
    frame = horizon_frame(ctx, sc, method, rows)
    # A and B among the compared rows: their decision steps come from that one run (each prefix
    # rerun costs about the same for 2 rows as for 8: the recurrence's weights are read per step)
    pair = frame if {a, b} <= set(frame["seq"].tolist()) else horizon_frame(ctx, sc, method, [a, b])
    out = horizon_pair_findings(pair, [a, b], names, method_label=label, regression=regression,
                                tol=tolerance(ctx), words=words)
    groups = horizon_group_findings(horizon_groups(ctx, frame, method), method_label=label)
    if groups and len(rows) < len(ds.X):
        groups.append(f"These groups are compared on {len(rows)} evenly spaced sequences of the {len(ds.X)} loaded, "
                      f"to bound the cost at {int(ds.lengths.max())} steps.")
    return out + groups


# ----------------------------------------------------------------------------- bundles
def bundle_frames(b) -> tuple:
    """(horizon frame, sequence table, regression) of an opened bundle, read column by column
    (:func:`rnnviz_core.bundle_horizons.read`); the frame is None for a bundle built before the
    horizons were kept. The table holds ``seq`` and the grouping columns the comparison reads."""
    from rnnviz_core.bundle_horizons import read
    frame = read(b)
    shape = b.manifest.get("model", {}).get("output_shape") or [1]
    regression = int(np.prod(shape)) == 1
    if frame is None:
        return None, None, regression
    lazy = b.lazy()
    labelled = bool(b.manifest.get("data", {}).get("labelled"))
    from rnnviz_core.bundle_horizon_tables import table_columns
    cols = table_columns(regression, labelled)
    table = pd.DataFrame({"seq": frame["seq"].to_numpy(), **{c: lazy.column(c) for c in cols}})
    from rnnviz_core.bundle_read import categories_of
    # groups in the model's class order and outcomes as live
    return frame, categories_of(table, list(b.class_names or [])), regression


def bundle_tables(b) -> tuple | None:
    """(method, regression, n, grouping, summary, comparison or None) of the page's horizon
    section: the tables the bundle stored at build time (:mod:`rnnviz_core.bundle_horizon_tables`,
    a few numbers), else computed from every sequence's columns (a bundle built before they were
    kept); None for a bundle built before the horizons themselves were kept."""
    from rnnviz_core import bundle_horizon_tables as bht
    entry = b.manifest.get("analysis", {}).get("horizons")
    if not entry:
        return None
    shape = b.manifest.get("model", {}).get("output_shape") or [1]
    regression = int(np.prod(shape)) == 1
    method = entry.get("method") if isinstance(entry, dict) and isinstance(entry.get("method"), str) else None
    method = method if method in b.methods else "unknown"
    got = bht.stored(b)
    if got is None:
        frame, table, regression = bundle_frames(b)
        if frame is None:
            return None
        got = bht.section(frame, table, regression)
    return (method, regression, int(b.n_sequences)) + tuple(got)


@st.cache_data(max_entries=8, show_spinner=False)
def _cached_tables(dig: str, _b) -> tuple | None:
    """:func:`bundle_tables` cached under the bundle's hash (once per bundle, not per rerun)."""
    return bundle_tables(_b)


def _range(med: float, lo: float, hi: float) -> str:
    if not np.isfinite(med):
        return ""
    return f"{med:.3g} ({lo:.3g}–{hi:.3g})"


def summary_table(summary) -> pd.DataFrame:
    """:func:`rnnviz_core.horizons.horizon_summary` as a table people read: per group the median
    of each measure with its quartiles in brackets."""
    import pandas as pd
    names = {"decision_step": "Decision step", "steps_after_decision": "Steps held after the decision",
             "horizon_50": "Steps back holding 50% of the mass", "horizon_90": "Steps back holding 90% of the mass"}
    out = pd.DataFrame({"Group": summary["group"].astype(str).to_numpy(),
                        "Sequences": summary["size"].astype(int).to_numpy()})
    for m, name in names.items():
        out[name] = [_range(*v) for v in zip(summary[f"{m}_median"], summary[f"{m}_q25"], summary[f"{m}_q75"])]
    return out


def bundle_section(b, dig: str | None = None) -> None:
    """The bundle Contributions page's section on decision steps and memory horizons: per group
    (predicted class; all sequences for one output) their distribution, and wrong vs correct
    answers (regression: largest vs smallest error quarter) compared with the Saturation page's
    statistics, from the columns the bundle stored at build time."""
    import streamlit as st

    from rnnviz_app.views import messages as msg
    from rnnviz_app.views.text import md_escape
    from rnnviz_core.analyses.tables import comparison_table
    from rnnviz_core.charts.contributions import method_label
    from rnnviz_core.horizon_findings import horizon_group_findings

    st.subheader("When is the answer decided, and how far back does the model look?")
    with msg.section("The decision steps and memory horizons"):
        got = _cached_tables(dig, b) if dig is not None else bundle_tables(b)
        if got is None:
            st.info("This bundle was built before rnnviz kept each sequence's decision step and memory horizon; "
                    "build it again with this rnnviz (`rnnviz precompute`) to see them here.")
            return
        method, regression, n, by, summ, cmp = got
        label = method_label(method) if method in b.methods else "an unknown method"
        st.dataframe(summary_table(summ), hide_index=True, width="stretch")
        st.caption(f"One row per {'group' if by == 'all' else 'predicted class'} of all {n:,} sequences: the "
                   f"median of each measure with the middle half of its sequences (quartiles) in brackets. The "
                   f"decision step is the first step from which the answer on the prefix equals the final answer and "
                   f"stays; the horizons count the steps back from the last step that hold that share of the "
                   f"absolute {label} scores.")
        if cmp is None:
            st.caption("No comparison of right and wrong answers: the bundle's data has no true values, or a group "
                       "has fewer than 2 sequences.")
            return
        shown = comparison_table(cmp)
        st.dataframe(shown, hide_index=True, width="stretch")
        st.caption(shown.attrs.get("caption", ""))
        for sentence in horizon_group_findings(cmp, method_label=label):
            st.markdown(md_escape(sentence, max_len=1000))
