"""Issue 9's flow in plain pytest (Streamlit in bare mode): a user's own pair, made the way
tutorials make it, loads with the accuracy the training script printed; choices the weights
cannot tell are offered with their accuracy; messages name controls on screen."""
from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import streamlit as st

from rnnviz_app.sources import own_files as own
from rnnviz_app.sources import second_model as m2
from rnnviz_app.sources import uploads as up
from rnnviz_app.state import state_url as su
from rnnviz_app.views import summary as sm
from rnnviz_app.views.messages import app_message
from rnnviz_core.errors import DataError, ModelFileError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_files import F, make_files  # noqa: E402

logging.getLogger("streamlit").setLevel(logging.ERROR)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("own"))


@pytest.fixture(autouse=True)
def fresh_session(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    up.upload_store.clear()
    for k in list(st.session_state.keys()):
        del st.session_state[k]
    su.init_session()
    su.view()["demo"] = "race"
    yield


from upload_helpers import FakeUpload, upload  # noqa: E402,F401


def accuracy(ctx) -> str:
    st.session_state["_loaded"] = ctx    # what the sidebar does before a page runs
    return sm.model_card(ctx)["score_value"]


def test_model_alone_says_which_data_file_is_needed(files):
    path, _ = files["gru"]
    upload("model", path)
    ctx, state = own.resolve_own()
    assert ctx is None and not state.problems
    assert f"a data file with {F} features per step" in state.waiting and "'Data file'" in state.waiting
    assert "labelled with its 3 classes" in state.waiting and "class 0" not in state.waiting
    assert su.view()["demo"] == own.OWN and "data" not in su.view()   # the race demo's data is not its pair


def test_data_alone_says_which_model_is_needed(files):
    upload("data", files["ts"])
    ctx, state = own.resolve_own()
    assert ctx is None and not state.problems
    assert "'Model file'" in state.waiting and f"reads {F} features per step" in state.waiting
    assert "gives one of 3 classes" in state.waiting


@pytest.mark.parametrize("which", ["gru", "lstm"])
def test_tutorial_pair_shows_the_scripts_accuracy_in_the_declared_class_order(files, which):
    path, script_acc = files[which]
    upload("model", path)
    upload("data", files["ts"])
    ctx, state = own.resolve_own()
    assert ctx is not None, state.problems
    assert accuracy(ctx) == script_acc
    assert st.session_state["w_clsorder"] == "declared"
    assert list(ctx.model.class_names) == ["zebra", "apple", "mango"]
    keys = [a["key"] for a in ctx.extra["assumptions"]]
    assert "readout" in keys and "class_order" in keys
    for a in ctx.extra["assumptions"]:
        assert not re.search(r"\w+=|rv\.|torch\.", a["how_to_change"]), a   # no code in the app's advice


def test_each_class_order_is_offered_with_its_accuracy(files):
    path, script_acc = files["gru"]
    upload("model", path)
    upload("data", files["ts"])
    ctx, state = own.resolve_own()
    assert {"declared", "sorted", "first", own.TYPED} <= set(state.order_keys)
    declared = own.order_label("declared", state.orders, state.order_labels)
    assert declared.endswith(f"({script_acc})")
    sorted_acc = float(state.orders.set_index("key").loc["sorted", "accuracy"])
    assert f"{sorted_acc:.1%}" != script_acc   # a wrong order shows a different figure


def test_mean_pooling_model_gets_the_scripts_accuracy_with_mean(files):
    path, script_acc = files["bigru_mean"]
    upload("model", path)
    upload("data", files["ts"])
    ctx, state = own.resolve_own()
    assert st.session_state["w_readout"] == "last"
    assert accuracy(ctx) != script_acc
    assert own.readout_label("mean", state.readouts).endswith(f"({script_acc})")
    st.session_state["w_readout"] = "mean"
    ctx, state = own.resolve_own()
    assert accuracy(ctx) == script_acc
    assert su.view()["readout"] == "mean"                     # in the link


def test_long_form_csv_with_chosen_columns(files):
    path, script_acc = files["gru_csv"]
    upload("model", path)
    upload("data", files["csv"])                             # accepted: columns are chosen afterwards
    ctx, state = own.resolve_own()
    assert ctx is None and "patient" in state.columns
    msg, field = state.problems["data"]
    assert "'" in msg and not re.search(r"\w+_col=", msg)
    st.session_state["w_idc"] = "patient"
    st.session_state["w_labc"] = "diagnosis"
    ctx, state = own.resolve_own()
    assert ctx is not None, state.problems
    st.session_state["w_clsorder"] = "sorted"                   # LabelEncoder's order, as the script used
    ctx, state = own.resolve_own()
    assert accuracy(ctx) == script_acc
    assert su.view()["idc"] == "patient" and su.view()["labc"] == "diagnosis"


def test_refused_data_file_is_not_stored_and_names_the_control(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    upload("data", bad)
    rec = st.session_state["_upload_errors"]["data"]
    assert "Data file" in rec[1] and "Traceback" not in rec[1]
    assert "data" not in su.view() and su.view()["demo"] == "race"
    from rnnviz_core.store import content_hash
    assert content_hash(bad.read_bytes()) not in up.upload_store()


def test_new_upload_replaces_the_old_one_and_resets_its_choices(files):
    upload("model", files["gru"][0])
    upload("data", files["ts"])
    own.resolve_own()
    st.session_state["w_clsorder"] = "sorted"
    own.resolve_own()
    first = su.view()["model"]
    upload("model", files["lstm"][0])
    assert su.view()["model"] != first
    ctx, _ = own.resolve_own()
    assert st.session_state["w_clsorder"] == "declared"


def test_second_model_of_another_task_is_refused_with_a_sentence_about_the_model(files):
    """Issue 9.6: the vowels model (12 features, 9 classes) as the second model of a 6-feature pair."""
    from rnnviz_core.demos import list_demos
    info = next(d for d in list_demos() if d.key == "vowels")
    upload("model", files["gru"][0])
    upload("data", files["ts"])
    ctx, _ = own.resolve_own()
    st.session_state["_loaded"] = ctx
    dig = up.upload_store().put(Path(info.model_path).read_bytes(), name="vowels.safetensors")
    with pytest.raises(Exception) as e:
        m2.second_model_view(ctx, dig, "correct", np.array(["a"] * len(ctx.data.X)))
    text = str(e.value)
    assert "second model" in text and "loaded model" in text and "column" not in text
    assert "12 features" in text and "6 features" in text


def test_app_message_names_a_control_and_drops_code_advice():
    err = DataError("The file has no column 'label'; name it with label_col='...'.", code="missing_column",
                    field="label")
    text = app_message(err)
    assert "label_col" not in text and "'Label column'" in text
    text = app_message(ModelFileError("m.pt: unknown layers; re-save it with rv.save_model."))
    assert "rv." not in text and "'Model file'" in text
    assert "Traceback" not in app_message(KeyError("x"))


def test_app_message_keeps_plain_parentheses_and_names_each_control_once():
    text = app_message(DataError("The data has 3 feature(s) but the model reads 6."))
    assert text.startswith("The data has 3 feature(s) but the model reads 6.")
    err = DataError("Upload a model of the same task under 'Second model file'.")
    err.field = "model2"
    assert app_message(err).count("'Second model file'") == 1


def test_pair_over_the_trace_budget_is_traced_as_a_stratified_sample(files, monkeypatch):
    from rnnviz_core import budget
    upload("model", files["gru"][0])
    upload("data", files["ts"])
    full, _ = own.resolve_own()
    n = len(full.data)
    units, arrays = budget.traced_size(full.model)
    per_seq = int(full.data.max_len) * units * arrays * 4            # float32 values kept per sequence
    monkeypatch.setattr(own, "TRACE_BUDGET_BYTES", per_seq * 30)     # room for 30 sequences
    ctx, state = own.resolve_own()
    assert ctx is not None, state.problems
    assert len(ctx.data) == 30 < n
    assert ctx.data_key == full.data_key + ":n30"
    note = ctx.extra["budget_note"]
    assert f"30 of the {n:,} sequences" in note
    full_share = np.bincount(full.data.y, minlength=3) / n            # each class keeps its share
    assert np.abs(np.bincount(ctx.data.y, minlength=3) - 30 * full_share).max() <= 1
    monkeypatch.setattr(own, "TRACE_BUDGET_BYTES", per_seq - 1)      # not even one sequence fits
    ctx, state = own.resolve_own()
    msg, _ = state.problems["pair"]
    assert ctx is None and "'Data file'" in msg and "Traceback" not in msg and "=" not in msg


def test_uploaded_data_file_read_without_options_is_parsed_once(files, monkeypatch):
    from rnnviz_core import data as dm
    calls = []
    real = dm.load_data
    monkeypatch.setattr(dm, "load_data", lambda *a, **k: calls.append(k) or real(*a, **k))
    up.data_by_hash.clear()
    own._data_with.clear()
    upload("model", files["gru"][0])
    upload("data", files["ts"])                       # read once when it is uploaded
    ctx, state = own.resolve_own()
    ctx, state = own.resolve_own()
    assert ctx is not None, state.problems
    assert len(calls) == 1


def test_text_csv_before_the_model_is_a_calm_still_needed_note(tmp_path):
    """QA: a text CSV uploaded first showed a red 'needs the model's vocabulary' error; the model
    still to come may bring its vocabulary."""
    path = tmp_path / "reviews.csv"
    path.write_text("id,text,label\n1,the cat sat,pos\n2,a dog ran far,neg\n")
    upload("data", path)
    ctx, state = own.resolve_own()
    assert ctx is None and not state.problems
    assert state.needs_vocabulary                                     # the vocabulary uploader is offered
    assert "'Model file'" in state.waiting and "'Vocabulary file'" in state.waiting
    assert "reviews.csv" in state.waiting and "Upload your model file and your data file" not in state.waiting


def test_unguessable_id_column_names_the_control_without_code_advice_or_asking_for_the_data_again(files):
    upload("model", files["gru_csv"][0])
    upload("data", files["csv"])
    ctx, state = own.resolve_own()
    msg, field = state.problems["data"]
    assert field == "id" and "'Sequence id column'" in msg
    assert "in the app" not in msg and ". (" not in msg and "patient" in msg
    assert "'Data file'" not in state.waiting                         # the data file was uploaded


def test_unassigned_order_column_read_as_a_feature_points_at_the_step_order_control(files, tmp_path):
    import pandas as pd
    path = tmp_path / "ticks.csv"
    pd.read_csv(files["csv"]).rename(columns={"t": "tick"}).to_csv(path, index=False)
    upload("model", files["gru_csv"][0])
    upload("data", path)
    st.session_state["w_idc"] = "patient"
    st.session_state["w_labc"] = "diagnosis"
    ctx, state = own.resolve_own()
    msg, field = state.problems["pair"]
    assert "'Step order column'" in msg and "'Feature columns'" not in msg and "'tick'" in msg
    assert "order_col" not in msg
    st.session_state["w_ordc"] = "tick"
    ctx, state = own.resolve_own()
    assert ctx is not None, state.problems


def test_assumptions_show_the_sidebars_words_and_the_class_names_once(files):
    upload("model", files["gru"][0])
    upload("data", files["ts"])
    ctx, _ = own.resolve_own()
    got = {a["key"]: a for a in ctx.extra["assumptions"]}
    assert got["readout"]["value"] == own.READOUT_SHORT["last"]
    names = ", ".join(ctx.model.class_names)
    assert got["class_order"]["value"] == names and names not in got["class_order"]["what"]


@pytest.mark.parametrize("k, n, text", [(146, 160, "91.25%"), (2, 3, "66.7%"), (1, 2, "50.0%"),
                                         (1, 8, "12.5%"), (1, 16, "6.25%"), (913, 1000, "91.3%")])
def test_accuracy_on_an_exact_half_shows_two_decimals(k, n, text):
    assert own.format_accuracy(k / n) == text
