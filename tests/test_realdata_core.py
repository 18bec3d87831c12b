"""Issue 18 (real data): label columns of review files, regression figures against scikit-learn,
regression groupings against hand-built frames, findings that name words and use regression words."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnviz_core import data as dm
from rnnviz_core.regression import regression_scores

VOCAB = ["<pad>", "<unk>", "a", "good", "bad", "film"]


@pytest.mark.parametrize("name", ["sentiment", "target", "class", "y", "label", "labels", "rating", "score",
                                  "polarity", "Sentiment", "true_label"])
def test_a_review_files_label_column_is_found_by_its_usual_names(name):
    df = pd.DataFrame({"review": ["a good film", "a bad film", "good good", "bad film"],
                       name: ["pos", "neg", "pos", "neg"]})
    assert dm.inspect_columns(df).label_col == name
    ds = dm.load_data(df.to_csv(index=False).encode(), name="reviews.csv", vocabulary=VOCAB)
    assert list(ds.class_names) == ["neg", "pos"] and list(ds.y) == [1, 0, 1, 0]


def test_a_weak_label_name_beside_a_strong_one_is_not_a_second_label():
    df = pd.DataFrame({"review": ["a good film", "a bad film"], "sentiment": ["pos", "neg"], "score": [4, 1]})
    assert dm.inspect_columns(df).label_col == "sentiment"


def test_a_per_step_score_column_in_long_form_stays_a_feature():
    df = pd.DataFrame({"id": [1, 1, 2, 2], "t": [0, 1, 0, 1], "x": [.1, .2, .3, .4], "score": [1., 2., 3., 4.]})
    assert dm.inspect_columns(df).label_col is None
    ds = dm.load_data(df.to_csv(index=False).encode(), name="long.csv")
    assert ds.y is None and list(ds.feature_names) == ["x", "score"]
    df["score"] = [1., 1., 3., 3.]                                     # one value per sequence: the label
    assert dm.inspect_columns(df).label_col == "score"
    ds = dm.load_data(df.to_csv(index=False).encode(), name="long.csv")
    assert list(ds.feature_names) == ["x"] and ds.y is not None


def test_regression_scores_equal_scikit_learns():
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
    rng = np.random.default_rng(0)
    y = rng.normal(3, 2, 200)
    pred = y + rng.normal(0, 0.7, 200)
    s = regression_scores(pred, y)
    assert s.rmse == pytest.approx(np.sqrt(mean_squared_error(y, pred)), rel=1e-12)
    assert s.mae == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    assert s.r2 == pytest.approx(r2_score(y, pred), rel=1e-12)
    base = np.full_like(y, y.mean())
    assert s.baseline_rmse == pytest.approx(np.sqrt(mean_squared_error(y, base)), rel=1e-12)
    assert s.baseline_mae == pytest.approx(mean_absolute_error(y, base), rel=1e-12)
    assert regression_scores(base, y).r2 == pytest.approx(0.0, abs=1e-12)   # the mean explains nothing
    s2 = regression_scores(pred.reshape(-1, 1), y)                           # [N, 1] outputs read the same
    assert s2.rmse == pytest.approx(s.rmse)


def test_r2_is_not_a_number_when_every_true_value_is_the_same():
    s = regression_scores([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert np.isnan(s.r2) and s.baseline_rmse == 0.0 and s.rmse == pytest.approx(np.sqrt(2 / 3))
