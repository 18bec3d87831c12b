"""Uploads as the app's sidebar receives them, for the app-level tests (no browser)."""
from pathlib import Path

import streamlit as st

from rnnviz_app.sources import own_files as own


class FakeUpload:
    def __init__(self, data: bytes, name: str):
        self._data, self.name, self.file_id = data, name, name

    def getvalue(self) -> bytes:
        return self._data


def upload(kind: str, path: Path) -> None:
    st.session_state["up_" + kind] = FakeUpload(path.read_bytes(), path.name)
    own.on_upload(kind)
