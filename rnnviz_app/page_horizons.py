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


def _horizon(model, X, lengths, sc, task, device):
    from rnnviz_core.horizons import horizon
    return horizon(model, X, lengths, scores=sc, task=task, device=device)


def horizon_frame(ctx: Loaded, sc, method: str):
    """rv.horizon of every loaded sequence with the page's scores ``sc`` of ``method`` (cached):
    one recurrence plus the output layer per prefix, whatever the sequences' length."""
    ds = ctx.data
    return compute(_horizon, ctx.model, ds.X, ds.lengths, sc, _task(ctx), ctx.device,
                   key=("horizon", method, ctx.target))


def _groups(frame, logits, y, class_names, task):
    from rnnviz_core.groups import assign_groups, sequence_table
    from rnnviz_core.horizons import compare_horizons
    table = sequence_table(logits, y, task=task, class_names=class_names)
    table["seq"] = frame["seq"].to_numpy()
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
    the smallest), or None without true values or with fewer than 2 sequences in a group."""
    from rnnviz_app.summary import predictions
    ds = ctx.data
    if ds.y is None:
        return None
    return compute(_groups, frame, np.asarray(predictions(ctx)), ds.y, ds.class_names, _task(ctx),
                   key=("horizon_groups", method, ctx.target))


def findings(ctx: Loaded, sc, method: str, a: int, b: int, names=("A", "B")) -> list[str]:
    """The horizon sentences for sequences ``a`` and ``b`` (rows) and the group comparison."""
    from rnnviz_app.sequences import words_of
    from rnnviz_core.charts.contributions import method_label
    from rnnviz_core.horizon_findings import horizon_group_findings, horizon_pair_findings, regression_tolerance
    frame = horizon_frame(ctx, sc, method)
    regression = _task(ctx) == "regression"
    tol = regression_tolerance(frame["final"].to_numpy()) if regression else None
    words = [words_of(ctx, a), words_of(ctx, b)] if ctx.data.is_tokens else None
    label = method_label(method)
    out = horizon_pair_findings(frame, [a, b], names, method_label=label, regression=regression, tol=tol,
                                words=words)
    out += horizon_group_findings(horizon_groups(ctx, frame, method), method_label=label)
    return out
