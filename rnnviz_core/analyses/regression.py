"""Regression figures for people: the model's error beside what always predicting the mean gives.

An RMSE of 0.044 says nothing until it stands beside the error of a model that knows nothing:
one that answers every sequence with the mean of the true values. :func:`regression_scores`
gives both, plus R² (the share of the targets' variance the model explains: 0 = no better than
the mean, 1 = exact, below 0 = worse than the mean)::

    s = rv.regression.regression_scores(rv.predict(model, X, lengths), ds.y)
    s.rmse, s.mae, s.r2, s.baseline_rmse, s.baseline_mae

The formulas are scikit-learn's ``mean_squared_error`` (square-rooted), ``mean_absolute_error``
and ``r2_score``, averaged over every output of every sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = ["RegressionScores", "regression_scores", "format_number", "RANGE_GROUPINGS", "range_groups",
           "is_regression_table"]

#: regression groupings of :func:`rnnviz_core.groups.assign_groups`: the column of the sequence
#: table each one cuts into quarters, and the word its group names start with
RANGE_GROUPINGS = {"error_size": ("abs_error", "error"), "target_range": ("true", "true value"),
                   "prediction_range": ("pred", "prediction")}


@dataclass(frozen=True)
class RegressionScores:
    """The model's error and that of always predicting the mean of the true values."""

    n: int                 # sequences scored
    rmse: float            # root mean squared error of the model
    mae: float             # mean absolute error of the model
    r2: float              # 1 - SS_res / SS_tot; NaN when every true value is the same
    mean: float            # the mean of the true values (the baseline's constant answer)
    baseline_rmse: float   # RMSE of always answering ``mean`` (the targets' standard deviation)
    baseline_mae: float    # MAE of always answering ``mean``


def _pair(pred: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(y, dtype=np.float64)
    if p.ndim == 0 or t.ndim == 0 or p.shape[0] != t.shape[0]:
        raise InputError(f"Predictions ({p.shape}) and true values ({t.shape}) must hold one row per sequence.")
    n = p.shape[0]
    p, t = p.reshape(n, -1), t.reshape(n, -1)
    if p.shape[1] != t.shape[1]:
        if t.shape[1] == 1 and p.shape[1] >= 1:
            p = p[:, :1]
        else:
            raise InputError(f"The model gives {p.shape[1]} outputs per sequence but the data has "
                             f"{t.shape[1]} true values.")
    ok = np.isfinite(t).all(axis=1) & np.isfinite(p).all(axis=1)
    return p[ok], t[ok]


def regression_scores(pred: Any, y: Any) -> RegressionScores:
    """RMSE, MAE and R² of ``pred`` against ``y``, and the RMSE and MAE of always predicting the
    mean of ``y``.

    Parameters
    ----------
    pred : [N] or [N, K] the model's outputs.
    y : [N] or [N, K] the true values (rows with a missing value on either side are left out).
    """
    p, t = _pair(pred, y)
    n = int(p.shape[0])
    if n == 0:
        nan = float("nan")
        return RegressionScores(0, nan, nan, nan, nan, nan, nan)
    err = p - t
    mean = t.mean(axis=0)
    dev = t - mean
    ss_res = float((err ** 2).sum())
    ss_tot = float((dev ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")
    return RegressionScores(
        n=n, rmse=float(np.sqrt((err ** 2).mean())), mae=float(np.abs(err).mean()), r2=float(r2),
        mean=float(mean.mean()), baseline_rmse=float(np.sqrt((dev ** 2).mean())),
        baseline_mae=float(np.abs(dev).mean()))


def format_number(v: float, digits: int = 3) -> str:
    """A figure for people with ``digits`` significant digits, trailing zeros kept so the
    precision shows ("0.0443", "1.00", "12.5", "1.23e+04"); "" when it is not a number."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    text = f"{v:#.{digits}g}"
    mant, _, exp = text.partition("e")
    return mant.rstrip(".") + (f"e{exp}" if exp else "")


def is_regression_table(table: pd.DataFrame) -> bool:
    """Whether a :func:`sequence_table` is of a regression model (no class probabilities)."""
    return "confidence" in table.columns and bool(table["confidence"].isna().all()) and "pred" in table.columns \
        and bool(table["pred"].notna().any())


def range_groups(table: pd.DataFrame, by: str, bins: int | None) -> pd.Series:
    """A regression grouping: the error size, the true value or the prediction cut into ``bins``
    equal-count ranges (default 4, quarters, as ``pd.qcut`` cuts), each named by the smallest and
    largest value in it ("error 0.0103 to 0.0498"), smallest first. With no more distinct values
    than ``bins``, one group per value."""
    col, word = RANGE_GROUPINGS[by]
    if not is_regression_table(table) or col not in table.columns or not table[col].notna().any():
        need = "true values" if col != "pred" else "a regression model's outputs"
        raise InputError(f"Cannot group by {by!r}: it needs a regression model" +
                         (f" and {need}." if col != "pred" else "."))
    q = 4 if bins is None else int(bins)
    if q < 2:
        raise InputError("bins must be at least 2.")
    values = pd.to_numeric(table[col], errors="coerce")
    if values.nunique() <= q:
        cats = sorted(values.dropna().unique())
        lab = pd.Categorical([None if pd.isna(v) else f"{word} {v:.4g}" for v in values],
                             categories=[f"{word} {v:.4g}" for v in cats], ordered=True)
        return pd.Series(lab, index=table.index, name="group")
    codes = pd.qcut(values, q=q, duplicates="drop").cat.codes.to_numpy()
    names = []
    for c in range(int(codes.max()) + 1):   # each range named by its own smallest and largest value
        members = values.to_numpy()[codes == c]
        names.append(f"{word} {members.min():.3g} to {members.max():.3g}")
    lab = pd.Categorical.from_codes(codes, categories=list(dict.fromkeys(names)) if len(set(names)) == len(names)
                                    else [f"{n} ({i + 1})" for i, n in enumerate(names)], ordered=True)
    return pd.Series(lab, index=table.index, name="group")
