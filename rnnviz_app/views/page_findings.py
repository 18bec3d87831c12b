"""Findings in words at the top of a page: the sentences of :mod:`rnnviz_core.findings`, computed
from the same tables the page's charts draw, shown as plain text (never Markdown from data)."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from rnnviz_app.views.text import md_escape

__all__ = ["show_findings", "plain"]


def plain(text: object) -> str:
    """``text`` safe inside Markdown, shown exactly as written: every Markdown/HTML character
    escaped (``:red[...]`` colour directives included) and bare web/mail addresses kept from
    becoming links (see :func:`rnnviz_app.views.text.md_escape`); cut to 1000 characters."""
    return md_escape(text, max_len=1000)


def show_findings(box: Any, which: str, *args: Any, more: Callable[[], list[str]] | None = None,
                  **kwargs: Any) -> list[str]:
    """Compute ``rnnviz_core.findings.<which>(*args, **kwargs)`` and show the sentences in ``box``
    (a Streamlit container placed at the top of the page), followed by those of ``more()`` (each
    part left out on its own when it cannot be computed). Shows nothing when there is nothing
    to say or the findings cannot be computed here; returns the sentences shown."""
    sentences: list[str] = []
    for part in (lambda: getattr(__import__("rnnviz_core.findings", fromlist=["x"]), which)(*args, **kwargs), more):
        try:
            sentences += [s for s in (part() if part is not None else []) if s]
        except Exception:  # noqa: BLE001 - findings are a summary; the charts below stay the evidence
            pass
    if sentences:
        with box.container(border=True, key=f"findings_{which}"):
            st.markdown("**What this page finds on the loaded model and data**  \n"
                        + "\n".join(f"- {plain(s)}" for s in sentences))
    return sentences
