"""Contributions: which steps drove the final output, ranked, and how far to trust each ranking."""
import streamlit as st

import app_support as sup
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import contributions as cc
from rnnviz_core.charts import trajectories as tc
from rnnviz_core.contributions import METHODS

ctx = sup.loaded()
ds = ctx.data
st.title("Contributions")
st.caption("Which steps of a sequence drove the model's final answer? Each method gives every step a score; "
           "compare two sequences, see where in the sequences the model looks, and check which method to trust.")

methods = list(METHODS)
labels = sup.guarded(sup.sequence_labels, ctx)
ids = list(labels)
rows = sup.row_of(ctx)
c1, c2, c3 = st.columns([2, 3, 3])
c1.selectbox("Method", methods, key=sup.widget_key("method", "grad_norm", methods),
             format_func=lambda m: m.replace("_", " "))
c2.selectbox("Sequence A", ids, format_func=labels.get, key=sup.widget_key("a", ids[0], ids))
c3.selectbox("Sequence B", ids, format_func=labels.get, key=sup.widget_key("b", ids[min(1, len(ids) - 1)], ids))
method, a, b = sup.value("method"), rows[sup.value("a")], rows[sup.value("b")]
target_name = sup.target_options(ctx).get("predicted" if ctx.target is None else str(ctx.target))
st.info(f"**{method.replace('_', ' ')}**: {METHODS[method]}  \nExplaining: {target_name.lower()} "
        "(change it under 'Target output' in the sidebar).")

sc, info = sup.guarded(sup.scores, ctx, method)
frame, top, pos, by_group = sup.guarded(sup.compute, sup.contribution_views, ctx, sc, a, b, method,
                                        key=("views", method, ctx.target, a, b))
H = sup.guarded(sup.states, ctx, "h", -1, "fwd")
hm = sup.guarded(sup.compute, tj.heatmap_data, H, ds.lengths, seqs=[a, b], ids=ids, key=("hm", a, b))
key = (method, ctx.target, a, b)


def combined(heat, bars):
    return cc.under_heatmap(heat, bars)


st.subheader("Scores under the hidden state")
cols = st.columns(2)
for col, r, side in ((cols[0], a, "A"), (cols[1], b, "B")):
    with col:
        heat = tc.heatmap_chart(hm, ids[r], title=f"{side}: {ids[r]}", scrubber=False, width=330,
                                height=max(100, min(260, 6 * H.shape[2])))
        bars = cc.step_scores_chart(frame, ids[r], width=330)
        st.caption(sup.chart(combined, heat, bars, key=key + (side,)))
sup.csv_button(frame, "Download the scores of A and B (CSV)", "scores_ab.csv", "dl_ab")

st.subheader("The top steps, ranked")
table = cc.top_steps_table(top, method=method)
st.dataframe(table, hide_index=True, width="stretch")
st.caption(table.attrs.get("caption", ""))

st.subheader("Where in the sequences the model looks")
cols = st.columns(2)
with cols[0]:
    st.caption(sup.chart(cc.position_chart, pos, width=330, title="All sequences", key=key + ("pos",)))
    sup.csv_button(pos, "Download (CSV)", "by_position.csv", "dl_pos")
if by_group is not None:
    with cols[1]:
        st.caption(sup.chart(cc.position_chart, by_group, width=330, title="By true class", key=key + ("group",)))
        sup.csv_button(by_group, "Download (CSV)", "by_class.csv", "dl_group")
full = sup.compute(sup.all_scores_frame, ctx, sc, method, key=("all", method, ctx.target))
sup.csv_button(full, f"Download every step's {method.replace('_', ' ')} score (CSV)", "scores.csv", "dl_all")

st.subheader("How far can each ranking be trusted?")
st.toggle(f"Run the deletion check on {min(sup.FAITH_SAMPLE, len(ds.X))} sequences (takes a while the first time)",
          key=sup.widget_key("faith", False, [False, True], cast=lambda v: v == "True"))
if sup.value("faith"):
    curves, summary = sup.guarded(sup.faithfulness, ctx)
    cols = st.columns(2)
    with cols[0]:
        st.caption(sup.chart(cc.deletion_chart, curves, width=330, key=("faith", ctx.target, "curves")))
    with cols[1]:
        st.caption(sup.chart(cc.aopc_chart, summary, width=330, key=("faith", ctx.target, "aopc")))
    ig = summary[summary["method"] == "integrated_gradients"]
    if len(ig) and "completeness_error" in ig:
        st.metric("Integrated gradients: completeness error (median over sequences)",
                  f"{float(ig['completeness_error'].iloc[0]):.2%}",
                  help="How far each sequence's scores miss adding up to the change of the answer from the baseline "
                       "to the real input; near 0% means the scores account for the whole change.")
    st.dataframe(summary, hide_index=True, width="stretch")
    sup.csv_button(summary, "Download the comparison (CSV)", "faithfulness.csv", "dl_faith")
