"""Group comparison tables computed when a bundle is built (issue 21), so that the Saturation
page's "Group A vs group B" table reads a few numbers instead of scanning every sequence.

For each stored saturation grouping (``true_class``, ``predicted_class``, ``outcome``,
``saturation``, ``data:<name>``) with 2 to :data:`MAX_GROUPS` groups, and each ordered pair of its
groups (A, B), :func:`rnnviz_core.groups.compare_groups`' computation
(:func:`rnnviz_core.analyses.compare.compare_values`) is run on the per-sequence table at build
time with the metrics the page compares (:func:`metrics_of`). The numbers go to
``aggregates.safetensors`` as ``cmp.<grouping>`` float64 [pairs, metrics, fields] (pairs in the
order of :func:`pairs`, fields :data:`FIELDS`); the manifest's ``analysis.aggregates.comparisons``
names the groups, metrics and which metrics are 0/1 outcomes. :meth:`Bundle.group_comparison`
gives back the frame ``compare_groups`` gives.

Group labels are as the page names them: each value as text, a missing one as "nan". Memory at
build time: the compared columns and the grouping columns of every sequence (about 8 bytes per
value; 10M sequences x 12 columns: about 1 GB).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

#: most groups of a grouping whose pairs are compared at build time (90 ordered pairs)
MAX_GROUPS = 10
#: the numeric columns of compare_groups' frame, in the stored order
FIELDS = ("n_a", "n_b", "mean_a", "mean_b", "ci_a_low", "ci_a_high", "ci_b_low", "ci_b_high", "median_a", "median_b",
          "statistic", "p_value", "p_adjusted", "effect_size")
#: the per-sequence columns the comparison may read (``pred`` only to tell a regression table)
COLUMNS = ("pred", "correct", "abs_error", "loss", "confidence", "frac_saturated", "frac_saturated_final")
TEST = "mann-whitney"


def metrics_of(table: pd.DataFrame) -> list[str]:
    """The metrics the Saturation page compares: :func:`~rnnviz_core.groups.metric_columns`
    without resilience columns, and without loss and confidence for a regression model."""
    from .groups import metric_columns
    from .regression import is_regression_table

    skip = ("output_change", "flipped") + (("loss", "confidence") if is_regression_table(table) else ())
    return [m for m in metric_columns(table) if m not in skip]


def labels_of(values: np.ndarray) -> np.ndarray:
    """Each value's group label as the page names it (text; missing -> "nan")."""
    values = np.asarray(values)
    if values.dtype == object and all(type(v) is str for v in set(values.tolist())):
        return values.astype(str).astype(object)   # text already (the outcome, class and level columns)
    cat = pd.Categorical(values)
    cat = cat.rename_categories([str(c) for c in cat.categories])
    if cat.isna().any():
        cat = cat.add_categories(["nan"]) if "nan" not in cat.categories else cat
        cat = cat.fillna("nan")
    return np.asarray(cat.astype(str))


def pairs(k: int) -> list[tuple[int, int]]:
    """Ordered pairs (i, j), i != j, of k groups, in the stored order."""
    return [(i, j) for i in range(k) for j in range(k) if i != j]


def compute(per_seq: Any, groupings: Sequence[str]) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, manifest entry) of the comparisons for the stored ``groupings``; ``per_seq``: an
    Arrow table of every sequence's :data:`COLUMNS` and grouping columns (those the parts have),
    in row order (:class:`rnnviz_core.bundle_build._AfterPass`)."""
    from .analyses.compare import benjamini_hochberg, compare_values
    from .analyses.intervals import is_binary

    names = set(per_seq.column_names)
    cols = {c: per_seq[c].to_numpy() for c in [c for c in COLUMNS if c in names] + [g for g in groupings if g in names]}
    table = pd.DataFrame({c: cols[c] for c in COLUMNS if c in names})
    metrics = metrics_of(table)
    arrays: dict[str, np.ndarray] = {}
    entry: dict[str, Any] = {"test": TEST, "fields": list(FIELDS), "metrics": metrics, "binary": [],
                             "max_groups": MAX_GROUPS, "groupings": {}}
    if not metrics:
        return arrays, entry
    # each metric's numbers once (what compare_groups reads from the table for every pair)
    values = []
    for m in metrics:
        v = pd.to_numeric(table[m], errors="coerce").to_numpy(dtype=np.float64)
        values.append((m, v, is_binary(v, table[m].dtype)))
    fields = [f for f in FIELDS if f != "p_adjusted"]
    binary = None
    for g in groupings:
        if g not in names:
            continue
        lab = labels_of(cols[g])
        groups = sorted(set(lab.tolist()))
        if not 2 <= len(groups) <= MAX_GROUPS:
            continue
        out = np.full((len(groups) * (len(groups) - 1), len(metrics), len(FIELDS)), np.nan)
        masks = [lab == s for s in groups]
        cache: dict = {}   # each group's intervals once, not once per pair
        for p, (i, j) in enumerate(pairs(len(groups))):
            # compare_groups' rows for (groups[i], groups[j]), without a frame per pair
            rows = compare_values(values, masks[i], masks[j], (groups[i], groups[j]), groups[i], groups[j],
                                  test=TEST, interval_cache=cache)
            for k, row in enumerate(rows):
                out[p, k, [FIELDS.index(f) for f in fields]] = [row[f] for f in fields]
            out[p, :, FIELDS.index("p_adjusted")] = benjamini_hochberg(out[p, :, FIELDS.index("p_value")].copy())
            binary = [row["test"] == "Fisher's exact" for row in rows]
        arrays[f"cmp.{g}"] = out
        entry["groupings"][g] = groups
    entry["binary"] = binary or [False] * len(metrics)
    return arrays, entry


def expected(entry: Any, stored_groupings: Any, refuse) -> dict[str, tuple]:
    """The arrays ``entry`` (the manifest's ``comparisons``) describes: name -> (dtype, shape);
    refuses an entry this rnnviz does not write."""
    bad = refuse("Its manifest's description of the group comparisons is not one this rnnviz reads.")
    if not isinstance(entry, dict) or entry.get("test") != TEST or entry.get("fields") != list(FIELDS) \
            or not isinstance(entry.get("metrics"), list) or not isinstance(entry.get("binary"), list) \
            or not isinstance(entry.get("groupings"), dict) or entry.get("max_groups") != MAX_GROUPS:
        raise bad
    metrics = entry["metrics"]
    if len(set(map(str, metrics))) != len(metrics) or not set(map(str, metrics)) <= set(COLUMNS) - {"pred"} \
            or len(entry["binary"]) != len(metrics) or not all(isinstance(v, bool) for v in entry["binary"]):
        raise bad
    want = {}
    for g, groups in entry["groupings"].items():
        if g not in (stored_groupings or {}) or not isinstance(groups, list) \
                or not 2 <= len(groups) <= MAX_GROUPS or not all(isinstance(s, str) and len(s) <= 1_000 for s in groups) \
                or len(set(groups)) != len(groups):
            raise bad
        want[f"cmp.{g}"] = ("F64", (len(groups) * (len(groups) - 1), len(metrics), len(FIELDS)))
    return want


def frame(bundle: Any, by: str, a: Any, b: Any) -> pd.DataFrame | None:
    """The build-time comparison of groups ``a`` and ``b`` under stored grouping ``by`` as
    :func:`~rnnviz_core.groups.compare_groups` gives it (one row per metric); None when the bundle
    holds none for them (built before these tables, or a grouping of more than
    :data:`MAX_GROUPS` groups)."""
    from .bundle_aggregates import FILE

    entry = (bundle.manifest.get("analysis", {}).get("aggregates") or {}).get("comparisons")
    if not isinstance(entry, dict) or by not in entry.get("groupings", {}):
        return None
    groups = entry["groupings"][by]
    ga, gb = str(a), str(b)
    if ga not in groups or gb not in groups or ga == gb:
        return None
    p = pairs(len(groups)).index((groups.index(ga), groups.index(gb)))
    vals = bundle._arrays(FILE)[f"cmp.{by}"][p]
    out = pd.DataFrame(vals, columns=list(FIELDS))
    for c in ("n_a", "n_b"):
        out[c] = out[c].astype(np.int64)
    names = ["Fisher's exact" if v else "Mann-Whitney U" for v in entry["binary"]]
    effects = ["Cohen's h" if v else "rank-biserial r" for v in entry["binary"]]
    out.insert(0, "metric", list(entry["metrics"]))
    out.insert(1, "group_a", a)
    out.insert(2, "group_b", b)
    out.insert(out.columns.get_loc("statistic"), "test", names)
    out["effect_name"] = effects
    return out


def group_sizes(bundle: Any, by: str) -> dict[str, int] | None:
    """{group label: sequences} of stored grouping ``by``, in the stored (sorted) order, from the
    build-time comparisons (each group's size is its largest count over the compared metrics: the
    saturation shares are never missing); None when the bundle holds no comparison for ``by``."""
    from .bundle_aggregates import FILE

    entry = (bundle.manifest.get("analysis", {}).get("aggregates") or {}).get("comparisons")
    if not isinstance(entry, dict) or by not in entry.get("groupings", {}):
        return None
    groups = entry["groupings"][by]
    vals = bundle._arrays(FILE)[f"cmp.{by}"]            # [pairs, metrics, fields]
    ia = FIELDS.index("n_a")
    sizes: dict[str, int] = {}
    for p, (i, _) in enumerate(pairs(len(groups))):
        sizes[groups[i]] = max(sizes.get(groups[i], 0), int(np.nanmax(vals[p, :, ia])))
    return {g: sizes[g] for g in groups}
