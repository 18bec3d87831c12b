"""Saturation: which units and gates pin at their limits, and does it matter? Any source: a live
model, or an analysis bundle (its stored shares; the sections that need the model say why)."""
import streamlit as st

from rnnviz_app.sources import source as so
from rnnviz_app.state import page_boot
from rnnviz_app.views import saturation_view as sv

page_boot.require_entry_point()
src = so.current()
st.title("Saturation")
st.caption("A unit is saturated when its value sits at the edge of its range, where it can no longer change "
           "smoothly. Compare two groups of sequences: do the ones whose memory saturates fare worse?")
sv.body(src)
