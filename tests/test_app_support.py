"""The app's glue (the rnnviz_app package) in plain pytest: hashing, URL state, loading, errors, caching.

Streamlit runs in bare mode here (no server): session state and caches work, widgets are not
drawn. Page rendering is covered by tests/e2e in a real browser.
"""
from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import streamlit as st

from rnnviz_app.sources import context as cx
from rnnviz_app.sources import loading as ld
from rnnviz_app.sources import own_files as own
from rnnviz_app.sources import second_model as m2
from rnnviz_app.sources import sequences as sq
from rnnviz_app.sources import uploads as up
from rnnviz_app.state import compute as cp
from rnnviz_app.state import hashing as hs
from rnnviz_app.state import state_url as su
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_contributions as pc
from rnnviz_app.views import page_saturation as ps
from rnnviz_app.views import summary as sm
from rnnviz_core.errors import DataError, InputError

logging.getLogger("streamlit").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    up.upload_store.clear()
    for k in list(st.session_state.keys()):
        del st.session_state[k]
    su.init_session()
    yield


@pytest.fixture
def demo_key():
    keys = list(ld.demo_infos())
    return ld.DEFAULT_DEMO if ld.DEFAULT_DEMO in keys else keys[0]


@pytest.fixture
def ctx(demo_key):
    c = ld.resolve_loaded(demo_key)
    assert c is not None
    return c


# ----------------------------------------------------------------- hashing
def test_digest_sees_every_byte_of_large_arrays():
    a = np.zeros((200, 100, 64), dtype=np.float32)
    b = a.copy()
    b[137, 51, 17] = 1e-7  # one value deep inside: Streamlit's sampled hashing can miss this
    assert hs.digest(a) != hs.digest(b)
    assert hs.digest(a) == hs.digest(a.copy())


def test_digest_distinguishes_dtype_and_shape():
    a = np.zeros(12, dtype=np.float32)
    assert hs.digest(a) != hs.digest(a.reshape(3, 4))
    assert hs.digest(a) != hs.digest(np.zeros(6, dtype=np.float64))  # same 48 bytes


# ----------------------------------------------------------------- URL state
def test_widget_starts_from_link_value_when_valid():
    st.session_state["_view"] = {"a": "7", "b": "oops"}
    key_a = su.widget_key("a", 0, options=list(range(10)), cast=int)
    key_b = su.widget_key("b", 3, options=list(range(10)), cast=int)
    assert st.session_state[key_a] == 7
    assert st.session_state[key_b] == 3  # invalid link value falls back to the default


def test_widget_value_reset_when_no_longer_an_option():
    key = su.widget_key("seq", "x", options=["x", "y"])
    st.session_state[key] = "y"
    su.widget_key("seq", "x", options=["x", "z"])  # new data: "y" is gone
    assert st.session_state[key] == "x"


def test_used_values_are_the_only_query_params_written():
    su.widget_key("a", 1, cast=int)
    assert su.value("a") == 1
    su.remember("unused_elsewhere", None)
    assert su.view()["a"] == "1"
    assert "a" in st.session_state["_used"]


# ----------------------------------------------------------------- loading
def test_default_demo_loads_with_model_and_data(ctx, demo_key):
    assert ctx.demo == demo_key
    assert ctx.data.X.ndim == 3
    assert len(ctx.model_key) == 64 and len(ctx.data_key) == 64
    assert ctx.device_label  # "CPU", "CUDA (...)" or "MPS"
    assert st.session_state["_loaded"] is ctx


def test_model_card_reports_architecture_classes_and_accuracy(ctx):
    card = sm.model_card(ctx)
    assert any(cell in card["architecture"] for cell in ("GRU", "LSTM", "RNN"))
    assert f"{ctx.data.X.shape[0]:,} sequences" in card["data"]
    if ctx.data.y is not None and ctx.data.class_names:
        assert card["score_value"].endswith("%")
        assert 0.0 <= float(card["score_value"].rstrip("%")) <= 100.0


class FakeUpload:
    """What st.file_uploader puts in session state: bytes, the file's name and an id."""

    def __init__(self, data: bytes, name: str, file_id: str = "f1"):
        self._data, self.name, self.file_id = data, name, file_id

    def getvalue(self) -> bytes:
        return self._data


def upload(kind: str, data: bytes, name: str, file_id: str | None = None) -> None:
    """Put a file in the ``kind`` uploader and run its callback, as Streamlit does."""
    st.session_state["up_" + kind] = FakeUpload(data, name, file_id or name)
    own.on_upload(kind)


def test_uploaded_demo_files_replace_model_and_data(ctx, demo_key):
    """Issue 9: uploads form a pair of their own ("My own files"), named by their file names."""
    mpath, dpath = ld.demo_files(demo_key)
    upload("model", mpath.read_bytes(), mpath.name)
    assert su.view()["demo"] == own.OWN and st.session_state["w_demo"] == own.OWN
    upload("data", dpath.read_bytes(), dpath.name)
    new, state = own.resolve_own()
    assert new is not ctx and new is not None
    assert new.model_name == mpath.name and new.data_name == dpath.name
    mdig = up.upload_store().put(mpath.read_bytes(), name=mpath.name)
    assert new.model_key == mdig == ctx.model_key  # same bytes, same content hash
    assert new.data_key == ctx.data_key


def test_uploaded_race_csv_is_scored_in_the_models_class_order():
    """The race CSV names its classes in text; read alone they sort alphabetically, which is not the
    model's order. The uploaded data must be aligned to the model before anything is scored."""
    if "race" not in ld.demo_infos():
        pytest.skip("race demo not shipped")
    demo_ctx = ld.resolve_loaded("race")
    mpath, dpath = ld.demo_files("race")
    upload("data", dpath.read_bytes(), dpath.name)
    upload("model", mpath.read_bytes(), mpath.name)
    uploaded, _ = own.resolve_own()
    assert uploaded.data_key == up.upload_store().put(dpath.read_bytes(), name=dpath.name)
    assert list(uploaded.data.class_names) == list(uploaded.model.class_names)
    np.testing.assert_array_equal(uploaded.data.y, demo_ctx.data.y)
    assert sm.model_card(uploaded)["score_value"] == sm.model_card(demo_ctx)["score_value"]


def test_bad_model_upload_keeps_previous_view_and_says_why(ctx, demo_key):
    """A file that is not a model is refused in the uploader: not stored, the demo stays."""
    raw = b"this is not a model"
    su.view()["demo"] = demo_key
    upload("model", raw, "model.safetensors", "file-1")
    shown = up.upload_error("model", "file-1")
    assert shown and "Traceback" not in shown and len(shown) > 20
    assert "Model file" in shown  # names the control to use
    assert "model" not in su.view() and su.view()["demo"] == demo_key  # the link points at what is on screen
    assert cp_hash(raw) not in up.upload_store()  # a refused file is not kept (issue 13)
    kept = ld.resolve_loaded(demo_key)
    assert kept.key == ctx.key


def cp_hash(data: bytes) -> str:
    from rnnviz_core.store import content_hash
    return content_hash(data)


def test_link_to_a_file_the_server_no_longer_has(demo_key):
    """Own files never fall back to a demo's half (issue 9): the page says to upload it again."""
    su.view().update(demo=own.OWN, data="0" * 64)
    ctx, state = own.resolve_own()
    assert ctx is None
    assert "upload it again" in state.problems["data"][0] and "'Data file'" in state.problems["data"][0]
    assert "data" not in su.view()
    assert "model file" in state.waiting.lower()


def test_show_error_never_leaks_internal_messages(monkeypatch):
    shown = []
    # what the reader sees: the Markdown with its backslash escapes read (CommonMark) and the
    # invisible word joiners that break addresses dropped
    monkeypatch.setattr(st, "error", lambda md, **kw: shown.append(
        re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md).replace("\u2060", "")))
    msg.show_error(DataError("The data has no label column; name it with label=."))
    msg.show_error(KeyError("internal detail"))
    # issue 9: the app names a control on screen instead of the Python API's advice (label=)
    assert shown[0].startswith("The data has no label column.") and "label=" not in shown[0]
    assert "'Data file'" in shown[0]
    assert shown[1] == msg.GENERIC_ERROR and "internal" not in shown[1]


# ----------------------------------------------------------------- caching
def test_compute_is_cached_by_content_hash(ctx):
    calls = []

    def f(x, *, scale):
        calls.append(scale)
        return x * scale

    arr = np.arange(4.0)
    assert np.array_equal(cp.compute(f, arr, key=("t",), scale=2), arr * 2)
    assert np.array_equal(cp.compute(f, arr, key=("t",), scale=2), arr * 2)
    assert calls == [2]
    cp.compute(f, arr, key=("t",), scale=3)
    assert calls == [2, 3]


def test_states_and_layer_options(ctx):
    layers, dirs, kinds = sq.layer_options(ctx)
    assert layers and dirs[0] == "fwd" and "h" in kinds
    h = sq.states(ctx, "h", layers[-1], "fwd")
    n, t, _ = ctx.data.X.shape
    assert h.shape[:2] == (n, t)
    assert np.isnan(h[0, ctx.data.lengths[0]:]).all()


def test_most_different_pair_is_two_distinct_sequences(ctx):
    a, b, sentence = sq.most_different_pair(ctx)
    assert a != b and 0 <= a < len(ctx.data.X) and 0 <= b < len(ctx.data.X)
    assert "furthest apart" in sentence


def test_target_options_follow_class_names(ctx):
    opts = cx.target_options(ctx)
    assert "predicted" in opts
    names = ctx.data.class_names or []
    if len(names) > 1:
        assert len(opts) == len(names) + 1
        assert cx.target_index("1") == 1
    assert cx.target_index("predicted") is None


def test_invalid_store_request_is_input_error(tmp_path):
    from rnnviz_core.store import UploadStore
    with pytest.raises(InputError):
        UploadStore(tmp_path, max_bytes=0)


def test_saturation_glue_table_groups_comparison_and_second_model(ctx, demo_key):
    layers, dirs, _ = sq.layer_options(ctx)
    table = ps.saturation_table(ctx, layers[-1], "fwd", 0.9, 0.1, 0.9)
    assert len(table) == len(ctx.data.X) and "frac_saturated" in table
    options = ps.groupings(ctx, table)
    assert "correct" in options and "saturation" in options
    labels = ps.group_labels(table, "correct")
    assert set(labels.unique()) <= {"correct", "wrong"}
    res = ps.resilience_results(ctx)
    full = ps.with_resilience(table, res)
    assert any(c.startswith("change: ") for c in full.columns)
    from rnnviz_core.analyses.tables import comparison_table
    view = comparison_table(ps.compare(full, "correct", "correct", "wrong"))   # what the page shows (issue 20)
    assert {"Measure", "A: correct", "B: wrong", "Difference (A − B)", "How big",
            "Could it be chance?"} <= set(view.columns)  # plain names (issue 10)
    assert "accuracy (share correct)" in set(view["Measure"])
    # the same model as "second model": the two agree on every sequence
    mpath, _ = ld.demo_files(demo_key)
    dig = up.upload_store().put(mpath.read_bytes(), name=mpath.name)
    name, rep = m2.second_model_view(ctx, dig, "correct", labels.to_numpy())
    assert name == mpath.name
    assert np.allclose(rep["agreement"].dropna(), 1.0)


def test_contribution_glue_scores_and_views(ctx):
    sc, info = pc.scores(ctx, "grad_norm")
    assert sc.shape == ctx.data.X.shape[:2]
    frame, top, pos, by_group = pc.contribution_views(ctx, sc, 0, 1, "grad_norm")
    assert set(frame["seq"]) == {str(ctx.data.ids[0]), str(ctx.data.ids[1])}
    assert top["rank"].min() == 1 and len(pos) > 0
    with pytest.raises(InputError):
        pc.scores(ctx, "no_such_method")


# ----------------------------------------------------------------- issue 13: links and text from files
@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "1" * 5000, "(nan, 0.9)", "(0.1, inf)", "x" * 3000])
def test_bad_link_values_fall_back_to_defaults_with_a_note(raw):
    def pair(v):
        return tuple(float(x) for x in v.strip("()").split(","))
    st.session_state["_view"] = {"thr": raw, "gates": raw, "layer": raw}
    assert st.session_state[su.widget_key("thr", 0.9, cast=float, bounds=(0.5, 0.99))] == 0.9
    assert st.session_state[su.widget_key("gates", (0.1, 0.9), cast=pair, bounds=(0.0, 1.0))] == (0.1, 0.9)
    assert st.session_state[su.widget_key("layer", 0, [0, 1], int)] == 0
    assert {"thr", "gates", "layer"} == set(st.session_state["_link_notes"])
    assert "thr" not in su.view()  # the bad value is not written back into the link


def test_link_value_outside_bounds_is_refused_inside_kept():
    st.session_state["_view"] = {"thr": "0.3", "low": "0.7"}
    assert st.session_state[su.widget_key("thr", 0.9, cast=float, bounds=(0.5, 0.99))] == 0.9
    assert st.session_state[su.widget_key("low", 0.1, cast=float, bounds=(0.0, 1.0))] == 0.7


def test_markdown_from_files_is_escaped_to_literal_text():
    from rnnviz_app.views.text import md_escape
    inj = "[Your session expired - sign in again](https://evil.example/login) <b>x</b> **y** :red[z] $x$"
    out = md_escape(inj)
    # every character that starts Markdown or HTML is backslash-escaped; removing escapes gives the text back
    assert re.sub(r"\\(.)", r"\1", out).replace("\u2060", "") == inj
    assert "https://" not in re.sub(r"\\(.)", r"\1", out)        # no bare address left to autolink
    for ch in "[]()<>*:$":
        assert re.search(r"(?<!\\)" + re.escape(ch), out) is None, ch
    assert "\n" not in md_escape("a\nb\r\nc")


def test_csv_exports_neutralise_formula_cells():
    import io

    import pandas as pd

    from rnnviz_app.views.text import safe_csv
    df = pd.DataFrame({"seq": ["=HYPERLINK(\"http://evil\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\ry", "ok"],
                       "score": [-1.5, 2.0, -0.25, 0.0, 1.0, 2.0, 3.0]})
    back = pd.read_csv(io.BytesIO(safe_csv(df)), keep_default_na=False)
    assert [v[0] for v in back["seq"][:6]] == ["'"] * 6
    assert back["seq"][6] == "ok"
    assert back["score"].tolist() == df["score"].tolist()   # numbers stay numbers (negative ones too)


@pytest.mark.parametrize("key", [d.key for d in __import__("rnnviz_core.demos", fromlist=["list_demos"]).list_demos()])
def test_model_card_for_every_demo_including_token_data(key):
    """The start page's card for each shipped demo (the text demo's X is token ids [N, T])."""
    ctx = ld.resolve_loaded(key)
    card = sm.model_card(ctx)
    assert f"{ctx.data.X.shape[0]:,} sequences" in card["data"]
    if getattr(ctx.data, "is_tokens", False):
        assert "words" in card["data"]


def test_largest_allowed_data_file_and_model_fit_in_one_sessions_share_of_the_store():
    """A quarter of the 500 MB store (125 MB) refused a data file of the allowed 200 MB."""
    from rnnviz_core import data as dm
    from rnnviz_core import models as mm
    store = up.upload_store()
    assert store.owner_bytes >= dm.MAX_DATA_BYTES + mm.MAX_MODEL_BYTES
    big = b"x" * dm.MAX_DATA_BYTES                       # the largest data file the app allows
    dig = store.put(big, name="big.csv", owner="one-visitor")
    assert dig in store
    del big
    assert up._session_bytes(500 << 20, "1000") == 1000   # RNNVIZ_UPLOAD_SESSION_BYTES still decides when set


def test_csv_download_is_built_only_when_clicked_and_neutralises_formulas(monkeypatch):
    import pandas as pd

    from rnnviz_app.views import text as tx
    from rnnviz_app.views import widgets as wd
    built, got = [], {}
    monkeypatch.setattr(wd, "safe_csv", lambda df: built.append(1) or tx.safe_csv(df))
    monkeypatch.setattr(wd.st, "download_button", lambda label, data, **kw: got.update(data=data, **kw))
    wd.csv_button(pd.DataFrame({"name": ["=HYPERLINK(\"x\")", "ok"]}), "Download", "v.csv", key="dl")
    assert built == [] and callable(got["data"]) and got["mime"] == "text/csv"
    csv = got["data"]().decode()                         # what Streamlit calls on the click
    assert "'=HYPERLINK" in csv and '"=HYPERLINK' not in csv
