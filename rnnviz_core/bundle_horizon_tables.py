"""The bundle Contributions page's horizon tables, computed when the bundle is built (issue 21), so
that the page reads a few numbers instead of every sequence's decision step and horizons.

Two tables, as the page shows them on a live model:

* the summary (:func:`rnnviz_core.horizons.horizon_summary`): per predicted class (all sequences
  for a one-output model) the size and the mean, quartiles and median of each horizon metric;
* the comparison (:func:`rnnviz_core.horizons.compare_horizons`) of wrong vs correct answers (a
  one-output model: the largest-error quarter vs the smallest), when the data has true values and
  both groups hold at least 2 sequences.

Stored in ``aggregates.safetensors`` as ``hz.summary`` float64 [groups, 1 + 4 x 4] and
``hz.compare`` float64 [4 metrics, fields of :data:`rnnviz_core.bundle_compare.FIELDS`]; the
manifest's ``analysis.aggregates.horizon_tables`` names the grouping, its groups and the compared
pair. :func:`stored` gives back the frames those functions give.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: horizons.HORIZON_METRICS, written out so that opening a bundle does not import torch
METRICS = ("decision_step", "steps_after_decision", "horizon_50", "horizon_90")
STATS = ("mean", "q25", "median", "q75")
SUMMARY_FIELDS = ("size",) + tuple(f"{m}_{s}" for m in METRICS for s in STATS)


def compare_wrong_right(frame: pd.DataFrame, table: pd.DataFrame, regression: bool) -> pd.DataFrame | None:
    """compare_horizons of wrong vs correct answers (one output: the largest error quarter vs the
    smallest), or None when a group has fewer than 2 sequences."""
    from .groups import assign_groups
    from .horizons import compare_horizons

    if regression:
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


def section(frame: pd.DataFrame, table: pd.DataFrame, regression: bool) -> tuple[str, pd.DataFrame, Any]:
    """(grouping, summary, comparison or None) of the page's horizon section: the summary per
    predicted class ("all" for one output or without predicted classes), the comparison when the
    data has true values."""
    from .horizons import horizon_summary

    by = "all" if regression or "predicted_class" not in table else "predicted_class"
    summ = horizon_summary(frame, table, by=["all"] * len(frame) if by == "all" else by)
    summ["group"] = summ["group"].astype(str).to_numpy(dtype=object)   # labels as text, as stored
    has_truth = ("abs_error" if regression else "outcome") in table
    cmp = compare_wrong_right(frame, table, regression) if has_truth else None
    return by, summ, cmp


def table_columns(regression: bool, labelled: bool) -> list[str]:
    """The per-sequence columns the section's groupings read: a number model's predictions and
    (empty) confidences, which the error ranges check, and its errors; a classifier's predicted
    class and outcome (the outcome and the errors only with true values)."""
    if regression:
        return ["pred", "confidence"] + (["abs_error"] if labelled else [])
    return ["predicted_class"] + (["outcome"] if labelled else [])


def frames_from_table(per_seq: Any, class_names: Any, regression: bool, labelled: bool, method: str) -> tuple:
    """(horizon frame, sequence table) from ``per_seq``, an Arrow table of every sequence's
    ``row``, ``length``, horizon columns and :func:`table_columns` (a build's parts read once:
    :class:`rnnviz_core.bundle_build._AfterPass`), as the page reads them from an opened bundle
    (:func:`rnnviz_core.bundle_horizons.read` and the grouping columns)."""
    import pyarrow as pa

    from .bundle_read import categories_of

    cols = table_columns(regression, labelled)
    tbl = per_seq.select(["row", "length", *METRICS, *cols])
    rows = tbl["row"].to_numpy()
    if len(rows) and not (np.diff(rows) > 0).all():   # parts in row order already: both engines write them so
        tbl = tbl.take(pa.array(np.argsort(rows, kind="stable")))
    n = tbl.num_rows
    frame = pd.DataFrame({"seq": np.arange(n), "length": tbl["length"].to_numpy().astype(np.int64),
                          "decision_step": tbl["decision_step"].to_numpy().astype(np.int64),
                          "steps_after_decision": tbl["steps_after_decision"].to_numpy().astype(np.int64),
                          "horizon_50": tbl["horizon_50"].to_numpy(zero_copy_only=False).astype(np.float64),
                          "horizon_90": tbl["horizon_90"].to_numpy(zero_copy_only=False).astype(np.float64),
                          "method": method})
    table = pd.DataFrame({"seq": frame["seq"].to_numpy(),
                          **{c: tbl[c].to_pandas().to_numpy() for c in cols}})
    return frame, categories_of(table, list(class_names or []))


def _classifier_tables(per_seq: Any, class_names: Any, labelled: bool) -> tuple[dict, dict] | None:
    """:func:`compute` of a classifier's parts in numpy: what :func:`section` gives on the frames
    of :func:`frames_from_table` (the groups in the same order, the same statistics and the same
    comparison, :func:`rnnviz_core.analyses.compare.compare_values`), without the data frames,
    their joins and group-bys (about half the time at 1,000 sequences). None when a predicted class
    is missing or not among ``class_names`` (the frames then decide)."""
    from .analyses.compare import benjamini_hochberg, compare_values
    from .analyses.intervals import is_binary
    from .bundle_compare import FIELDS

    rows = per_seq["row"].to_numpy()
    order = np.argsort(rows, kind="stable") if len(rows) and not (np.diff(rows) > 0).all() else None

    def column(name: str) -> np.ndarray:
        v = per_seq[name].to_numpy(zero_copy_only=False)
        return v if order is None else v[order]

    pred = column("predicted_class")
    if any(v is None or v != v for v in set(pred.tolist())):
        return None
    present = set(pred.tolist())
    names = [str(c) for c in class_names] if class_names else None
    if names is not None and not present <= set(names):
        return None
    groups = [c for c in names if c in present] if names is not None else sorted(present)
    metrics = {m: column(m).astype(np.float64) for m in METRICS}
    summary = np.full((len(groups), len(SUMMARY_FIELDS)), np.nan)
    for k, g in enumerate(groups):   # horizon_summary's statistics: mean and quartiles of the values there
        sel = pred == g
        summary[k, 0] = int(sel.sum())
        for j, m in enumerate(METRICS):
            v = metrics[m][sel]
            v = v[~np.isnan(v)]
            if v.size:
                summary[k, 1 + 4 * j] = v.mean()
                summary[k, 2 + 4 * j: 5 + 4 * j] = np.quantile(v, [0.25, 0.5, 0.75])
    arrays = {"hz.summary": summary}
    entry: dict[str, Any] = {"by": "predicted_class", "groups": groups, "fields": list(SUMMARY_FIELDS),
                             "compare": None}
    if labelled and "outcome" in per_seq.column_names:
        outcome = column("outcome").astype(str)   # compare_wrong_right: wrong vs correct, each of >= 2
        in_a, in_b = outcome == "wrong", outcome == "correct"
        if in_a.sum() >= 2 and in_b.sum() >= 2:
            values = [(m, metrics[m], is_binary(metrics[m], per_seq[m].type.to_pandas_dtype())) for m in METRICS]
            got = compare_values(values, in_a, in_b, ("wrong", "correct"), "wrong", "correct", test="mann-whitney")
            table = np.asarray([[row[f] if f != "p_adjusted" else np.nan for f in FIELDS] for row in got],
                               dtype=np.float64)
            table[:, FIELDS.index("p_adjusted")] = benjamini_hochberg(table[:, FIELDS.index("p_value")].copy())
            arrays["hz.compare"] = table
            entry["compare"] = {"by": "correct", "a": "wrong", "b": "correct",
                                "binary": [row["test"] == "Fisher's exact" for row in got]}
    return arrays, entry


def compute(per_seq: Any, class_names: Any, regression: bool, labelled: bool, method: str) -> tuple[dict, dict]:
    """(arrays, manifest entry) of the horizon tables of a build's parts (``per_seq``: their
    per-sequence columns, :func:`frames_from_table`)."""
    from .bundle_compare import FIELDS

    if not regression and "predicted_class" in per_seq.column_names:
        fast = _classifier_tables(per_seq, class_names, labelled)
        if fast is not None:
            return fast
    frame, table = frames_from_table(per_seq, class_names, regression, labelled, method)
    by, summ, cmp = section(frame, table, regression)
    arrays = {"hz.summary": summ[list(SUMMARY_FIELDS)].to_numpy(dtype=np.float64)}
    entry: dict[str, Any] = {"by": by, "groups": [str(g) for g in summ["group"]], "fields": list(SUMMARY_FIELDS),
                             "compare": None}
    if cmp is not None:
        if list(cmp["metric"]) != list(METRICS):
            raise ValueError("compare_horizons gave other metrics than the horizon tables store")
        arrays["hz.compare"] = cmp[list(FIELDS)].to_numpy(dtype=np.float64)
        entry["compare"] = {"by": "error_size" if regression else "correct",
                            "a": str(cmp["group_a"].iloc[0]), "b": str(cmp["group_b"].iloc[0]),
                            "binary": [str(t) == "Fisher's exact" for t in cmp["test"]]}
    return arrays, entry


def expected(entry: Any, refuse) -> dict[str, tuple]:
    """The arrays the manifest's ``horizon_tables`` entry describes: name -> (dtype, shape)."""
    from .bundle_compare import FIELDS

    bad = refuse("Its manifest's description of the horizon tables is not one this rnnviz reads.")
    if not isinstance(entry, dict) or entry.get("by") not in ("all", "predicted_class") \
            or entry.get("fields") != list(SUMMARY_FIELDS) or not isinstance(entry.get("groups"), list) \
            or not 1 <= len(entry["groups"]) <= 100_000 \
            or not all(isinstance(g, str) and len(g) <= 1_000 for g in entry["groups"]):
        raise bad
    want = {"hz.summary": ("F64", (len(entry["groups"]), len(SUMMARY_FIELDS)))}
    c = entry.get("compare")
    if c is not None:
        if not isinstance(c, dict) or c.get("by") not in ("correct", "error_size") \
                or not all(isinstance(c.get(k), str) and len(c[k]) <= 1_000 for k in ("a", "b")) \
                or not isinstance(c.get("binary"), list) or len(c["binary"]) != len(METRICS) \
                or not all(isinstance(v, bool) for v in c["binary"]):
            raise bad
        want["hz.compare"] = ("F64", (len(METRICS), len(FIELDS)))
    return want


def stored(bundle: Any) -> tuple[str, pd.DataFrame, Any] | None:
    """(grouping, summary, comparison or None) as :func:`section` gives them, from the bundle's
    build-time tables; None for a bundle built before they were kept."""
    from .bundle_aggregates import FILE
    from .bundle_compare import FIELDS

    entry = (bundle.manifest.get("analysis", {}).get("aggregates") or {}).get("horizon_tables")
    if not isinstance(entry, dict):
        return None
    arrays = bundle._arrays(FILE)
    summ = pd.DataFrame(arrays["hz.summary"], columns=list(SUMMARY_FIELDS))
    summ["size"] = summ["size"].astype(np.int64)
    summ.insert(0, "group", list(entry["groups"]))
    c = entry.get("compare")
    cmp = None
    if c is not None:
        cmp = pd.DataFrame(arrays["hz.compare"], columns=list(FIELDS))
        for col in ("n_a", "n_b"):
            cmp[col] = cmp[col].astype(np.int64)
        cmp.insert(0, "metric", list(METRICS))
        cmp.insert(1, "group_a", c["a"])
        cmp.insert(2, "group_b", c["b"])
        cmp.insert(cmp.columns.get_loc("statistic"), "test",
                   ["Fisher's exact" if v else "Mann-Whitney U" for v in c["binary"]])
        cmp["effect_name"] = ["Cohen's h" if v else "rank-biserial r" for v in c["binary"]]
    return entry["by"], summ, cmp
