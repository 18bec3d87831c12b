"""Widgets whose value lives in the view (the URL's parameters kept in the session).

Streamlit forgets a widget's state on a run that does not draw it (another page, or a page
stopped early), and a widget whose state was forgotten can show one option while the script
reads another. Here the view is the one source of truth: each run sets the widget from it before
drawing it, and the widget writes back in its ``on_change`` callback, so what is shown is always
what is used.

Pages 0-3 (every source: a live model or an analysis bundle) bind their widgets with
:func:`rnnviz_app.state.state_url.widget_key`; :func:`bound` is left for the What if and Units
pages. Both read a link's value through one check (:func:`rnnviz_app.state.state_url.checked_link_value`
and the parser it shares with ``widget_key``). Streamlit 1.67's ``bind="query-params"`` was tried
for the bundle pages and does not fit (measured in a browser): the link holds the *formatted*
option (a sequence's whole picker label, "gradient size" rather than ``grad_norm``), so a live link
and a bundle link would not read each other; a value it does not know is dropped silently, where a
link's bad value must be named; and the app's own ``st.query_params.from_dict``
(:func:`rnnviz_app.state.state_url.sync_url`) removes a bound parameter from the address.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import streamlit as st

from rnnviz_app.state import state_url as su

__all__ = ["bound", "bound_value"]


def _write_back(name: str) -> None:
    su.remember(name, st.session_state["w_" + name])


def bound_value(name: str, default: Any, options: Sequence[Any] | None = None,
                cast: Callable[[str], Any] = str, bounds: tuple[float, float] | None = None) -> Any:
    """The view's value of ``name`` (cast, finite, within ``bounds`` and among ``options`` if
    given), else ``default``; a value that is not valid is dropped from the view and named in the
    sidebar's note (see :func:`rnnviz_app.state.state_url.checked_link_value`)."""
    return su.checked_link_value(name, default, None if options is None else list(options), cast, bounds)


def bound(widget: Callable[..., Any], label: str, name: str, default: Any, options: Sequence[Any] | None = None,
          cast: Callable[[str], Any] = str, **kwargs: Any) -> Any:
    """Draw ``widget(label, [options,] key=..., on_change=...)`` set from the view; return its value.

    ``options`` is passed to the widget as its second argument when given (selectbox, radio);
    leave it None for sliders and give their range in ``kwargs``.
    """
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    bounds = (lo, hi) if lo is not None and hi is not None else None
    value = bound_value(name, default, options, cast, bounds)
    st.session_state["w_" + name] = value
    args = (label,) if options is None else (label, list(options))
    widget(*args, key="w_" + name, on_change=_write_back, args=(name,), **kwargs)
    su.remember(name, value)
    return value
