"""The entry point and start page under Streamlit's AppTest.

AppTest runs the start page through the real entry point. It cannot drive the other pages: with
the page folder named pages/, Streamlit 1.67's AppTest runs a switched-to page without the entry
point (and drops the entry point's sidebar widgets after a rerun), so those pages are tested in
a real browser (tests/e2e) and through the rnnviz_app package in tests/test_app_support.py.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ENTRY = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def app(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    at = AppTest.from_file(ENTRY, default_timeout=180)
    at.run()
    return at


def test_start_page_shows_the_trained_demo_without_arguments(app):
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.title[0].value.startswith("rnnviz")
    md = " ".join(m.value for m in app.markdown)
    assert "rnnviz shows what happens inside a recurrent network" in md
    assert "Architecture:" in md and "classes" in md
    metric = app.metric[0]
    assert metric.label == "Accuracy on the loaded data"
    assert metric.value.endswith("%") and 0 <= float(metric.value.rstrip("%")) <= 100


def test_sidebar_offers_demos_device_and_target(app):
    labels = [s.label for s in app.sidebar.selectbox]
    assert labels == ["Demo", "Target output"]
    demo = app.sidebar.selectbox[0]
    assert demo.value == "race" or demo.value == demo.options[0]
    captions = " ".join(c.value for c in app.sidebar.caption)
    assert "Device in use:" in captions and any(d in captions for d in ("CPU", "CUDA", "MPS"))
    assert app.sidebar.selectbox[1].value == "predicted"


def test_link_query_params_select_the_demo(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    from rnnviz_core.demos import list_demos
    keys = [d.key for d in list_demos()]
    other = next(k for k in keys if k != "race")
    at = AppTest.from_file(ENTRY, default_timeout=180)
    at.query_params["demo"] = other
    at.run()
    assert not at.exception
    assert at.sidebar.selectbox[0].value == other
    title = next(d.title for d in list_demos() if d.key == other)
    shown = re.sub(r"\\(.)", r"\1", " ".join(m.value for m in at.markdown))  # as rendered: escapes removed
    assert title in shown


def test_unknown_demo_in_link_falls_back_to_default(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    at = AppTest.from_file(ENTRY, default_timeout=180)
    at.query_params["demo"] = "no-such-demo"
    at.run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox[0].value == "race"
