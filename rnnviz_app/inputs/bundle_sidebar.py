"""The app's way into an analysis bundle: which bundle is open, and its sidebar part.

The entry point calls two things (marked "bundle hook" in ``streamlit_app.py``): :func:`opened`
before ``st.navigation`` (which bundle, if any, this run shows; the pages then render it through
:func:`rnnviz_app.sources.source.current`, the same pages as for a live model) and :func:`sidebar`
(the "Open an analysis bundle" expander). A bundle comes from an upload, a link's ``bundle=<sha256>``
or the host's ``$RNNVIZ_BUNDLE``; every way goes through :mod:`rnnviz_app.sources.bundle_source`, which
checks it and never runs anything in it.
"""
from __future__ import annotations

import weakref
from typing import Any

import streamlit as st

from rnnviz_app.sources.bundle_source import (
    bundle_by_hash,
    bundle_from_upload,
    host_bundle,
)
from rnnviz_app.state import state_url as su
from rnnviz_app.views.messages import app_message
from rnnviz_app.views.messages import error as msg_error

_HASH = "_bundle_hash"        # hash of the open bundle ("" = closed on purpose, None = not chosen)
_ERROR = "_bundle_error"      # sentence from the last failed open
_UPLOAD = "bundle_upload"     # the uploader's key
_OPEN = "_bundle_open"        # (hash, weak reference to the Bundle) of this run
_LAST = "_bundle_last"        # (hash, weak reference to the Bundle) last opened in this session

UPLOAD_LABEL = "Analysis bundle (.rnnviz)"
UPLOAD_HELP = ("A file made with `rnnviz precompute` where the model lives. It holds numbers only (tables and "
               "arrays, no code and no model), so any model can be shown here; views that re-run the model "
               "say so.")


def _on_upload() -> None:
    f = st.session_state.get(_UPLOAD)
    if f is None:
        return
    try:
        dig, _ = bundle_from_upload(f)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a plain sentence
        st.session_state[_ERROR] = app_message(exc)
        return
    st.session_state[_HASH] = dig
    st.session_state[_ERROR] = None
    su.view()["bundle"] = dig


def _on_close() -> None:
    st.session_state[_HASH] = ""
    st.session_state[_ERROR] = None
    st.session_state.pop(_UPLOAD, None)
    su.view().pop("bundle", None)


def _by_hash(dig: str) -> tuple[str, Any]:
    """The bundle a link names: the host's own (``$RNNVIZ_BUNDLE``) when the hash is its, else
    an upload or a published one (:func:`bundle_by_hash`)."""
    try:
        return dig, bundle_by_hash(dig)
    except Exception:
        host = host_bundle()
        if host is not None and host[0] == dig:
            return host
        raise


def opened() -> tuple[str, Any] | None:
    """``(hash, Bundle)`` this run shows, or None: the session's choice, else the link's
    ``bundle=`` value, else the host's ``$RNNVIZ_BUNDLE``. Call it before ``st.navigation``."""
    st.session_state[_OPEN] = None
    dig = st.session_state.get(_HASH)
    if dig is None:
        dig = su.view().get("bundle")
    last = st.session_state.get(_LAST)
    held = last[1]() if dig and last is not None and last[0] == dig else None
    try:
        if held is not None:
            found = (dig, held)   # checked on an earlier run of this session: not read again
        elif dig:
            found = _by_hash(dig)
        elif dig is None:
            found = host_bundle()
        else:
            found = None
    except Exception as exc:  # noqa: BLE001 - a link or host path that fails is said plainly
        st.session_state[_ERROR] = app_message(exc)
        st.session_state[_HASH] = ""
        su.view().pop("bundle", None)
        found = None
    if found is not None:
        st.session_state[_HASH] = found[0]
        su.remember("bundle", found[0])
    # the session keeps weak references only: the server's byte-bounded cache of opened bundles
    # (bundle_source.opened_bundles) decides what stays in memory, not how many sessions are idle
    st.session_state[_OPEN] = None if found is None else (found[0], weakref.ref(found[1]))
    if found is not None:
        st.session_state[_LAST] = st.session_state[_OPEN]
    return found


def sidebar(found: tuple[str, Any] | None) -> None:
    """The "Open an analysis bundle" expander (inside ``with st.sidebar``)."""
    if found is not None:
        b = found[1]
        st.subheader("Analysis bundle")
        st.caption(f"Showing an analysis bundle: {b.n_sequences:,} sequences, up to {b.max_length} steps. "
                   "Numbers only; the model itself is not here.")
    with st.expander("Open an analysis bundle", expanded=found is not None or bool(st.session_state.get(_ERROR))):
        st.file_uploader(UPLOAD_LABEL, type=["rnnviz", "zip"], key=_UPLOAD, on_change=_on_upload, help=UPLOAD_HELP)
        if st.session_state.get(_ERROR):
            msg_error(st.session_state[_ERROR])
        if found is not None:
            st.button("Close the bundle", key="btn_close_bundle", on_click=_on_close,
                      help="Go back to a model and data chosen under Model and data.")
