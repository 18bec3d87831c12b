"""rnnviz: see inside recurrent networks. Run with ``streamlit run streamlit_app.py``.

The entry point routes between pages and owns the shared sidebar (model, data, device, target).
"""
from __future__ import annotations

import streamlit as st

from rnnviz_app import context as cx
from rnnviz_app import loading as ld
from rnnviz_app import messages as msg
from rnnviz_app import state_url as su
from rnnviz_app import uploads as up

st.set_page_config(page_title="rnnviz", page_icon="🔁", layout="wide",
                   menu_items={"About": "rnnviz shows what happens inside recurrent networks."})
su.init_session()

PAGES = [
    st.Page("pages/0_Start.py", title="Start", icon=":material/home:", default=True),
    st.Page("pages/1_Trajectories.py", title="Trajectories", url_path="trajectories", icon=":material/timeline:"),
    st.Page("pages/2_Saturation.py", title="Saturation", url_path="saturation", icon=":material/thermostat:"),
    st.Page("pages/3_Contributions.py", title="Contributions", url_path="contributions", icon=":material/bar_chart:"),
]
# Lower-case url paths on purpose: Streamlit 1.67 treats a folder named pages/ as a v1 multipage
# app until the first st.navigation call of the server process, and during that first session a
# URL matching a v1 page name (/Trajectories) would run the page without this entry point.
page = st.navigation(PAGES)


def _clear_uploads() -> None:
    for k in ("model", "data"):
        su.view().pop(k, None)


def _take_upload(kind: str, uploaded) -> None:
    """Keep a newly uploaded file in the store and make it the candidate ``kind`` (model/data)."""
    if uploaded is None:
        return
    if st.session_state.get(f"_seen_{kind}") == uploaded.file_id:
        err = up.upload_error(kind, uploaded.file_id)
        if err:
            st.error(err)
        return
    st.session_state[f"_seen_{kind}"] = uploaded.file_id
    try:
        dig, _, _ = up.store_upload(uploaded)
    except Exception as exc:  # noqa: BLE001
        up.record_upload_error(kind, uploaded.file_id, exc)
        return
    su.view()[kind] = dig
    st.session_state["_pending"] = (kind, uploaded.file_id)


with st.sidebar:
    st.subheader("Model and data")
    demos = msg.guarded(ld.demo_infos)
    keys = list(demos)
    if not keys:
        st.error("No shipped demo was found in this installation; reinstall rnnviz.")
        st.stop()
    dkey = su.widget_key("demo", ld.DEFAULT_DEMO if ld.DEFAULT_DEMO in keys else keys[0], keys)
    st.selectbox("Demo", keys, key=dkey, format_func=lambda k: demos[k].title, on_change=_clear_uploads,
                 help="A trained model shipped with rnnviz, with the data it was tested on.")
    demo_key = su.value("demo")
    with st.expander("Use my own files", expanded=bool(su.view().get("model") or su.view().get("data"))):
        _take_upload("model", st.file_uploader("Model file", key="up_model",
                     help="A model saved with rnnviz (save_model), e.g. a .safetensors file."))
        _take_upload("data", st.file_uploader("Data file", key="up_data",
                     help="Sequences as CSV or Parquet (one row per step), NPZ, or a UCR/UEA .ts file; see the README."))
        back = st.empty()
    ctx = ld.resolve_loaded(demo_key)   # shows an error and keeps the previous view on failure
    if su.view().get("model") or su.view().get("data"):
        back.button("Back to the demo's files", on_click=_clear_uploads, key="btn_clear_uploads")
    if ctx is not None:
        st.caption(f"**Model:** {ctx.model_name}  \n**Data:** {ctx.data_name} "
                   f"({len(ctx.data.X)} sequences)")
        st.caption(f"**Device in use:** {ctx.device_label}")
        targets = cx.target_options(ctx)
        tkey = su.widget_key("target", "predicted", list(targets))
        st.selectbox("Target output", list(targets), key=tkey, format_func=targets.get,
                     help="Which output the contributions explain. 'Predicted' uses each sequence's own prediction.")
        ctx.target = cx.target_index(su.value("target"))

try:
    page.run()
finally:
    su.sync_url()
