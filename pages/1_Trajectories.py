"""Trajectories: how the hidden state evolves, and where sequence A and B part ways."""
import streamlit as st

from rnnviz_app.sources import source as so
from rnnviz_app.state import page_boot
from rnnviz_app.views import trajectories_view as tv

page_boot.require_entry_point()
so.current()  # stops the page with a hint when nothing is loaded
st.title("Trajectories")
st.caption("Follow the network's memory step by step for two sequences, A and B, and see where they drift apart.")


# The page body is one fragment: a widget change on this page (A, B, the layer, the alignment)
# reruns only the body, not the sidebar, so the browser redraws only what changed. The findings at
# the top are inside it and computed in the same run as the charts, so they stay true for the pair
# drawn; the URL is written at its end (the entry point's write runs on full reruns only).
st.fragment(tv.body)()
