"""Failures as plain sentences for the user: the core's own sentence, or a generic one."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from rnnviz_core.errors import RnnvizError

GENERIC_ERROR = ("Something went wrong while reading or analysing this input. Check that the file is "
                 "the right kind and try again; the previous view is kept.")


def message_of(exc: BaseException) -> str:
    """The sentence to show for ``exc``: the core's message, or :data:`GENERIC_ERROR`."""
    return str(exc) if isinstance(exc, RnnvizError) else GENERIC_ERROR


def show_error(exc: BaseException) -> None:
    """A plain message for the user: the core's own sentence, or a generic one. Never a traceback."""
    st.error(message_of(exc))


def guarded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn``; on failure show the message and stop this page (the sidebar stays usable)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a plain sentence
        show_error(exc)
        st.stop()
