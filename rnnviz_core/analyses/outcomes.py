"""Groups of sequences: outcomes per sequence, the sequence table, groupings and group summaries.
(Intervals: :mod:`.intervals`; tests between groups: :mod:`.compare`; resilience:
:mod:`.resilience`; two models: :mod:`.reproducibility`; tables people read: :mod:`.tables`. The
old path ``rnnviz_core.groups`` re-exports them all.)

The flow a page (or a notebook) follows::

    table = sequence_table(tr, y, columns=ds.groups)      # one row per sequence
    summary = group_summary(table, by="saturation")        # one row per group
    tests = compare_groups(table, "saturation", "fully saturated", "not saturated")
    res = resilience(model, x, lengths, kind="missing", fraction=0.2, position="early")
    by_group = group_summary(table.merge(res, on="seq"), by="correct")

Conventions
-----------
* **Task.** ``task="auto"`` treats a 2-D output with at least 2 columns as classification
  (softmax over classes) and anything else ([N] or [N, 1]) as regression. Pass
  ``task="binary"`` for a single-logit binary classifier (sigmoid), or ``task="regression"``
  for multi-output regression.
* **Loss.** Classification: cross-entropy in nats, ``-log p(true class)``. Binary: the same with
  the sigmoid probability. Regression: squared error (mean over outputs).
* **Confidence.** The probability of the predicted class (NaN for regression).
* **Saturation level** of a sequence, from the share ``f`` of its unit-steps that are saturated
  (|h| >= threshold, see :mod:`rnnviz_core.saturation`): ``"not saturated"`` when
  ``f < levels[0]``, ``"partly saturated"`` when ``levels[0] <= f < levels[1]``, and
  ``"fully saturated"`` when ``f >= levels[1]``; default ``levels = (0.1, 0.5)``: "fully" means
  at least half of the sequence's unit-steps sit at their limits.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from ..arrays import to_numpy
from ..errors import InputError
from .regression import RANGE_GROUPINGS, range_groups
from ..saturation import DEFAULT_HIGH, DEFAULT_LOW, DEFAULT_THRESHOLD
from .intervals import interval_of, is_binary, mean_cis, share_ci

SATURATION_LEVELS = ("not saturated", "partly saturated", "fully saturated")
#: built-in groupings accepted by ``by=`` (any other value names a column of the table)
GROUPINGS = ("true_class", "predicted_class", "correct", "saturation", "error_size", "target_range",
             "prediction_range")

_TASKS = ("auto", "classification", "binary", "regression")


# ----------------------------------------------------------------------------- outcomes
def resolve_task(logits: np.ndarray, task: str) -> str:
    if task not in _TASKS:
        raise InputError(f"task must be one of {', '.join(_TASKS)}; got {task!r}.")
    if task != "auto":
        if task == "classification" and (logits.ndim != 2 or logits.shape[1] < 2):
            raise InputError("task='classification' needs logits shaped [N, C] with C >= 2; "
                             "use task='binary' for a single-logit classifier.")
        if task == "binary" and _n_outputs(logits) != 1:
            raise InputError("task='binary' needs one logit per sequence ([N] or [N, 1]); "
                             "use task='classification' for [N, C] logits.")
        return task
    return "classification" if logits.ndim == 2 and logits.shape[1] >= 2 else "regression"


def _n_outputs(arr: np.ndarray) -> int:
    return 1 if arr.ndim == 1 else arr.shape[1]


def logits_array(logits: Any) -> np.ndarray:
    if hasattr(logits, "logits") and not isinstance(logits, np.ndarray):
        logits = logits.logits
    arr = to_numpy(logits, "logits").astype(np.float64)
    if arr.ndim == 0 or arr.ndim > 2 or arr.shape[0] == 0:
        raise InputError(f"logits must be shaped [N], [N, 1] or [N, C]; got {arr.shape}.")
    return arr


def class_probabilities(arr: np.ndarray, task: str) -> np.ndarray | None:
    """Class probabilities [N, C] (binary: [N, 2]); None for regression. Computed from the log
    probabilities (:func:`_log_probs`), so no finite logit overflows."""
    if task in ("classification", "binary"):
        return np.exp(_log_probs(arr, task))
    return None


def _log_probs(arr: np.ndarray, task: str) -> np.ndarray:
    """Log class probabilities [N, C] (binary: [N, 2]) computed in log space, so a confidently
    wrong answer gets its true loss (a logit margin of 1e4 costs 1e4 nats, not a capped 690).
    (numpy, as scipy.special's log_softmax / log_expit compute them: the largest logit taken out
    first; importing scipy cost more than the whole table on a block of a bundle build.)"""
    a = np.asarray(arr, dtype=np.float64)
    if task == "classification":
        top = np.max(a, axis=1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        shifted = a - top
        return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    z = a.reshape(a.shape[0], -1)[:, 0]
    return np.stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)], axis=1)   # log expit(-z), log expit(z)


def sequence_outcomes(logits: Any, y: Any = None, *, task: str = "auto", ids: Any = None) -> pd.DataFrame:
    """One row per sequence: what the model said and how right it was.

    Parameters
    ----------
    logits : the model's output ([N, C], [N] or [N, 1]) or a Trace (its ``logits``).
    y : true labels (class indices) or targets; None leaves ``correct`` and ``loss`` out.

    Returns
    -------
    frame with ``seq``, ``pred`` (class index, or the output for single-output regression),
    ``confidence`` (probability of the predicted class; NaN for regression), and with ``y``:
    ``true``, ``correct`` (bool; NaN for regression) and ``loss`` (see module docs); for
    regression also ``abs_error``, the mean absolute distance from the true value(s).
    """
    arr = logits_array(logits)
    n = arr.shape[0]
    task = resolve_task(arr, task)
    seq = np.arange(n) if ids is None else np.asarray(ids)
    return pd.DataFrame({"seq": seq, **outcome_columns(arr, y, task)})


def outcome_columns(arr: np.ndarray, y: Any, task: str) -> dict[str, np.ndarray]:
    """The columns of :func:`sequence_outcomes` but ``seq``, as arrays (``arr`` from
    :func:`logits_array`, ``task`` resolved): the bundle build writes them without a table."""
    n = arr.shape[0]
    cols: dict[str, np.ndarray] = {}
    probs = class_probabilities(arr, task)
    if probs is not None:
        pred = probs.argmax(axis=1)
        cols["pred"] = pred
        cols["confidence"] = probs.max(axis=1)
    else:
        out = arr.reshape(n, -1)
        cols["pred"] = out[:, 0] if out.shape[1] == 1 else np.full(n, np.nan)
        cols["confidence"] = np.full(n, np.nan)
    if y is None:
        return cols
    yy = to_numpy(y, "y")
    if yy.shape[0] != n:
        raise InputError(f"y holds {yy.shape[0]} values but there are {n} sequences.")
    if probs is not None:
        yi = yy.reshape(-1)
        if yi.shape[0] != n or not np.all(np.isfinite(yi.astype(float))) or not np.all(yi == np.round(yi)):
            raise InputError("For classification, y must hold one class index per sequence.")
        yi = yi.astype(np.int64)
        if yi.min() < 0 or yi.max() >= probs.shape[1]:
            raise InputError(f"Class indices in y must run from 0 to {probs.shape[1] - 1}.")
        cols["true"] = yi
        cols["correct"] = pred == yi
        cols["loss"] = -_log_probs(arr, task)[np.arange(n), yi]
    else:
        out = arr.reshape(n, -1)
        target = yy.astype(np.float64).reshape(n, -1)
        if target.shape[1] != out.shape[1]:
            raise InputError(f"y has {target.shape[1]} targets per sequence but the model gives {out.shape[1]}.")
        cols["true"] = target[:, 0] if target.shape[1] == 1 else np.full(n, np.nan)
        cols["correct"] = np.full(n, np.nan)
        cols["loss"] = ((out - target) ** 2).mean(axis=1)
        cols["abs_error"] = np.abs(out - target).mean(axis=1)
    return cols


def saturation_levels(frac_saturated: Any, levels: Sequence[float] = (0.1, 0.5)) -> pd.Categorical:
    """Map per-sequence saturated shares to "not" / "partly" / "fully saturated" (see module docs)."""
    return pd.Categorical.from_codes(_level_codes(frac_saturated, levels), categories=list(SATURATION_LEVELS),
                                     ordered=True)


def _level_codes(frac_saturated: Any, levels: Sequence[float]) -> np.ndarray:
    lo, hi = _check_levels(levels)
    f = np.asarray(frac_saturated, dtype=np.float64)
    return np.where(f >= hi, 2, np.where(f >= lo, 1, 0))


class Coded(NamedTuple):
    """A named column as :func:`sequence_columns` gives it with ``coded=True``: each row's code
    into ``categories`` (-1: missing), what a ``pandas.Categorical`` holds, without making one
    (about 0.3-0.7 ms each; the bundle build writes the names as text)."""
    codes: np.ndarray
    categories: list


def _check_levels(levels: Sequence[float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in levels)
    except (TypeError, ValueError):
        raise InputError(f"levels must be two numbers (partly, fully); got {levels!r}.") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise InputError(f"levels need 0 <= partly < fully <= 1; got {levels!r}.")
    return lo, hi


def sequence_table(
    logits: Any,
    y: Any = None,
    *,
    states: Any = None,
    lengths: Any = None,
    gates: Any = None,
    columns: pd.DataFrame | Mapping[str, Any] | None = None,
    task: str = "auto",
    class_names: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    levels: Sequence[float] = (0.1, 0.5),
    ids: Any = None,
    low: float = DEFAULT_LOW,
    high: float = DEFAULT_HIGH,
) -> pd.DataFrame:
    """One row per sequence joining outcomes, saturation and dataset columns — the table every
    grouping, summary and test reads.

    Parameters
    ----------
    logits : model output, or a Trace (then ``states``, ``lengths`` and the trace's sigmoid gates
        default to the trace's).
    y : true labels/targets (optional).
    states, lengths, gates : as in :func:`rnnviz_core.saturation.saturation_by_sequence`.
    columns : per-sequence extra columns (e.g. ``SequenceDataset.groups``), N rows in order;
        names that clash with the table's get a ``_data`` suffix.
    class_names : turns class indices into names in ``true_class`` / ``predicted_class``.
    threshold, low, high : the saturation thresholds (|h| >= threshold; a gate below ``low`` or
        above ``high``), as in :func:`rnnviz_core.saturation.saturation_by_sequence`.
    levels : the ``frac_saturated`` cut points of the ``saturation`` level.

    Returns
    -------
    frame with the columns of :func:`sequence_outcomes`, ``true_class``/``predicted_class``
    (classification), ``outcome`` ("correct"/"wrong"), and with states: ``length``,
    ``frac_saturated``, ``frac_saturated_final``, per-gate ``{g}_left``/``{g}_right`` and
    ``saturation`` (the level).
    """
    is_trace = hasattr(logits, "hidden") and hasattr(logits, "logits")
    if is_trace and states is None:
        states = logits
    cols = sequence_columns(logits, y, states=states, lengths=lengths, gates=gates, task=task,
                            class_names=class_names, threshold=threshold, levels=levels, low=low, high=high)
    n = len(cols["pred"])
    table = pd.DataFrame({"seq": np.arange(n) if ids is None else np.asarray(ids), **cols})
    if columns is not None:
        extra = pd.DataFrame(columns).reset_index(drop=True)
        if len(extra) != n:
            raise InputError(f"columns has {len(extra)} rows but there are {n} sequences.")
        for col in extra.columns:
            name = f"{col}_data" if col in table.columns else col
            table[name] = extra[col].to_numpy()
    return table


def sequence_columns(logits: Any, y: Any = None, *, states: Any = None, lengths: Any = None, gates: Any = None,
                     task: str = "auto", class_names: Sequence[str] | None = None,
                     threshold: float = DEFAULT_THRESHOLD, levels: Sequence[float] = (0.1, 0.5),
                     low: float = DEFAULT_LOW, high: float = DEFAULT_HIGH, counts: list | None = None,
                     coded: bool = False) -> dict:
    """The columns of :func:`sequence_table` before ``seq`` and the dataset's columns, in its order,
    as arrays (``pandas.Categorical`` for the named ones, or :class:`Coded` with ``coded``): the
    bundle build writes them straight to its parts, without a table. ``counts``: a list that
    receives the per-step count of saturated units (int64 [N, T]) when states are given."""
    from ..saturation import saturation_columns, trace_gates

    arr = logits_array(logits)
    cols = outcome_columns(arr, y, resolve_task(arr, task))
    n = arr.shape[0]
    if not np.isnan(cols["confidence"]).any():   # class probabilities
        names = None if class_names is None else list(class_names)

        def name_of(idx: np.ndarray) -> Any:
            if names is None:   # the class numbers as text (one str per class, not per sequence)
                numbers = [str(i) for i in range(int(idx.max(initial=-1)) + 1)]
                return Coded(idx, numbers) if coded else np.asarray(numbers, dtype=object)[idx]
            if idx.max() >= len(names):
                raise InputError(f"class_names has {len(names)} names but the model has more classes.")
            if len(set(names)) != len(names):
                raise InputError("class_names names a class twice; give each class its own name.")
            return Coded(idx, names) if coded else pd.Categorical.from_codes(idx, categories=names)

        cols["predicted_class"] = name_of(cols["pred"])
        if "true" in cols:
            cols["true_class"] = name_of(cols["true"])
            right_wrong = np.where(cols["correct"], 0, 1)
            cols["outcome"] = Coded(right_wrong, ["correct", "wrong"]) if coded else \
                pd.Categorical.from_codes(right_wrong, categories=["correct", "wrong"])
    if states is not None:
        if gates is None and hasattr(states, "gate_kinds"):
            gates = trace_gates(states) or None
        sat, per_step = saturation_columns(states, lengths, gates=gates, threshold=threshold, low=low, high=high)
        if len(sat["length"]) != n:
            raise InputError(f"states hold {len(sat['length'])} sequences but logits hold {n}; pass both from one run.")
        cols.update(sat)
        cols["saturation"] = Coded(_level_codes(cols["frac_saturated"], levels), list(SATURATION_LEVELS)) if coded \
            else saturation_levels(cols["frac_saturated"], levels)
        if counts is not None:
            counts.append(per_step)
    return cols


# ----------------------------------------------------------------------------- grouping
def assign_groups(table: pd.DataFrame, by: str | Sequence[Any] | pd.Series, *, bins: int | None = None) -> pd.Series:
    """Group label per sequence (a Series aligned with ``table``).

    ``by`` is one of ``"true_class"``, ``"predicted_class"``, ``"correct"`` (correct vs wrong),
    ``"saturation"`` (the level), a column of ``table`` (any dataset column), or an array of
    labels. A numeric column with more than 10 distinct values is cut into ``bins`` equal-count
    bins (default 4, quartiles; labelled "low to high", lower edge excluded) so that groups stay
    large enough to compare.
    """
    if not isinstance(by, str):
        lab = pd.Series(np.asarray(by, dtype=object), index=table.index, name="group") \
            if not isinstance(by, pd.Series) else by.set_axis(table.index).rename("group")
        if len(lab) != len(table):
            raise InputError(f"by holds {len(lab)} labels but the table has {len(table)} sequences.")
        return lab
    if by in RANGE_GROUPINGS:
        return range_groups(table, by, bins)
    col = {"correct": "outcome"}.get(by, by)
    if col not in table.columns:
        need = {"true_class": "y (true labels) for a classifier", "outcome": "y (true labels) for a classifier",
                "predicted_class": "a classifier's logits", "saturation": "the states"}
        hint = need.get(col)
        raise InputError(
            f"Cannot group by {by!r}: " + (f"it needs {hint}." if hint else
                                          f"no such column; choose one of {', '.join(map(str, table.columns))}.")
        )
    s = table[col]
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique() > 10:
        q = 4 if bins is None else int(bins)
        if q < 2:
            raise InputError("bins must be at least 2.")
        s = pd.qcut(s, q=q, duplicates="drop")
        s = s.cat.rename_categories([f"{iv.left:.4g} to {iv.right:.4g}" for iv in s.cat.categories])
    return s.rename("group")


def metric_columns(table: pd.DataFrame) -> list[str]:
    known = ["correct", "abs_error", "loss", "confidence", "frac_saturated", "frac_saturated_final",
             "output_change", "flipped"]
    return [c for c in known if c in table.columns and table[c].notna().any()]


def group_summary(table: pd.DataFrame, by: str | Sequence[Any] | pd.Series = "saturation", *,
                  bins: int | None = None) -> pd.DataFrame:
    """One row per group: ``size``, ``share`` of all sequences, ``accuracy``, ``mean_loss``,
    ``mean_confidence``, saturation statistics (``sat_mean``, ``sat_median``,
    ``sat_final_mean``, ``share_fully_saturated``) and, when the table carries resilience
    results, ``mean_output_change`` and ``flip_rate``. Columns whose inputs are missing are left
    out. Groups are in their natural (categorical or sorted) order.

    Every mean and share has a 95% interval in ``{name}_low`` / ``{name}_high``: a binomial
    interval (Clopper-Pearson, as ``scipy.stats.binomtest(...).proportion_ci``) for shares of a 0/1 outcome
    (accuracy, flip rate, share fully saturated), a percentile bootstrap of the mean
    (``scipy.stats.bootstrap``) for the others."""
    g = assign_groups(table, by, bins=bins)
    df = table.assign(_g=g.values)  # keeps categorical order (levels, bins)
    grouped = df.groupby("_g", observed=True, sort=True, dropna=False)
    out = pd.DataFrame({"size": grouped.size()})
    out["share"] = out["size"] / len(df)
    spec = [("correct", "accuracy", "mean"), ("abs_error", "mean_abs_error", "mean"), ("loss", "mean_loss", "mean"),
            ("confidence", "mean_confidence", "mean"), ("frac_saturated", "sat_mean", "mean"),
            ("frac_saturated", "sat_median", "median"), ("frac_saturated_final", "sat_final_mean", "mean"),
            ("output_change", "mean_output_change", "mean"), ("flipped", "flip_rate", "mean")]
    present = set(metric_columns(df))
    intervals: dict[str, tuple[list[float], list[float]]] = {}
    boot: list[tuple[str, str]] = []  # (column, name) of the means whose intervals are bootstrapped together
    for col, name, how in spec:
        if col in present:
            out[name] = grouped[col].agg(lambda s, how=how: getattr(pd.to_numeric(s, errors="coerce"), how)())
            if how == "mean":
                binary = is_binary(pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64), df[col].dtype)
                if binary:
                    cis = [interval_of(pd.to_numeric(grp[col], errors="coerce").to_numpy(dtype=np.float64), True)
                           for _, grp in grouped]
                    intervals[name] = ([c[0] for c in cis], [c[1] for c in cis])
                else:
                    boot.append((col, name))
    if boot:
        per_group = [mean_cis(np.stack([pd.to_numeric(grp[c], errors="coerce").to_numpy(dtype=np.float64)
                                         for c, _ in boot]), i) for i, (_, grp) in enumerate(grouped)]
        for j, (_, name) in enumerate(boot):
            intervals[name] = ([g[j][0] for g in per_group], [g[j][1] for g in per_group])
    if "saturation" in df.columns:
        out["share_fully_saturated"] = grouped["saturation"].agg(lambda s: float((s == SATURATION_LEVELS[2]).mean()))
        cis = [share_ci(int((grp["saturation"] == SATURATION_LEVELS[2]).sum()), len(grp)) for _, grp in grouped]
        intervals["share_fully_saturated"] = ([c[0] for c in cis], [c[1] for c in cis])
    for name, (low, high) in intervals.items():
        out[f"{name}_low"] = low
        out[f"{name}_high"] = high
    out.index.name = "group"
    return out.reset_index()
