"""Shipped demos: their files, content hashes and the :class:`~rnnviz_app.sources.context.Loaded`
context of a demo (the user's own files: :mod:`rnnviz_app.sources.own_files`)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from rnnviz_app.sources.context import Loaded, set_loaded
from rnnviz_app.views.messages import error, message_of
from rnnviz_core.store import content_hash

DEFAULT_DEMO = "race"


@st.cache_data(show_spinner=False)
def demo_infos() -> dict:
    """Shipped demos: key -> DemoInfo, in the package's order."""
    from rnnviz_core.demos import list_demos
    return {d.key: d for d in list_demos()}


@st.cache_data(show_spinner=False)
def _file_digest(path: str, mtime: float) -> str:
    return content_hash(Path(path).read_bytes())


def file_digest(path) -> str:
    """Content hash of a file on disk (cached while its modification time is unchanged)."""
    p = Path(path)
    return _file_digest(str(p), p.stat().st_mtime)


@st.cache_resource(max_entries=4, show_spinner="Loading the demo…")
def _demo(key: str, model_dig: str, data_dig: str):
    from rnnviz_core.demos import load_demo
    return load_demo(key)


def demo_files(key: str) -> tuple[Path, Path]:
    """Paths of a shipped demo's model file and data file."""
    info = demo_infos()[key]
    return (Path(getattr(info, "model_path", info.model_file)),
            Path(getattr(info, "data_path", info.data_file)))


def demo(key: str):
    """``(model, dataset, model_digest, data_digest)`` for a shipped demo, cached by file hash."""
    mpath, dpath = demo_files(key)
    mdig, ddig = file_digest(mpath), file_digest(dpath)
    model, ds = _demo(key, mdig, ddig)
    return model, ds, mdig, ddig


def _build_loaded(demo_key: str) -> Loaded:
    from rnnviz_core.device import device_label, resolve_device
    model, ds, mkey, dkey = demo(demo_key)
    title = demo_infos()[demo_key].title
    dev = resolve_device("auto")
    return Loaded(model=model, data=ds, model_key=mkey, data_key=dkey, model_name=f"{title}: shipped model",
                  data_name=f"{title}: shipped test data", demo=demo_key, device=str(dev),
                  device_label=device_label(dev))


def resolve_loaded(demo_key: str) -> Loaded | None:
    """The shipped demo ``demo_key`` as the loaded context (own files: :mod:`rnnviz_app.sources.own_files`).

    When it cannot be loaded, the error is shown and the previous ``Loaded`` (if any) is kept.
    """
    prev = st.session_state.get("_loaded")
    try:
        ctx = _build_loaded(demo_key)
    except Exception as exc:  # noqa: BLE001
        error(message_of(exc))
        return prev
    ctx.extra["model_upload"] = ctx.extra["data_upload"] = None
    if prev is not None:
        ctx.target = prev.target
    set_loaded(ctx)
    return ctx
