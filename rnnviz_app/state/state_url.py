"""Session state, widget keys and the URL: a view lives in the query parameters, so a link
reproduces it. Each widget registered with :func:`widget_key` starts from the link's value.

This is the one link mechanism for every page and every source (demo, own files, your own class,
analysis bundle). Streamlit 1.67's ``bind="query-params"`` was tried and does not fit (measured in
a browser): the link holds the *formatted* option (a sequence's whole picker label, "gradient size"
rather than ``grad_norm``), so links would change whenever a label's words do; a value it does not
know is dropped silently, where a link's bad value must be named (:func:`show_link_notes`); and the
app's own ``st.query_params.from_dict`` (:func:`sync_url`) removes a bound parameter from the
address."""
from __future__ import annotations

import math
from typing import Any, Callable

import streamlit as st

GLOBAL_PARAMS = ("demo", "model", "data", "target")
MAX_PARAM_CHARS = 2000  # longer link values are ignored (a JSON list of column names fits)


def init_session() -> None:
    """Once per session: remember the link's query parameters as the starting view."""
    if "_view" not in st.session_state:
        st.session_state["_view"] = {k: st.query_params[k] for k in st.query_params}
    st.session_state["_used"] = list(GLOBAL_PARAMS)


def view() -> dict:
    """The current view: query-parameter name -> string value (mutable)."""
    return st.session_state["_view"]


def _finite(v: Any) -> bool:
    """True unless ``v`` is (or holds) a NaN or infinite number."""
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, (tuple, list)):
        return all(_finite(x) for x in v)
    return True


def _within(v: Any, bounds: tuple[float, float] | None) -> bool:
    if bounds is None:
        return True
    if isinstance(v, (tuple, list)):
        return all(_within(x, bounds) for x in v)
    try:
        return bounds[0] <= v <= bounds[1]
    except TypeError:
        return False


_BAD = (TypeError, ValueError, OverflowError, ArithmeticError)


def _parse(raw: Any, cast: Callable[[str], Any], bounds: tuple[float, float] | None, options: list | None) -> Any:
    """A link value cast and checked (at most :data:`MAX_PARAM_CHARS` characters, finite, within
    ``bounds``, among ``options`` if given); raises one of :data:`_BAD` when it is not valid."""
    if len(str(raw)) > MAX_PARAM_CHARS:
        raise ValueError(raw)
    cand = cast(raw)
    if not _finite(cand) or not _within(cand, bounds) or (options is not None and cand not in options):
        raise ValueError(raw)
    return cand


def checked_link_value(name: str, default: Any, options: list | None = None, cast: Callable[[str], Any] = str,
                       bounds: tuple[float, float] | None = None) -> Any:
    """The link's value of ``name`` when valid (see :func:`widget_key`), else ``default``; a bad
    value is dropped from the view and noted for :func:`show_link_notes`. For pages that set
    their widgets' state themselves."""
    raw = view().get(name)
    if raw is None:
        return default
    try:
        return _parse(raw, cast, bounds, options)
    except _BAD:
        _note_bad_link_value(name)
        view().pop(name, None)
        return default


def _note_bad_link_value(name: str) -> None:
    notes = st.session_state.setdefault("_link_notes", [])
    if name not in notes:
        notes.append(name)


def widget_key(name: str, default: Any, options: list | None = None,
               cast: Callable[[str], Any] = str, bounds: tuple[float, float] | None = None) -> str:
    """Key for a widget whose value lives in the URL as ``name``.

    The first time the widget appears, it starts from the link's value when that value is
    valid (at most :data:`MAX_PARAM_CHARS` characters, castable, finite, within ``bounds``
    (inclusive, for numbers and tuples of numbers) and among ``options`` if given), else from
    ``default``, and a bad link value is noted for :func:`show_link_notes`. Returns the key.
    """
    key = "w_" + name
    current = st.session_state.get(key, None)
    first = key not in st.session_state
    if first or (options is not None and current not in options):
        value = default
        raw = view().get(name)
        if raw is not None:
            try:
                value = _parse(raw, cast, bounds, options)
            except _BAD:
                if first:
                    _note_bad_link_value(name)
                view().pop(name, None)
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


def show_link_notes() -> None:
    """Say once which values of the opened link were not valid and were replaced by defaults."""
    notes = st.session_state.pop("_link_notes", None)
    if notes:
        st.caption("Some settings in this link were not valid here and start from their defaults: "
                   + ", ".join(sorted(str(n)[:40] for n in notes)) + ".")
