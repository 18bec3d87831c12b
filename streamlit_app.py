"""rnnviz: see inside recurrent networks. Run with ``streamlit run streamlit_app.py``.

The entry point routes between pages and owns the shared sidebar (model and data: a demo or
the user's own files, device, target); the glue lives in the ``rnnviz_app`` package.
"""
from __future__ import annotations

import streamlit as st

from rnnviz_app import sidebar as sb
from rnnviz_app import state_url as su

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

with st.sidebar:
    ctx = sb.source_and_files()
    if ctx is not None:
        sb.loaded_caption(ctx)
        sb.target_picker(ctx)
    su.show_link_notes()

try:
    page.run()
finally:
    su.sync_url()
