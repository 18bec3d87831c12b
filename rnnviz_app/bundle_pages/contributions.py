"""Contributions from an analysis bundle: the stored per-step scores, ranked."""
import streamlit as st

from rnnviz_app.inputs import bundle_sidebar as bs
from rnnviz_app.inputs.page_widgets import bound
from rnnviz_app.sources import bundle_view as bv
from rnnviz_app.sources.bundle_source import NOT_INCLUDED, method_message
from rnnviz_app.state import page_boot
from rnnviz_app.views import contribution_stack as cs
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_contributions as pc
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_horizons as ph  # hz22
from rnnviz_app.views import widgets as wg
from rnnviz_app.views.text import md_escape
from rnnviz_core.charts import contributions as cc
from rnnviz_core.contributions import METHODS

page_boot.require_entry_point()
dig, b = bs.current()
st.title("Contributions")
st.caption("Which steps of a sequence drove the model's final answer? Each method gives every step a score; "
           "compare two sequences and see where in the sequences the model looks.")
methods = [m for m in b.methods if m in METHODS]  # names from the manifest: known methods only
if not methods:
    st.info(md_escape(method_message(b, "grad_norm"), max_len=1000))
    st.stop()
findings = st.container()  # filled at the end, from the table of top steps shown
method = bound(st.selectbox, "Method", "method", "grad_norm" if "grad_norm" in methods else methods[0], methods,
               format_func=cc.method_label)
st.info(f"**{cc.method_label(method)}**: {METHODS.get(method, '')}  \n{NOT_INCLUDED['target']}")
a, bb = bv.pick_pair(b)
ids = bv.sample_ids(b)           # the sampled rows only: the table is never read whole
rows = [int(r) for r in b.sample_rows]
H = msg.guarded(bv.sample_states, b)
lens = bv.sample_lengths(b)
frame, top, pos, by_class, note = msg.guarded(bv.contribution_frames, b, method, a, bb)
n_steps = int(max(lens[a], lens[bb]))
window = wg.step_window(n_steps, "contrib")   # long sequences: a range of steps, as on the live page

st.subheader("Scores under the hidden state")
with msg.section("The scores of A and B"):
    # the live page's layout (binned step columns, the most active units when not all fit) on the sampled rows
    hm, bins, step_w = pc.stack_layout(bv.as_source(b, rows), H, rows.index(a), rows.index(bb), window)
    for r, side in ((a, "A"), (bb, "B")):  # A above B on one step scale
        st.caption(wg.chart(cs.stacked, hm, ids[r], side, frame, step_w=step_w, n_steps=n_steps, bins=bins,
                            key=(method, a, bb, side, window)))
    wg.csv_button(frame, "Download the scores of A and B (CSV)", "scores_ab.csv", "dl_ab")

st.subheader("The top steps, ranked")
with msg.section("The ranking of the top steps"):
    table = cc.top_steps_table(top, method=cc.method_label(method))   # "gradient size", as on the live page
    st.dataframe(table, hide_index=True, width="stretch")
    st.caption(table.attrs.get("caption", ""))

st.subheader("Where in the sequences the model looks")
if note:
    st.info(md_escape(note, max_len=1000))
cols = st.columns(2)
if pos is not None:
    with cols[0], msg.section("The scores by position"):
        st.caption(wg.chart(cc.position_chart, pos, width=220, title="All sequences", key=(method, "pos")))
        wg.csv_button(pos, "Download (CSV)", "by_position.csv", "dl_pos")
if by_class is not None:
    with cols[1], msg.section("The scores by true class"):
        st.caption(wg.chart(cc.position_chart, by_class, width=175, title="By true class", key=(method, "grp")))
        wg.csv_button(by_class, "Download (CSV)", "by_class.csv", "dl_group")

ph.bundle_section(b, dig)   # hz22: decision steps and memory horizons stored at build
st.subheader("How far can each ranking be trusted?")
st.info(NOT_INCLUDED["faithfulness"])
with msg.section("The findings"):
    pf.show_findings(findings, "contribution_findings", None, top=top, seqs=[ids[a], ids[bb]], method=method)
