"""Failures as plain sentences for the user: the core's own sentence, or a generic one.

The core's messages may give Python advice (``label_col=``, ``rv.save_model``); the app's
messages name a control that exists on screen instead. :func:`app_message` translates a core
error by its ``field`` (the choice it is about) into a sentence that names that control.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Callable, Iterator

import streamlit as st

from rnnviz_core.errors import DataError, ModelError, ModelFileError, RnnvizError

GENERIC_ERROR = ("Something went wrong while reading or analysing this input. Check that the file is "
                 "the right kind and try again; the previous view is kept.")

#: core error ``field`` -> the label of the sidebar control that changes it
CONTROLS = {
    "id": "Sequence id column", "id_col": "Sequence id column",
    "order": "Step order column", "order_col": "Step order column",
    "label": "Label column", "label_col": "Label column",
    "features": "Feature columns", "feature_cols": "Feature columns", "feature": "Feature columns",
    "group": "Group columns", "groups": "Group columns", "group_cols": "Group columns",
    "missing": "Missing values",
    "class_order": "Class order", "class_names": "Class order",
    "readout": "How the model reads the sequence",
    "vocabulary": "Vocabulary file",
    "text": "Text column", "text_col": "Text column",
    "model": "Model file",
    "data": "Data file", "file": "Data file",
    "model2": "Second model file",
}
#: controls that are on the page rather than in the sidebar
ON_PAGE = {"Second model file"}
# a sentence that gives Python advice: keyword arguments, rv./torch. calls, code in backticks
_QUOTED = re.compile(r"'[^'\n]{0,400}'")
CODE_LIKE = re.compile(r"\w+=|\brv\.|\btorch\.|\w+\((?:\)|[^)]*[='\"\[])|`|load_model|save_model|\.state_dict")


def message_of(exc: BaseException) -> str:
    """The sentence to show for ``exc``: the core's message, or :data:`GENERIC_ERROR`."""
    return str(exc) if isinstance(exc, RnnvizError) else GENERIC_ERROR


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z'\"(])", text.strip()) if s]


def app_message(exc: BaseException, kind: str | None = None) -> str:
    """The core's message for the app: sentences with Python advice dropped, and the control to
    use named (from the error's ``field``, else from ``kind``: "model" or "data").

    Parameters
    ----------
    exc : the exception raised by ``rnnviz_core`` (anything else gives :data:`GENERIC_ERROR`).
    kind : which file the error is about when the error does not say ("model" / "data").
    """
    if not isinstance(exc, RnnvizError):
        return GENERIC_ERROR
    field = getattr(exc, "field", None)
    control = CONTROLS.get(str(field)) if field else None
    if control is None:
        if kind in ("model", "data"):
            control = CONTROLS[kind]
        elif isinstance(exc, (ModelFileError, ModelError)):
            control = CONTROLS["model"]
        elif isinstance(exc, DataError):
            control = CONTROLS["data"]
    kept = []
    for sentence in _sentences(str(exc)):
        # names quoted from files ('...') are not advice: a name with brackets or backticks keeps its clause
        clauses = [c for c in re.split(r";\s+|,\s+(?:or|and) (?=\w+ \w+\()", sentence)
                   if not CODE_LIKE.search(_QUOTED.sub("''", c))]
        if clauses:
            kept.append("; ".join(clauses).rstrip(" .;,:") + ".")
    text = " ".join(kept) if kept else "This file cannot be used as it is."
    if control and f"'{control}'" not in text:
        where = "on this page" if control in ON_PAGE else "in the sidebar"
        if control.endswith("file"):
            text += f" Choose another file under '{control}' {where}."
        else:
            text += f" Change it under '{control}' {where}."
    return text


def as_text(message: str) -> str:
    """A message as Markdown that renders as its literal text: every Markdown and HTML character
    escaped, bare addresses broken (:func:`rnnviz_app.views.text.md_escape`). Messages quote names from
    files (zip entries, manifest keys, column names), so no message is shown without this."""
    from rnnviz_app.views.text import md_escape

    return md_escape(message, max_len=2_000)


def error(message: str) -> None:
    """``st.error`` of a message, shown as text (:func:`as_text`)."""
    st.error(as_text(message))


def show_error(exc: BaseException) -> None:
    """A plain message for the user (:func:`app_message`: the core's sentence without Python
    advice, naming the control to use), or a generic one. Never a traceback; shown as text."""
    error(app_message(exc))


@contextlib.contextmanager
def section(what: str) -> Iterator[None]:
    """Run one page section; when it fails, say why in a sentence where it would have been and go
    on with the next section (``st.stop`` and reruns pass through: they are not ``Exception``)::

        with section("The paths"):
            st.altair_chart(...)
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a section that cannot draw says why; the others draw
        error(f"{what} cannot be shown: {app_message(exc)}")


def guarded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn``; on failure show the message and stop this page (the sidebar stays usable)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a plain sentence
        show_error(exc)
        st.stop()
