"""Reproducibility: a second trained model of the same task, uploaded on the Saturation page,
run on the loaded data and compared with the loaded model per group."""
from __future__ import annotations

import numpy as np
import streamlit as st

from rnnviz_app.sources.context import Loaded
from rnnviz_app.sources.sequences import full_trace, trace_all
from rnnviz_app.sources.uploads import model_from_bytes, store_upload, stored
from rnnviz_app.state.compute import compute, shared
from rnnviz_app.state.hashing import digest
from rnnviz_app.state.state_url import remember, view
from rnnviz_app.views.messages import show_error
from rnnviz_app.views.widgets import csv_button
from rnnviz_core.errors import DataError, ModelError


def _repro(tr_a, tr_b, groups):
    from rnnviz_core.groups import reproducibility
    return reproducibility(tr_a, tr_b, groups=groups)


def _shape(model) -> tuple:
    """(features read per step, outputs, task) of a model, from its settings or its weights."""
    cfg = getattr(model, "config", None)
    if cfg is not None:
        return (getattr(cfg, "input_size", None), getattr(cfg, "num_outputs", None), getattr(cfg, "task", None))
    from rnnviz_core.engine import find_recurrent
    try:
        info = find_recurrent(model)[0]
        return (getattr(info, "input_size", None), None, None)
    except Exception:  # noqa: BLE001
        return (None, None, None)


def _same_task(mine, other) -> None:
    """Refuse a second model of another task with a sentence about the model."""
    a, b = _shape(mine), _shape(other)

    def says(s: tuple) -> str:
        parts = [f"reads {s[0]} feature{'s' if s[0] != 1 else ''} per step" if s[0] else ""]
        if s[2] == "regression":
            parts.append("predicts a number")
        elif s[1]:
            parts.append(f"gives {s[1]} outputs")
        return " and ".join(p for p in parts if p) or "is of another kind"

    if any(x is not None and y is not None and x != y for x, y in zip(a, b)):
        err = ModelError(f"The second model {says(b)}, but the loaded model {says(a)}: it was trained for a "
                         f"different task. Upload a model of the same task under 'Second model file'.")
        err.code, err.field = "other_task", "model2"
        raise err


def second_model_view(ctx: Loaded, dig: str, by: str, groups):
    """Reproducibility table of the loaded model against the second model kept under ``dig``."""
    from rnnviz_core.data import check_against_model
    raw, name = stored(dig)
    other = model_from_bytes(raw, name)
    _same_task(ctx.model, other)
    check_against_model(ctx.data, other)
    mine, theirs = list(getattr(ctx.model, "class_names", None) or []), list(getattr(other, "class_names", None) or [])
    if mine and theirs and mine != theirs:
        raise DataError(
            f"The second model's classes ({', '.join(map(str, theirs))}) are not those of the loaded model "
            f"({', '.join(map(str, mine))}), so their predictions cannot be compared. Upload a model of the same task."
        )
    tr_b = shared(trace_all, other, ctx.data.X, ctx.data.lengths, key=("trace2", dig), device=ctx.device)
    return name, compute(_repro, full_trace(ctx), tr_b, groups,
                         key=("repro", dig, by, digest(np.asarray(groups, dtype=str))))


def second_model_section(ctx: Loaded, by: str, labels) -> None:
    """Upload a second model of the same task and show how far the two agree, per group."""
    st.caption("Upload another trained model of the same task (another seed or checkpoint). rnnviz runs both on "
               "the loaded data and reports, per group, how often they give the same answer and whether the same "
               "sequences and the same steps saturate in both.")
    up = st.file_uploader("Second model file", key="up_model2")
    if up is not None and st.session_state.get("_seen_model2") != up.file_id:
        st.session_state["_seen_model2"] = up.file_id
        try:
            other = model_from_bytes(up.getvalue(), up.name)  # refused files are not stored
            _same_task(ctx.model, other)
            view()["model2"] = store_upload(up)[0]
        except Exception as exc:  # noqa: BLE001
            show_error(exc)
    dig = view().get("model2")
    remember("model2", dig)
    if not dig:
        return
    try:
        name, rep = second_model_view(ctx, dig, by, labels.to_numpy())
    except Exception as exc:  # noqa: BLE001
        show_error(exc)
        view().pop("model2", None)
        return
    st.markdown(f"Loaded model vs **{name}**")
    st.dataframe(rep, hide_index=True, width="stretch")
    st.caption("agreement: share of sequences where both models predict the same class; sat_corr_sequences: do the "
               "same sequences saturate in both (1 = exactly, 0 = unrelated); sat_corr_time: does saturation rise and "
               "fall at the same steps.")
    csv_button(rep, "Download the reproducibility table (CSV)", "reproducibility.csv", "dl_repro")
