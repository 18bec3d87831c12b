"""Dataset-level aggregates a bundle computes when it is built, so that no view scans every row.

Written to ``aggregates.safetensors`` (float64/int64 arrays, listed in the manifest under
``analysis.aggregates``), summed part by part (:class:`Aggregates`): from each part's table as a
local build makes it, or from one read of each part's file (memory: one part at a time):

- ``count.<g>`` [K, T]: sequences of each group of grouping ``g`` that reach each step;
- ``score_abs.<method>.<g>`` [K, T]: the sum of |score| per group and step (mean |score| by
  position and class = this / count);
- ``hist.<column>.<g>`` [K, B]: how many sequences of each group have ``column`` (a share or a
  probability, in [0, 1]) in each of B equal bins (the value-spread views; bin b holds
  [b/B, (b+1)/B), the last bin also holds 1);
- ``pos_rel.<method>.<g>`` [K, P] and ``pos_rel_n.<method>.<g>`` [K, P]: the sum and count of
  each sequence's |score| shares (|score| / its sum over the sequence) in P equal bins of the
  relative position ``(t + 0.5) / length`` -- the Contributions page's "by position" and "by
  true class" curves (:func:`rnnviz_core.attribution.rankings.mean_abs_by_position` with
  ``relative=True, normalize=True``; :func:`position_frame` reads them back). Bundles built
  before these were added lack them (``position_bins`` absent from the manifest entry).

- ``cmp.<grouping>`` [pairs, metrics, fields]: the group comparison tables of the Saturation page
  (:mod:`rnnviz_core.bundle_compare`; manifest entry ``comparisons``).
- ``hz.summary`` and ``hz.compare``: the Contributions page's decision step and memory horizon
  tables (:mod:`rnnviz_core.bundle_horizon_tables`; manifest entry ``horizon_tables``).

Groupings: ``predicted_class`` and ``true_class`` (when the bundle has them) and ``all`` (one
group). Group labels are in sorted order (the order does not depend on how rows were split into
parts, so a local and a Ray build write the same arrays).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

FILE = "aggregates.safetensors"
BINS = 20
POSITION_BINS = 10
HIST_COLUMNS = ("confidence", "frac_saturated", "frac_saturated_final")
GROUPINGS = ("all", "predicted_class", "true_class")


def text_codes(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct values of an Arrow column as text, sorted; each row's index into them): what
    ``np.unique(np.asarray([str(v) for v in col.to_pylist()], dtype=str), return_inverse=True)``
    gives (a missing value is "None"), with the values encoded by Arrow and only the distinct ones
    made text (a Python string per row took most of a part's grouping time)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    words = np.asarray([str(v) for v in enc.dictionary.to_pylist()], dtype=str)
    codes = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    uniq, remap = np.unique(words, return_inverse=True)
    return uniq, remap.reshape(-1)[codes]


class Aggregates:
    """The aggregates, one part at a time: :meth:`add` each part's ``columns`` (an Arrow table),
    then :meth:`finish` -> (arrays, manifest entry)."""

    def __init__(self, schema_names: Sequence[str], t_max: int, methods: Sequence[str]):
        self.t_max, self.methods = t_max, list(methods)
        self.groupings = [g for g in GROUPINGS if g == "all" or g in schema_names]
        self.hist_cols = [c for c in HIST_COLUMNS if c in schema_names]
        groupings, hist_cols = self.groupings, self.hist_cols
        self.labels: dict[str, dict[str, int]] = {g: {} for g in groupings}
        self.count: dict[str, np.ndarray] = {g: np.zeros((0, t_max)) for g in groupings}
        self.score: dict[tuple[str, str], np.ndarray] = {(m, g): np.zeros((0, t_max)) for m in methods
                                                         for g in groupings}
        self.hist: dict[tuple[str, str], np.ndarray] = {(c, g): np.zeros((0, BINS), np.int64) for c in hist_cols
                                                        for g in groupings}
        self.rel: dict[tuple[str, str], np.ndarray] = {(m, g): np.zeros((0, POSITION_BINS)) for m in methods
                                                       for g in groupings}
        self.rel_n: dict[tuple[str, str], np.ndarray] = {(m, g): np.zeros((0, POSITION_BINS), np.int64)
                                                         for m in methods for g in groupings}
        self.columns = ["length"] + [g for g in groupings if g != "all"] + hist_cols + [f"score:{m}" for m in methods]

    def add(self, tbl) -> None:
        from .trajectories import valid_mask

        methods, groupings, hist_cols = self.methods, self.groupings, self.hist_cols
        labels, count, score, hist, rel, rel_n = self.labels, self.count, self.score, self.hist, self.rel, self.rel_n

        def grow(arr: np.ndarray, k: int) -> np.ndarray:
            return arr if arr.shape[0] >= k else np.vstack([arr, np.zeros((k - arr.shape[0], arr.shape[1]), arr.dtype)])

        lens = tbl["length"].to_numpy().astype(np.int64)
        t = int(lens.max())
        mask = valid_mask(lens, t)
        absval = {}
        for m in methods:
            vals = tbl[f"score:{m}"].combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(np.float64)
            arr = np.zeros(mask.shape)
            arr[mask] = np.abs(vals)
            absval[m] = arr
        r_idx, t_idx = np.nonzero(mask)
        pos = np.minimum(((t_idx + 0.5) / lens[r_idx] * POSITION_BINS).astype(np.int64), POSITION_BINS - 1)
        # per sequence and position bin: its steps (the same for every method) and, per method, the
        # sum of its |score| shares, NaN scores counting as 0, as the page draws them; a sequence
        # whose scores sum to 0 counts in no bin. The groups then add up whole rows (before: one
        # count over every step per method and grouping).
        n_rows = len(lens)
        cell = r_idx * POSITION_BINS + pos
        row_n = np.bincount(cell, minlength=n_rows * POSITION_BINS).reshape(n_rows, POSITION_BINS)
        shares = {}
        for m in methods:
            a = np.nan_to_num(absval[m])
            tot = a.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                v = (a / np.where(tot > 0, tot, 1.0)[:, None])[r_idx, t_idx]
            row_sum = np.bincount(cell, weights=v, minlength=n_rows * POSITION_BINS).reshape(n_rows, POSITION_BINS)
            shares[m] = (row_sum, tot > 0)
        bins = {}
        for c in hist_cols:
            v = tbl[c].to_numpy(zero_copy_only=False).astype(np.float64)
            ok = np.isfinite(v)
            b = np.clip(np.floor(np.nan_to_num(v) * BINS).astype(np.int64), 0, BINS - 1)
            bins[c] = (b, ok)
        for g in groupings:
            if g == "all":
                lab = np.zeros(len(lens), dtype=np.int64)
                labels[g].setdefault("all", 0)
            else:
                uniq, inv = text_codes(tbl[g])
                code = np.asarray([labels[g].setdefault(str(u), len(labels[g])) for u in uniq], dtype=np.int64)
                lab = code[inv]
            k = len(labels[g])
            count[g] = grow(count[g], k)
            for m in methods:
                score[(m, g)] = grow(score[(m, g)], k)
            for c in hist_cols:
                hist[(c, g)] = grow(hist[(c, g)], k)
            for m in methods:
                rel[(m, g)], rel_n[(m, g)] = grow(rel[(m, g)], k), grow(rel_n[(m, g)], k)
            for gi in np.unique(lab):
                sel = lab == gi
                count[g][gi, :t] += mask[sel].sum(axis=0)
                for m in methods:
                    score[(m, g)][gi, :t] += absval[m][sel].sum(axis=0)
                    row_sum, ok = shares[m]
                    rows = sel & ok
                    rel[(m, g)][gi] += row_sum[rows].sum(axis=0)
                    rel_n[(m, g)][gi] += row_n[rows].sum(axis=0)
                for c in hist_cols:
                    b, ok = bins[c]
                    hist[(c, g)][gi] += np.bincount(b[sel & ok], minlength=BINS)

    def finish(self) -> tuple[dict[str, np.ndarray], dict]:
        methods, groupings, hist_cols = self.methods, self.groupings, self.hist_cols
        labels, count, score, hist, rel, rel_n = self.labels, self.count, self.score, self.hist, self.rel, self.rel_n
        arrays: dict[str, np.ndarray] = {}
        listed: dict[str, list[str]] = {}
        for g in groupings:
            names = list(labels[g])
            order = sorted(range(len(names)), key=lambda i: names[i])
            listed[g] = [names[i] for i in order]
            arrays[f"count.{g}"] = np.ascontiguousarray(count[g][order])
            for m in methods:
                arrays[f"score_abs.{m}.{g}"] = np.ascontiguousarray(score[(m, g)][order])
            for c in hist_cols:
                arrays[f"hist.{c}.{g}"] = np.ascontiguousarray(hist[(c, g)][order])
            for m in methods:
                arrays[f"pos_rel.{m}.{g}"] = np.ascontiguousarray(rel[(m, g)][order])
                arrays[f"pos_rel_n.{m}.{g}"] = np.ascontiguousarray(rel_n[(m, g)][order])
        return arrays, {"groupings": listed, "bins": BINS, "hist_columns": hist_cols, "position_bins": POSITION_BINS}


def check(header: Mapping[str, tuple], entry: object, methods: Sequence[str], t_max: int, refuse,
          stored_groupings: object = None) -> None:
    """The aggregates file's arrays against the manifest entry (names, dtypes, shapes), headers only
    (with the group comparisons, :mod:`rnnviz_core.bundle_compare`, and the horizon tables,
    :mod:`rnnviz_core.bundle_horizon_tables`, when the entry lists them)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("groupings"), dict) \
            or entry.get("bins") != BINS or not isinstance(entry.get("hist_columns"), list):
        raise refuse("Its manifest's description of the aggregates is not one this rnnviz reads.")
    cols = entry["hist_columns"]
    if not set(map(str, cols)) <= set(HIST_COLUMNS):
        raise refuse("Its manifest names aggregates of columns that a bundle does not aggregate.")
    want: dict[str, tuple] = {}
    for g, labels in entry["groupings"].items():
        if g not in GROUPINGS or not isinstance(labels, list) or not 1 <= len(labels) <= 100_000:
            raise refuse("Its manifest names an aggregate grouping that a bundle does not have.")
        k = len(labels)
        want[f"count.{g}"] = ("F64", (k, t_max))
        for m in methods:
            want[f"score_abs.{m}.{g}"] = ("F64", (k, t_max))
        for c in cols:
            want[f"hist.{c}.{g}"] = ("I64", (k, BINS))
        if "position_bins" in entry:
            if entry["position_bins"] != POSITION_BINS:
                raise refuse("Its manifest's description of the aggregates is not one this rnnviz reads.")
            for m in methods:
                want[f"pos_rel.{m}.{g}"] = ("F64", (k, POSITION_BINS))
                want[f"pos_rel_n.{m}.{g}"] = ("I64", (k, POSITION_BINS))
    if "comparisons" in entry:
        from . import bundle_compare

        want.update(bundle_compare.expected(entry["comparisons"], stored_groupings, refuse))
    if "horizon_tables" in entry:
        from . import bundle_horizon_tables

        want.update(bundle_horizon_tables.expected(entry["horizon_tables"], refuse))
    if set(header) != set(want):
        odd = sorted(set(header) ^ set(want))[0]
        raise refuse(f"'{FILE}' does not hold the arrays its manifest describes ('{odd[:60]}').")
    for key, (dt, shape) in want.items():
        if (header[key][0], tuple(header[key][1])) != (dt, shape):
            raise refuse(f"'{FILE}' holds '{key[:60]}' with another type or shape than its manifest describes.")


def position_frame(bundle, method: str, by: str = "all", name: str = "true class"):
    """Mean |score| share by relative position from a bundle's aggregates, in the frame
    :func:`rnnviz_core.attribution.rankings.mean_abs_by_position` gives with ``relative=True,
    normalize=True`` (columns ``bin, bin_start, bin_end, position, mean_abs, n``; with ``by``
    other than ``all`` a first column ``name`` holding the group). None when the bundle was built
    without these aggregates."""
    import pandas as pd

    entry = bundle.manifest.get("analysis", {}).get("aggregates") or {}
    if entry.get("position_bins") != POSITION_BINS or by not in entry.get("groupings", {}) \
            or method not in bundle.methods:
        return None
    arr = bundle._arrays(FILE)
    s, n = arr[f"pos_rel.{method}.{by}"], arr[f"pos_rel_n.{method}.{by}"]
    gi, bi = np.nonzero(n > 0)
    out = pd.DataFrame({"bin": bi.astype(np.int64), "bin_start": bi / POSITION_BINS, "bin_end": (bi + 1) / POSITION_BINS,
                        "position": (bi + 0.5) / POSITION_BINS, "mean_abs": s[gi, bi] / n[gi, bi],
                        "n": n[gi, bi].astype(np.int64)})
    if by != "all":
        out.insert(0, name, np.asarray(entry["groupings"][by], dtype=object)[gi])
    return out
