"""rnnviz: see inside recurrent networks. Run with ``streamlit run streamlit_app.py``.

The entry point routes between pages and owns the shared sidebar (model and data: a demo,
the user's own files, or the user's own model class started by ``rnnviz app`` / ``rv.show``;
device, target); the glue lives in the ``rnnviz_app`` package.
"""
from __future__ import annotations

import os

import streamlit as st
import torch

from rnnviz_app.inputs import bundle_sidebar as bs  # bundle hook
from rnnviz_app.inputs import sidebar as sb
from rnnviz_app.sources import launched as la
from rnnviz_app.state import state_url as su

# Torch threads per server process (RNNVIZ_TORCH_THREADS, default 1): with torch's default of one
# thread per core, one session's computation starved every other session's reruns on a shared
# host (bench/bench_concurrency.py).
_threads = max(1, int(os.environ.get("RNNVIZ_TORCH_THREADS", "1")))
if torch.get_num_threads() != _threads:
    torch.set_num_threads(_threads)

# A Material icon, not an emoji: checking an emoji loads Streamlit's emoji catalogue (30-60 ms of
# the first script run on a freshly started server).
st.set_page_config(page_title="rnnviz", page_icon=":material/repeat:", layout="wide",
                   menu_items={"About": "rnnviz shows what happens inside recurrent networks."})
su.init_session()

PAGES = [
    st.Page("pages/0_Start.py", title="Start", icon=":material/home:", default=True),
    st.Page("pages/1_Trajectories.py", title="Trajectories", url_path="Trajectories", icon=":material/timeline:"),
    st.Page("pages/2_Saturation.py", title="Saturation", url_path="Saturation", icon=":material/thermostat:"),
    st.Page("pages/3_Contributions.py", title="Contributions", url_path="Contributions", icon=":material/bar_chart:"),
    st.Page("pages/4_What_if.py", title="What if", url_path="What_if", icon=":material/edit:"),
    st.Page("pages/5_Units.py", title="Units", url_path="Units", icon=":material/memory:"),
]
# Links written before (lower-case paths) still open their page once the server is warm.
PAGES += [st.Page(p._page, title=p.title, url_path=p.url_path.lower(), visibility="hidden") for p in PAGES[1:]]
# URL paths equal to the names Streamlit 1.67 gives these files as v1 pages, on purpose: a
# folder named pages/ is a v1 multipage app until the server's first st.navigation call, and a
# deep link on a fresh server must resolve in both phases (see rnnviz_app/state/page_boot.py).
opened = bs.opened()  # bundle hook: an analysis bundle (upload, link bundle=<sha256>, $RNNVIZ_BUNDLE) or None
page = st.navigation(PAGES)  # the same pages for every source (rnnviz_app/sources/source.py)

with st.sidebar:
    # your own model class when 'rnnviz app' / rv.show started this server ($RNNVIZ_LAUNCH), else demos or own files
    ctx = None if opened else (la.sidebar() if la.active() else sb.source_and_files())  # bundle hook
    bs.sidebar(opened)  # bundle hook: the "Open an analysis bundle" expander
    if ctx is not None:
        sb.loaded_caption(ctx)
        sb.target_picker(ctx)
    notes = st.empty()   # filled after the page ran: its widgets check their link values too
su.sync_url()            # the sidebar's choices reach the link even when the page stops early

try:
    page.run()
finally:
    with notes.container():
        su.show_link_notes()
    su.sync_url()
