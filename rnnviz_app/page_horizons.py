"""Glue of the Contributions page's horizon findings: decision step and memory horizon of every
loaded sequence, from the scores the page already computed (no second attribution run), and the
correct-vs-wrong (regression: smallest vs largest error quarter) comparison of the Saturation
page's statistics. Every number comes from ``rnnviz_core``, cached by content hash."""
from __future__ import annotations

import numpy as np

from rnnviz_app.compute import compute
from rnnviz_app.context import Loaded


def _task(ctx: Loaded) -> str:
    from rnnviz_app.summary import is_regression, predictions
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
    from rnnviz_app.summary import predictions
    from rnnviz_core.horizon_findings import regression_tolerance
    return regression_tolerance(np.asarray(predictions(ctx))) if _task(ctx) == "regression" else None


def horizon_frame(ctx: Loaded, sc, method: str, rows) -> "pd.DataFrame":
    """rv.horizon of the loaded sequences ``rows`` with the page's scores ``sc`` of ``method``:
    the decision steps (one recurrence plus the output layer per prefix) are cached per rows
    whatever the method; the horizons are a cumulative sum over ``sc``. ``seq`` holds the rows."""
    from rnnviz_app.compute import compute_status
    from rnnviz_core.horizons import horizons_from_scores
    ds = ctx.data
    rows = np.asarray(rows, dtype=np.int64)
    base = compute_status("Finding the step where each answer is decided…", _decisions, ctx.model, ds.X,
                          ds.lengths, rows, _task(ctx), tolerance(ctx), ctx.device,
                          key=("decisions", tuple(rows.tolist()) if len(rows) < 64 else (len(rows), int(rows.sum()))))
    hz = horizons_from_scores(np.asarray(sc)[rows], ds.lengths[rows])
    return base.assign(horizon_50=hz[:, 0], horizon_90=hz[:, 1], method=method)


def _groups(frame, logits, y, class_names, task):
    from rnnviz_core.groups import assign_groups, sequence_table
    from rnnviz_core.horizons import compare_horizons
    rows = frame["seq"].to_numpy()
    table = sequence_table(np.asarray(logits)[rows], np.asarray(y)[rows], task=task, class_names=class_names)
    table["seq"] = rows
    if task == "regression":
        by = "error_size"
        groups = assign_groups(table, by)
        labels = groups.astype(str)
        cats = groups.cat.categories if hasattr(groups, "cat") else sorted(set(labels))
        order = [str(g) for g in cats if (labels == str(g)).sum() >= 2]  # smallest error first
        if len(order) < 2:
            return None
        a, b = order[-1], order[0]  # largest error vs smallest
    else:
        by, a, b = "correct", "wrong", "correct"
        labels = assign_groups(table, by).astype(str)
        if (labels == a).sum() < 2 or (labels == b).sum() < 2:
            return None
    return compare_horizons(frame, table, by, a, b)


def horizon_groups(ctx: Loaded, frame, method: str):
    """compare_horizons of wrong vs correct sequences (regression: the largest error quarter vs
    the smallest) among ``frame``'s rows, or None without true values or with fewer than 2
    sequences in a group."""
    from rnnviz_app.summary import predictions
    ds = ctx.data
    if ds.y is None:
        return None
    return compute(_groups, frame, np.asarray(predictions(ctx)), ds.y, ds.class_names, _task(ctx),
                   key=("horizon_groups", method, ctx.target, len(frame), int(frame["seq"].sum())))


def findings(ctx: Loaded, sc, method: str, a: int, b: int, names=("A", "B")) -> list[str]:
    """The horizon sentences for sequences ``a`` and ``b`` (rows) and the group comparison (on
    :func:`group_rows`, said in a sentence when that is not every sequence)."""
    from rnnviz_app.sequences import words_of
    from rnnviz_core.charts.contributions import method_label
    from rnnviz_core.horizon_findings import horizon_group_findings, horizon_pair_findings
    ds = ctx.data
    regression = _task(ctx) == "regression"
    words = [words_of(ctx, a), words_of(ctx, b)] if ds.is_tokens else None
    label = method_label(method)
    out = horizon_pair_findings(horizon_frame(ctx, sc, method, [a, b]), [a, b], names, method_label=label,
                                regression=regression, tol=tolerance(ctx), words=words)
    rows = group_rows(ds.lengths)
    groups = horizon_group_findings(horizon_groups(ctx, horizon_frame(ctx, sc, method, rows), method),
                                    method_label=label)
    if groups and len(rows) < len(ds.X):
        groups.append(f"These groups are compared on {len(rows)} evenly spaced sequences of the {len(ds.X)} loaded, "
                      f"to bound the cost at {int(ds.lengths.max())} steps.")
    return out + groups
