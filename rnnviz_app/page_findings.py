"""Findings in words at the top of a page: the sentences of :mod:`rnnviz_core.findings`, computed
from the same tables the page's charts draw, shown as plain text (never Markdown from data)."""
from __future__ import annotations

import re
from typing import Any

import streamlit as st

__all__ = ["show_findings", "plain"]

_MD = re.compile(r"([\\`*_{}\[\]<>()#+\-!|~$])")


def plain(text: str) -> str:
    """``text`` with Markdown's special characters escaped, so it is shown exactly as written."""
    return _MD.sub(r"\\\1", str(text))


def show_findings(box: Any, which: str, *args: Any, **kwargs: Any) -> list[str]:
    """Compute ``rnnviz_core.findings.<which>(*args, **kwargs)`` and show the sentences in ``box``
    (a Streamlit container placed at the top of the page). Shows nothing when there is nothing
    to say or the findings cannot be computed here; returns the sentences shown."""
    try:
        from rnnviz_core import findings
        sentences = [s for s in getattr(findings, which)(*args, **kwargs) if s]
    except Exception:  # noqa: BLE001 - findings are a summary; the charts below stay the evidence
        return []
    if sentences:
        with box.container(border=True, key=f"findings_{which}"):
            st.markdown("**What this page finds on the loaded model and data**  \n"
                        + "\n".join(f"- {plain(s)}" for s in sentences))
    return sentences
