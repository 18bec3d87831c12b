"""Two groups compared: a test per measure (Mann-Whitney U + rank-biserial r, Welch + Cohen's d, or
two shares + Cohen's h), 95% intervals, and the Benjamini-Hochberg corrected p-value."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .intervals import interval_of, is_binary
from .outcomes import assign_groups, metric_columns


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
    interval_cache: dict | None = None,
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

    Every group mean has a 95% interval: Clopper-Pearson (``scipy.stats.binomtest(k, n).proportion_ci``'s) for a 0/1
    outcome (a share), a percentile bootstrap of the mean (``scipy.stats.bootstrap``, 999
    resamples, seeded by ``seed`` for both groups, so a group's interval is the same as A or as B) otherwise, or Student's t interval for groups of more than
    :data:`BOOTSTRAP_MAX_N` sequences (where the two agree and the bootstrap gets slow). ``p_adjusted`` controls the false discovery rate
    across the table's rows (Benjamini–Hochberg, ``scipy.stats.false_discovery_control``).

    Caveats: the tests treat sequences as independent samples, which overlapping windows of
    one series are not; the groups are often defined from the model's own behaviour (e.g.
    saturation) so a difference is an association, not a cause; with thousands of sequences tiny
    differences become "significant" — read the effect size first. Fewer than 2 sequences in a
    group gives NaN. ``interval_cache``: a dict kept across calls on one table and grouping (the
    bundle build compares every pair of groups), so each group's interval is computed once.

    Returns
    -------
    frame with ``metric, group_a, group_b, n_a, n_b, mean_a, mean_b, ci_a_low, ci_a_high,
    ci_b_low, ci_b_high, median_a, median_b, test, statistic, p_value, p_adjusted, effect_size,
    effect_name``.
    """
    if test not in ("mann-whitney", "welch"):
        raise InputError(f"test must be 'mann-whitney' or 'welch'; got {test!r}.")
    g = assign_groups(table, by, bins=bins).astype(str).to_numpy()
    ga, gb = str(a), str(b)
    present = set(g)
    for name in (ga, gb):
        if name not in present:
            raise InputError(f"There is no group {name!r}; the groups are {', '.join(sorted(present))}.")
    if metrics is None:
        metrics = metric_columns(table)
    elif isinstance(metrics, str):
        metrics = [metrics]
    values = []
    for m in metrics:
        if m not in table.columns:
            raise InputError(f"There is no column {m!r} to compare; choose one of {', '.join(metric_columns(table))}.")
        v = pd.to_numeric(table[m], errors="coerce").to_numpy(dtype=np.float64)
        values.append((m, v, is_binary(v, table[m].dtype)))
    rows = compare_values(values, g == ga, g == gb, (ga, gb), a, b, test=test, seed=seed, interval_cache=interval_cache)
    out = pd.DataFrame(rows)
    out.insert(out.columns.get_loc("p_value") + 1, "p_adjusted", benjamini_hochberg(out["p_value"].to_numpy(dtype=np.float64))
               if len(out) else [])
    return out


def compare_values(values: Sequence[tuple[str, np.ndarray, bool]], in_a: np.ndarray, in_b: np.ndarray,
                   keys: tuple[str, str], a: Any, b: Any, *, test: str = "mann-whitney", seed: int = 0,
                   interval_cache: dict | None = None) -> list[dict]:
    """:func:`compare_groups`' rows (without ``p_adjusted``) from numbers: ``values`` (metric,
    float64 values of every sequence, whether a 0/1 outcome), the two groups' masks, their labels
    as text (``keys``, for the interval cache) and as given (``a``, ``b``). The bundle build calls
    it for every pair of groups without building a frame per pair."""
    from scipy import stats

    ga, gb = keys
    rows = []
    for m, v, binary in values:
        fin = np.isfinite(v)
        xa = v[in_a & fin]
        xb = v[in_b & fin]
        # a group's interval depends on its values and seed only, not on its side: a group shows the
        # same interval as A or as B (with a cache kept across calls on one table and grouping, it
        # is computed once per group)
        # (and its mean and median: each group's numbers once per table, not once per pair)
        cache = {} if interval_cache is None else interval_cache
        for key, x in (((ga, m, seed), xa), ((gb, m, seed), xb)):
            if key not in cache:
                cache[key] = (interval_of(x, binary, key[2]), x.mean() if x.size else np.nan,
                              np.median(x) if x.size else np.nan)
        (ci_a, mean_a, median_a), (ci_b, mean_b, median_b) = cache[(ga, m, seed)], cache[(gb, m, seed)]
        row = {"metric": m, "group_a": a, "group_b": b, "n_a": xa.size, "n_b": xb.size,
               "mean_a": mean_a, "mean_b": mean_b,
               "ci_a_low": ci_a[0], "ci_a_high": ci_a[1], "ci_b_low": ci_b[0], "ci_b_high": ci_b[1],
               "median_a": median_a, "median_b": median_b,
               "test": "Fisher's exact" if binary else ("Mann-Whitney U" if test == "mann-whitney" else "Welch's t"),
               "statistic": np.nan, "p_value": np.nan, "effect_size": np.nan,
               "effect_name": "Cohen's h" if binary else ("rank-biserial r" if test == "mann-whitney" else "Cohen's d")}
        if xa.size >= 2 and xb.size >= 2:
            if binary:
                ka, kb = int(xa.sum()), int(xb.sum())
                odds, p_value = fisher_exact_2x2(ka, xa.size - ka, kb, xb.size - kb)
                row.update(statistic=odds, p_value=p_value,
                           effect_size=2 * np.arcsin(np.sqrt(ka / xa.size)) - 2 * np.arcsin(np.sqrt(kb / xb.size)))
            elif test == "mann-whitney":
                if np.ptp(np.r_[xa, xb]) == 0:  # every value equal: no difference at all
                    row.update(statistic=xa.size * xb.size / 2, p_value=1.0, effect_size=0.0)
                else:
                    u, p_value = mann_whitney(xa, xb)
                    row.update(statistic=u, p_value=p_value, effect_size=2.0 * u / (xa.size * xb.size) - 1.0)
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
    return rows


def fisher_exact_2x2(a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """(odds ratio, two-sided p) of Fisher's exact test of the table [[a, b], [c, d]], as
    ``scipy.stats.fisher_exact`` gives them (tested against it): the p-value sums the hypergeometric
    probabilities of every table with the same margins that is at most as likely as this one
    (within a relative 1e-7, so that tables equally likely in exact arithmetic count, as R's
    ``fisher.test`` does), from log-gamma functions over the whole support at once (scipy's call
    costs about 0.4 ms; the bundle build runs one per pair of groups and 0/1 measure). A row or
    column of zeros: (NaN, 1)."""
    from scipy import special

    a, b, c, d = int(a), int(b), int(c), int(d)
    if min(a, b, c, d) < 0:
        raise ValueError("a 2x2 table's counts must be >= 0")
    if a + b == 0 or c + d == 0 or a + c == 0 or b + d == 0:
        return float("nan"), 1.0
    odds = float(a * d / (c * b)) if c > 0 and b > 0 else float("inf")
    n1, n2, k = a + b, c + d, a + c            # row sums, first column's sum
    x = np.arange(max(0, k - n2), min(k, n1) + 1, dtype=np.float64)

    def log_choose(n: Any, r: Any) -> Any:
        return special.gammaln(n + 1.0) - special.gammaln(r + 1.0) - special.gammaln(n - r + 1.0)

    logp = log_choose(n1, x) + log_choose(n2, k - x) - log_choose(n1 + n2, k)
    observed = logp[a - int(x[0])]
    p = float(np.exp(logp[logp <= observed + np.log1p(1e-7)]).sum())
    return odds, min(p, 1.0)


def mann_whitney(xa: np.ndarray, xb: np.ndarray) -> tuple[float, float]:
    """(U of ``xa``, two-sided p) of the Mann–Whitney U test, as ``scipy.stats.mannwhitneyu(xa,
    xb, alternative="two-sided")`` gives them (tested against it): with more than 8 values on each
    side (or ties) scipy's normal approximation with tie and continuity corrections, computed here
    from the average ranks (scipy's call costs about 1 ms, most of it checking its arguments; the
    bundle build runs one per pair of groups and measure); scipy's own exact test otherwise."""
    from scipy import special, stats

    n1, n2 = xa.size, xb.size
    xy = np.concatenate([xa, xb])
    _, inverse, ties = np.unique(xy, return_inverse=True, return_counts=True)
    if (n1 <= 8 or n2 <= 8) and not (ties > 1).any():
        res = stats.mannwhitneyu(xa, xb, alternative="two-sided")
        return float(res.statistic), float(res.pvalue)
    # average rank of each distinct value: the ranks its copies share
    upper = np.cumsum(ties)
    ranks = (upper - (ties - 1) / 2.0)[inverse]
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)
    t = ties.astype(np.float64)
    n = n1 + n2
    s = np.sqrt(n1 * n2 / 12 * ((n + 1) - float(np.sum(t ** 3 - t)) / (n * (n - 1))))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (u - n1 * n2 / 2 - 0.5) / s
    return u1, float(np.clip(2.0 * special.ndtr(-z), 0.0, 1.0))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values over the finite ones (NaN stays NaN): each sorted p
    times m / its rank, then the running minimum from the largest, at most 1 (what
    ``scipy.stats.false_discovery_control(p, method="bh")`` computes; tested against it)."""
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q = np.clip(p[ok], 0.0, 1.0)
        m = q.size
        order = np.argsort(q, kind="stable")
        adj = q[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(adj[::-1])[::-1]
        res = np.empty(m)
        res[order] = np.clip(adj, 0.0, 1.0)
        out[ok] = res
    return out
