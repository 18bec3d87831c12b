"""The model and data every page works on (:class:`Loaded`), and the target output choice."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from rnnviz_app.state.hashing import digest


@dataclass
class Loaded:
    """What every page works on. Objects are shared by all sessions: never mutate them."""
    model: Any
    data: Any
    model_key: str
    data_key: str
    model_name: str
    data_name: str
    demo: str | None
    device: str = "auto"
    device_label: str = "CPU"
    target: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Digest of model, data and device: the prefix of every cache key."""
        return digest(self.model_key, self.data_key, self.device)


def set_loaded(ctx: Loaded) -> None:
    st.session_state["_loaded"] = ctx


def loaded() -> Loaded:
    """The loaded context of this session; stops the page with a hint when there is none."""
    ctx = st.session_state.get("_loaded")
    if ctx is None:
        level, text = st.session_state.get("_waiting") or ("info", "Choose a model and data in the sidebar to begin.")
        # the text quotes names from the files: shown as text, never as Markdown
        from rnnviz_app.views.messages import as_text
        (st.error if level == "error" else st.info)(as_text(text))
        st.stop()
    return ctx


def set_waiting(level: str | None, text: str = "") -> None:
    """What the pages say instead of their content while no pair is loaded (``level`` "info"
    for a missing file, "error" for a refused pair; None clears it)."""
    st.session_state["_waiting"] = (level, text) if level else None


def target_options(ctx: Loaded) -> dict:
    """Target choices: "predicted" plus one entry per output class."""
    names = list(getattr(ctx.data, "class_names", None) or [])
    opts = {"predicted": "The predicted class" if len(names) > 1 else "The model's output"}
    if len(names) > 1:
        opts.update({str(i): f"Class: {n}" for i, n in enumerate(names)})
    return opts


def target_index(choice: str | None) -> int | None:
    """Output index for a :func:`target_options` key (None: each sequence's prediction)."""
    return None if choice in (None, "predicted") else int(choice)
