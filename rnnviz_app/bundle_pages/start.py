"""Start page when an analysis bundle is open: what was computed, from which model and data."""
import streamlit as st

from rnnviz_app.inputs import bundle_sidebar as bs
from rnnviz_app.sources import bundle_view as bv
from rnnviz_app.sources.bundle_source import NOT_INCLUDED
from rnnviz_app.state import page_boot
from rnnviz_app.views import messages as msg
from rnnviz_app.views.text import md_escape

page_boot.require_entry_point()
dig, b = bs.current()
st.title("rnnviz: see inside a recurrent network")
st.markdown(
    "An **analysis bundle** is open: the numbers rnnviz computed where the model lives (with "
    "`rnnviz precompute`), without the model itself. **Trajectories**, **Saturation** and **Contributions** "
    "show them; views that re-run the model say that the bundle does not include them. Close the bundle in "
    "the sidebar to use a model and data instead.")
s = msg.guarded(bv.summary, b)
st.subheader("The analysed model")
left, right = st.columns([3, 2])
with left:
    st.markdown(f"- Model: {md_escape(s['model_class'])}\n- Outputs: {md_escape(s['classes'])}\n"
                f"- Data: {md_escape(s['data'])}\n- Contribution methods: "
                f"{md_escape(', '.join(m.replace('_', ' ') for m in s['methods']) or 'none')}")
    st.caption("Content hashes (SHA-256), to check which model and data these numbers come from:")
    st.code(f"model  {s['model_hash']}\ndata   {s['data_hash']}\nbundle {dig}", language=None, wrap_lines=True)
with right:
    if s["score_value"] is not None:
        st.metric(s["score_name"], s["score_value"], help=s["score_help"])
    else:
        st.info(s["score_help"])
st.subheader("Not in this bundle")
st.markdown("\n".join(f"- {md_escape(NOT_INCLUDED[k], max_len=1000)}" for k in ("resilience", "faithfulness",
                                                                               "second_model")))
