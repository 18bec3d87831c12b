"""The upload store (files kept under their content hash) and cached readers of uploaded bytes."""
from __future__ import annotations

import os

import streamlit as st

from rnnviz_app.views.messages import error, message_of
from rnnviz_core import data as _data
from rnnviz_core import models as _models
from rnnviz_core.store import UploadStore, content_hash

MAX_STORE_BYTES = int(os.environ.get("RNNVIZ_UPLOAD_MAX_BYTES", 500 * 1024 * 1024))


def _session_bytes(max_store: int, env: str | None) -> int:
    """One session's share of the store: ``env`` when set, else a quarter of the store but never
    less than the largest allowed model and data file together (so the largest files fit)."""
    if env:
        return int(env)
    return max(max_store // 4, _data.MAX_DATA_BYTES + _models.MAX_MODEL_BYTES)


#: what one browser session may hold in the store (its own older files make room first)
SESSION_BYTES = _session_bytes(MAX_STORE_BYTES, os.environ.get("RNNVIZ_UPLOAD_SESSION_BYTES"))


@st.cache_resource
def upload_store() -> UploadStore:
    """The server's one upload store (location from ``RNNVIZ_UPLOAD_DIR``)."""
    return UploadStore(max_bytes=MAX_STORE_BYTES, owner_bytes=SESSION_BYTES)


def session_owner() -> str:
    """An id for this browser session: the store's per-visitor quota is counted under it."""
    if "_owner" not in st.session_state:
        import secrets
        st.session_state["_owner"] = secrets.token_hex(8)
    return st.session_state["_owner"]


def store_upload(uploaded) -> tuple[str, bytes, str]:
    """Keep an ``UploadedFile`` under its content hash; return ``(digest, bytes, name)``."""
    data = uploaded.getvalue()
    return upload_store().put(data, name=uploaded.name, owner=session_owner()), data, uploaded.name


def stored(dig: str) -> tuple[bytes, str]:
    """Bytes and file name kept under ``dig`` (KeyError when the server no longer has it)."""
    return upload_store().get(dig)


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _model_from_bytes(dig: str, name: str, _data: bytes):
    from rnnviz_core.models import load_model
    return load_model(_data, name=name)


@st.cache_resource(max_entries=8, show_spinner="Reading the data…")
def data_by_hash(dig: str, name: str, _data: bytes):
    from rnnviz_core.data import load_data
    return load_data(_data, name=name)


def model_from_bytes(data: bytes, name: str):
    """The model in ``data`` (cached by content hash; shared, never mutate it)."""
    return _model_from_bytes(content_hash(data), name, data)


def data_from_bytes(data: bytes, name: str):
    """The dataset in ``data`` (cached by content hash; shared, never mutate it)."""
    return data_by_hash(content_hash(data), name, data)


def upload_error(kind: str, file_id: str) -> str | None:
    """The error recorded for the file still sitting in the ``kind`` uploader, if any."""
    rec = st.session_state.get("_upload_errors", {}).get(kind)
    return rec[1] if rec and rec[0] == file_id else None


def record_upload_error(kind: str, file_id: str, exc: BaseException) -> None:
    """Remember (and show) why the file in the ``kind`` uploader was refused."""
    msg = message_of(exc)
    st.session_state.setdefault("_upload_errors", {})[kind] = (file_id, msg)
    error(msg)
