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
from .saturation import (
    DEFAULT_THRESHOLD, _check_threshold, _group_time_mean, _per_step_fraction, saturation_by_sequence,
)
from .trajectories import _as_states, _check_lengths, _to_numpy, valid_mask

__all__ = [
    "SATURATION_LEVELS", "GROUPINGS",
    "sequence_outcomes", "saturation_levels", "sequence_table", "assign_groups",
    "group_summary", "compare_groups",
    "perturb_inputs", "resilience", "resilience_sweep", "resilience_summary",
    "reproducibility", "compare_models",
]

SATURATION_LEVELS = ("not saturated", "partly saturated", "fully saturated")
#: built-in groupings accepted by ``by=`` (any other value names a column of the table)
GROUPINGS = ("true_class", "predicted_class", "correct", "saturation")
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
    arr = _to_numpy(logits, "logits").astype(np.float64)
    if arr.ndim == 0 or arr.ndim > 2 or arr.shape[0] == 0:
        raise InputError(f"logits must be shaped [N], [N, 1] or [N, C]; got {arr.shape}.")
    return arr


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _probs(arr: np.ndarray, task: str) -> np.ndarray | None:
    """Class probabilities [N, C] (binary: [N, 2]); None for regression."""
    if task == "classification":
        return _softmax(arr)
    if task == "binary":
        p1 = 1.0 / (1.0 + np.exp(-arr.reshape(arr.shape[0], -1)[:, 0]))
        return np.stack([1.0 - p1, p1], axis=1)
    return None


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
    ``true``, ``correct`` (bool; NaN for regression) and ``loss`` (see module docs).
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
    yy = _to_numpy(y, "y")
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
        frame["loss"] = -np.log(np.clip(probs[np.arange(n), yi], 1e-300, None))
    else:
        out = arr.reshape(n, -1)
        target = yy.astype(np.float64).reshape(n, -1)
        if target.shape[1] != out.shape[1]:
            raise InputError(f"y has {target.shape[1]} targets per sequence but the model gives {out.shape[1]}.")
        frame["true"] = target[:, 0] if target.shape[1] == 1 else np.nan
        frame["correct"] = np.nan
        frame["loss"] = ((out - target) ** 2).mean(axis=1)
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
    known = ["correct", "loss", "confidence", "frac_saturated", "frac_saturated_final",
             "output_change", "flipped"]
    return [c for c in known if c in table.columns and table[c].notna().any()]


def group_summary(table: pd.DataFrame, by: str | Sequence[Any] | pd.Series = "saturation", *,
                  bins: int | None = None) -> pd.DataFrame:
    """One row per group: ``size``, ``share`` of all sequences, ``accuracy``, ``mean_loss``,
    ``mean_confidence``, saturation statistics (``sat_mean``, ``sat_median``,
    ``sat_final_mean``, ``share_fully_saturated``) and, when the table carries resilience
    results, ``mean_output_change`` and ``flip_rate``. Columns whose inputs are missing are left
    out. Groups are in their natural (categorical or sorted) order."""
    g = assign_groups(table, by, bins=bins)
    df = table.assign(_g=g.values)  # keeps categorical order (levels, bins)
    grouped = df.groupby("_g", observed=True, sort=True, dropna=False)
    out = pd.DataFrame({"size": grouped.size()})
    out["share"] = out["size"] / len(df)
    spec = [("correct", "accuracy", "mean"), ("loss", "mean_loss", "mean"),
            ("confidence", "mean_confidence", "mean"), ("frac_saturated", "sat_mean", "mean"),
            ("frac_saturated", "sat_median", "median"), ("frac_saturated_final", "sat_final_mean", "mean"),
            ("output_change", "mean_output_change", "mean"), ("flipped", "flip_rate", "mean")]
    present = set(_metric_columns(df))
    for col, name, how in spec:
        if col in present:
            out[name] = grouped[col].agg(lambda s, how=how: getattr(pd.to_numeric(s, errors="coerce"), how)())
    if "saturation" in df.columns:
        out["share_fully_saturated"] = grouped["saturation"].agg(lambda s: float((s == SATURATION_LEVELS[2]).mean()))
    out.index.name = "group"
    return out.reset_index()


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
) -> pd.DataFrame:
    """Do groups ``a`` and ``b`` differ? One row per metric.

    Tests (two-sided):

    * ``"mann-whitney"`` (default): Mann–Whitney U test (``scipy.stats.mannwhitneyu``, normal
      approximation with tie correction when there are ties). Effect size: the rank-biserial
      correlation ``r = 2 U_a / (n_a n_b) - 1`` in [-1, 1]; r > 0 means values in ``a`` tend to
      be larger (r = 0.3 means a random member of a beats a random member of b 65 % of the time).
    * ``"welch"``: Welch's t test (unequal variances, ``scipy.stats.ttest_ind(equal_var=False)``).
      Effect size: Cohen's d = (mean_a - mean_b) / pooled standard deviation.

    Caveats: the tests treat sequences as independent samples, which overlapping windows of
    one series are not; the groups are often defined from the model's own behaviour (e.g.
    saturation) so a difference is an association, not a cause; with several metrics or group
    pairs, some p-values fall below 0.05 by chance (no correction is applied); with thousands of
    sequences tiny differences become "significant" — read the effect size first. A 0/1
    metric (``correct``, ``flipped``) is tested the same way (a rank test on two values); fewer
    than 2 sequences in a group gives NaN.

    Returns
    -------
    frame with ``metric, group_a, group_b, n_a, n_b, mean_a, mean_b, median_a, median_b, test,
    statistic, p_value, effect_size, effect_name``.
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
        row = {"metric": m, "group_a": a, "group_b": b, "n_a": xa.size, "n_b": xb.size,
               "mean_a": xa.mean() if xa.size else np.nan, "mean_b": xb.mean() if xb.size else np.nan,
               "median_a": np.median(xa) if xa.size else np.nan, "median_b": np.median(xb) if xb.size else np.nan,
               "test": "Mann-Whitney U" if test == "mann-whitney" else "Welch's t",
               "statistic": np.nan, "p_value": np.nan, "effect_size": np.nan,
               "effect_name": "rank-biserial r" if test == "mann-whitney" else "Cohen's d"}
        if xa.size >= 2 and xb.size >= 2:
            if test == "mann-whitney":
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
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- resilience
_POSITIONS = ("early", "late", "random")


def _x_and_lengths(x: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray]:
    arr = _to_numpy(x, "x")
    if arr.ndim != 3:
        raise InputError(f"x must be shaped [N, T, F] (sequences, steps, features); got {arr.shape}.")
    arr = arr.astype(np.float32, copy=False)
    n, t = arr.shape[:2]
    lens = np.full(n, t, dtype=np.int64) if lengths is None else _check_lengths(lengths, n, t)
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
    arr_a, lens = _as_states(states_a, la, name="states_a")
    arr_b, lens_b = _as_states(states_b, lens, name="states_b")
    n = arr_a.shape[0]
    if arr_b.shape[:2] != arr_a.shape[:2]:
        raise InputError("The two models' states must cover the same sequences and steps.")
    thr = _check_threshold(threshold)
    step_a = _per_step_fraction(arr_a, lens, thr)  # (N, T), 0 at padding
    step_b = _per_step_fraction(arr_b, lens, thr)
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
    over_a = _group_time_mean(step_a, mask, labels)
    over_b = _group_time_mean(step_b, mask, labels)
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
        rows.append({"group": name, "size": int(sel.sum()),
                     "agreement": float(np.nanmean(agree[sel])) if np.isfinite(agree[sel]).any() else np.nan,
                     "sat_corr_sequences": _pearson(sat_a[sel], sat_b[sel]),
                     "sat_corr_time": _pearson(t_g["frac_saturated_a"].to_numpy(), t_g["frac_saturated_b"].to_numpy()),
                     "sat_mean_a": float(sat_a[sel].mean()), "sat_mean_b": float(sat_b[sel].mean())})
    if len(names) > 1:
        all_a = _group_time_mean(step_a, mask, None)["frac_saturated"].to_numpy()
        all_b = _group_time_mean(step_b, mask, None)["frac_saturated"].to_numpy()
        rows.append({"group": "all", "size": n,
                     "agreement": float(np.nanmean(agree)) if np.isfinite(agree).any() else np.nan,
                     "sat_corr_sequences": _pearson(sat_a, sat_b), "sat_corr_time": _pearson(all_a, all_b),
                     "sat_mean_a": float(sat_a.mean()), "sat_mean_b": float(sat_b.mean())})
    return pd.DataFrame(rows)


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
