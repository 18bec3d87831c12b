"""Altair charts drawn from the tidy frames that rnnviz_core computes (no streamlit here)."""
