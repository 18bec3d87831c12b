"""Session state, widget keys and the URL: a view lives in the query parameters, so a link
reproduces it. Each widget registered with :func:`widget_key` starts from the link's value."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

GLOBAL_PARAMS = ("demo", "model", "data", "target")


def init_session() -> None:
    """Once per session: remember the link's query parameters as the starting view."""
    if "_view" not in st.session_state:
        st.session_state["_view"] = {k: st.query_params[k] for k in st.query_params}
    st.session_state["_used"] = list(GLOBAL_PARAMS)


def view() -> dict:
    """The current view: query-parameter name -> string value (mutable)."""
    return st.session_state["_view"]


def widget_key(name: str, default: Any, options: list | None = None,
               cast: Callable[[str], Any] = str) -> str:
    """Key for a widget whose value lives in the URL as ``name``.

    The first time the widget appears, it starts from the link's value when that value is
    valid (castable, and among ``options`` if given), else from ``default``. Returns the key.
    """
    key = "w_" + name
    current = st.session_state.get(key, None)
    if key not in st.session_state or (options is not None and current not in options):
        value = default
        raw = view().get(name)
        if raw is not None:
            try:
                cand = cast(raw)
                if options is None or cand in options:
                    value = cand
            except (TypeError, ValueError):
                pass
        st.session_state[key] = value
    if name not in st.session_state["_used"]:
        st.session_state["_used"].append(name)
    return key


def remember(name: str, value: Any) -> None:
    """Put a view value in the URL (call after reading the widget)."""
    if value is None:
        view().pop(name, None)
    else:
        view()[name] = str(value)
    if name not in st.session_state["_used"]:
        st.session_state["_used"].append(name)


def value(name: str) -> Any:
    """Current value of the widget registered with :func:`widget_key` and mirror it to the URL."""
    v = st.session_state.get("w_" + name)
    remember(name, v)
    return v


def sync_url() -> None:
    """Write the view used on this run to the address bar, so the link reproduces it."""
    v = view()
    wanted = {k: v[k] for k in st.session_state.get("_used", []) if v.get(k) not in (None, "")}
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)
