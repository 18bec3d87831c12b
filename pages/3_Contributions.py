"""Contributions: which steps drove the final output, ranked, and how far to trust each ranking."""
import streamlit as st

from rnnviz_app import compute as cp
from rnnviz_app import context as cx
from rnnviz_app import messages as msg
from rnnviz_app import page_contributions as pc
from rnnviz_app import sequences as sq
from rnnviz_app import state_url as su
from rnnviz_app import widgets as wg
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import contributions as cc
from rnnviz_core.charts import trajectories as tc
from rnnviz_core.contributions import METHODS

ctx = cx.loaded()
ds = ctx.data
st.title("Contributions")
st.caption("Which steps of a sequence drove the model's final answer? Each method gives every step a score; "
           "compare two sequences, see where in the sequences the model looks, and check which method to trust.")

methods = list(METHODS)
labels = msg.guarded(sq.sequence_labels, ctx)
ids = list(labels)
rows = sq.row_of(ctx)
c1, c2, c3 = st.columns([2, 3, 3])
c1.selectbox("Method", methods, key=su.widget_key("method", "grad_norm", methods),
             format_func=lambda m: m.replace("_", " "))
c2.selectbox("Sequence A", ids, format_func=labels.get, key=su.widget_key("a", ids[0], ids))
c3.selectbox("Sequence B", ids, format_func=labels.get, key=su.widget_key("b", ids[min(1, len(ids) - 1)], ids))
method, a, b = su.value("method"), rows[su.value("a")], rows[su.value("b")]
target_name = cx.target_options(ctx).get("predicted" if ctx.target is None else str(ctx.target))
st.info(f"**{method.replace('_', ' ')}**: {METHODS[method]}  \nExplaining: {target_name.lower()} "
        "(change it under 'Target output' in the sidebar).")

sc, info = msg.guarded(pc.scores, ctx, method)
frame, top, pos, by_group = msg.guarded(cp.compute, pc.contribution_views, ctx, sc, a, b, method,
                                        key=("views", method, ctx.target, a, b))
H = msg.guarded(sq.states, ctx, "h", -1, "fwd")
hm = msg.guarded(cp.compute, tj.heatmap_data, H, ds.lengths, seqs=[a, b], ids=ids, key=("hm", a, b))
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
        st.caption(wg.chart(combined, heat, bars, key=key + (side,)))
wg.csv_button(frame, "Download the scores of A and B (CSV)", "scores_ab.csv", "dl_ab")

st.subheader("The top steps, ranked")
table = cc.top_steps_table(top, method=method)
st.dataframe(table, hide_index=True, width="stretch")
st.caption(table.attrs.get("caption", ""))

st.subheader("Where in the sequences the model looks")
cols = st.columns(2)
with cols[0]:
    st.caption(wg.chart(cc.position_chart, pos, width=330, title="All sequences", key=key + ("pos",)))
    wg.csv_button(pos, "Download (CSV)", "by_position.csv", "dl_pos")
if by_group is not None:
    with cols[1]:
        st.caption(wg.chart(cc.position_chart, by_group, width=330, title="By true class", key=key + ("group",)))
        wg.csv_button(by_group, "Download (CSV)", "by_class.csv", "dl_group")
full = cp.compute(pc.all_scores_frame, ctx, sc, method, key=("all", method, ctx.target))
wg.csv_button(full, f"Download every step's {method.replace('_', ' ')} score (CSV)", "scores.csv", "dl_all")

st.subheader("How far can each ranking be trusted?")
st.toggle(f"Run the deletion check on {min(pc.FAITH_SAMPLE, len(ds.X))} sequences (takes a while the first time)",
          key=su.widget_key("faith", False, [False, True], cast=lambda v: v == "True"))
if su.value("faith"):
    curves, summary = msg.guarded(pc.faithfulness, ctx)
    cols = st.columns(2)
    with cols[0]:
        st.caption(wg.chart(cc.deletion_chart, curves, width=330, key=("faith", ctx.target, "curves")))
    with cols[1]:
        st.caption(wg.chart(cc.aopc_chart, summary, width=330, key=("faith", ctx.target, "aopc")))
    ig = summary[summary["method"] == "integrated_gradients"]
    if len(ig) and "completeness_error" in ig:
        st.metric("Integrated gradients: completeness error (median over sequences)",
                  f"{float(ig['completeness_error'].iloc[0]):.2%}",
                  help="How far each sequence's scores miss adding up to the change of the answer from the baseline "
                       "to the real input; near 0% means the scores account for the whole change.")
    st.dataframe(summary, hide_index=True, width="stretch")
    wg.csv_button(summary, "Download the comparison (CSV)", "faithfulness.csv", "dl_faith")
