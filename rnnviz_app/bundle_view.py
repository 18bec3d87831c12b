"""What the bundle pages show, computed from an opened analysis bundle (no model needed).

The page scripts in ``rnnviz_app/bundle_pages/`` stay thin: the frames they chart come from here,
in the shapes the live pages hand the same chart functions (``rnnviz_core.charts``), so a chart
and its caption read the same numbers whether they come from the model or from its bundle.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
import streamlit as st

from rnnviz_app.text import format_accuracy, md_escape
from rnnviz_app.widgets import chart_spec

#: live grouping key -> the name the bundle stores it under (the live pages' word is the one in links)
_STORED = {"correct": "outcome"}


def summary(b: Any) -> dict:
    """Start-page facts: hashes, classes, sizes and the score over the sequence table.

    Returns ``dict(model_hash, data_hash, model_class, classes, data, score_name, score_value,
    score_help, methods)``; ``score_value`` is None when the data had no labels.
    """
    man = b.manifest
    seq = b.sequences
    names = list(b.class_names or [])
    data = man.get("data", {})
    out = {
        "model_hash": str(man.get("model", {}).get("sha256", "")),
        "data_hash": str(data.get("content_hash", "")),
        "model_class": str(man.get("model", {}).get("class", "")),
        "classes": (f"{len(names)} classes ({', '.join(map(str, names[:8]))}{', …' if len(names) > 8 else ''})"
                    if len(names) > 1 else "one number (regression)"),
        "data": f"{b.n_sequences} sequences, up to {b.max_length} steps, {data.get('n_features', '?')} feature(s)",
        "score_name": "Accuracy on the loaded data", "score_value": None,
        "score_help": "The data had no labels when the bundle was built, so accuracy cannot be computed.",
        "methods": list(b.methods),
    }
    if not data.get("labelled") or "true" not in seq:
        return out
    if len(names) > 1:
        acc = float(seq["correct"].astype(float).mean())
        out.update(score_value=format_accuracy(acc),
                   score_help=f"Share of the {len(seq)} sequences whose predicted class is the true one.")
    else:
        logits = np.asarray(b.logits, dtype=np.float64).reshape(len(seq), -1)[:, 0]
        err = float(np.sqrt(np.mean((logits - seq["true"].to_numpy(np.float64)) ** 2)))
        out.update(score_name="Root mean squared error on the loaded data", score_value=f"{err:.3g}",
                   score_help="Typical distance between the model's output and the true value.")
    return out


def sample_labels(b: Any) -> dict[int, str]:
    """Row number -> picker label ("id · true class → predicted, right/wrong") for the sampled
    sequences only: the ones whose full traces the bundle holds."""
    seq = b.sequences
    out = {}
    for r in b.sample_rows.tolist():
        row = seq.iloc[int(r)]
        text = str(row["id"])
        if "predicted_class" in seq and b.class_names:
            text += f" · predicted {row['predicted_class']}"
            if "outcome" in seq and pd.notna(row["outcome"]):
                text += f" ({row['outcome']})"
        out[int(r)] = text
    return out


def sample_states(b: Any) -> np.ndarray:
    """Hidden state of the last layer, forward, of the sampled sequences: float [S, T, H]."""
    return np.ascontiguousarray(b.sample_trace().get("h", layer=-1, direction="fwd"))


def groupings(b: Any) -> dict[str, str]:
    """Saturation groupings the bundle precomputed, under the live page's keys and labels (a link's
    ``by=`` means the same on both): key -> label. A data column's key is its column in the sequence
    table (``name`` or ``name_data``), as on the live page."""
    from rnnviz_app.page_saturation import BUILTIN_GROUPINGS
    have = b.manifest.get("analysis", {}).get("saturation_groupings", {})
    out = {k: v for k, v in BUILTIN_GROUPINGS.items() if _STORED.get(k, k) in have}
    seq = b.sequences
    for k in sorted(have):
        if k.startswith("data:"):
            name = k[len("data:"):]
            out[f"{name}_data" if f"{name}_data" in seq else name] = f"Data column: {name}"
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


def group_labels(b: Any, key: str) -> pd.Series:
    """Group label (string) of every sequence under grouping ``key`` (a key of :func:`groupings`)."""
    seq = b.sequences
    stored = stored_grouping(b, key)
    col = stored
    if stored.startswith("data:"):
        name = stored[len("data:"):]
        col = f"{name}_data" if f"{name}_data" in seq else name
    return seq[col].astype(str).reset_index(drop=True)


def contribution_frames(b: Any, method: str, ra: int, rb: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame,
                                                                      pd.DataFrame | None]:
    """``(frame, top, by_position, by_class)`` as the live Contributions page builds them, from the
    bundle's stored scores [N, T] (rows ``ra``, ``rb`` are sequences A and B)."""
    from rnnviz_core import rankings as rk

    sc = np.nan_to_num(b.scores(method))
    ids = np.asarray([str(i) for i in b.ids], dtype=object)
    lens = b.lengths
    frame = rk.scores_frame(sc[[ra, rb]], method=method, ids=ids[[ra, rb]], lengths=lens[[ra, rb]])
    top = rk.top_steps(sc[[ra, rb]], k=5, ids=ids[[ra, rb]], lengths=lens[[ra, rb]])
    pos = rk.mean_abs_by_position(sc, relative=True, normalize=True, lengths=lens)
    by_class = None
    seq = b.sequences
    if b.class_names and b.manifest["data"].get("labelled") and "true" in seq:
        names = np.asarray(b.class_names, dtype=object)[seq["true"].to_numpy(np.int64)]
        by_class = rk.mean_abs_by_group(sc, names, lengths=lens, name="true class")
    return frame, top, pos, by_class


@st.cache_data(max_entries=16, show_spinner=False)
def unit_rows(dig: str, _b: Any) -> np.ndarray:
    """Heatmap row order of the bundle's sample states (units that move together side by side),
    cached under the bundle's hash."""
    from rnnviz_core.trajectories import unit_order
    rows = [int(r) for r in _b.sample_rows]
    return unit_order(sample_states(_b), np.asarray(_b.lengths)[rows], order="similarity")


@st.cache_data(max_entries=64, show_spinner=False)
def _spec(dig: str, name: str, key: str, _build, _args, _kwargs) -> tuple[dict, str]:
    """The chart's spec and caption, cached under the bundle's hash, the builder's name and ``key``."""
    return chart_spec(_build, _args, _kwargs)


def chart(dig: str, build: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> str:
    """Draw ``build(*args, **kwargs)`` (cached under the bundle's hash and ``key``) and return its
    caption escaped for Markdown (names come from the user's files: issue 13)."""
    name = f"{build.__module__}.{build.__qualname__}"
    spec, caption = _spec(dig, name, repr((key, sorted(kwargs.items()))), build, args, kwargs)
    st.vega_lite_chart(spec, width="content", theme=None)
    return md_escape(caption, max_len=20_000)


def pick_pair(b: Any) -> tuple[int, int]:
    """Sequence A and B: the live pickers (:func:`rnnviz_app.page_pair.pick_pair`, ``a=``/``b=`` in the
    link by sequence id) restricted to the sampled rows; returns their row numbers. A link's A or B
    that is not among the sampled sequences starts from the default, named in the sidebar's note."""
    from rnnviz_app import page_pair as pp
    from rnnviz_app import state_url as su
    from rnnviz_app.bundle_source import sequence_message

    labels = sample_labels(b)
    if not labels:
        st.info("This analysis bundle holds no full traces of single sequences, so A and B cannot be shown.")
        st.stop()
    ids = [str(i) for i in b.ids]
    by_id = {ids[r]: text for r, text in labels.items()}
    for side in ("a", "b"):
        su.checked_link_value(side, None, list(by_id))
    ra, rb = pp.pick_pair(None, by_id, modes=False, rows={ids[r]: r for r in labels})
    st.caption(md_escape(sequence_message(b)))
    return int(ra), int(rb)
