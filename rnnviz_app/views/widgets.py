"""Shared widgets: charts drawn from cached Vega-Lite specs, CSV downloads of a view's data."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Callable

import streamlit as st

from rnnviz_app.state.compute import compute
from rnnviz_app.views.messages import as_text
from rnnviz_app.views.text import md_escape, safe_csv


def csv_button(df, label: str, file_name: str, key: str) -> None:
    """Download button for the data behind a view (text cells cannot run as spreadsheet formulas);
    the CSV is built when the button is clicked. ``df`` may be a function returning the frame (then
    the frame too is built only on a click: a long sequence's full heatmap is millions of rows)."""
    # built only when clicked (Streamlit calls the function then), not on every rerun
    st.download_button(label, lambda: safe_csv(df() if callable(df) else df), file_name=file_name, mime="text/csv",
                       key=key)


def chart_spec(build: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[dict, str]:
    """Validated Vega-Lite spec with its datasets already in Arrow form (what Streamlit sends)."""
    import pandas as pd
    from streamlit import dataframe_util
    chart = build(*args, **kwargs)
    desc = getattr(chart, "description", None)
    spec = chart.to_dict()
    # The caption is drawn as text under the chart; kept out of the definition so that a chart whose
    # definition is the same for every pair (only its data differs) is updated in place by the
    # browser, not rebuilt (Streamlit 1.67 rebuilds a chart whose definition changed).
    spec.pop("description", None)
    # Streamlit's default "fit" sizing squeezes the plot when axis labels are long (measured: a
    # bar chart with long vertical labels drew no bars); "pad" keeps the chart's own width/height.
    spec.setdefault("autosize", {"type": "pad"})
    for name, values in spec.get("datasets", {}).items():
        if isinstance(values, list):
            spec["datasets"][name] = dataframe_util.convert_anything_to_arrow_bytes(pd.DataFrame(values))
    return spec, (desc if isinstance(desc, str) else "")


def chart(build: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> str:
    """Draw ``build(*args, **kwargs)`` (an Altair chart) and return its caption, escaped for
    Markdown (captions name sequences, classes and groups from the user's files: issue 13).

    Building and validating an Altair spec costs ~0.1 s per chart; the finished Vega-Lite spec is
    cached under the loaded model/data hashes plus ``key`` (what the data depends on) and the
    small keyword options, so a rerun that changes nothing in the chart does not rebuild it.
    """
    name = f"{build.__module__}.{build.__qualname__}"
    spec, caption = compute(chart_spec, build, args, kwargs,
                            key=("chart", name, repr(sorted(kwargs.items()))) + tuple(key))
    st.vega_lite_chart(spec, width="content", theme=None)
    return md_escape(caption, max_len=20_000)


def section_message(what: str, exc: BaseException) -> str:
    """The sentence shown in place of a page section that failed: what failed, the core's own
    reason where it gave one (naming the control to change), and that the rest still works."""
    from rnnviz_app.views.messages import app_message
    from rnnviz_core.errors import RnnvizError
    if isinstance(exc, RnnvizError):
        return f"{what} could not be drawn: {app_message(exc)} The other views on this page are not affected."
    return (f"{what} could not be drawn for this choice ({type(exc).__name__}). The other views on this page are "
            "not affected; choose other sequences or a shorter range under 'Steps to draw'.")


@contextmanager
def section(what: str):
    """Run one page section; an exception inside it becomes a sentence in its place (see
    :func:`section_message`) and the page goes on with the next section. Streamlit's own stop and
    rerun signals pass through."""
    from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException
    try:
        yield
    except ScriptControlException:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes a plain sentence in its section
        logging.getLogger("rnnviz").warning("section %r failed", what, exc_info=True)
        st.warning(as_text(section_message(what, exc)))  # exception texts quote names from files


def _window_cast(raw: str) -> tuple[int, int]:
    """A window in the link, "first-last" (both drawn): "100-300" -> (100, 300)."""
    import re
    m = re.fullmatch(r"\s*(\d{1,9})\s*-\s*(\d{1,9})\s*", str(raw))
    if m is None or int(m[1]) > int(m[2]):
        raise ValueError(raw)
    return int(m[1]), int(m[2])


def _window_text(first: int, last: int, n_steps: int) -> str | None:
    """The link's value for a window: None (left out) when every step is chosen."""
    first, last = sorted((int(first), int(last)))
    return None if (first, last) == (0, n_steps - 1) else f"{first}-{last}"


def _keep_window(param: str) -> None:
    from rnnviz_app.state import state_url as su
    su.remember(param, _window_text(*st.session_state["w_" + param], st.session_state["_window_n"][param]))


def step_window(n_steps: int, name: str) -> tuple[int, int] | None:
    """A range slider over the steps 0 .. n_steps - 1 (its two ends are the first and the last
    step drawn), shown only when the charts bin steps (a sequence longer than a chart's columns).
    Returns the window as (start, end) with ``end`` exclusive, or None when every step is chosen.
    A window short enough is drawn step by step.

    The window lives in the link as ``steps_<name>=first-last`` (left out when every step is
    chosen), so a link reopens it; a link value that is not a window within the steps starts from
    every step and is named in the sidebar's note. When the steps change (another pair A and B),
    the window starts again from every step, without a note."""
    from rnnviz_app.state import state_url as su
    from rnnviz_core.display import MAX_COLUMNS
    n_steps = int(n_steps)
    if n_steps <= MAX_COLUMNS:
        return None
    param, full = f"steps_{name}", (0, n_steps - 1)
    seen = st.session_state.setdefault("_window_n", {})
    if seen.get(param) not in (None, n_steps):
        su.view().pop(param, None)          # the window of other steps: not a bad link
    seen[param] = n_steps
    first, last = su.checked_link_value(param, full, cast=_window_cast, bounds=full)
    st.session_state["w_" + param] = (first, last)
    st.slider(
        "Steps to draw (first and last)", min_value=0, max_value=n_steps - 1, step=1,
        key="w_" + param, on_change=_keep_window, args=(param,),
        help=f"Zoom into a range of steps. Each chart draws at most {MAX_COLUMNS} columns (fewer when it has many "
             "rows): a longer range is drawn in columns of several steps, and each caption says how many; a short "
             "range is drawn step by step. The link keeps the range.")
    su.remember(param, _window_text(first, last, n_steps))
    return None if (first, last) == full else (first, last + 1)
