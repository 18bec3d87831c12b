"""Groups of sequences and what saturation costs: outcomes, group statistics, resilience,
reproducibility.

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

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .regression import RANGE_GROUPINGS, is_regression_table, range_groups
from .arrays import as_states, check_lengths, to_numpy, valid_mask
from .saturation import (
    DEFAULT_THRESHOLD, check_threshold, group_time_mean, per_step_fraction, saturation_by_sequence,
)

__all__ = [
    "SATURATION_LEVELS", "GROUPINGS", "RANGE_GROUPINGS", "is_regression_table",
    "sequence_outcomes", "saturation_levels", "sequence_table", "assign_groups",
    "group_summary", "compare_groups",
    "perturb_inputs", "resilience", "resilience_sweep", "resilience_summary",
    "reproducibility", "compare_models",
    "METRIC_NAMES", "format_p", "effect_words", "comparison_table", "summary_table", "reproducibility_table",
    "resilience_table",
]

SATURATION_LEVELS = ("not saturated", "partly saturated", "fully saturated")
#: built-in groupings accepted by ``by=`` (any other value names a column of the table)
GROUPINGS = ("true_class", "predicted_class", "correct", "saturation", "error_size", "target_range",
             "prediction_range")

_TASKS = ("auto", "classification", "binary", "regression")


# ----------------------------------------------------------------------------- outcomes
def _resolve_task(logits: np.ndarray, task: str) -> str:
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


def _logits_array(logits: Any) -> np.ndarray:
    if hasattr(logits, "logits") and not isinstance(logits, np.ndarray):
        logits = logits.logits
    arr = to_numpy(logits, "logits").astype(np.float64)
    if arr.ndim == 0 or arr.ndim > 2 or arr.shape[0] == 0:
        raise InputError(f"logits must be shaped [N], [N, 1] or [N, C]; got {arr.shape}.")
    return arr


def _probs(arr: np.ndarray, task: str) -> np.ndarray | None:
    """Class probabilities [N, C] (binary: [N, 2]); None for regression (``scipy.special``:
    no overflow for any finite logit)."""
    from scipy.special import expit, softmax

    if task == "classification":
        return softmax(arr, axis=1)
    if task == "binary":
        z = arr.reshape(arr.shape[0], -1)[:, 0]
        return np.stack([expit(-z), expit(z)], axis=1)
    return None


def _log_probs(arr: np.ndarray, task: str) -> np.ndarray:
    """Log class probabilities [N, C] (binary: [N, 2]) computed in log space, so a confidently
    wrong answer gets its true loss (a logit margin of 1e4 costs 1e4 nats, not a capped 690)."""
    from scipy.special import log_expit, log_softmax

    if task == "classification":
        return log_softmax(arr, axis=1)
    z = arr.reshape(arr.shape[0], -1)[:, 0]
    return np.stack([log_expit(-z), log_expit(z)], axis=1)


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
    arr = _logits_array(logits)
    n = arr.shape[0]
    task = _resolve_task(arr, task)
    seq = np.arange(n) if ids is None else np.asarray(ids)
    frame = pd.DataFrame({"seq": seq})
    probs = _probs(arr, task)
    if probs is not None:
        pred = probs.argmax(axis=1)
        frame["pred"] = pred
        frame["confidence"] = probs.max(axis=1)
    else:
        out = arr.reshape(n, -1)
        frame["pred"] = out[:, 0] if out.shape[1] == 1 else np.nan
        frame["confidence"] = np.nan
    if y is None:
        return frame
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
        frame["true"] = yi
        frame["correct"] = pred == yi
        frame["loss"] = -_log_probs(arr, task)[np.arange(n), yi]
    else:
        out = arr.reshape(n, -1)
        target = yy.astype(np.float64).reshape(n, -1)
        if target.shape[1] != out.shape[1]:
            raise InputError(f"y has {target.shape[1]} targets per sequence but the model gives {out.shape[1]}.")
        frame["true"] = target[:, 0] if target.shape[1] == 1 else np.nan
        frame["correct"] = np.nan
        frame["loss"] = ((out - target) ** 2).mean(axis=1)
        frame["abs_error"] = np.abs(out - target).mean(axis=1)
    return frame


def saturation_levels(frac_saturated: Any, levels: Sequence[float] = (0.1, 0.5)) -> pd.Categorical:
    """Map per-sequence saturated shares to "not" / "partly" / "fully saturated" (see module docs)."""
    lo, hi = _check_levels(levels)
    f = np.asarray(frac_saturated, dtype=np.float64)
    codes = np.where(f >= hi, 2, np.where(f >= lo, 1, 0))
    return pd.Categorical.from_codes(codes, categories=list(SATURATION_LEVELS), ordered=True)


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
    table = sequence_outcomes(logits, y, task=task, ids=ids)
    n = len(table)
    has_probs = table["confidence"].notna().all()
    if has_probs:
        names = None if class_names is None else list(class_names)

        def name_of(idx: pd.Series) -> pd.Series:
            if names is None:
                return idx.astype(str)
            if idx.max() >= len(names):
                raise InputError(f"class_names has {len(names)} names but the model has more classes.")
            return pd.Series(pd.Categorical.from_codes(idx.to_numpy(), categories=names), index=idx.index)

        table["predicted_class"] = name_of(table["pred"])
        if "true" in table:
            table["true_class"] = name_of(table["true"])
            table["outcome"] = pd.Categorical(np.where(table["correct"], "correct", "wrong"),
                                              categories=["correct", "wrong"])
    if states is not None:
        sat = saturation_by_sequence(states, lengths, gates=gates, threshold=threshold)
        if len(sat) != n:
            raise InputError(f"states hold {len(sat)} sequences but logits hold {n}; pass both from one run.")
        for col in sat.columns.drop("seq"):
            table[col] = sat[col].to_numpy()
        table["saturation"] = saturation_levels(table["frac_saturated"], levels)
    if columns is not None:
        extra = pd.DataFrame(columns).reset_index(drop=True)
        if len(extra) != n:
            raise InputError(f"columns has {len(extra)} rows but there are {n} sequences.")
        for col in extra.columns:
            name = f"{col}_data" if col in table.columns else col
            table[name] = extra[col].to_numpy()
    return table


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


def _metric_columns(table: pd.DataFrame) -> list[str]:
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
    interval (``scipy.stats.binomtest(...).proportion_ci``) for shares of a 0/1 outcome
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
    present = set(_metric_columns(df))
    intervals: dict[str, tuple[list[float], list[float]]] = {}
    boot: list[tuple[str, str]] = []  # (column, name) of the means whose intervals are bootstrapped together
    for col, name, how in spec:
        if col in present:
            out[name] = grouped[col].agg(lambda s, how=how: getattr(pd.to_numeric(s, errors="coerce"), how)())
            if how == "mean":
                binary = _is_binary(pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64), df[col].dtype)
                if binary:
                    cis = [_ci(pd.to_numeric(grp[col], errors="coerce").to_numpy(dtype=np.float64), True)
                           for _, grp in grouped]
                    intervals[name] = ([c[0] for c in cis], [c[1] for c in cis])
                else:
                    boot.append((col, name))
    if boot:
        per_group = [_mean_cis(np.stack([pd.to_numeric(grp[c], errors="coerce").to_numpy(dtype=np.float64)
                                         for c, _ in boot]), i) for i, (_, grp) in enumerate(grouped)]
        for j, (_, name) in enumerate(boot):
            intervals[name] = ([g[j][0] for g in per_group], [g[j][1] for g in per_group])
    if "saturation" in df.columns:
        out["share_fully_saturated"] = grouped["saturation"].agg(lambda s: float((s == SATURATION_LEVELS[2]).mean()))
        cis = [_share_ci(int((grp["saturation"] == SATURATION_LEVELS[2]).sum()), len(grp)) for _, grp in grouped]
        intervals["share_fully_saturated"] = ([c[0] for c in cis], [c[1] for c in cis])
    for name, (low, high) in intervals.items():
        out[f"{name}_low"] = low
        out[f"{name}_high"] = high
    out.index.name = "group"
    return out.reset_index()


# ----------------------------------------------------------------------------- intervals
CONFIDENCE = 0.95
_BOOT_RESAMPLES = 999


def _is_binary(values: np.ndarray, dtype: Any = None) -> bool:
    """A 0/1 outcome (bool column, or only the values 0 and 1)."""
    v = values[np.isfinite(values)]
    if dtype is not None and pd.api.types.is_bool_dtype(dtype):
        return True
    return v.size > 0 and bool(np.isin(v, (0.0, 1.0)).all())


#: above this many values the mean's interval is Student's t (``scipy.stats.t``): the bootstrap
#: gives the same interval there (central limit) at a cost that grows with n x resamples
BOOTSTRAP_MAX_N = 500


def _mean_ci(x: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean: percentile bootstrap (``scipy.stats.bootstrap``, 999 resamples)
    up to :data:`BOOTSTRAP_MAX_N` values, Student's t interval beyond; (v, v) when every value is
    v; NaN with fewer than 2 values."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float("nan"), float("nan"))
    if np.ptp(x) == 0:
        return (float(x[0]), float(x[0]))
    if x.size > BOOTSTRAP_MAX_N:
        lo, hi = stats.t.interval(CONFIDENCE, x.size - 1, loc=x.mean(), scale=stats.sem(x))
        return (float(lo), float(hi))
    res = stats.bootstrap((x,), np.mean, n_resamples=_BOOT_RESAMPLES, confidence_level=CONFIDENCE,
                          method="percentile", vectorized=True, batch=max(1, int(2e7 // x.size)),
                          rng=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def _mean_cis(rows: np.ndarray, seed: int = 0) -> list[tuple[float, float]]:
    """:func:`_mean_ci` of each row of ``rows`` [M, n]; rows without NaN that need the bootstrap
    share one ``scipy.stats.bootstrap`` call (one set of resamples, a vector-valued statistic)."""
    from scipy import stats

    out: list[tuple[float, float]] = [(float("nan"), float("nan"))] * rows.shape[0]
    joint = []
    for j, r in enumerate(rows):
        fin = r[np.isfinite(r)]
        if fin.size != r.size or r.size < 2 or np.ptp(r) == 0 or r.size > BOOTSTRAP_MAX_N:
            out[j] = _mean_ci(r, seed)
        else:
            joint.append(j)
    if joint:
        sub = rows[joint]
        res = stats.bootstrap((sub,), np.mean, n_resamples=_BOOT_RESAMPLES, confidence_level=CONFIDENCE,
                              method="percentile", vectorized=True, axis=-1, rng=np.random.default_rng(seed))
        lo, hi = np.atleast_1d(res.confidence_interval.low), np.atleast_1d(res.confidence_interval.high)
        for k, j in enumerate(joint):
            out[j] = (float(lo[k]), float(hi[k]))
    return out


def _share_ci(k: int, n: int) -> tuple[float, float]:
    """95% interval of a share k/n (``scipy.stats.binomtest(...).proportion_ci``, Clopper-Pearson)."""
    from scipy import stats

    if n < 1:
        return (float("nan"), float("nan"))
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=CONFIDENCE)
    return (float(ci.low), float(ci.high))


def _ci(values: np.ndarray, binary: bool, seed: int = 0) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if binary:
        return _share_ci(int(v.sum()), int(v.size))
    return _mean_ci(v, seed)


def _corr_ci(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """95% interval of a Pearson correlation (``scipy.stats.pearsonr(...).confidence_interval``)."""
    from scipy import stats

    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 4 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return (float("nan"), float("nan"))
    ci = stats.pearsonr(a, b).confidence_interval(confidence_level=CONFIDENCE)
    return (float(ci.low), float(ci.high))


# ----------------------------------------------------------------------------- two-group test
def compare_groups(
    table: pd.DataFrame,
    by: str | Sequence[Any] | pd.Series,
    a: Any,
    b: Any,
    *,
    metrics: str | Sequence[str] | None = None,
    test: str = "mann-whitney",
    bins: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Do groups ``a`` and ``b`` differ? One row per metric.

    Tests (two-sided):

    * a 0/1 outcome (a bool column such as ``correct`` or ``flipped``, or any column holding only
      0 and 1): Fisher's exact test on the 2 x 2 table (``scipy.stats.fisher_exact``; statistic =
      the odds ratio). Effect size: Cohen's h = 2 asin(sqrt(p_a)) - 2 asin(sqrt(p_b)).
    * otherwise ``"mann-whitney"`` (default): Mann–Whitney U test (``scipy.stats.mannwhitneyu``,
      normal approximation with tie correction when there are ties). Effect size: the
      rank-biserial correlation ``r = 2 U_a / (n_a n_b) - 1`` in [-1, 1]; r > 0 means values in
      ``a`` tend to be larger (r = 0.3 means a random member of a beats a random member of b 65 %
      of the time).
    * or ``"welch"``: Welch's t test (unequal variances, ``scipy.stats.ttest_ind(equal_var=False)``).
      Effect size: Cohen's d = (mean_a - mean_b) / pooled standard deviation.

    Every group mean has a 95% interval: ``scipy.stats.binomtest(k, n).proportion_ci`` for a 0/1
    outcome (a share), a percentile bootstrap of the mean (``scipy.stats.bootstrap``, 999
    resamples, seeded by ``seed``) otherwise, or Student's t interval for groups of more than
    :data:`BOOTSTRAP_MAX_N` sequences (where the two agree and the bootstrap gets slow). ``p_adjusted`` controls the false discovery rate
    across the table's rows (Benjamini–Hochberg, ``scipy.stats.false_discovery_control``).

    Caveats: the tests treat sequences as independent samples, which overlapping windows of
    one series are not; the groups are often defined from the model's own behaviour (e.g.
    saturation) so a difference is an association, not a cause; with thousands of sequences tiny
    differences become "significant" — read the effect size first. Fewer than 2 sequences in a
    group gives NaN.

    Returns
    -------
    frame with ``metric, group_a, group_b, n_a, n_b, mean_a, mean_b, ci_a_low, ci_a_high,
    ci_b_low, ci_b_high, median_a, median_b, test, statistic, p_value, p_adjusted, effect_size,
    effect_name``.
    """
    from scipy import stats

    if test not in ("mann-whitney", "welch"):
        raise InputError(f"test must be 'mann-whitney' or 'welch'; got {test!r}.")
    g = assign_groups(table, by, bins=bins).astype(str).to_numpy()
    ga, gb = str(a), str(b)
    present = set(g)
    for name in (ga, gb):
        if name not in present:
            raise InputError(f"There is no group {name!r}; the groups are {', '.join(sorted(present))}.")
    if metrics is None:
        metrics = _metric_columns(table)
    elif isinstance(metrics, str):
        metrics = [metrics]
    rows = []
    for m in metrics:
        if m not in table.columns:
            raise InputError(f"There is no column {m!r} to compare; choose one of {', '.join(_metric_columns(table))}.")
        v = pd.to_numeric(table[m], errors="coerce").to_numpy(dtype=np.float64)
        xa = v[(g == ga) & np.isfinite(v)]
        xb = v[(g == gb) & np.isfinite(v)]
        binary = _is_binary(v, table[m].dtype)
        ci_a, ci_b = _ci(xa, binary, seed), _ci(xb, binary, seed + 1)
        row = {"metric": m, "group_a": a, "group_b": b, "n_a": xa.size, "n_b": xb.size,
               "mean_a": xa.mean() if xa.size else np.nan, "mean_b": xb.mean() if xb.size else np.nan,
               "ci_a_low": ci_a[0], "ci_a_high": ci_a[1], "ci_b_low": ci_b[0], "ci_b_high": ci_b[1],
               "median_a": np.median(xa) if xa.size else np.nan, "median_b": np.median(xb) if xb.size else np.nan,
               "test": "Fisher's exact" if binary else ("Mann-Whitney U" if test == "mann-whitney" else "Welch's t"),
               "statistic": np.nan, "p_value": np.nan, "effect_size": np.nan,
               "effect_name": "Cohen's h" if binary else ("rank-biserial r" if test == "mann-whitney" else "Cohen's d")}
        if xa.size >= 2 and xb.size >= 2:
            if binary:
                ka, kb = int(xa.sum()), int(xb.sum())
                res = stats.fisher_exact([[ka, xa.size - ka], [kb, xb.size - kb]])
                row.update(statistic=float(res.statistic), p_value=float(res.pvalue),
                           effect_size=2 * np.arcsin(np.sqrt(ka / xa.size)) - 2 * np.arcsin(np.sqrt(kb / xb.size)))
            elif test == "mann-whitney":
                if np.ptp(np.r_[xa, xb]) == 0:  # every value equal: no difference at all
                    row.update(statistic=xa.size * xb.size / 2, p_value=1.0, effect_size=0.0)
                else:
                    res = stats.mannwhitneyu(xa, xb, alternative="two-sided")
                    row.update(statistic=float(res.statistic), p_value=float(res.pvalue),
                               effect_size=2.0 * float(res.statistic) / (xa.size * xb.size) - 1.0)
            else:
                va, vb = xa.var(ddof=1), xb.var(ddof=1)
                pooled = np.sqrt(((xa.size - 1) * va + (xb.size - 1) * vb) / (xa.size + xb.size - 2))
                if pooled == 0:
                    same = xa.mean() == xb.mean()
                    row.update(statistic=0.0 if same else np.inf, p_value=1.0 if same else 0.0,
                               effect_size=0.0 if same else np.sign(xa.mean() - xb.mean()) * np.inf)
                else:
                    res = stats.ttest_ind(xa, xb, equal_var=False)
                    row.update(statistic=float(res.statistic), p_value=float(res.pvalue),
                               effect_size=(xa.mean() - xb.mean()) / pooled)
        rows.append(row)
    out = pd.DataFrame(rows)
    out.insert(out.columns.get_loc("p_value") + 1, "p_adjusted", _fdr(out["p_value"].to_numpy(dtype=np.float64))
               if len(out) else [])
    return out


def _fdr(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values over the finite ones (NaN stays NaN)."""
    from scipy import stats

    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(np.clip(p[ok], 0.0, 1.0), method="bh")
    return out


# ----------------------------------------------------------------------------- resilience
_POSITIONS = ("early", "late", "random")


def _x_and_lengths(x: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray]:
    arr = to_numpy(x, "x")
    if arr.ndim != 3:
        raise InputError(f"x must be shaped [N, T, F] (sequences, steps, features); got {arr.shape}.")
    arr = arr.astype(np.float32, copy=False)
    n, t = arr.shape[:2]
    lens = np.full(n, t, dtype=np.int64) if lengths is None else check_lengths(lengths, n, t)
    return arr, lens


def _feature_stats(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pts = x[mask].astype(np.float64)  # (P, F)
    return pts.mean(axis=0), pts.std(axis=0)


def perturb_inputs(
    x: Any,
    lengths: Any = None,
    *,
    kind: str = "noise",
    scale: float = 0.1,
    fraction: float = 0.2,
    position: str = "random",
    fill: str = "baseline",
    baseline: str | Sequence[float] | np.ndarray = "mean",
    feature_std: Sequence[float] | np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Damage a padded batch the way real data gets damaged, all sequences at once.

    * ``kind="noise"``: add Gaussian noise with standard deviation ``scale * std_f`` to every
      valid step of feature f, where ``std_f`` is the feature's standard deviation over all
      valid steps of ``x`` (or ``feature_std``). Meant for real-valued features, not token ids.
    * ``kind="missing"``: in each sequence of length L, ``k = max(1, round(fraction * L))`` steps
      (when ``fraction > 0``) go missing, chosen by ``position``: ``"early"`` (the first k),
      ``"late"`` (the last k) or ``"random"`` (k distinct steps drawn per sequence). With
      ``fill="baseline"`` their features are replaced by ``baseline`` (``"mean"``: each
      feature's mean over valid steps; ``"zeros"``; or an array [F]); with ``fill="drop"`` they
      are removed, later steps move up and the length shrinks by k (at most to 1 step).

    Padding is left as it is; ``x`` itself is never modified. Randomness comes from
    ``numpy.random.default_rng(seed)``, so a call is reproducible.

    Returns
    -------
    (x_new float32 [N, T, F], lengths_new int64 [N])
    """
    arr, lens = _x_and_lengths(x, lengths)
    n, t, f = arr.shape
    mask = valid_mask(lens, t)
    rng = np.random.default_rng(seed)
    out = arr.copy()
    if kind == "noise":
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise InputError(f"scale must be a number; got {scale!r}.") from None
        if not np.isfinite(scale) or scale < 0:
            raise InputError(f"scale (noise size relative to each feature's spread) must be >= 0; got {scale}.")
        if feature_std is None:
            std = _feature_stats(arr, mask)[1]
        else:
            std = np.asarray(feature_std, dtype=np.float64).reshape(-1)
            if std.shape != (f,):
                raise InputError(f"feature_std must hold one value per feature ({f}).")
        noise = rng.standard_normal(arr.shape) * (scale * std)  # (N, T, F)
        out = np.where(mask[..., None], arr + noise, arr).astype(np.float32)
        return out, lens.copy()
    if kind != "missing":
        raise InputError(f"kind must be 'noise' or 'missing'; got {kind!r}.")
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise InputError(f"fraction must be a number between 0 and 1; got {fraction!r}.") from None
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"fraction (share of steps that go missing) must be between 0 and 1; got {fraction}.")
    if position not in _POSITIONS:
        raise InputError(f"position must be one of {', '.join(_POSITIONS)}; got {position!r}.")
    if fill not in ("baseline", "drop"):
        raise InputError(f"fill must be 'baseline' or 'drop'; got {fill!r}.")
    k = np.floor(fraction * lens + 0.5).astype(np.int64)
    if fraction > 0:
        k = np.maximum(k, 1)
    k = np.minimum(k, lens - 1 if fill == "drop" else lens)
    steps = np.arange(t)[None, :]
    if position == "early":
        missing = steps < k[:, None]
    elif position == "late":
        missing = mask & (steps >= (lens - k)[:, None])
    else:
        keys = np.where(mask, rng.random((n, t)), np.inf)
        rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
        missing = rank < k[:, None]
    if fill == "baseline":
        if isinstance(baseline, str):
            if baseline == "mean":
                base = _feature_stats(arr, mask)[0]
            elif baseline == "zeros":
                base = np.zeros(f)
            else:
                raise InputError(f"baseline must be 'mean', 'zeros' or one value per feature; got {baseline!r}.")
        else:
            base = np.asarray(baseline, dtype=np.float64).reshape(-1)
            if base.shape != (f,):
                raise InputError(f"baseline must hold one value per feature ({f}).")
        out[missing] = base.astype(np.float32)
        return out, lens.copy()
    # drop: stable sort puts kept valid steps first, in order
    order = np.argsort((missing | ~mask).astype(np.int8), axis=1, kind="stable")  # (N, T)
    out = np.take_along_axis(arr, order[..., None], axis=1)
    new_lens = lens - k
    out[~valid_mask(new_lens, t)] = 0.0
    return out.astype(np.float32, copy=False), new_lens


def _default_predict(model: Any, device: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    from .trace import predict

    def run(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return predict(model, x, lengths, device=device)

    return run


def _change_and_flip(base: np.ndarray, new: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pb, pn = _probs(base, task), _probs(new, task)
    n = base.shape[0]
    if pb is None:
        b, w = base.reshape(n, -1), new.reshape(n, -1)
        change = np.abs(w - b).mean(axis=1)
        nan = np.full(n, np.nan)
        return change, nan, (b[:, 0] if b.shape[1] == 1 else nan), (w[:, 0] if w.shape[1] == 1 else nan)
    change = np.abs(pn - pb).sum(axis=1)
    bp, np_ = pb.argmax(axis=1), pn.argmax(axis=1)
    return change, (bp != np_), bp, np_


def resilience(
    model: Any,
    x: Any,
    lengths: Any = None,
    *,
    kind: str = "noise",
    scale: float = 0.1,
    fraction: float = 0.2,
    position: str = "random",
    fill: str = "baseline",
    baseline: str | Sequence[float] | np.ndarray = "mean",
    seed: int = 0,
    task: str = "auto",
    base_logits: Any = None,
    predict_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    device: Any = "auto",
    ids: Any = None,
) -> pd.DataFrame:
    """How much each sequence's output moves when its input is damaged, in one batched call.

    The damage is :func:`perturb_inputs` with the same keyword arguments. The model runs once
    on the damaged batch (and once on the clean batch unless ``base_logits`` is given), through
    :func:`rnnviz_core.predict` or ``predict_fn(x, lengths) -> logits``.

    Per sequence:

    * ``output_change``: classification — the L1 distance between the class probability vectors
      before and after (0 = no change, 2 = all probability moved to other classes); regression —
      the mean absolute change of the output(s).
    * ``flipped``: whether the predicted class changed (NaN for regression).
    * ``base_pred``, ``new_pred``: predicted class (or output) before and after.

    Comparing ``position="early"`` with ``"late"`` answers "does the model lean on the current
    step early in a sequence?". Columns: ``seq, output_change, flipped, base_pred, new_pred``
    plus the condition (``kind``, ``scale``/``fraction``, ``position``, ``fill``, ``condition``).
    """
    arr, lens = _x_and_lengths(x, lengths)
    run = predict_fn if predict_fn is not None else _default_predict(model, device)
    base = _logits_array(run(arr, lens) if base_logits is None else base_logits)
    task = _resolve_task(base, task)
    xn, ln = perturb_inputs(arr, lens, kind=kind, scale=scale, fraction=fraction, position=position,
                            fill=fill, baseline=baseline, seed=seed)
    new = _logits_array(run(xn, ln))
    if new.shape != base.shape:
        raise InputError(f"The model's output changed shape ({base.shape} -> {new.shape}) on damaged input.")
    change, flipped, bp, np_ = _change_and_flip(base, new, task)
    n = arr.shape[0]
    frame = pd.DataFrame({"seq": np.arange(n) if ids is None else np.asarray(ids),
                          "output_change": change,
                          "flipped": flipped if task != "regression" else np.full(n, np.nan),
                          "base_pred": bp, "new_pred": np_})
    frame["kind"] = kind
    if kind == "noise":
        frame["scale"] = float(scale)
        frame["condition"] = f"noise {float(scale):g} x std"
    else:
        frame["fraction"] = float(fraction)
        frame["position"] = position
        frame["fill"] = fill
        frame["condition"] = f"{float(fraction):.0%} missing, {position}, {'dropped' if fill == 'drop' else 'baseline'}"
    return frame


def resilience_sweep(
    model: Any,
    x: Any,
    lengths: Any = None,
    conditions: Iterable[Mapping[str, Any]] = (
        {"kind": "noise", "scale": 0.1},
        {"kind": "missing", "fraction": 0.2, "position": "early"},
        {"kind": "missing", "fraction": 0.2, "position": "late"},
        {"kind": "missing", "fraction": 0.2, "position": "random"},
    ),
    *,
    seed: int = 0,
    task: str = "auto",
    base_logits: Any = None,
    predict_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    device: Any = "auto",
) -> pd.DataFrame:
    """:func:`resilience` for several conditions (one batched model call each, the clean output
    computed once), stacked into one long frame with a ``condition`` column."""
    arr, lens = _x_and_lengths(x, lengths)
    run = predict_fn if predict_fn is not None else _default_predict(model, device)
    base = _logits_array(run(arr, lens) if base_logits is None else base_logits)
    frames = []
    for cond in conditions:
        opts = {"seed": seed, **dict(cond)}
        frames.append(resilience(model, arr, lens, task=task, base_logits=base, predict_fn=run, **opts))
    if not frames:
        raise InputError("Give at least one condition, e.g. {'kind': 'noise', 'scale': 0.1}.")
    return pd.concat(frames, ignore_index=True)


def resilience_summary(results: pd.DataFrame, table: pd.DataFrame, by: str | Sequence[Any] | pd.Series,
                       *, bins: int | None = None) -> pd.DataFrame:
    """Resilience compared across groups: per condition and group, ``size``,
    ``mean_output_change``, ``median_output_change`` and ``flip_rate``.

    ``results`` comes from :func:`resilience` / :func:`resilience_sweep`, ``table`` from
    :func:`sequence_table` (same sequences, matched on ``seq``)."""
    g = assign_groups(table, by, bins=bins)
    key = pd.DataFrame({"seq": table["seq"].to_numpy(), "group": g.values})
    try:
        merged = results.merge(key, on="seq", how="inner")
    except ValueError:  # ids of different kinds (e.g. str vs int) cannot match
        merged = results.iloc[:0]
    if merged.empty:
        raise InputError("The resilience results and the table share no sequence ids; pass the same ids= "
                         "to resilience and sequence_table (or leave both at the default).")
    if "condition" not in merged:
        merged["condition"] = "damage"
    grouped = merged.groupby(["condition", "group"], observed=True, sort=False)
    out = grouped.agg(size=("seq", "size"), mean_output_change=("output_change", "mean"),
                      median_output_change=("output_change", "median"),
                      flip_rate=("flipped", lambda s: pd.to_numeric(s, errors="coerce").mean()))
    change_ci = [_mean_ci(grp["output_change"].to_numpy(dtype=np.float64), i) for i, (_, grp) in enumerate(grouped)]
    flip_ci = []
    for _, grp in grouped:
        f = pd.to_numeric(grp["flipped"], errors="coerce").to_numpy(dtype=np.float64)
        f = f[np.isfinite(f)]
        flip_ci.append(_share_ci(int(f.sum()), int(f.size)) if f.size else (np.nan, np.nan))
    out["mean_output_change_low"] = [c[0] for c in change_ci]
    out["mean_output_change_high"] = [c[1] for c in change_ci]
    out["flip_rate_low"] = [c[0] for c in flip_ci]
    out["flip_rate_high"] = [c[1] for c in flip_ci]
    return out.reset_index()


# ----------------------------------------------------------------------------- reproducibility
def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def reproducibility(
    states_a: Any,
    states_b: Any,
    *,
    logits_a: Any = None,
    logits_b: Any = None,
    lengths: Any = None,
    groups: Any = None,
    task: str = "auto",
    threshold: float = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    """Do two models of the same task (two seeds, two checkpoints) agree, per group?

    ``states_a``/``states_b`` are the two models' states [N, T, H] on the same sequences (or
    their Traces, which also supply the logits). Units of two trained models do not
    correspond one to one, so saturation is compared through quantities that do not depend on
    unit order:

    * ``agreement``: share of the group's sequences where both predict the same class
      (regression: NaN);
    * ``sat_corr_sequences``: Pearson correlation, over the group's sequences, between the
      two models' per-sequence saturated shares (do the same sequences saturate in both?);
    * ``sat_corr_time``: Pearson correlation between the two models' mean saturated share per
      step (does saturation rise and fall at the same steps?);
    * ``sat_mean_a``, ``sat_mean_b``: the two models' mean saturated share.

    ``groups``: one label per sequence (None: a single group "all"). An ``"all"`` row over every
    sequence is appended when there are several groups. Correlations are NaN when a side is
    constant or has fewer than 2 values.
    """
    la = lengths if lengths is not None or not hasattr(states_a, "lengths") else states_a.lengths
    if logits_a is None and hasattr(states_a, "logits"):
        logits_a = states_a.logits
    if logits_b is None and hasattr(states_b, "logits"):
        logits_b = states_b.logits
    arr_a, lens = as_states(states_a, la, name="states_a")
    arr_b, lens_b = as_states(states_b, lens, name="states_b")
    n = arr_a.shape[0]
    if arr_b.shape[:2] != arr_a.shape[:2]:
        raise InputError("The two models' states must cover the same sequences and steps.")
    thr = check_threshold(threshold)
    step_a = per_step_fraction(arr_a, lens, thr)  # (N, T), 0 at padding
    step_b = per_step_fraction(arr_b, lens, thr)
    sat_a = step_a.sum(axis=1) / lens  # share of the sequence's unit-steps saturated
    sat_b = step_b.sum(axis=1) / lens
    mask = valid_mask(lens, arr_a.shape[1])
    agree = np.full(n, np.nan)
    if logits_a is not None and logits_b is not None:
        za, zb = _logits_array(logits_a), _logits_array(logits_b)
        if za.shape[0] != n or zb.shape[0] != n:
            raise InputError("logits_a and logits_b must hold one output per sequence.")
        ta = _resolve_task(za, task)
        pa, pb = _probs(za, ta), _probs(zb, ta)
        if pa is not None and pb is not None and pa.shape == pb.shape:
            agree = (pa.argmax(1) == pb.argmax(1)).astype(float)
    labels = np.full(n, "all", dtype=object) if groups is None else np.asarray(groups, dtype=object)
    if labels.shape != (n,):
        raise InputError(f"groups must hold one label per sequence ({n}).")
    over_a = group_time_mean(step_a, mask, labels)
    over_b = group_time_mean(step_b, mask, labels)
    time = over_a.merge(over_b, on=["group", "step"], suffixes=("_a", "_b"))
    names = list(pd.unique(labels))
    try:
        names = sorted(names)
    except TypeError:
        pass
    rows = []
    for name in names:
        sel = labels == name
        t_g = time[time["group"] == name]
        rows.append(_repro_row(name, agree[sel], sat_a[sel], sat_b[sel], t_g["frac_saturated_a"].to_numpy(),
                               t_g["frac_saturated_b"].to_numpy()))
    if len(names) > 1:
        all_a = group_time_mean(step_a, mask, None)["frac_saturated"].to_numpy()
        all_b = group_time_mean(step_b, mask, None)["frac_saturated"].to_numpy()
        rows.append(_repro_row("all", agree, sat_a, sat_b, all_a, all_b))
    return pd.DataFrame(rows)


def _repro_row(name: Any, agree: np.ndarray, sat_a: np.ndarray, sat_b: np.ndarray, time_a: np.ndarray,
               time_b: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(agree)
    ag_ci = _share_ci(int(agree[ok].sum()), int(ok.sum())) if ok.any() else (np.nan, np.nan)
    cs, ct = _corr_ci(sat_a, sat_b), _corr_ci(time_a, time_b)
    return {"group": name, "size": int(sat_a.size),
            "agreement": float(np.nanmean(agree)) if ok.any() else np.nan,
            "sat_corr_sequences": _pearson(sat_a, sat_b), "sat_corr_time": _pearson(time_a, time_b),
            "sat_mean_a": float(sat_a.mean()), "sat_mean_b": float(sat_b.mean()),
            "agreement_low": ag_ci[0], "agreement_high": ag_ci[1],
            "sat_corr_sequences_low": cs[0], "sat_corr_sequences_high": cs[1],
            "sat_corr_time_low": ct[0], "sat_corr_time_high": ct[1]}


def compare_models(
    model_a: Any,
    model_b: Any,
    x: Any,
    lengths: Any = None,
    *,
    groups: Any = None,
    task: str = "auto",
    threshold: float = DEFAULT_THRESHOLD,
    device: Any = "auto",
) -> pd.DataFrame:
    """Trace two models of the same task on the same sequences and call :func:`reproducibility`
    (prediction agreement and saturation-profile correlations per group)."""
    from .trace import trace

    tr_a = trace(model_a, x, lengths, device=device)
    tr_b = trace(model_b, x, lengths, device=device)
    return reproducibility(tr_a, tr_b, groups=groups, task=task, threshold=threshold)


# ----------------------------------------------------------------------------- tables for people
#: plain names of the per-sequence measures (resilience columns "change: <condition>" are named
#: "output change under <condition>")
METRIC_NAMES = {
    "correct": "accuracy (share correct)", "loss": "loss", "abs_error": "error (distance from the true value)",
    "confidence": "confidence",
    "frac_saturated": "share of unit-steps saturated", "frac_saturated_final": "share of units saturated at the last step",
    "output_change": "change of the answer under damage", "flipped": "share of answers that flip",
}
_PERCENT_METRICS = {"correct", "confidence", "frac_saturated", "frac_saturated_final", "flipped"}
_EFFECT_CUTS = {"rank-biserial r": (0.1, 0.3, 0.5), "Cohen's d": (0.2, 0.5, 0.8), "Cohen's h": (0.2, 0.5, 0.8)}


def _metric_name(m: str) -> str:
    m = str(m)
    if m.startswith("change: "):
        return "output change under " + m[len("change: "):]
    if m.endswith("_left"):
        return f"share of steps gate {m[:-5]} is nearly shut"
    if m.endswith("_right"):
        return f"share of steps gate {m[:-6]} is nearly open"
    return METRIC_NAMES.get(m, m.replace("_", " "))


def _is_percent(m: str) -> bool:
    return str(m) in _PERCENT_METRICS or str(m).endswith(("_left", "_right"))


def format_p(p: float) -> str:
    """A p-value for people: "p < 0.001", "p = 0.004", "p = 0.32"; "" when there is none."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(p):
        return ""
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return f"p = {p:.3f}"
    return f"p = {min(p, 1.0):.2f}"


def effect_words(effect: float, name: str) -> str:
    """An effect size in a word: "negligible", "small", "medium" or "large" (rank-biserial r:
    0.1 / 0.3 / 0.5; Cohen's d and h: 0.2 / 0.5 / 0.8); "" when there is none."""
    try:
        e = abs(float(effect))
    except (TypeError, ValueError):
        return ""
    cuts = _EFFECT_CUTS.get(str(name))
    if cuts is None or np.isnan(e):
        return ""
    if e < cuts[0]:
        return "negligible"
    if e < cuts[1]:
        return "small"
    if e < cuts[2]:
        return "medium"
    return "large"


def _fmt(v: float, percent: bool) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    return f"{v:.1%}" if percent else f"{v:.3g}"


def _with_interval(v: float, lo: float, hi: float, percent: bool) -> str:
    text = _fmt(v, percent)
    if text and np.isfinite(lo) and np.isfinite(hi) and lo != hi:
        text += f" ({_fmt(lo, percent)} to {_fmt(hi, percent)})"
    return text


def _effect_text(row: Mapping[str, Any]) -> str:
    word = effect_words(row.get("effect_size"), row.get("effect_name"))
    if not word:
        return ""
    e = float(row["effect_size"])
    name = row.get("effect_name")
    if name == "rank-biserial r":
        return f"{word}: A higher in {(e + 1) / 2:.0%} of pairs"
    if name == "Cohen's h":
        return f"{word}: {100 * (row['mean_a'] - row['mean_b']):+.1f} points"
    if name == "Cohen's d":
        return f"{word}: {e:+.2f} standard deviations"
    return word


def comparison_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """The frame of :func:`compare_groups` as a table people read: one row per measure, plain
    column names, each group's mean with its 95% interval, the difference, whether it could be
    chance (false-discovery-corrected p formatted as "p < 0.001") and how big it is in words.
    Empty cells where a figure cannot be computed (never "None")."""
    need = ["metric", "group_a", "group_b", "n_a", "n_b", "mean_a", "mean_b", "p_value", "effect_size", "effect_name"]
    missing = [c for c in need if c not in cmp.columns]
    if missing:
        raise InputError(f"comparison_table needs the frame of compare_groups (missing {', '.join(missing)}).")
    if cmp.empty:
        return pd.DataFrame(columns=["Measure", "Group A", "Group B", "Difference (A − B)", "Could it be chance?",
                                     "How big", "Sequences (A / B)"])
    ga, gb = str(cmp["group_a"].iloc[0]), str(cmp["group_b"].iloc[0])
    rows = []
    pcol = "p_adjusted" if "p_adjusted" in cmp.columns else "p_value"
    for _, r in cmp.iterrows():
        pct = _is_percent(r["metric"])
        rows.append({
            "Measure": _metric_name(r["metric"]),
            f"A: {ga}": _with_interval(r["mean_a"], r.get("ci_a_low", np.nan), r.get("ci_a_high", np.nan), pct),
            f"B: {gb}": _with_interval(r["mean_b"], r.get("ci_b_low", np.nan), r.get("ci_b_high", np.nan), pct),
            "Difference (A − B)": (f"{100 * (r['mean_a'] - r['mean_b']):+.1f} points" if pct and
                                   np.isfinite(r["mean_a"] - r["mean_b"]) else
                                   (f"{r['mean_a'] - r['mean_b']:+.3g}" if np.isfinite(r["mean_a"] - r["mean_b"]) else "")),
            "Could it be chance?": format_p(r[pcol]),
            "How big": _effect_text(r),
            "Sequences (A / B)": f"{int(r['n_a'])} / {int(r['n_b'])}",
        })
    out = pd.DataFrame(rows)
    out.attrs["caption"] = (
        "One row per measure: each group's average with its 95% interval in brackets, their difference, how likely "
        f"a difference this large is by chance alone (corrected for testing {len(out)} measures at once; below "
        "0.05 is unlikely to be chance) and how big the difference is in words, which matters more with many "
        "sequences.")
    return out


_SUMMARY_NAMES = {
    "accuracy": ("Accuracy", True), "mean_abs_error": ("Average error", False), "mean_loss": ("Average loss", False), "mean_confidence": ("Average confidence", True),
    "sat_mean": ("Saturated share of unit-steps", True), "sat_median": ("Median saturated share", True),
    "sat_final_mean": ("Units saturated at the last step", True),
    "share_fully_saturated": ("Fully saturated sequences", True),
    "mean_output_change": ("Change of the answer under damage", False), "flip_rate": ("Answers that flip", True),
}


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The frame of :func:`group_summary` as a table people read: plain column names, shares in
    %, each figure with its 95% interval in brackets, empty cells where a figure is missing."""
    if "group" not in summary.columns or "size" not in summary.columns:
        raise InputError("summary_table needs the frame of group_summary.")
    out = pd.DataFrame({"Group": summary["group"].astype(str).to_numpy(),
                        "Sequences": summary["size"].astype(int).to_numpy()})
    if "share" in summary:
        out["Share of all"] = [_fmt(v, True) for v in summary["share"]]
    for col, (name, pct) in _SUMMARY_NAMES.items():
        if col not in summary:
            continue
        lo = summary.get(f"{col}_low", pd.Series(np.nan, index=summary.index))
        hi = summary.get(f"{col}_high", pd.Series(np.nan, index=summary.index))
        out[name] = [_with_interval(v, a, b, pct) for v, a, b in zip(summary[col], lo, hi)]
    out.attrs["caption"] = "One row per group; brackets hold the 95% interval of each figure (narrow = reliable)."
    return out


def reproducibility_table(rep: pd.DataFrame) -> pd.DataFrame:
    """The frame of :func:`reproducibility` as a table people read (plain names, no
    ``sat_corr_sequences``), with 95% intervals where they are computed; empty cells where a
    figure cannot be computed."""
    if "group" not in rep.columns:
        raise InputError("reproducibility_table needs the frame of reproducibility.")

    def col(name: str, pct: bool) -> list[str]:
        lo = rep.get(f"{name}_low", pd.Series(np.nan, index=rep.index))
        hi = rep.get(f"{name}_high", pd.Series(np.nan, index=rep.index))
        return [_with_interval(v, a, b, pct) for v, a, b in zip(rep[name], lo, hi)]

    out = pd.DataFrame({"Group": rep["group"].astype(str).to_numpy(), "Sequences": rep["size"].astype(int).to_numpy(),
                        "Same answer from both models": col("agreement", True),
                        "Do the same sequences saturate? (correlation)": col("sat_corr_sequences", False),
                        "Does saturation rise at the same steps? (correlation)": col("sat_corr_time", False),
                        "Saturated share, loaded model": [_fmt(v, True) for v in rep["sat_mean_a"]],
                        "Saturated share, second model": [_fmt(v, True) for v in rep["sat_mean_b"]]})
    out.attrs["caption"] = (
        "One row per group: how often the two models give the same answer, and whether saturation picks the same "
        "sequences and the same steps in both (correlation 1 = exactly, 0 = unrelated); empty cells could not be "
        "computed (too few sequences, or a side that never changes); brackets hold 95% intervals.")
    return out


def resilience_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The frame of :func:`resilience_summary` with plain column names and 95% intervals."""
    if not {"condition", "group", "size"} <= set(summary.columns):
        raise InputError("resilience_table needs the frame of resilience_summary.")
    out = pd.DataFrame({"Damage": summary["condition"].astype(str).to_numpy(),
                        "Group": summary["group"].astype(str).to_numpy(),
                        "Sequences": summary["size"].astype(int).to_numpy()})
    for col, (name, pct) in (("mean_output_change", ("Average change of the answer", False)),
                             ("median_output_change", ("Median change of the answer", False)),
                             ("flip_rate", ("Answers that flip", True))):
        if col in summary:
            lo = summary.get(f"{col}_low", pd.Series(np.nan, index=summary.index))
            hi = summary.get(f"{col}_high", pd.Series(np.nan, index=summary.index))
            out[name] = [_with_interval(v, a, b, pct) for v, a, b in zip(summary[col], lo, hi)]
    return out
