"""The Contributions page's body for any source (a live model, or an analysis bundle with its stored
scores): the method, A and B, their scores under the inputs and the hidden state, the ranked top
steps, where in the sequences the model looks, and how far each ranking can be trusted. Drawn by
``pages/3_Contributions.py``."""
from __future__ import annotations

import streamlit as st

from rnnviz_app.state import state_url as su
from rnnviz_app.views import contribution_stack as cs
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_contributions as pc
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_horizons as ph
from rnnviz_app.views import page_scores as psc
from rnnviz_app.views import page_units as pu
from rnnviz_app.views import widgets as wg
from rnnviz_app.views.text import md_escape
from rnnviz_core.charts import contributions as cc
from rnnviz_core.contributions import METHODS


def body(src) -> None:
    """Every section of the page for the source ``src`` (see :mod:`rnnviz_app.sources.source`)."""
    findings = st.container()

    methods = psc.methods(src)
    if not methods:
        st.info("This analysis bundle holds the scores of no method this rnnviz knows; build it again with "
                "`rnnviz precompute --methods grad_norm` to see them here.")
        st.stop()
    st.selectbox("Method", methods, format_func=cc.method_label,
                 key=su.widget_key("method", pc.DEFAULT_METHOD if pc.DEFAULT_METHOD in methods else methods[0], methods))
    method = su.value("method")
    labels = msg.guarded(src.labels)
    ids = list(src.ids)
    a, b = src.pick_pair(labels)
    st.info(f"**{cc.method_label(method)}**: {METHODS[method]}  \n{psc.explaining(src)}")

    got = msg.guarded(psc.scores, src, method, a, b)
    H = msg.guarded(src.states, "h", -1, "fwd")
    known = psc.known(src)
    lens = src.lengths
    n_steps = int(max(lens[a], lens[b]))
    window = wg.step_window(n_steps, "contrib")
    key = (method, src.target, a, b, window)
    words = {r: src.words_of(r) for r in (a, b)} if src.is_tokens else {}

    st.subheader("Scores under the inputs and the hidden state")
    # A above B (side by side they overflowed half a 1,100 px window); one step scale, so a column is
    # the same step in both
    bins, step_w = None, None  # the features' heatmaps below draw their own columns if the stack fails
    with wg.section("The scores under the inputs and the hidden state"):
        hm, bins, step_w = pc.stack_layout(psc.layout_source(src), H, a, b, window)
        for r, side in ((a, "A"), (b, "B")):
            with wg.section(f"Sequence {side}'s chart"):
                if src.is_tokens:
                    pc.show_words(words[r], side, window)
                x, length, names = psc.inputs_of(src, r)
                st.caption(wg.chart(cs.stacked_with_inputs, x, length, names, hm, ids[r], side, got.frame, step_w,
                                    n_steps, bins, words.get(r), psc.marks_of(known, r), key=key + (side, "stack")))
        wg.csv_button(got.frame, "Download the scores of A and B (CSV)", "scores_ab.csv", "dl_ab")
        if not src.cannot("units"):
            pu.unit_link(H.shape[2], "contrib")

    if not src.bundle:
        pc.features_section(src.ctx, method, (a, b), ids, key, bins, step_w, known)

    st.subheader("The top steps, ranked")
    with wg.section("The ranked table"):
        table = cc.top_steps_table(got.top, method=cc.method_label(method))
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(table.attrs.get("caption", ""))

    st.subheader("Where in the sequences the model looks")
    if got.note:
        st.info(md_escape(got.note, max_len=1000))
    cols = st.columns(2)
    if got.pos is not None:
        with cols[0], wg.section("The chart of all sequences"):
            st.caption(wg.chart(cc.position_chart, got.pos, width=220, title="All sequences", key=key + ("pos",)))
            wg.csv_button(got.pos, "Download (CSV)", "by_position.csv", "dl_pos")
    if got.by_group is not None:
        with cols[1], wg.section("The chart by true class"):
            st.caption(wg.chart(cc.position_chart, got.by_group, width=175, title="By true class", key=key + ("group",)))
            wg.csv_button(got.by_group, "Download (CSV)", "by_class.csv", "dl_group")
    if got.sc is not None:
        wg.csv_button(lambda: pc.all_scores_frame(src.ctx, got.sc, method),
                      f"Download every step's {cc.method_label(method)} score (CSV)", "scores.csv", "dl_all")
    if src.bundle:
        ph.bundle_section(src.b, src.dig)   # decision steps and memory horizons stored at build

    st.subheader("How far can each ranking be trusted?")
    summary = None
    if src.cannot("deletion"):
        st.info(src.cannot("deletion"))
    else:
        summary = pc.deletion_section(src.ctx, methods)
    more = None if src.bundle else (lambda: ph.findings(src.ctx, got.sc, method, a, b))
    hits = None if src.bundle else pc.known_step_hits(src.ctx, got.sc, method, known)
    pf.show_findings(findings, "contribution_findings", summary, hits=hits, top=got.top, seqs=[ids[a], ids[b]],
                     method=method, more=more)
