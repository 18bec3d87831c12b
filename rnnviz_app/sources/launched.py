"""Your own model class live: the source the app shows when ``rnnviz app`` or ``rv.show``
started it (see :mod:`rnnviz_core.launch`).

Only ``$RNNVIZ_LAUNCH``, set by the launching process in this server's environment, turns this
source on; it names a private launch file (a folder of mode 0700 owned by the user running the
server). Nothing here reads the link's query parameters or an upload: a link or an upload can
never make the app import a module or unpickle a model. The loaded pair goes through the same
:class:`~rnnviz_app.sources.context.Loaded` context as a demo or own files, so every page and view
(resilience, the deletion check, every method) works on it.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from rnnviz_app.sources.context import Loaded, set_loaded, set_waiting
from rnnviz_app.views.messages import app_message, as_text
from rnnviz_app.views.text import md_escape
from rnnviz_core.launch import LAUNCH_ENV

__all__ = ["active", "sidebar", "resolve"]


def active() -> bool:
    """Whether the launcher that started this server handed it a model (``$RNNVIZ_LAUNCH``)."""
    return bool(os.environ.get(LAUNCH_ENV))


def _stamp(path: Path) -> tuple:
    s = path.stat()
    return s.st_mtime_ns, s.st_size


def _files_key(path: Path, spec: dict) -> tuple[str, str]:
    """Content keys of the model half and the data half of a launch."""
    from rnnviz_app.sources.loading import file_digest
    from rnnviz_app.state.hashing import digest
    launch = file_digest(path)
    if spec["kind"] == "object":
        return digest(launch, file_digest(path.parent / "model.pkl")), file_digest(path.parent / "data.pkl")
    weights = spec.get("weights")
    return (digest(launch, spec.get("factory"), file_digest(weights) if weights else None),
            digest(file_digest(spec["data"]), repr(sorted((spec.get("data_options") or {}).items()))))


@st.cache_resource(max_entries=2, show_spinner="Building your model…")
def _load(path: str, stamp: tuple):
    """``(model, data, model name, data name, budget note)`` of the launch file (runs the
    user's code: only ever called with the path from ``$RNNVIZ_LAUNCH``)."""
    from rnnviz_app.sources.own_files import TRACE_BUDGET_BYTES
    from rnnviz_core import budget
    from rnnviz_core.errors import MismatchError
    from rnnviz_core.launch import load_launch, read_launch
    found = read_launch()
    if found is None or str(found[0]) != path:
        raise RuntimeError("launch file changed")
    model, ds, mname, dname = load_launch(*found)
    try:  # one small forward pass: a pair that does not fit is said here, not on every page
        from rnnviz_core.trace import predict
        predict(model, ds.X[:2], ds.lengths[:2])
    except Exception as exc:  # noqa: BLE001
        raise MismatchError(f"The model {mname} cannot read the data {dname}: {exc}") from None
    ds, plan = budget.fit(ds, model, max_bytes=TRACE_BUDGET_BYTES)
    return model, ds, mname, dname, (plan.message if plan.sampled else "")


def resolve() -> Loaded | None:
    """The launched pair as the loaded context, or None (the page then says why)."""
    from rnnviz_core.device import device_label, resolve_device
    from rnnviz_core.launch import read_launch
    try:
        found = read_launch()
        if found is None:
            return None
        path, spec = found
        model, ds, mname, dname, note = _load(str(path), _stamp(path))
        mkey, dkey = _files_key(path, spec)
    except Exception as exc:  # noqa: BLE001 - the user's code can raise anything: said plainly
        set_loaded(None)
        from rnnviz_core.errors import RnnvizError
        # your own code on your own machine: its own exception's words help more than a generic sentence
        why = app_message(exc) if isinstance(exc, RnnvizError) else f"{type(exc).__name__}: {str(exc)[:400]}"
        set_waiting("error", f"The model started with 'rnnviz app' could not be loaded. {why}")
        return None
    dev = resolve_device("auto")
    ctx = Loaded(model=model, data=ds, model_key=mkey, data_key=dkey + (f":n{len(ds)}" if note else ""),
                 model_name=mname, data_name=dname, demo=None, device=str(dev), device_label=device_label(dev))
    ctx.extra.update(model_upload=None, data_upload=None, launched=True)   # not "own": no column controls here
    if note:
        ctx.extra["budget_note"] = note
    prev = st.session_state.get("_loaded")
    if prev is not None and prev.key == ctx.key:
        ctx.target = prev.target
    set_loaded(ctx)
    set_waiting(None)
    return ctx


@st.cache_resource(show_spinner=False)
def _watching() -> bool:
    from rnnviz_core.launch import watch_parent
    return watch_parent()


def sidebar() -> Loaded | None:
    """The sidebar's model part for a launched model (no demo picker, no uploaders)."""
    _watching()   # once per server: it stops when the launcher is gone
    st.subheader("Model and data")
    st.caption("Your own model class, started from your machine with 'rnnviz app' or rv.show.")
    ctx = resolve()
    if ctx is None:
        st.error(as_text((st.session_state.get("_waiting") or ("", ""))[1]))
    return ctx


def describe(ctx: Loaded) -> str:
    """One line for the start page about where the model came from (Markdown-escaped)."""
    return f"Your own model class **{md_escape(ctx.model_name)}** on **{md_escape(ctx.data_name)}**."
