"""Shared widgets: charts drawn from cached Vega-Lite specs, CSV downloads of a view's data."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from rnnviz_app.compute import compute
from rnnviz_app.text import md_escape, safe_csv


def csv_button(df, label: str, file_name: str, key: str) -> None:
    """Download button for the data behind a view (text cells cannot run as spreadsheet formulas);
    the CSV is built when the button is clicked."""
    # built only when clicked (Streamlit calls the function then), not on every rerun
    st.download_button(label, lambda: safe_csv(df), file_name=file_name, mime="text/csv", key=key)


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
