"""95% intervals: bootstrap for means (up to BOOTSTRAP_MAX_N), Clopper-Pearson for shares, Fisher z for correlations."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd


# ----------------------------------------------------------------------------- intervals
CONFIDENCE = 0.95
_BOOT_RESAMPLES = 999


def is_binary(values: np.ndarray, dtype: Any = None) -> bool:
    """A 0/1 outcome (bool column, or only the values 0 and 1)."""
    v = values[np.isfinite(values)]
    if dtype is not None and pd.api.types.is_bool_dtype(dtype):
        return True
    return v.size > 0 and bool(np.isin(v, (0.0, 1.0)).all())


#: above this many values the mean's interval is Student's t (``scipy.stats.t``): the bootstrap
#: gives the same interval there (central limit) at a cost that grows with n x resamples
BOOTSTRAP_MAX_N = 500


def _t_interval(x: np.ndarray) -> tuple[float, float]:
    """Student's t interval of the mean, as ``scipy.stats.t.interval(CONFIDENCE, n - 1, loc=mean,
    scale=sem)`` computes it (its quantile is ``scipy.special.stdtrit``), without the
    distribution object's per-call set-up (about 0.7 ms a call)."""
    from scipy import special

    n = x.size
    loc, scale = x.mean(), x.std(ddof=1) / np.sqrt(n)
    q = (1.0 - CONFIDENCE) / 2
    return (float(special.stdtrit(n - 1, q) * scale + loc), float(special.stdtrit(n - 1, 1.0 - q) * scale + loc))


@functools.lru_cache(maxsize=8)
def _resamples(n: int, seed: int) -> np.ndarray:
    """[resamples, n] indices of the bootstrap resamples ``scipy.stats.bootstrap`` draws for n
    values with ``rng=np.random.default_rng(seed)`` (one batch: ``rng.integers(0, n, (resamples,
    n))``). Kept for a few (n, seed) (4 MB each at n = 500): every measure of one group of n
    sequences shares them, as one ``bootstrap`` call over several rows shares its resamples, so a
    table of several measures draws once per group. Read-only."""
    idx = np.random.default_rng(seed).integers(0, n, (_BOOT_RESAMPLES, n))
    idx.flags.writeable = False
    return idx


def _bootstrap_means(rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals of the mean of each row of ``rows`` [M, n] (finite values):
    ``scipy.stats.bootstrap((row,), np.mean, n_resamples=999, method="percentile",
    rng=np.random.default_rng(seed))``'s interval, from the same resamples (:func:`_resamples`)
    and the same quantiles (linear); equal to scipy's within rounding."""
    idx = _resamples(rows.shape[1], int(seed))
    theta = np.stack([r[idx].mean(axis=-1) for r in rows], axis=1)     # [resamples, M]
    alpha = (1.0 - CONFIDENCE) / 2
    lo, hi = np.quantile(theta, [alpha, 1.0 - alpha], axis=0)
    return lo, hi


def mean_ci(x: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean: percentile bootstrap (999 resamples, the draws and quantiles of
    ``scipy.stats.bootstrap(..., method="percentile", rng=np.random.default_rng(seed))``, tested
    against it) up to :data:`BOOTSTRAP_MAX_N` values, Student's t interval beyond; (v, v) when
    every value is v; NaN with fewer than 2 values."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return (float("nan"), float("nan"))
    if np.ptp(x) == 0:
        return (float(x[0]), float(x[0]))
    if x.size > BOOTSTRAP_MAX_N:
        return _t_interval(x)
    lo, hi = _bootstrap_means(x[None, :], seed)
    return (float(lo[0]), float(hi[0]))


def mean_cis(rows: np.ndarray, seed: int = 0) -> list[tuple[float, float]]:
    """:func:`mean_ci` of each row of ``rows`` [M, n]; the rows that need the bootstrap share its
    resamples (as one ``scipy.stats.bootstrap`` call with a vector-valued statistic would)."""
    out: list[tuple[float, float]] = [(float("nan"), float("nan"))] * rows.shape[0]
    joint = []
    for j, r in enumerate(rows):
        fin = r[np.isfinite(r)]
        if fin.size != r.size or r.size < 2 or np.ptp(r) == 0 or r.size > BOOTSTRAP_MAX_N:
            out[j] = mean_ci(r, seed)
        else:
            joint.append(j)
    if joint:
        lo, hi = _bootstrap_means(np.asarray(rows[joint], dtype=np.float64), seed)
        for k, j in enumerate(joint):
            out[j] = (float(lo[k]), float(hi[k]))
    return out


def share_ci(k: int, n: int) -> tuple[float, float]:
    """95% interval of a share k/n: Clopper-Pearson, from its closed form in beta quantiles
    (``scipy.special.betaincinv``); the same interval as ``scipy.stats.binomtest(k,
    n).proportion_ci()``, which finds each end by root search (within 1e-12, about 300x sooner:
    the bundle build takes one per group and metric)."""
    from scipy import special

    if n < 1:
        return (float("nan"), float("nan"))
    k, n = int(k), int(n)
    alpha = (1.0 - CONFIDENCE) / 2
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1.0 - alpha))
    return (low, high)


def interval_of(values: np.ndarray, binary: bool, seed: int = 0) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if binary:
        return share_ci(int(v.sum()), int(v.size))
    return mean_ci(v, seed)


def corr_ci(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """95% interval of a Pearson correlation (``scipy.stats.pearsonr(...).confidence_interval``)."""
    from scipy import stats

    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 4 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return (float("nan"), float("nan"))
    ci = stats.pearsonr(a, b).confidence_interval(confidence_level=CONFIDENCE)
    return (float(ci.low), float(ci.high))
