"""Contributions: which steps drove the final output, ranked, and how far to trust each ranking.
Any source: a live model, or an analysis bundle (its stored scores; the deletion check needs the model)."""
import streamlit as st

from rnnviz_app.sources import source as so
from rnnviz_app.state import page_boot
from rnnviz_app.views import contributions_view as cv

page_boot.require_entry_point()
src = so.current()
st.title("Contributions")
st.caption("Which steps of a sequence drove the model's final answer? Each method gives every step a score; "
           "compare two sequences, see where in the sequences the model looks, and check which method to trust.")
cv.body(src)
