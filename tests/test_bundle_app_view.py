"""What the bundle pages show (rnnviz_app/sources/bundle_view.py), checked against the model itself.

The race demo's model and data are built into a bundle; the start-page accuracy, the A/B picker
labels, the groupings and the contribution frames are compared with the model's own forward pass
and with scores computed from the model (never with the bundle's own numbers)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # rnnviz_app beside streamlit_app.py

N = 300


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    sub = ds.subset(np.arange(N))
    path = rvb.build(model, sub, tmp_path_factory.mktemp("b") / "race.rnnviz", methods=("grad_norm",), sample=16)
    return model, sub, rvb.open(path)


def _outputs(model, ds) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(ds.X, dtype=torch.float32), torch.as_tensor(ds.lengths)).numpy()


def test_start_page_accuracy_is_the_models_own(race):
    from rnnviz_app.sources.bundle_view import summary

    model, ds, b = race
    acc = float((_outputs(model, ds).argmax(1) == np.asarray(ds.y)).mean())
    s = summary(b)
    assert s["score_value"] == f"{acc:.1%}"
    assert s["score_name"] == "Accuracy on the loaded data"
    assert s["classes"].startswith(f"{len(ds.class_names)} classes (")
    assert len(s["model_hash"]) == 64 and s["data_hash"]


def test_start_page_accuracy_of_a_lazy_bundle_reads_no_row(race, monkeypatch):
    """A host's bundle (opened lazily): the accuracy comes from the build-time group sizes, equal
    to the model's own, and no column of every sequence is read for it."""
    from rnnviz_app.sources import bundle_view as bv
    from rnnviz_core import bundle as rvb
    from rnnviz_core.bundle_lazy import LazyTable

    model, ds, whole = race
    lazy = rvb.open(whole._files._path, read=False)   # the same .rnnviz file, opened as a host opens it
    monkeypatch.setattr(LazyTable, "column", lambda *a, **k: pytest.fail("a column of every sequence was read"))
    s = bv.summary(lazy)
    acc = float((_outputs(model, ds).argmax(1) == np.asarray(ds.y)).mean())
    assert s["score_value"] == f"{acc:.1%}"
    assert s["score_help"] == f"Share of the {N} loaded sequences whose predicted class is the true one."


def test_pickers_offer_the_sampled_rows_with_the_models_prediction(race):
    from rnnviz_app.sources.bundle_view import sample_labels

    model, ds, b = race
    labels = sample_labels(b)
    assert sorted(labels) == sorted(int(r) for r in b.sample_rows) and 0 < len(labels) < len(ds.ids)
    pred = _outputs(model, ds).argmax(1)
    for r, text in labels.items():   # the live pickers' words (issue 20)
        assert text == f"{ds.ids[r]} · true {ds.class_names[ds.y[r]]} · predicted {ds.class_names[pred[r]]}"


def test_group_labels_of_a_data_column_are_the_datas(race):
    from rnnviz_app.sources.bundle_view import group_labels, groupings

    _, ds, b = race
    opts = groupings(b)
    # the live page's keys (a link's by= means the same on both): "correct", the data column's name
    assert opts["correct"] == "Correct vs wrong" and "outcome" not in opts
    key = next(k for k, v in opts.items() if v == "Data column: track")
    assert key in ("track", "track_data")
    got = group_labels(b, key)
    assert got.tolist() == ds.groups["track"].astype(str).tolist()


def test_contribution_frames_rank_the_models_gradient_sizes(race):
    from rnnviz_app.sources.bundle_view import contribution_frames

    model, ds, b = race
    ra, rb = int(b.sample_rows[0]), int(b.sample_rows[1])
    frame, top, pos, by_class, note = contribution_frames(b, "grad_norm", ra, rb)
    assert note is None
    # reference: the core's scores of the two rows computed from the model directly
    from rnnviz_core.contributions import contributions
    ref = contributions(model, ds.X[[ra, rb]], "grad_norm", ds.lengths[[ra, rb]], device="cpu")
    for i, r in enumerate((ra, rb)):
        n = int(ds.lengths[r])
        want = np.argsort(-ref[i, :n], kind="stable")[:5].tolist()
        got = top[top["seq"].astype(str) == str(ds.ids[r])].sort_values("rank")["step"].tolist()
        assert got == want
    assert by_class is not None
    assert set(by_class["true class"].astype(str)) == {ds.class_names[i] for i in np.unique(ds.y)}
    assert frame["seq"].astype(str).isin([str(ds.ids[ra]), str(ds.ids[rb])]).all()


def test_regression_bundle_start_page_gives_the_live_pages_error_figures():
    """A regression bundle's start page: the RMSE, MAE and baseline of the stored outputs, computed
    by hand here, in the live model card's words."""
    from types import SimpleNamespace

    from rnnviz_app.sources.bundle_view import summary
    from rnnviz_core.regression import format_number
    true = np.array([1.0, 2.0, 4.0, 7.0])
    out = np.array([1.5, 2.0, 3.0, 7.5])
    b = SimpleNamespace(manifest={"model": {"sha256": "0" * 64, "class": "M"},
                                  "data": {"labelled": True, "content_hash": "1", "n_features": 2}},
                        class_names=None, n_sequences=4, max_length=9, methods=["grad_norm"],
                        lazy=lambda: SimpleNamespace(names=lambda: ["row", "true", "logits"],
                                                     column={"true": true, "logits": list(out[:, None])}.get))
    s = summary(b)
    assert s["classes"] == "one number (regression)"
    assert s["score_name"] == "Root mean squared error on the loaded data"
    assert s["score_value"] == format_number(np.sqrt(np.mean((out - true) ** 2)))
    figures = {m["name"]: m["value"] for m in s["metrics"]}
    assert figures["MAE"] == format_number(np.mean(np.abs(out - true)))
    assert figures["Baseline RMSE"] == format_number(np.sqrt(np.mean((true.mean() - true) ** 2)))
