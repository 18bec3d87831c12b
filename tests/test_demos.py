"""rnnviz_core.demos: the shipped demos load through the upload path and score what they claim."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rnnviz_core.data import load_data
from rnnviz_core.demos import DEFAULT_DEMO, FILES, list_demos, load_demo
from rnnviz_core.demos.tasks import MARKER_CLASSES, MARKER_FEATURES, make_marker_task, make_race_form
from rnnviz_core.models import load_model

DEMOS = list_demos()
SUMMARY = json.loads((FILES / "demos.json").read_text())
# accuracy each demo must reach on its shipped data, and its margin over always guessing the commonest class
FLOORS = {"race": (0.68, 0.08), "vowels": (0.90, 0.5), "digits": (0.90, 0.5), "marker": (0.90, 0.3),
          "text": (0.95, 0.4), "burst": (0.90, 0.5)}
# regression demos: the RMSE must be at most this share of always predicting the targets' mean
RMSE_CEILINGS = {"window_sum": 0.2}


def test_the_default_demo_comes_first_and_all_ship():
    assert DEFAULT_DEMO == "race" and DEMOS[0].key == "race"
    assert {d.key for d in DEMOS} == set(FLOORS) | set(RMSE_CEILINGS), \
        "a demo's files are missing: run python -m rnnviz_core.demos.build"
    for d in DEMOS:
        assert d.test_accuracy == SUMMARY[d.key].get("test_accuracy"), d.key
        assert d.test_rmse == SUMMARY[d.key].get("test_rmse"), d.key
        assert len([s for s in d.description.split(". ") if s.strip()]) >= 2, d.key


def test_demo_files_are_small():
    total = sum(p.stat().st_size for p in FILES.iterdir())
    assert total < 4 * 1024 * 1024, f"demo files take {total / 1e6:.1f} MB"


@pytest.mark.parametrize("info", [d for d in DEMOS if d.task == "classification"], ids=lambda d: d.key)
def test_demo_accuracy_matches_what_is_stated(info):
    model = load_model(info.model_path)                      # the upload path, nothing special
    # (a text demo's words become ids through the vocabulary its model file carries)
    ds = load_data(info.data_path, class_names=model.class_names, vocabulary=model.vocabulary)
    _, demo_ds = load_demo(info.key)
    np.testing.assert_array_equal(ds.X, demo_ds.X)
    assert model.class_names == ds.class_names, info.key
    with torch.no_grad():
        pred = model(torch.from_numpy(ds.X), torch.from_numpy(ds.lengths)).argmax(-1).numpy()
    acc = float((pred == ds.y).mean())
    majority = float(np.bincount(ds.y).max() / len(ds.y))
    assert len(ds) == info.n_sequences, info.key
    # identical up to at most one sequence flipping on another CPU's float rounding
    assert abs(acc - info.test_accuracy) <= 1.0 / len(ds) + 1e-9, (info.key, acc, info.test_accuracy)
    assert majority == pytest.approx(info.majority_rate, abs=1e-6), info.key
    floor, margin = FLOORS[info.key]
    assert acc >= floor and acc >= majority + margin, (info.key, acc, majority)


@pytest.mark.parametrize("info", [d for d in DEMOS if d.task == "regression"], ids=lambda d: d.key)
def test_regression_demo_error_matches_what_is_stated(info):
    model = load_model(info.model_path)                      # the upload path, nothing special
    ds = load_data(info.data_path)
    assert model.config.task == "regression" and model.class_names is None and ds.class_names is None
    assert ds.y.dtype.kind == "f" and ds.task == "regression"
    with torch.no_grad():
        pred = model(torch.from_numpy(ds.X), torch.from_numpy(ds.lengths)).numpy().astype(np.float64)
    y = ds.y.astype(np.float64)
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    base = float(np.sqrt(np.mean((y - y.mean()) ** 2)))      # always predicting the mean, by hand
    assert len(ds) == info.n_sequences
    assert rmse == pytest.approx(info.test_rmse, abs=1e-4) and base == pytest.approx(info.mean_rmse, abs=1e-5)
    assert info.test_r2 == pytest.approx(1 - (rmse / base) ** 2, abs=1e-4)
    assert SUMMARY[info.key]["test_mae"] == pytest.approx(float(np.mean(np.abs(pred - y))), abs=1e-4)
    assert rmse <= RMSE_CEILINGS[info.key] * base, (info.key, rmse, base)


def test_shipped_demo_files_stay_small():
    for d in DEMOS:
        for p in (d.model_path, d.data_path):
            assert p.stat().st_size < 1024 * 1024, (d.key, p.name, p.stat().st_size)


def test_race_csv_reads_with_no_settings_and_has_groups():
    ds = load_data(FILES / "race.csv")
    assert ds.feature_names == ["position", "time", "weight", "box", "days_since"]
    assert set(ds.class_names) == {"win", "place (2-3)", "unplaced"}
    assert {"track", "grade", "sex", "age_months"} <= set(ds.groups.columns)
    assert 4 <= ds.lengths.min() and ds.lengths.max() <= 30 and len(set(ds.lengths)) > 10
    valid = np.arange(ds.max_len)[None, :] < ds.lengths[:, None]
    pos, box = ds.X[..., 0][valid], ds.X[..., 3][valid]
    assert set(np.unique(pos)) <= set(range(1, 9)) and set(np.unique(box)) <= set(range(1, 9))


def test_race_generator_is_seeded():
    a, b = make_race_form(30, seed=5), make_race_form(30, seed=5)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.y.tolist() == b.y.tolist()
    assert not np.array_equal(a.X, make_race_form(30, seed=6).X)


# ------------------------------------------------------------------ the marker task spec
def test_marker_task_follows_its_spec():
    ds, decisive = make_marker_task(300, t_min=20, t_max=50, seed=3)
    assert ds.X.shape == (300, 50, 3) and decisive.shape == (300, 50) and decisive.dtype == bool
    assert ds.feature_names == MARKER_FEATURES and ds.class_names == MARKER_CLASSES
    assert 20 <= ds.lengths.min() and ds.lengths.max() <= 50
    valid = np.arange(50)[None, :] < ds.lengths[:, None]
    assert (decisive.sum(1) == 2).all() and not (decisive & ~valid).any()
    np.testing.assert_array_equal(ds.X[..., 1] == 1.0, decisive)                 # marker = decisive
    assert set(np.unique(ds.X[..., 1])) <= {0.0, 1.0}
    v = ds.X[..., 0]
    assert (np.abs(v[valid]) <= 1).all() and (ds.X[~valid] == 0).all()
    marked_sum = (v * decisive).sum(1)
    np.testing.assert_array_equal(ds.y, (marked_sum > 0).astype(np.int64))        # the known answer
    assert 0.35 < ds.y.mean() < 0.65
    again, dec2 = make_marker_task(300, t_min=20, t_max=50, seed=3)
    np.testing.assert_array_equal(again.X, ds.X)
    np.testing.assert_array_equal(dec2, decisive)


def test_marker_demo_model_reads_the_marked_steps():
    """Moving the value at an unmarked step leaves the answer alone; flipping the marked ones flips it."""
    model, ds = load_demo("marker")
    sub = ds.subset(np.arange(200))
    X = torch.from_numpy(sub.X.copy())
    L = torch.from_numpy(sub.lengths)
    decisive = sub.X[..., 1] == 1.0
    with torch.no_grad():
        base = model(X, L).argmax(-1)
        flipped = X.clone()
        flipped[..., 0][torch.from_numpy(decisive)] *= -1
        assert (model(flipped, L).argmax(-1) != base).float().mean() > 0.85
        other = X.clone()
        unmarked = torch.from_numpy(~decisive & (np.arange(sub.max_len)[None, :] < sub.lengths[:, None]))
        other[..., 0][unmarked] *= -1
        assert (model(other, L).argmax(-1) == base).float().mean() > 0.9


# ----------------------------------------------------------------------------- text demo
def _ids(model, text: str) -> np.ndarray:
    return np.array([[model.vocabulary.index(w) for w in text.split()]], dtype=np.int64)   # (1, T)


def test_text_demo_ships_a_text_csv_with_real_class_names_and_its_vocabulary():
    import pandas as pd

    model = load_model(FILES / "reviews.safetensors")
    frame = pd.read_csv(FILES / "reviews.csv")
    assert {"text", "label"} <= set(frame.columns)
    assert sorted(frame["label"].unique()) == ["negative", "positive"] == model.class_names
    assert model.config.encoder == "embedding" and model.config.cell == "LSTM"
    assert model.vocabulary[:2] == ["<pad>", "<unk>"] and len(model.vocabulary) == model.config.vocab_size
    ds = load_data(FILES / "reviews.csv", class_names=model.class_names, vocabulary=model.vocabulary)
    assert ds.is_tokens and ds.X.dtype == np.int64 and ds.X.ndim == 2 and ds.vocabulary == model.vocabulary
    assert [" ".join(ds.tokens(i)) for i in range(5)] == list(frame["text"][:5])
    assert "negation" in ds.groups.columns
    # the demo's own arrays (used to train) are the loader's arrays
    from rnnviz_core.demos.build import review_dataset
    mine = review_dataset(frame, model.vocabulary)
    np.testing.assert_array_equal(mine.lengths, ds.lengths)
    for i in range(len(ds)):
        np.testing.assert_array_equal(mine.X[i, :ds.lengths[i]], ds.X[i, :ds.lengths[i]])
    np.testing.assert_array_equal(mine.y, ds.y)


def test_text_demo_labels_follow_the_known_rule_and_the_decisive_words():
    import pandas as pd
    from rnnviz_core.demos.tasks import REVIEW_CLASSES, make_reviews, review_decisive_steps, review_sentiment

    frame = pd.read_csv(FILES / "reviews.csv")
    assert [REVIEW_CLASSES[review_sentiment(t)] for t in frame["text"]] == list(frame["label"])
    assert frame.equals(make_reviews(1000, seed=12))                       # seeded: the shipped file
    # which words decide, by hand
    assert review_decisive_steps("the movie was good").tolist() == [False, False, False, True]
    assert review_decisive_steps("not the plot but the cast was not very good").tolist() == \
        [False] * 7 + [True, False, True]
    assert review_decisive_steps("very boring and never dull").tolist() == [False, True, False, True, True]
    assert review_sentiment("the plot was never boring") == 1 and review_sentiment("not very good") == 0
    negated = frame["negation"] == "yes"
    assert 0.2 < negated.mean() < 0.6


@pytest.mark.parametrize("text,label", [
    ("the movie was good", "positive"), ("the movie was not good", "negative"),
    ("the movie was not very good", "negative"), ("the plot was boring", "negative"),
    ("the plot was never boring", "positive"), ("i really hated it", "negative"),
    ("the cast was brilliant and the music was great", "positive"),
])
def test_text_demo_model_reads_negation(text, label):
    import rnnviz_core as rv

    model = load_model(FILES / "reviews.safetensors")
    logits = rv.predict(model, _ids(model, text))
    assert model.class_names[int(logits.argmax(-1)[0])] == label, (text, logits)


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion"])
def test_text_demo_contributions_point_at_the_deciding_words(method):
    """The demo's purpose: the top-scored word of a review is one that decides it."""
    import rnnviz_core as rv
    from rnnviz_core.demos.tasks import review_decisive_steps

    model, ds = load_demo("text")
    idx = np.arange(60)
    scores = np.asarray(rv.contributions(model, ds.X[idx], method=method, lengths=ds.lengths[idx]))
    hits = [review_decisive_steps(ds.tokens(i))[int(np.nanargmax(np.abs(scores[i, :ds.lengths[i]])))]
            for i in idx]
    assert np.mean(hits) >= 0.9, (method, np.mean(hits))


# ------------------------------------------------------------------ long sequences: the burst task
def test_burst_task_follows_its_spec():
    from rnnviz_core.demos.tasks import BURST_CLASSES, BURST_FEATURES, burst_shape, make_burst_task
    ds, decisive = make_burst_task(60, t_min=100, t_max=140, window=16, amplitude=1.5, seed=3)
    assert ds.X.shape == (60, 140, 2) and decisive.shape == (60, 140)
    assert ds.feature_names == BURST_FEATURES and ds.class_names == BURST_CLASSES
    assert 100 <= ds.lengths.min() and ds.lengths.max() <= 140
    valid = np.arange(140)[None, :] < ds.lengths[:, None]
    assert (decisive.sum(1) == 16).all() and not (decisive & ~valid).any() and (ds.X[~valid] == 0).all()
    np.testing.assert_array_equal(ds.X[..., 1] == 1.0, decisive)                 # marker = the window
    for i in range(60):
        (steps,) = np.nonzero(decisive[i])
        assert steps[-1] - steps[0] == 15 and steps[0] == ds.groups["window_start"][i]   # one run of 16 steps
        # outside the window the background follows a_t = 0.8 a_(t-1) + 0.3 e_t: innovations ~ N(0, 0.3)
        v = ds.X[i, : ds.lengths[i], 0].astype(np.float64)
        clean = v.copy()
        clean[steps] -= 1.5 * burst_shape(int(ds.y[i]), 16)
        innov = clean[1:] - 0.8 * clean[:-1]
        assert 0.2 < innov.std() < 0.4, innov.std()
    # the shapes, by hand: rise > 0 in the middle, dip < 0, wobble up then down
    assert burst_shape(0, 5)[2] == pytest.approx(1) and burst_shape(1, 5)[2] == pytest.approx(-1)
    w = burst_shape(2, 9)
    assert w[2] == pytest.approx(1) and w[6] == pytest.approx(-1) and abs(w[4]) < 1e-12
    assert set(np.unique(ds.y)) == {0, 1, 2}
    again, _ = make_burst_task(60, t_min=100, t_max=140, window=16, amplitude=1.5, seed=3)
    np.testing.assert_array_equal(again.X, ds.X)


def test_burst_demo_is_long_and_its_model_reads_the_window():
    """Hundreds of steps; swapping the burst's shape in the window changes the answer to the new
    shape, and redrawing the background outside the window leaves the answer alone."""
    from rnnviz_core.demos.tasks import burst_shape
    model, ds = load_demo("burst")
    assert 400 <= ds.lengths.min() and ds.lengths.max() <= 480 and ds.X.shape[1] >= 400
    assert model.config.cell == "GRU" and 32 <= model.config.hidden_size <= 64
    sub = ds.subset(np.arange(90))
    X = sub.X.copy()
    L = torch.from_numpy(sub.lengths)
    win = X[..., 1] == 1.0                                                        # (N, T)
    rng = np.random.default_rng(0)
    with torch.no_grad():
        base = model(torch.from_numpy(X), L).argmax(-1).numpy()
        assert (base == sub.y).mean() > 0.9
        swapped = X.copy()
        new_y = (sub.y + 1) % 3
        for i in range(len(sub)):
            (steps,) = np.nonzero(win[i])
            swapped[i, steps, 0] += 1.2 * (burst_shape(int(new_y[i]), len(steps)) - burst_shape(int(sub.y[i]), len(steps)))
        assert (model(torch.from_numpy(swapped), L).argmax(-1).numpy() == new_y).mean() > 0.85
        other = X.copy()
        outside = ~win & (np.arange(sub.max_len)[None, :] < sub.lengths[:, None])
        other[..., 0][outside] = rng.permutation(X[..., 0][outside])              # background shuffled
        assert (model(torch.from_numpy(other), L).argmax(-1).numpy() == base).mean() > 0.85


# ------------------------------------------------------------------ regression: the window-sum task
def test_window_sum_task_follows_its_spec():
    from rnnviz_core.demos.tasks import WINDOW_SUM_FEATURES, make_window_sum_task
    ds, decisive = make_window_sum_task(200, seed=4)
    assert ds.X.shape == (200, 60, 2) and ds.feature_names == WINDOW_SUM_FEATURES and ds.class_names is None
    assert ds.y.dtype == np.float32
    np.testing.assert_array_equal(ds.X[..., 1] == 1.0, decisive)
    for i in range(200):
        (steps,) = np.nonzero(decisive[i])
        assert 4 <= len(steps) <= 8 and steps[-1] - steps[0] == len(steps) - 1 and steps[-1] < ds.lengths[i]
        assert ds.y[i] == pytest.approx(sum(float(ds.X[i, t, 0]) for t in steps), abs=1e-5)   # by hand
    valid = np.arange(60)[None, :] < ds.lengths[:, None]
    assert (np.abs(ds.X[..., 0][valid]) <= 1).all() and (ds.X[~valid] == 0).all()


def test_window_sum_demo_adds_the_marked_values():
    """Adding d to every marked value moves the answer by about d x the window's length; changing
    unmarked values moves it little."""
    model, ds = load_demo("window_sum")
    sub = ds.subset(np.arange(100))
    X = sub.X.copy()
    L = torch.from_numpy(sub.lengths)
    win = X[..., 1] == 1.0
    with torch.no_grad():
        base = model(torch.from_numpy(X), L).numpy()
        up = X.copy()
        up[..., 0][win] = np.clip(up[..., 0][win] + 0.3, -1, 1)
        want = (up[..., 0] * win).sum(1) - (X[..., 0] * win).sum(1)
        moved = model(torch.from_numpy(up), L).numpy() - base
        assert np.corrcoef(moved, want)[0, 1] > 0.9 and np.abs(moved - want).mean() < 0.25
        other = X.copy()
        outside = ~win & (np.arange(sub.max_len)[None, :] < sub.lengths[:, None])
        other[..., 0][outside] *= -1
        assert np.abs(model(torch.from_numpy(other), L).numpy() - base).mean() < 0.25
