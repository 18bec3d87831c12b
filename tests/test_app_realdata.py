"""Issue 18 in the app: a tutorial regression GRU and a text model with a `sentiment` column,
uploaded as users upload them. References: scikit-learn's metrics on the predictions the training
script made; the core's pairing on the same model with the other choice set by hand."""
from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
import torch
from torch import nn

from rnnviz_app.inputs import page_pair as pp
from rnnviz_app.sources import own_files as own
from rnnviz_app.sources import sequences as sq
from rnnviz_app.sources import uploads as up
from rnnviz_app.state import state_url as su
from rnnviz_app.views import page_saturation as ps
from rnnviz_app.views import summary as sm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tutorial_files import make_files, make_regression_files  # noqa: E402

logging.getLogger("streamlit").setLevel(logging.ERROR)
WORDS = ["<pad>", "<unk>", "good", "bad", "film", "very", "not", "boring", "great", "the"]
NO_CLASS_WORDS = re.compile(r"class|accura|correct", re.I)


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    return make_regression_files(tmp_path_factory.mktemp("reg"))


@pytest.fixture(scope="module")
def cls_files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("cls"))


def make_text_files(d: Path) -> dict:
    """An embedding + LSTM state dict (no vocabulary inside), a review CSV with a `sentiment`
    column, and the word list as JSON."""
    class TextLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(len(WORDS), 8, padding_idx=0)
            self.lstm = nn.LSTM(8, 16, batch_first=True)
            self.fc = nn.Linear(16, 2)

        def forward(self, x):
            _, (h, _) = self.lstm(self.embedding(x))
            return self.fc(h[-1])

    rng = np.random.default_rng(0)
    texts, ys = [], []
    for _ in range(40):
        ws = list(rng.choice(["film", "very", "the", "boring", "great"], int(rng.integers(3, 8))))
        pos = bool(rng.random() < 0.5)
        ws.insert(int(rng.integers(0, len(ws))), "good" if pos else "bad")
        texts.append(" ".join(ws))
        ys.append("positive" if pos else "negative")
    torch.manual_seed(0)
    model = TextLSTM()
    out = {"model": d / "text.pt", "csv": d / "reviews.csv", "vocab": d / "vocab.json"}
    torch.save(model.state_dict(), out["model"])
    pd.DataFrame({"review": texts, "sentiment": ys}).to_csv(out["csv"], index=False)
    out["vocab"].write_text(json.dumps(WORDS))
    return out


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    return make_text_files(tmp_path_factory.mktemp("text"))


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


def upload_vocab(path: Path) -> None:
    st.session_state["up_vocab"] = FakeUpload(path.read_bytes(), path.name)
    own.on_vocabulary()


def _loaded(ctx):
    st.session_state["_loaded"] = ctx
    return ctx


def _strings(obj) -> str:
    if isinstance(obj, dict):
        return " ".join(_strings(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return " ".join(_strings(v) for v in obj)
    return str(obj)


def assert_figures(got: dict, y, pred) -> None:
    """The shown figures (3 significant digits; R² 2) equal scikit-learn's on the script's predictions."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    mean = np.full_like(y, y.mean())
    ref = {"RMSE": np.sqrt(mean_squared_error(y, pred)), "MAE": mean_absolute_error(y, pred),
           "R²": r2_score(y, pred), "Baseline RMSE": np.sqrt(mean_squared_error(y, mean)),
           "Baseline MAE": mean_absolute_error(y, mean)}
    assert list(got) == list(ref), got
    for name, value in ref.items():
        digits = 2 if name == "R²" else 3
        assert float(got[name]) == pytest.approx(float(f"{value:.{digits}g}"), rel=1e-9), (name, got[name], value)
        assert len(got[name].lstrip("-0.").replace(".", "")) >= digits, (name, got[name])   # precision shown


# ----------------------------------------------------------------------------- regression
def test_regression_card_shows_rmse_mae_r2_and_the_mean_baseline(reg):
    upload("model", reg["model"])
    upload("data", reg["csv"])
    ctx, state = own.resolve_own()
    assert ctx is not None, state.problems
    card = sm.model_card(_loaded(ctx))
    y, pred = reg["y"], reg["pred"]
    got = {m["name"]: m["value"] for m in card["metrics"]}
    assert_figures(got, y, pred)
    assert "mean of the true values" in card["baseline"]
    assert card["outputs"] == "one number (regression)"
    shown = [{k: a.get(k) for k in ("what", "value", "how_to_change")} for a in ctx.extra["assumptions"]]
    assert not NO_CLASS_WORDS.search(_strings(card) + _strings(shown)), (card, shown)   # what the page shows


def test_regression_head_readings_and_pickers_show_errors_and_values(reg):
    from sklearn.metrics import mean_squared_error
    upload("model", reg["model"])
    upload("data", reg["csv"])
    ctx, state = own.resolve_own()
    _loaded(ctx)
    rmse = np.sqrt(mean_squared_error(reg["y"], reg["pred"]))
    label = own.readout_label("last", state.readouts)
    assert label.startswith("Last real step (RMSE ") and len(label) <= own.OPTION_CHARS
    assert float(label.split("RMSE ")[1].rstrip(")")) == pytest.approx(float(f"{rmse:.3g}"))
    assert not state.order_keys                                     # no class order for regression
    labels = sq.sequence_labels(ctx)
    sid, true, pred = re.fullmatch(r"(\S+) · true (\S+) · predicted (\S+)", labels["s000"]).groups()
    assert sid == "s000" and float(true) == pytest.approx(float(reg["y"][0]), rel=5e-3)
    assert float(pred) == pytest.approx(float(reg["pred"][0]), rel=5e-3, abs=1e-3)
    assert pp.modes_for(ctx) == ["By id", "Most different pair"]


def test_regression_saturation_groupings_and_default(reg):
    upload("model", reg["model"])
    upload("data", reg["csv"])
    ctx, _ = own.resolve_own()
    _loaded(ctx)
    table = ps.saturation_table(ctx, -1, "fwd", 0.95, 0.05, 0.95)
    options = ps.groupings(ctx, table)
    assert list(options)[:3] == ["error_size", "target_range", "prediction_range"]
    assert not {"true_class", "predicted_class", "correct"} & set(options)
    assert ps.default_grouping(table, options) == "error_size"
    assert not NO_CLASS_WORDS.search(" ".join(options.values()))
    labels = ps.group_labels(table, "error_size")
    a, b = sorted(labels.unique())[:2]
    cmp = ps.compare(table, "error_size", a, b)
    assert "abs_error" in set(cmp["metric"]) and not {"loss", "confidence", "correct"} & set(cmp["metric"])


# ----------------------------------------------------------------------------- text
def test_text_pair_without_vocabulary_is_calm_guidance_then_the_loaded_vocabulary_is_shown(text):
    upload("model", text["model"])
    upload("data", text["csv"])
    ctx, state = own.resolve_own()
    assert ctx is None and not state.problems, state.problems           # no red error: the next step
    assert "'Vocabulary file'" in state.waiting and "Choose another file" not in state.waiting
    upload_vocab(text["vocab"])
    ctx, state = own.resolve_own()
    assert ctx is not None, state.problems
    vocab = next(a for a in ctx.extra["assumptions"] if a["key"] == "vocabulary")
    assert vocab["value"] == f"vocab.json ({len(WORDS)} words)" and "none" not in vocab["value"]
    assert list(ctx.data.class_names) == ["negative", "positive"]       # `sentiment` is the label column
    for key in ("last", "h_n", "mean", "max"):                           # every head reading has its figure
        assert re.search(r"\(\d+(\.\d+)?%\)$", own.readout_label(key, state.readouts)), key


# ----------------------------------------------------------------------------- choices current
def test_each_choices_figures_are_for_the_current_combination(cls_files):
    import rnnviz_core as rv
    from rnnviz_core import models as mm
    from rnnviz_core import pairing
    from rnnviz_core.data import class_order_candidates
    path, _ = cls_files["bigru_mean"]
    upload("model", path)
    upload("data", cls_files["ts"])
    own.resolve_own()
    model, ds = rv.load_model(path), rv.load_data(cls_files["ts"])
    cands = {k: n for k, _, n in class_order_candidates(ds)}
    for order in ("declared", "sorted", "first"):
        for readout in ("last", "mean"):
            st.session_state["w_clsorder"], st.session_state["w_readout"] = order, readout
            ctx, state = own.resolve_own()
            ref_read = pairing.readout_choices(mm.with_class_names(model, cands[order]), ds).set_index("readout")
            ref_order = pairing.class_order_choices(mm.with_readout(model, readout), ds,
                                                    class_order_candidates(ds)).set_index("key")
            for key in ("last", "h_n", "mean", "max"):
                assert own.readout_label(key, state.readouts).endswith(
                    f"({ref_read.loc[key, 'accuracy']:.1%})"), (order, readout, key)
            for key in ("declared", "sorted", "first"):
                assert own.order_label(key, state.orders, state.order_labels).endswith(
                    f"({ref_order.loc[key, 'accuracy']:.1%})"), (order, readout, key)


def test_option_labels_fit_the_sidebar_with_an_ellipsis():
    text = own.fit_option("Sorted as text, as labels read from a text file sort", " (87.3%)")
    assert text.endswith("… (87.3%)") and len(text) <= own.OPTION_CHARS
    assert own.order_label("sorted_text", None, {"sorted_text": "Sorted as text, as labels read from a text file "
                                                                "sort"}) == "Sorted as text"


def test_start_page_regression_card_under_apptest(reg, monkeypatch, tmp_path):
    """The real entry point and start page, opened by a link to an uploaded regression pair."""
    from streamlit.testing.v1 import AppTest
    entry = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
    store = up.upload_store()
    mdig = store.put(reg["model"].read_bytes(), name=reg["model"].name, owner="t")
    ddig = store.put(reg["csv"].read_bytes(), name=reg["csv"].name, owner="t")
    at = AppTest.from_file(entry, default_timeout=180)
    at.query_params["demo"] = own.OWN
    at.query_params["model"] = mdig
    at.query_params["data"] = ddig
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert list(metrics) == ["RMSE", "MAE", "R²", "Baseline RMSE", "Baseline MAE"]
    assert_figures(metrics, reg["y"], reg["pred"])
    shown = " ".join([m.value for m in at.markdown] + [c.value for c in at.caption] + list(metrics))
    assert "always predicting the mean" in shown
    assert not NO_CLASS_WORDS.search(re.sub(r"\\(.)", r"\1", shown)), shown


def test_groupings_offered_for_each_kind_of_table_never_default_to_saturation_level():
    from types import SimpleNamespace

    from rnnviz_core.groups import sequence_table
    ctx = SimpleNamespace(data=SimpleNamespace(groups=None))
    rng = np.random.default_rng(0)
    states = rng.uniform(-1, 1, (40, 6, 4)).astype(np.float32)
    lengths = np.full(40, 6)
    pred = rng.normal(size=40)
    unlabelled = sequence_table(pred, states=states, lengths=lengths)
    opts = ps.groupings(ctx, unlabelled)
    assert list(opts) == ["prediction_range", "saturation"]
    assert ps.default_grouping(unlabelled, opts) == "prediction_range"
    labelled = sequence_table(pred, pred + rng.normal(size=40), states=states, lengths=lengths)
    assert list(ps.groupings(ctx, labelled)) == ["error_size", "target_range", "prediction_range", "saturation"]
    logits = rng.normal(size=(40, 3))
    classes = sequence_table(logits, rng.integers(0, 3, 40), states=states, lengths=lengths)
    opts = ps.groupings(ctx, classes)
    assert list(opts) == ["true_class", "predicted_class", "correct", "saturation"]
    assert ps.default_grouping(classes, opts) == "correct"
