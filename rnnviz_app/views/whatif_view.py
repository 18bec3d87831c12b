"""The What-if page's body: the edit box, the answers, the parting and decision steps, the heatmaps,
the paths and the contributions of the edited sequence (drawn by ``pages/4_What_if.py`` as one
fragment; the glue it calls is :mod:`rnnviz_app.views.page_whatif`)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from rnnviz_app.sources import context as cx
from rnnviz_app.state import state_url as su
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_units as pu
from rnnviz_app.views import page_whatif as pw
from rnnviz_app.views import widgets as wg
from rnnviz_core.charts import contributions as cc
from rnnviz_core.charts import whatif as cw
from rnnviz_core.contributions import METHODS
from rnnviz_core.errors import InputError
from rnnviz_core.whatif import edited_paths


def body(row: int, L: int) -> None:
    """The edit controls, the answers, the parting and decision steps, the heatmaps and the contributions."""
    ctx = cx.loaded()
    ds = ctx.data
    tok = bool(ds.is_tokens)
    edits = pw.current_edits(tok)

    pw.edit_controls(ctx, row, L, edits)

    try:
        res = pw.run(ctx, row, edits)
        if tok:
            st.text("Original: " + " ".join(pw.words(ctx, ds.X[row], L)))
            st.text("Edited:   " + " ".join(pw.words(ctx, res.x[0], int(res.lengths[0]))))
    except InputError as exc:
        msg.error(pw.edit_error(exc))
        su.sync_url()
        return
    L2 = int(res.lengths[0])
    cols = st.columns(2)
    for col, name, out in ((cols[0], "Original", res.original_outputs[0]), (cols[1], "Edited", res.outputs[0])):
        ans, conf = pw.answer(ctx, out)
        col.metric(f"{name}: answer", ans, help="The model's output for this version of the sequence.")
        if conf:
            col.caption(f"Confidence {conf}")
    part = int(res.parting_step[0])
    st.markdown(f"**Parting step:** {part}" if part >= 0 else "**Parting step:** none (the hidden states agree)")
    tag = (row, pw.encode_edits(edits))
    parting = part if edits else None

    # drawn first: the answers, the parting step and the heatmaps reach the browser before the slower
    # contributions and decision steps are computed
    h_orig = np.asarray(res.original.hidden[0, :L])
    h_new = np.asarray(res.trace.hidden[0, :L2])
    # the units drawn are the sequence's, not the edit's (the most variable ones when not all fit), and
    # the original carries no parting line: its chart stays the same after an edit, so the browser
    # redraws only the edited one (the units the edit moved most are named below)
    units, why = cw.pick_units(h_orig, h_orig)
    per_bin = cw.step_bins(max(L, L2))
    lim = float(max(1.0, np.nanmax(np.abs(h_orig)), np.nanmax(np.abs(h_new))))
    st.subheader("Hidden state: original and edited")
    with wg.section("The heatmaps"):
        for name, h, n in (("Original", h_orig, L), ("Edited", h_new, L2)):
            frame = cw.binned_states(h, units, per_bin, name.lower())
            st.caption(wg.chart(cw.states_chart, frame, parting=parting if name == "Edited" else None,
                                domain=(-lim, lim), title=f"{name} ({n} steps)", units_why=why, per_bin=per_bin,
                                n_steps=max(L, L2),
                                key=("wi_h", name) + (tag if name == "Edited" else (row,)) + tuple(units)))
        moved = pw.moved_units(ctx, h_orig, h_new, units)
        if moved:
            st.caption(moved)
        pu.unit_link(h_orig.shape[1], "whatif", units=units, names=pw.unit_names(ctx, units, h_orig.shape[1]))

    st.subheader("Paths in one picture")
    with wg.section("The paths chart"):
        paths = edited_paths(h_orig, h_new, pca=pw.path_basis(ctx, h_orig, row))
        st.caption(wg.chart(cw.paths_chart, paths, per_bin=per_bin, parting=parting, key=("wi_paths",) + tag))

    if max(L, L2) <= pw.DECISION_AUTO_STEPS or st.toggle("Find the decision steps (runs the model on every prefix)",
                                                          key="wi_decide"):
        d_o = msg.guarded(pw.decision, ctx, ds.X[row], L, (row,))
        d_e = msg.guarded(pw.decision, ctx, res.x[0], L2, tag)
        st.markdown(f"**Decision step** (from here on the answer on the prefix is the final answer): original {d_o} "
                    f"of {L} steps, edited {d_e} of {L2}.")

    st.subheader("Contributions of the edited sequence")
    st.selectbox("Method", list(METHODS), format_func=cc.method_label,
                 key=su.widget_key("wi_method", "grad_x_state", list(METHODS)))
    method = su.value("wi_method")
    so = msg.guarded(pw.scores, ctx, ds.X[row], L, method, (row,))
    se = msg.guarded(pw.scores, ctx, res.x[0], L2, method, tag)
    sf = pd.concat([cw.binned_scores(so[:L], per_bin, "original"), cw.binned_scores(se[:L2], per_bin, "edited")])
    st.caption(wg.chart(cw.scores_chart, sf, method=cc.method_label(method), parting=parting,
                        per_bin=per_bin, key=("wi_sc", method) + tag))
    su.sync_url()
