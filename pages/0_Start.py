"""Start page: what rnnviz shows, what is loaded, what was assumed, where to go next."""
import streamlit as st

from rnnviz_app.sources import source as so
from rnnviz_app.state import page_boot
from rnnviz_app.views import page_start as pst
from rnnviz_app.views import start_view as sv

page_boot.require_entry_point()
st.title("rnnviz: see inside a recurrent network")
src = so.current()
st.markdown(pst.intro(src))

sv.body(src)
