"""rnnviz_core.pairing: the choices a state dict leaves open, each with the accuracy the user's script printed."""
from __future__ import annotations

import dataclasses
import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

import rnnviz_core as rv
from rnnviz_core.data import load_data
from rnnviz_core.errors import DataError
from rnnviz_core.models import ModelConfig, build_model, load_model, with_class_names, with_readout
from rnnviz_core.pairing import class_order_choices, readout_choices

DECLARED = ["walk", "run", "sit"]          # the file's @classLabel order: not sorted


def _make_split(n: int, seed: int, t: int = 12):
    """3 classes told apart by which feature drifts upward; labels as strings."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    x = rng.normal(0.0, 1.0, size=(n, t, 3)).astype(np.float32)
    for i in range(n):
        x[i, :, y[i]] += np.linspace(0, 1.6, t)
    return x, y


def _write_ts(path, x, y_idx, declared=DECLARED):
    lines = ["@problemName toy", "@timeStamps false", "@missing false", "@univariate false",
             f"@dimensions {x.shape[2]}", "@equalLength true", f"@seriesLength {x.shape[1]}",
             "@classLabel true " + " ".join(declared), "@data"]
    for xi, yi in zip(x, y_idx):
        dims = [",".join(f"{v:.6f}" for v in xi[:, j]) for j in range(x.shape[2])]
        lines.append(":".join(dims) + ":" + declared[yi])
    path.write_text("\n".join(lines) + "\n")


class UserGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 6, batch_first=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class UserBiGRUMean(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 6, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out.mean(1))


def _script(cls, tmp_path, steps=30):
    """What a user's training script does: encode labels in the file's declared order, train, print accuracy."""
    xtr, ytr = _make_split(200, seed=0)
    xte, yte = _make_split(90, seed=1)
    # round as the .ts file will hold them, so the script and rnnviz see the same numbers
    xte = np.round(xte, 6)
    torch.manual_seed(0)
    model = cls()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.from_numpy(xtr)), torch.from_numpy(ytr)).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    torch.save(model.state_dict(), tmp_path / "model.pt")
    _write_ts(tmp_path / "test.ts", xte, yte)
    return acc


def _candidates(ds):
    labels = list(ds.labels)
    first = list(dict.fromkeys(labels))
    return [("declared", "order in the file", list(ds.class_names)),
            ("sorted", "sorted labels", sorted(ds.class_names)),
            ("first", "first appearance", first)]


def test_declared_class_order_gives_the_scripts_accuracy(tmp_path):
    script_acc = _script(UserGRU, tmp_path)
    assert 0.5 < script_acc < 1.0                    # learnt, but not perfect: orders tell apart
    model, ds = load_model(tmp_path / "model.pt"), load_data(tmp_path / "test.ts")
    assert ds.class_names == DECLARED
    table = class_order_choices(model, ds, _candidates(ds))
    assert list(table.columns) == ["key", "label", "names", "accuracy"]
    assert list(table["key"]) == ["declared", "sorted", "first"]
    acc = dict(zip(table["key"], table["accuracy"]))
    assert acc["declared"] == pytest.approx(script_acc, abs=1e-12)
    assert acc["sorted"] != pytest.approx(script_acc, abs=1e-3)
    # applying the chosen order, the model and the data agree as the script did
    named = with_class_names(model, table.loc[0, "names"])
    aligned = rv.data.check_against_model(ds, named)
    pred = rv.predict(named, aligned.X, aligned.lengths).argmax(1)
    assert float((pred == aligned.y).mean()) == pytest.approx(script_acc, abs=1e-12)


def test_class_order_choices_run_the_model_once(tmp_path, monkeypatch):
    _script(UserGRU, tmp_path, steps=3)
    model, ds = load_model(tmp_path / "model.pt"), load_data(tmp_path / "test.ts")
    trace_mod = sys.modules["rnnviz_core.trace"]       # (rv.trace is the function)
    calls = []
    real = trace_mod.predict
    monkeypatch.setattr(trace_mod, "predict", lambda *a, **k: calls.append(1) or real(*a, **k))
    cands = _candidates(ds) * 4
    table = class_order_choices(model, ds, cands)
    assert len(table) == 12 and len(calls) == 1


def test_bad_candidates_give_nan_not_an_error(tmp_path):
    _script(UserGRU, tmp_path, steps=3)
    model, ds = load_model(tmp_path / "model.pt"), load_data(tmp_path / "test.ts")
    table = class_order_choices(model, ds, [("typed", "typed by hand", ["walk", "run"]),          # too few
                                            ("typed2", "typed by hand", ["walk", "run", "jump"]),  # unknown
                                            ("typed3", "typed by hand", ["walk", "walk", "sit"])])  # repeated
    assert table["accuracy"].isna().all()


def test_mean_pooling_model_mean_readout_gives_the_scripts_accuracy(tmp_path):
    """issue 9: a bidirectional mean-pooling model read as last-step showed 56.0% for the script's 72.7%."""
    script_acc = _script(UserBiGRUMean, tmp_path)
    model = load_model(tmp_path / "model.pt")
    ds = load_data(tmp_path / "test.ts")
    model = with_class_names(model, DECLARED)
    table = readout_choices(model, ds)
    assert list(table.columns) == ["readout", "description", "accuracy", "rmse"]
    assert list(table["readout"]) == ["last", "h_n", "mean", "max"]
    acc = dict(zip(table["readout"], table["accuracy"]))
    assert acc["mean"] == pytest.approx(script_acc, abs=1e-12)
    assert acc["last"] != pytest.approx(script_acc, abs=1e-3)
    assert all(isinstance(d, str) and d for d in table["description"])
    assert model.config.readout == "last"           # the model given is not changed


def test_no_labels_or_regression_give_nan(tmp_path):
    _script(UserGRU, tmp_path, steps=3)
    model, ds = load_model(tmp_path / "model.pt"), load_data(tmp_path / "test.ts")
    nolab = dataclasses.replace(ds, y=None, class_names=None)
    assert readout_choices(with_class_names(model, DECLARED), nolab)["accuracy"].isna().all()
    assert class_order_choices(model, nolab, _candidates(ds))["accuracy"].isna().all()
    torch.manual_seed(0)
    reg = build_model(ModelConfig(cell="GRU", input_size=3, hidden_size=4, task="regression", num_outputs=1)).eval()
    target = dataclasses.replace(ds, y=np.linspace(0, 1, len(ds)).astype(np.float32), class_names=None)
    table = readout_choices(reg, target)
    assert len(table) == 4 and table["accuracy"].isna().all()
    assert class_order_choices(reg, target, [("sorted", "sorted", ["a", "b"])])["accuracy"].isna().all()


def test_labels_the_model_cannot_name_give_nan_and_feature_errors_are_raised(tmp_path):
    _script(UserGRU, tmp_path, steps=3)
    model, ds = load_model(tmp_path / "model.pt"), load_data(tmp_path / "test.ts")
    # numbered outputs ("class 0" ...) cannot be matched to "walk": NaN, the caller sets the order first
    assert readout_choices(model, ds)["accuracy"].isna().all()
    narrow = dataclasses.replace(ds, X=ds.X[:, :, :2], feature_names=ds.feature_names[:2])
    with pytest.raises(DataError, match="features"):
        readout_choices(model, narrow)
    with pytest.raises(DataError, match="features"):
        class_order_choices(model, narrow, _candidates(ds))


def test_models_outside_the_family_have_no_readout_choices(tmp_path):
    _script(UserGRU, tmp_path, steps=3)
    ds = load_data(tmp_path / "test.ts")
    own = UserGRU().eval()
    assert readout_choices(own, ds).empty
    table = class_order_choices(own, ds, _candidates(ds))
    assert not math.isnan(table["accuracy"].iloc[0])


def test_text_demo_readout_choices_on_token_ids():
    """Token data (X int64 [N, T]) goes through the same choices; the demo's own reading scores what demos.json says."""
    from rnnviz_core.demos import list_demos, load_demo

    model, ds = load_demo("text")
    assert ds.is_tokens and model.config.readout == "last"
    table = readout_choices(model, ds)
    stated = next(d.test_accuracy for d in list_demos() if d.key == "text")
    acc = dict(zip(table["readout"], table["accuracy"]))
    assert acc["last"] == pytest.approx(stated, abs=1e-9)
    assert acc["h_n"] == pytest.approx(stated, abs=1e-9)          # one direction: the same state
    orders = class_order_choices(model, ds, [("declared", "model", ["negative", "positive"]),
                                             ("swapped", "swapped", ["positive", "negative"])])
    assert orders["accuracy"].tolist() == pytest.approx([stated, 1 - stated])
