"""The words of the own-files sidebar's choices (split from :mod:`rnnviz_app.sources.own_files`, issue 20):
the head readings and class orders in a few words, each option with its accuracy (or a regression
head's error) on the loaded data, cut to fit the sidebar, and the browser kept showing the current
figures."""
from __future__ import annotations

import numpy as np
import streamlit as st

from rnnviz_app.views.text import format_accuracy, md_escape

#: the class order typed by hand (the choice's key)
TYPED = "typed"
#: head readings in a few words (the assumptions list)
READOUT_SHORT = {"last": "Last real step's output", "h_n": "Final hidden state h_n",
                 "mean": "Mean over the real steps", "max": "Max over the real steps"}
#: class orders in a few words (the sidebar is narrow); the full sentence is in the help
ORDER_SHORT = {"declared": "Declared in the file", "sorted_text": "Sorted as text",
               "first": "First appearance", TYPED: "Typed by hand"}
#: head readings in the sidebar's choice (a few words: the option carries its figure too)
READOUT_OPTION = {"last": "Last real step", "h_n": "Final state h_n", "mean": "Mean over steps",
                  "max": "Max over steps"}
#: the longest option text the sidebar's choices show whole at its default width (measured in
#: chromium: about 32 characters fit); longer ones are cut here with "…", and every choice's help
#: lists the options in full
OPTION_CHARS = 30


def fit_option(text: str, figure: str = "") -> str:
    """An option's text cut to fit the sidebar with an ellipsis, never mid-word without one; the
    figure in brackets is always kept whole."""
    from rnnviz_core.rankings import shorten
    room = OPTION_CHARS - len(figure)
    return shorten(text, max(8, room)) + figure


def readout_label(key: str, table) -> str:
    """Option text: the head reading in a few words and its accuracy (or, for regression, its
    error) on the loaded data."""
    return fit_option(READOUT_OPTION.get(key, key), choice_figure(table, "readout", key))


def order_label(key: str, table, cands_labels: dict) -> str:
    """Option text: the class order in a few words and its accuracy on the loaded data."""
    if key == TYPED:
        return ORDER_SHORT[TYPED]
    short = ORDER_SHORT.get(key) or str(cands_labels.get(key, key)).split(" (the same as")[0]
    return fit_option(short, choice_figure(table, "key", key))


def order_help(cands_labels: dict, table) -> str:
    """The class orders in full (the tooltip of the choice), each with its accuracy."""
    lines = [f"- {md_escape(order_label(k, table, cands_labels).split(' (')[0])}: {md_escape(lab)}"
             f"{md_escape(choice_figure(table, 'key', k))}" for k, lab in cands_labels.items()]
    return "  \n".join(lines)


def choice_figure(table, col: str, key: str) -> str:
    """" (87.3%)" (accuracy) or " (RMSE 0.0443)" (a regression head's error); "" when neither."""
    try:
        row = table[table[col] == key]
    except Exception:  # noqa: BLE001
        return ""
    if not len(row):
        return ""
    acc = float(row["accuracy"].iloc[0]) if "accuracy" in row else float("nan")
    if np.isfinite(acc):
        return f" ({format_accuracy(acc)})"
    err = float(row["rmse"].iloc[0]) if "rmse" in row else float("nan")
    from rnnviz_core.regression import format_number
    return f" (RMSE {format_number(err)})" if np.isfinite(err) else ""


def keep_figures_current(name: str, labels: list[str]) -> None:
    """Make the browser show an option list's current figures.

    Streamlit keeps a keyed selectbox's selected option as the text it showed: when the figures
    beside the options change (another choice changed them) the browser would go on showing the
    old text ("Final hidden state h_n (18.0%)") until the page is left. Setting the widget's own
    value again before it is drawn makes Streamlit send the current text. Call it just before
    drawing the selectbox ``w_<name>``.
    """
    key, seen_key = "w_" + name, "_labels_" + name
    seen = st.session_state.get(seen_key)
    st.session_state[seen_key] = list(labels)
    if seen is not None and list(seen) != list(labels) and key in st.session_state:
        st.session_state[key] = st.session_state[key]
