"""What the pages read from an analysis bundle, without ever reading its sequence table whole.

A bundle the host names (``$RNNVIZ_BUNDLE``) may hold millions of sequences, so the pages read it
through :meth:`rnnviz_core.bundle.Bundle.lazy` (the rows and columns a view needs), the arrays
written at build time (``samples``, ``saturation`` and ``aggregates``) and nothing else:

- the sampled sequences (the only ones A and B can be): their ids, lengths and classes;
- per-step columns (scores, PCA coordinates, |h|) of those rows only;
- one or a few per-sequence columns of every sequence (the score on the Start page, the group
  comparison on the Saturation page): scalars only, never the per-step lists.

Small results are kept with the bundle object (a weak key: they go when the bundle leaves the
server's cache). Works the same for a bundle read whole (an upload).
"""
from __future__ import annotations

import weakref
from typing import Any, Sequence

import numpy as np
import pandas as pd

#: a bundle with at most this many sequences draws the PCA cloud from every sequence (as the live
#: page does); a larger one from its sampled sequences, and the caption says so
CLOUD_ROWS = 2000
#: a bundle built before the position aggregates: the position curves are computed from its
#: scores when it holds at most this many (sequence, step) cells, else the page says why not
FALLBACK_CELLS = 5_000_000

_KEPT: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def kept(b: Any) -> dict:
    """Small results kept with the bundle object (gone when the bundle leaves the server's cache)."""
    return _kept(b)


def _kept(b: Any) -> dict:
    try:
        return _KEPT.setdefault(b, {})
    except TypeError:   # an object that cannot be weakly referenced: nothing kept
        return {}


def table_names(b: Any) -> list[str]:
    """The sequence table's column names (from a part's footer: nothing read)."""
    kept = _kept(b)
    if "names" not in kept:
        kept["names"] = b.lazy().names()
    return kept["names"]


def data_names(b: Any) -> dict[str, str]:
    """The table's data columns (``data:<name>``) -> the name the pages use (``<name>``, or
    ``<name>_data`` where the sequence table has a column of that name), as
    :attr:`rnnviz_core.bundle.Bundle.sequences` names them."""
    names = table_names(b)
    plain = {"seq"} | {c for c in names if not c.startswith("data:")}
    return {c: c[5:] + ("_data" if c[5:] in plain else "") for c in names if c.startswith("data:")}


def _decode(b: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Column names and categories as :attr:`Bundle.sequences` has them."""
    from rnnviz_core.bundle_read import categories_of
    return categories_of(frame.rename(columns=data_names(b)), b.class_names)


def scalar_columns(b: Any) -> list[str]:
    """The per-sequence columns that hold one value each (no per-step lists, no outputs)."""
    import pyarrow as pa

    schema = b.lazy().schema()
    return [f.name for f in schema if f.name != "row" and not pa.types.is_list(f.type)
            and not pa.types.is_fixed_size_list(f.type) and not pa.types.is_large_list(f.type)]


def rows(b: Any, rows: Sequence[int], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-sequence columns of the given rows, in that order (``seq`` = row number), named and
    typed as in :attr:`Bundle.sequences`; ``columns`` in the table's names (``data:<name>``)."""
    have = set(table_names(b))
    cols = [c for c in (columns or scalar_columns(b)) if c in have]
    return _decode(b, b.lazy().rows(list(map(int, rows)), cols))


def every_sequence(b: Any, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-sequence columns of every sequence (default: the one-value columns), read column by
    column; the per-step lists and outputs are never read."""
    t = b.lazy()
    have = set(table_names(b))
    cols = [c for c in (columns or scalar_columns(b)) if c in have]
    frame = pd.DataFrame({c: t.column(c) for c in cols})
    frame.insert(0, "seq", np.arange(b.n_sequences, dtype=np.int64))
    return _decode(b, frame)


def sample(b: Any) -> pd.DataFrame:
    """The sampled sequences (whose full traces the bundle holds), in the bundle's sample order:
    ``seq`` (row), ``id``, ``length`` and, when present, the classes, outcome and (a number model)
    the prediction ``pred``."""
    kept = _kept(b)
    if "sample" not in kept:
        want = ["id", "length", "true", "true_class", "predicted_class", "outcome", "pred"]
        kept["sample"] = rows(b, b.sample_rows, want)
    return kept["sample"]


#: per-step reads kept with a bundle (the sample's paths and |h| curves, A and B's scores): every
#: session asks for the same ones, and each reads one row group per row (64 sampled rows spread
#: over a 1M-sequence bundle: 0.15 s a column)
KEPT_STEP_READS = 64


def step_rows(b: Any, rows: Sequence[int], column: str) -> np.ndarray:
    """A per-step column (``score:<method>``, ``step:<name>``) of the given rows: float32
    [len(rows), max_length], NaN past each length (read-only: kept with the bundle)."""
    cache = _kept(b).setdefault("step_rows", {})
    key = (tuple(map(int, rows)), column)
    if key not in cache:
        if len(cache) >= KEPT_STEP_READS:
            cache.pop(next(iter(cache)))          # the oldest read goes
        arr = b.lazy().steps(list(key[0]), column)
        arr.flags.writeable = False
        cache[key] = arr
    return cache[key]


def paths(b: Any, rows: Sequence[int], ids: Sequence[str]) -> pd.DataFrame:
    """PCA paths (``seq`` = id, ``step``, ``pc1 ..``) of the given rows, as :meth:`Bundle.paths`
    gives them for every sequence, with the explained variance ratios in ``attrs``."""
    pca = b._arrays("pca.safetensors")
    k = int(pca["components"].shape[0])
    cols = [step_rows(b, rows, f"step:pc{j + 1}") for j in range(k)]
    s_idx, t_idx = np.nonzero(np.isfinite(cols[0]))
    data = {"seq": np.asarray(list(ids), dtype=object)[s_idx], "step": t_idx}
    for j in range(k):
        data[f"pc{j + 1}"] = cols[j][s_idx, t_idx].astype(np.float64)
    frame = pd.DataFrame(data)
    frame.attrs["explained_variance_ratio"] = [float(v) for v in pca["explained_variance_ratio"]]
    fit = b.manifest.get("analysis", {}).get("pca", {})
    if all(type(fit.get(k)) is int for k in ("fitted_points", "points")) and 0 < fit["fitted_points"] <= fit["points"]:
        # the chart's caption says when the basis was fitted on a sample of the states
        frame.attrs["fitted_points"], frame.attrs["points"] = fit["fitted_points"], fit["points"]
    return frame


def cloud_rows(b: Any) -> tuple[np.ndarray, str | None]:
    """Rows whose states make the PCA picture's grey cloud: every sequence of a bundle with at most
    :data:`CLOUD_ROWS`, else the sampled ones; with the caption's words for a sampled cloud."""
    if b.n_sequences <= CLOUD_ROWS:
        return np.arange(b.n_sequences, dtype=np.int64), None
    r = np.asarray(b.sample_rows, dtype=np.int64)
    return r, f"the states of the {len(r):,} sampled sequences (of {b.n_sequences:,})"


def cloud_caption(text: str, words: str | None) -> str:
    """The PCA chart's caption with its cloud named truly when the cloud is the sampled sequences."""
    if words is None:
        return text
    head, sep, _ = text.partition(", and grey dots are ")
    return head + (f", and grey dots are {words}, for reference." if sep else "")


def norms(b: Any, rows: Sequence[int], ids: Sequence[str]) -> pd.DataFrame:
    """|h| over time of the given rows, as :meth:`Bundle.norms` gives it for every sequence."""
    facts = b.lazy().rows(list(map(int, rows)), ["length", "plateau_step"])
    sum_abs = step_rows(b, rows, "step:sum_abs")
    change = step_rows(b, rows, "step:step_change")
    lens = facts["length"].to_numpy(np.int64)
    s_idx, t_idx = np.nonzero(np.arange(b.max_length)[None, :] < lens[:, None])
    units = int(b.manifest["analysis"]["units"])
    v = sum_abs[s_idx, t_idx].astype(np.float64)
    return pd.DataFrame({
        "seq": np.asarray(list(ids), dtype=object)[s_idx], "step": t_idx, "sum_abs": v, "mean_abs": v / units,
        "step_change": change[s_idx, t_idx].astype(np.float64),
        "plateau_step": facts["plateau_step"].to_numpy()[s_idx], "length": lens[s_idx],
    })


def position_curves(b: Any, method: str, labelled: bool) -> tuple[pd.DataFrame | None, pd.DataFrame | None,
                                                                   str | None]:
    """``(by_position, by_true_class, note)``: the Contributions page's position curves from the
    build-time aggregates; a bundle built before them computes them from its scores when small,
    else says why they are missing (``note``)."""
    from rnnviz_core import bundle_aggregates as ba

    pos = ba.position_frame(b, method, "all")
    if pos is not None:
        return pos, ba.position_frame(b, method, "true_class") if labelled else None, None
    if b.n_sequences * b.max_length > FALLBACK_CELLS:
        return None, None, ("This analysis bundle was built by an older rnnviz, without the scores by position; "
                            "build it again with this rnnviz (`rnnviz precompute`) to see where the model looks.")
    from rnnviz_core.attribution import rankings as rk

    sc = np.nan_to_num(b.scores(method))
    pos = rk.mean_abs_by_position(sc, relative=True, normalize=True, lengths=b.lengths)
    by_class = None
    if labelled:
        y = b.sequences["true"].to_numpy(np.int64)
        by_class = rk.mean_abs_by_group(sc, np.asarray(b.class_names, dtype=object)[y], lengths=b.lengths,
                                        name="true class")
    return pos, by_class, None
