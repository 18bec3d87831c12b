"""What the pages show of an opened analysis bundle (no model needed).

The pages (``pages/0-3``) render any source (:mod:`rnnviz_app.sources.source`); for a bundle its
:class:`~rnnviz_app.sources.source.BundleSource` takes the frames from here, in the shapes the
live source hands the same chart functions (``rnnviz_core.charts``), so a chart and its caption
read the same numbers whether they come from the model or from its bundle.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from rnnviz_app.views.text import md_escape

#: live grouping key -> the name the bundle stores it under (the live pages' word is the one in links)
_STORED = {"correct": "outcome"}


def summary(b: Any) -> dict:
    """Start-page facts: hashes, classes, sizes and the score over the sequence table, in the
    live model card's words (:func:`rnnviz_app.views.summary.outputs_text`, :func:`~rnnviz_app.views.summary.score_figures`).

    Returns ``dict(model_hash, data_hash, model_class, classes, data, score_name, score_value,
    score_help, methods)`` (and ``metrics``, ``baseline`` for regression); ``score_value`` is None
    when the data had no labels.
    """
    from rnnviz_app.sources import bundle_reads as br
    kept = br.kept(b)
    if "summary" not in kept:   # two columns of every sequence read once per opened bundle
        kept["summary"] = _summary(b)
    return dict(kept["summary"])


def _summary(b: Any) -> dict:
    from rnnviz_app.sources import bundle_reads as br
    from rnnviz_app.views.summary import outputs_text, score_figures
    man = b.manifest
    names = list(b.class_names or [])
    data = man.get("data", {})
    out = {
        "model_hash": str(man.get("model", {}).get("sha256", "")),
        "data_hash": str(data.get("content_hash", "")),
        "model_class": str(man.get("model", {}).get("class", "")),
        "classes": outputs_text(names),
        "data": f"{b.n_sequences:,} sequences, up to {b.max_length} steps, {data.get('n_features', '?')} feature(s)",
        "score_name": "Accuracy on the loaded data", "score_value": None,
        "score_help": "The data had no labels when the bundle was built, so accuracy cannot be computed.",
        "methods": list(b.methods),
    }
    if not data.get("labelled") or "true" not in br.table_names(b):
        return out
    stored = _stored_accuracy(b, names)
    if stored is not None:
        out.update(stored)
        return out
    # two columns of every sequence, never the per-step lists
    t = b.lazy()
    logits = np.asarray(t.column("logits"), dtype=np.float64).reshape(b.n_sequences, -1)
    classes = len(names) > 1
    y = np.asarray(t.column("true")).astype(np.int64 if classes else np.float64)
    out.update(score_figures(logits if classes else logits[:, 0], y, classes=classes))
    return out


def _stored_accuracy(b: Any, names: list) -> dict | None:
    """The Start page's accuracy from the build-time group sizes of the outcome grouping (no row
    read): a classifier with one output per class, whose outcome is right or wrong for every
    sequence, exactly as :func:`~rnnviz_app.views.summary.score_figures` counts it from the
    outputs and labels; None otherwise (the columns are then read)."""
    from rnnviz_app.views.summary import accuracy_figures
    shape = b.manifest.get("model", {}).get("output_shape") or [1]
    n_out = int(np.prod(shape))
    if len(names) < 2 or n_out != len(names):
        return None
    sizes = b.group_sizes("outcome")
    n = int(b.n_sequences)
    if sizes is None or not set(sizes) <= {"correct", "wrong"} or sum(sizes.values()) != n:
        return None
    return accuracy_figures(int(sizes.get("correct", 0)), n)


def sample_labels(b: Any) -> dict[int, str]:
    """Row number -> picker label for the sampled sequences only (the ones whose full traces the
    bundle holds; read for those rows only), in the live pickers' words
    (:func:`rnnviz_app.sources.sequences.sequence_labels`): "id · true <class> · predicted <class>",
    for a number model "id · true <value> · predicted <value>" (3 significant digits)."""
    from rnnviz_app.sources import bundle_reads as br
    from rnnviz_core.rankings import shorten
    from rnnviz_core.regression import format_number
    seq = br.sample(b)
    classes = bool(b.class_names)
    labelled = bool(b.manifest.get("data", {}).get("labelled"))
    out = {}
    for _, row in seq.iterrows():
        parts = [shorten(str(row["id"]), 40)]
        if classes:
            if labelled and "true_class" in seq and pd.notna(row["true_class"]):
                parts.append(f"true {shorten(str(row['true_class']))}")
            if "predicted_class" in seq and pd.notna(row["predicted_class"]):
                parts.append(f"predicted {shorten(str(row['predicted_class']))}")
        else:
            if labelled and "true" in seq and pd.notna(row["true"]):
                parts.append(f"true {format_number(float(row['true']))}")
            if "pred" in seq and pd.notna(row["pred"]):
                parts.append(f"predicted {format_number(float(row['pred']))}")
        out[int(row["seq"])] = " · ".join(parts)
    return out


def sample_states(b: Any) -> np.ndarray:
    """Hidden state of the last layer, forward, of the sampled sequences: float [S, T, H]."""
    return np.ascontiguousarray(b.sample_trace().get("h", layer=-1, direction="fwd"))


def groupings(b: Any) -> dict[str, str]:
    """Saturation groupings the bundle precomputed, under the live page's keys and labels (a link's
    ``by=`` means the same on both): key -> label. A data column's key is its column in the sequence
    table (``name`` or ``name_data``), as on the live page."""
    from rnnviz_app.views.page_saturation import BUILTIN_GROUPINGS
    have = b.manifest.get("analysis", {}).get("saturation_groupings", {})
    from rnnviz_app.sources import bundle_reads as br
    out = {k: v for k, v in BUILTIN_GROUPINGS.items() if _STORED.get(k, k) in have}
    shown = br.data_names(b)
    for k in sorted(have):
        if k.startswith("data:"):
            name = k[len("data:"):]
            out[shown.get(k, name)] = f"Data column: {name}"
    return out


def stored_grouping(b: Any, key: str) -> str:
    """The bundle's own name of grouping ``key`` (a key of :func:`groupings`), for its queries."""
    if key in _STORED:
        return _STORED[key]
    have = b.manifest.get("analysis", {}).get("saturation_groupings", {})
    if key in have:
        return key
    name = key[:-len("_data")] if key.endswith("_data") and f"data:{key[:-len('_data')]}" in have else key
    return f"data:{name}" if f"data:{name}" in have else key


def group_table(b: Any, key: str) -> pd.DataFrame:
    """The one-value columns of every sequence (no per-step lists: :func:`bundle_reads.every_sequence`)
    with ``_group``, each sequence's group label (string) under grouping ``key`` (a key of
    :func:`groupings`)."""
    from rnnviz_app.sources import bundle_reads as br
    stored = stored_grouping(b, key)
    col = br.data_names(b).get(stored, stored)
    kept = br.kept(b)
    if kept.get("group_table", (None,))[0] != key:   # the last grouping's table is kept with the bundle
        kept.pop("group_table", None)
        table = br.every_sequence(b, [stored] + list(COMPARED))
        cat = pd.Categorical(table[col])   # labels as text, NaN as "nan" (as astype(str) names them)
        cat = cat.rename_categories([str(c) for c in cat.categories])
        if cat.isna().any():
            cat = cat.add_categories(["nan"]) if "nan" not in cat.categories else cat
            cat = cat.fillna("nan")
        table["_group"] = cat
        kept["group_table"] = (key, table)
    return kept["group_table"][1]


#: the columns the group comparison reads (rnnviz_core.groups.metric_columns, and ``pred`` for the
#: regression check): one value per sequence each
COMPARED = ("pred", "correct", "abs_error", "loss", "confidence", "frac_saturated", "frac_saturated_final")


def group_labels(b: Any, key: str) -> pd.Series:
    """Group label (string) of every sequence under grouping ``key`` (a key of :func:`groupings`)."""
    return group_table(b, key)["_group"].astype(str).reset_index(drop=True)


@dataclass(frozen=True)
class BundleData:
    """The fields of a :class:`~rnnviz_core.data.SequenceDataset` that the live pages' views read,
    taken from a bundle's sequence table (no step values: ``is_tokens`` is False, no ``X``)."""
    ids: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None
    class_names: list | None
    is_tokens: bool = False

    @property
    def X(self) -> np.ndarray:
        """No step values in a bundle: an empty [N, 0] array (no input features to draw)."""
        return np.zeros((len(self.ids), 0), dtype=np.float32)


def _labelled(b: Any) -> bool:
    from rnnviz_app.sources import bundle_reads as br
    return bool(b.manifest["data"].get("labelled")) and "true" in br.table_names(b) and bool(b.class_names)


def as_source(b: Any, rows: Any) -> SimpleNamespace:
    """The given sequences of the bundle (rows, in that order: the sampled ones, whose states the
    bundle holds) in the shape the live views take (``.data``: :class:`BundleData`), so a view
    written once for a live model (:func:`~rnnviz_app.views.page_contributions.stack_layout`) reads a
    bundle too. Reads those rows only."""
    from rnnviz_app.sources import bundle_reads as br
    rows = np.asarray(rows, dtype=np.int64)
    names = list(b.class_names or []) or None
    facts = br.rows(b, rows, ["id", "length", "true"])
    y = facts["true"].to_numpy(np.int64) if _labelled(b) else None
    ids = np.asarray([str(i) for i in facts["id"]], dtype=object)
    return SimpleNamespace(data=BundleData(ids=ids, lengths=facts["length"].to_numpy(np.int64), y=y,
                                           class_names=names))


def contribution_frames(b: Any, method: str, ra: int, rb: int) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                      pd.DataFrame | None, pd.DataFrame | None,
                                                                      str | None]:
    """``(frame, top, by_position, by_class, note)`` of the bundle's stored scores (rows ``ra``,
    ``rb`` are sequences A and B): the live page's
    :func:`~rnnviz_app.views.page_contributions.contribution_views`, with the scores of A and B read for
    those rows only and the position curves from the build-time aggregates
    (:func:`rnnviz_app.sources.bundle_reads.position_curves`; ``note`` says why they are missing when they are)."""
    from rnnviz_app.sources import bundle_reads as br
    from rnnviz_core import rankings as rk
    src = as_source(b, [ra, rb]).data
    sc = np.nan_to_num(br.step_rows(b, [ra, rb], f"score:{method}"))
    frame = rk.scores_frame(sc, method=method, ids=src.ids, lengths=src.lengths)
    top = rk.top_steps(sc, k=5, ids=src.ids, lengths=src.lengths)
    pos, by_class, note = br.position_curves(b, method, _labelled(b))
    return frame, top, pos, by_class, note


def sample_ids(b: Any) -> dict[int, str]:
    """Row number -> id of the sampled sequences (read for those rows only)."""
    from rnnviz_app.sources import bundle_reads as br
    seq = br.sample(b)
    return {int(r): str(i) for r, i in zip(seq["seq"], seq["id"])}


def sample_lengths(b: Any) -> dict[int, int]:
    """Row number -> length of the sampled sequences."""
    from rnnviz_app.sources import bundle_reads as br
    seq = br.sample(b)
    return {int(r): int(n) for r, n in zip(seq["seq"], seq["length"])}


def pick_pair(b: Any) -> tuple[int, int]:
    """Sequence A and B: the live pickers (:func:`rnnviz_app.inputs.page_pair.pick_pair`, ``a=``/``b=`` in the
    link by sequence id) restricted to the sampled rows; returns their row numbers. A link's A or B
    that is not among the sampled sequences starts from the default, named in the sidebar's note."""
    from rnnviz_app.inputs import page_pair as pp
    from rnnviz_app.sources.bundle_source import sequence_message
    from rnnviz_app.state import state_url as su

    labels = sample_labels(b)
    if not labels:
        st.info("This analysis bundle holds no full traces of single sequences, so A and B cannot be shown.")
        st.stop()
    ids = sample_ids(b)
    by_id = {ids[r]: text for r, text in labels.items()}
    for side in ("a", "b"):
        su.checked_link_value(side, None, list(by_id))
    ra, rb = pp.pick_pair(None, by_id, modes=False, rows={ids[r]: r for r in labels})
    st.caption(md_escape(sequence_message(b)))
    find = st.text_input("Find a sequence by id", key="bundle_find", max_chars=200,
                         help="Searches every sequence id of the bundle (part of an id is enough, any case).")
    if find.strip():
        from rnnviz_app.sources.bundle_source import search_ids
        st.caption(md_escape(find_message(search_ids(b, find, limit=FIND_LIMIT), find, set(ids), FIND_LIMIT),
                             max_len=4000))
    return int(ra), int(rb)


#: ids the id search shows at most
FIND_LIMIT = 20


def find_message(found: pd.DataFrame, text: str, sampled: set, limit: int = FIND_LIMIT) -> str:
    """What the id search found (:func:`rnnviz_app.sources.bundle_source.search_ids`'s ``seq, id`` frame),
    saying which of those sequences can be Sequence A or B (the sampled ones, with full traces)."""
    text = str(text).strip()
    if not len(found):
        return f"No sequence id in this analysis bundle contains '{text}'; try a shorter part of the id."
    head = (f"The first {limit} sequence ids that contain '{text}'" if len(found) >= limit
            else f"{len(found)} sequence id{'s' if len(found) != 1 else ''} contain{'s' if len(found) == 1 else ''} "
                 f"'{text}'")
    parts = [f"{i} (row {int(r)}{', full traces: pick it under Sequence A or B' if int(r) in sampled else ''})"
             for r, i in zip(found["seq"], found["id"].astype(str))]
    return (f"{head}: " + "; ".join(parts) + ". The others' scores, paths and shares are in the bundle's "
            "tables, but only sampled sequences have the full traces that Sequence A and B need.")
