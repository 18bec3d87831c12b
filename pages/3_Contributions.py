"""Contributions: which steps drove the final output, ranked, and how far to trust each ranking."""
import streamlit as st

from rnnviz_app.inputs import page_pair as pp
from rnnviz_app.inputs.page_widgets import bound
from rnnviz_app.sources import context as cx
from rnnviz_app.sources import sequences as sq
from rnnviz_app.state import compute as cp
from rnnviz_app.state import page_boot
from rnnviz_app.views import contribution_stack as cs
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_contributions as pc
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_horizons as ph
from rnnviz_app.views import page_units as pu
from rnnviz_app.views import widgets as wg
from rnnviz_app.views.text import md_escape
from rnnviz_core.charts import contributions as cc
from rnnviz_core.contributions import METHODS

page_boot.require_entry_point()
ctx = cx.loaded()
ds = ctx.data
st.title("Contributions")
st.caption("Which steps of a sequence drove the model's final answer? Each method gives every step a score; "
           "compare two sequences, see where in the sequences the model looks, and check which method to trust.")
findings = st.container()

methods = list(METHODS)
method = bound(st.selectbox, "Method", "method", pc.DEFAULT_METHOD, methods, format_func=cc.method_label)
labels = msg.guarded(sq.sequence_labels, ctx)
ids = list(labels)
a, b = pp.pick_pair(ctx, labels)
target_name = cx.target_options(ctx).get("predicted" if ctx.target is None else str(ctx.target))
st.info(f"**{cc.method_label(method)}**: {METHODS[method]}  \nExplaining: {md_escape(target_name.lower())} "
        "(change it under 'Target output' in the sidebar).")

sc, info = msg.guarded(pc.scores, ctx, method)
frame, top, pos, by_group = msg.guarded(cp.compute, pc.contribution_views, ctx, sc, a, b, method,
                                        key=("views", method, ctx.target, a, b))
H = msg.guarded(sq.states, ctx, "h", -1, "fwd")
known = pc.known_steps(ctx)
n_steps = int(max(ds.lengths[a], ds.lengths[b]))
window = wg.step_window(n_steps, "contrib")
key = (method, ctx.target, a, b, window)
words = {r: sq.words_of(ctx, r) for r in (a, b)} if ds.is_tokens else {}



def marks_of(r: int):
    return None if known is None else [int(t) for t in known[r].nonzero()[0]]


st.subheader("Scores under the inputs and the hidden state")
# A above B (side by side they overflowed half a 1,100 px window); one step scale, so a column is
# the same step in both
bins, step_w = None, None  # the features' heatmaps below draw their own columns if the stack fails
with wg.section("The scores under the inputs and the hidden state"):
    hm, bins, step_w = pc.stack_layout(ctx, H, a, b, window)
    for r, side in ((a, "A"), (b, "B")):
        with wg.section(f"Sequence {side}'s chart"):
            if ds.is_tokens:
                pc.show_words(words[r], side, window)
            st.caption(wg.chart(cs.stacked_with_inputs, None if ds.is_tokens else ds.X[r], int(ds.lengths[r]),
                                ds.feature_names, hm, ids[r], side, frame, step_w, n_steps, bins, words.get(r),
                                marks_of(r), key=key + (side, "stack")))
    wg.csv_button(frame, "Download the scores of A and B (CSV)", "scores_ab.csv", "dl_ab")
    pu.unit_link(H.shape[2], "contrib")

with wg.section("Which input features drove it"):
    fs = pc.feature_scores(ctx, method, (a, b))
    if fs is not None:
        st.subheader("Which input features drove it")
        for i, r, side in ((0, a, "A"), (1, b, "B")):
            st.caption(wg.chart(cc.feature_scores_chart, fs[i], length=int(ds.lengths[r]),
                                feature_names=ds.feature_names, signed=cc.is_signed(method), step_width=step_w,
                                title=f"{side}: {ids[r]}", bins=bins,
                                marks=marks_of(r),
                                key=key + (side, "features")))

st.subheader("The top steps, ranked")
with wg.section("The ranked table"):
    table = cc.top_steps_table(top, method=cc.method_label(method))
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(table.attrs.get("caption", ""))

st.subheader("Where in the sequences the model looks")
cols = st.columns(2)
with cols[0], wg.section("The chart of all sequences"):
    st.caption(wg.chart(cc.position_chart, pos, width=220, title="All sequences", key=key + ("pos",)))
    wg.csv_button(pos, "Download (CSV)", "by_position.csv", "dl_pos")
if by_group is not None:
    with cols[1], wg.section("The chart by true class"):
        st.caption(wg.chart(cc.position_chart, by_group, width=175, title="By true class", key=key + ("group",)))
        wg.csv_button(by_group, "Download (CSV)", "by_class.csv", "dl_group")
wg.csv_button(lambda: pc.all_scores_frame(ctx, sc, method), f"Download every step's {cc.method_label(method)} score (CSV)",
              "scores.csv", "dl_all")

st.subheader("How far can each ranking be trusted?")
faith = bound(st.toggle, f"Run the deletion check of all {len(methods)} methods on {min(pc.FAITH_SAMPLE, len(ds.X))} sequences "
              "(takes a while the first time)", "faith", False, cast=lambda v: v == "True")
summary = None
if faith:
    curves, summary = msg.guarded(pc.faithfulness, ctx)
    st.caption(wg.chart(cc.deletion_chart, curves, width=400, key=("faith", ctx.target, "curves")))
    st.caption(wg.chart(cc.aopc_chart, summary, width=330, key=("faith", ctx.target, "aopc")))
    ig = summary[summary["method"] == "integrated_gradients"]
    if len(ig) and "completeness_error" in ig and ig["completeness_error"].notna().any():
        st.metric("Integrated gradients: completeness error (how far its scores miss the total change; median)",
                  f"{float(ig['completeness_error'].iloc[0]):.2%}",
                  help="Each sequence's scores should add up to the change of the answer from the blank input to the "
                       "real one; near 0% means they account for the whole change.")
    st.dataframe(cc.faithfulness_table(summary), hide_index=True, width="stretch")
    wg.csv_button(summary, "Download the comparison (CSV)", "faithfulness.csv", "dl_faith")
pf.show_findings(findings, "contribution_findings", summary, hits=pc.known_step_hits(ctx, sc, method, known),
                 top=top, seqs=[ids[a], ids[b]], method=method, more=lambda: ph.findings(ctx, sc, method, a, b))
