"""Deep links on a freshly started server.

Streamlit 1.67 treats a folder named ``pages/`` as a v1 multipage app until the first
``st.navigation`` call in the server process. On a fresh server the first visitor's script run
therefore resolves the URL against the v1 page names (taken from the file names: ``Trajectories``
for ``pages/1_Trajectories.py``). A link the v1 names do not know gets Streamlit's "Page not
found" dialog; a link they do know runs the page file alone, without the entry point (no sidebar,
nothing loaded) and with a phantom "streamlit app" page in the navigation.

The arrangement that avoids both: the pages' URL paths in ``st.navigation`` equal the v1 names
(so v1 finds the page and v2 gives it the same page hash: Streamlit derives it from the URL path
alone), and each page's first statement is :func:`require_entry_point`, which ends the v1 phase
and reruns the same page through ``streamlit_app.py``.
"""
from __future__ import annotations

import streamlit as st

__all__ = ["require_entry_point"]


def require_entry_point() -> None:
    """Rerun through the entry point when this page was started by Streamlit's v1 page lookup."""
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False  # what st.navigation itself sets on its first call
        st.rerun()
