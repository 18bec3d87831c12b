"""Traces of the loaded sequences, layer/kind choices, and the data behind the A/B pickers."""
from __future__ import annotations

import numpy as np
import streamlit as st

from rnnviz_app.sources.context import Loaded
from rnnviz_app.state.compute import compute, shared
from rnnviz_app.views.summary import predictions

KIND_LABELS = {"h": "Hidden state h", "c": "Cell state c", "r": "Reset gate r", "z": "Update gate z",
               "n": "Candidate n", "i": "Input gate i", "f": "Forget gate f", "g": "Candidate g",
               "o": "Output gate o"}


def trace_all(model, X, lengths, device):
    """The states of every sequence (one run of the model's fused kernels: its outputs and the last
    layer's states); the gates, cell states and lower layers are then computed in a background
    thread, so the start page (which needs only the outputs) and the pages that show the last
    layer's states do not wait for them, and the pages that do need them find them ready or wait
    for that one computation (``Trace.arrays`` computes them once)."""
    import threading

    from rnnviz_core.trace import trace
    tr = trace(model, X, lengths, gates=False, device=device)
    # not a daemon (see rnnviz_app.state.prefetch): exit waits for the gates rather than abort inside torch
    threading.Thread(target=_load_arrays, args=(tr,), name="rnnviz-trace-gates", daemon=False).start()
    return tr


def _load_arrays(tr) -> None:
    try:
        tr.arrays
    except Exception:  # noqa: BLE001 - a page that needs them computes them again and says why it fails
        pass


def full_trace(ctx: Loaded):
    """Trace of every loaded sequence, its gates and cell states computed in the background (one
    shared object, cached; ``tr.arrays`` waits for them)."""
    with st.spinner("Tracing every sequence through the model…"):
        tr = shared(trace_all, ctx.model, ctx.data.X, ctx.data.lengths, key=("trace",), device=ctx.device)
    from rnnviz_app.views.page_contributions import (
        prefetch_scores,  # here: these modules import this one
    )
    from rnnviz_app.views.page_saturation import prefetch_distribution
    prefetch_distribution(ctx, tr)  # the Saturation page's first value spread, in the background (once)
    prefetch_scores(ctx, tr)  # the Contributions page's default scores, in the background (once)
    return tr


def _pick(tr, kind, layer, direction):
    return np.ascontiguousarray(tr.get(kind, layer=layer, direction=direction))


def states(ctx: Loaded, kind: str = "h", layer: int = -1, direction: str = "fwd") -> np.ndarray:
    """float32 [N, T, H] for one kind / layer / direction of the last recurrent module."""
    tr = full_trace(ctx)
    return compute(_pick, tr, kind, layer, direction, key=("states", kind, layer, direction))


def layer_options(ctx: Loaded) -> tuple[list[int], list[str], dict]:
    """(layers, directions, kind -> label) available in the last recurrent module."""
    info = full_trace(ctx).modules[-1]
    dirs = ["fwd", "bwd"][: info.num_directions]
    return list(range(info.num_layers)), dirs, {k: KIND_LABELS.get(k, k) for k in info.kinds}


def labels_of(ctx: Loaded) -> tuple[np.ndarray | None, list[str]]:
    """True class per sequence [N] (or None) and the class names."""
    ds = ctx.data
    names = list(ds.class_names or [])
    return (np.asarray(ds.y) if ds.y is not None and names else None), names


def most_different_pair(ctx: Loaded, kind: str = "h", layer: int = -1,
                        direction: str = "fwd") -> tuple[int, int, str]:
    """Row indices of the two sequences whose final states are furthest apart, and a sentence."""
    from rnnviz_core.trajectories import similar_pairs
    st_arr = states(ctx, kind, layer, direction)
    y, names = labels_of(ctx)
    mode = "across" if y is not None and len(np.unique(y)) > 1 else "within"
    df = compute(similar_pairs, st_arr, ctx.data.lengths, y, mode=mode, n_pairs=1,
                 ids=np.arange(len(st_arr)), key=("pairs", kind, layer, direction))
    row = df[df["kind"] == "least similar"].iloc[0]
    how = "of different classes " if mode == "across" else ""
    return int(row["seq_a"]), int(row["seq_b"]), (
        f"The two sequences {how}whose final states are furthest apart (distance {row['distance']:.3g}).")


def is_regression(ctx: Loaded) -> bool:
    """Whether the loaded model gives one number per sequence (regression) rather than classes."""
    from rnnviz_app.views.summary import is_regression as _is
    return _is(ctx)


def sequence_labels(ctx: Loaded) -> dict:
    """Sequence id -> "id · true … · predicted …" for pickers (class names, or for regression the
    true and predicted values with 3 significant digits); names from files are cut with "…"."""
    from rnnviz_core.rankings import shorten
    from rnnviz_core.regression import format_number
    ds = ctx.data
    y, names = labels_of(ctx)
    out = np.asarray(predictions(ctx))
    regression = is_regression(ctx)
    from rnnviz_core.outputs import predicted_classes
    pred = None if regression or not names else predicted_classes(out, len(names))
    values = out.reshape(len(out), -1)[:, 0] if regression else None
    targets = np.asarray(ds.y, dtype=float).reshape(len(out), -1)[:, 0] \
        if regression and ds.y is not None else None
    labels = {}
    for i, sid in enumerate(ds.ids):
        parts = [shorten(sid, 40)]
        if y is not None:
            parts.append(f"true {shorten(names[int(y[i])])}")
        elif targets is not None:
            parts.append(f"true {format_number(targets[i])}")
        if pred is not None and names:
            parts.append(f"predicted {shorten(names[int(pred[i])])}")
        elif values is not None:
            parts.append(f"predicted {format_number(values[i])}")
        labels[str(sid)] = " · ".join(parts)
    return labels


def row_of(ctx: Loaded) -> dict:
    """Sequence id -> row index."""
    return {str(s): i for i, s in enumerate(ctx.data.ids)}


def ids_of_class(ctx: Loaded, cls: int) -> list[str]:
    """Ids of the sequences whose true class is ``cls``."""
    y, _ = labels_of(ctx)
    return [str(s) for s, c in zip(ctx.data.ids, y) if int(c) == cls]


def vocabulary(ctx: Loaded) -> list[str] | None:
    """The loaded vocabulary: the data's (an uploaded one), else the model file's; None without one."""
    return getattr(ctx.data, "vocabulary", None) or getattr(ctx.model, "vocabulary", None)


def ids_to_words(vocab: list[str] | None, ids) -> list[str]:
    """Token ids as words ("#id" for an id outside the vocabulary)."""
    return [vocab[i] if vocab is not None and 0 <= i < len(vocab) else f"#{i}" for i in ids]


def words_of(ctx: Loaded, row: int) -> list[str] | None:
    """A text model's words of one sequence (its real steps; "#id" for an id without a word), or
    None for data that is not token ids."""
    ds = ctx.data
    if not getattr(ds, "is_tokens", False):
        return None
    return ids_to_words(vocabulary(ctx), ds.X[row, : int(ds.lengths[row])].tolist())


