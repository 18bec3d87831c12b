"""What is loaded: a shipped demo, or uploaded files named in the view. Builds the
:class:`~rnnviz_app.context.Loaded` context every page works on."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from rnnviz_app.context import Loaded, set_loaded
from rnnviz_app.messages import message_of
from rnnviz_app.state_url import view
from rnnviz_app.uploads import data_from_bytes, model_from_bytes, stored
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


def _build_loaded(demo_key: str, model_dig: str | None, data_dig: str | None) -> Loaded:
    from rnnviz_core.device import device_label, resolve_device
    from rnnviz_core.errors import InputError
    model, ds, mkey, dkey = demo(demo_key)
    title = demo_infos()[demo_key].title
    mname, dname = f"{title}: shipped model", f"{title}: shipped test data"
    for kind, dig in (("model", model_dig), ("data", data_dig)):
        if not dig:
            continue
        try:
            raw, name = stored(dig)
        except KeyError:
            raise InputError(f"The {kind} file this link refers to is no longer kept on this server; "
                             "upload it again.") from None
        if kind == "model":
            model, mkey, mname = model_from_bytes(raw, name), dig, name or "uploaded model"
        else:
            ds, dkey, dname = data_from_bytes(raw, name), dig, name or "uploaded data"
    if model_dig or data_dig:
        from rnnviz_core.data import check_against_model
        ds = check_against_model(ds, model)  # aligned to the model: feature order, class order
    dev = resolve_device("auto")
    return Loaded(model=model, data=ds, model_key=mkey, data_key=dkey, model_name=mname,
                  data_name=dname, demo=demo_key, device=str(dev), device_label=device_label(dev))


def resolve_loaded(demo_key: str) -> Loaded | None:
    """The model and data to show: the demo plus any uploads named in the view.

    When the wanted combination cannot be loaded, the error is shown, the view falls back to
    what was on screen before, and that previous ``Loaded`` is returned.
    """
    v = view()
    prev = st.session_state.get("_loaded")
    pending = st.session_state.pop("_pending", None)
    try:
        ctx = _build_loaded(demo_key, v.get("model"), v.get("data"))
    except Exception as exc:  # noqa: BLE001
        msg = message_of(exc)
        if pending:
            st.session_state.setdefault("_upload_errors", {})[pending[0]] = (pending[1], msg)
        st.error(msg)
        if prev is not None:
            v["demo"] = prev.demo
            for kind in ("model", "data"):
                kept = prev.extra.get(kind + "_upload")
                if kept:
                    v[kind] = kept
                else:
                    v.pop(kind, None)
            return prev
        v.pop("model", None)
        v.pop("data", None)
        try:  # a link to files this server no longer has: show the demo itself
            ctx = _build_loaded(demo_key, None, None)
        except Exception:  # noqa: BLE001 - the message above already says what is wrong
            return None
    ctx.extra["model_upload"] = v.get("model")
    ctx.extra["data_upload"] = v.get("data")
    if prev is not None:
        ctx.target = prev.target
    set_loaded(ctx)
    return ctx
