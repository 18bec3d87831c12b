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


# ----------------------------------------------------------------------------- regression groupings
from rnnviz_core import findings as fd  # noqa: E402
from rnnviz_core import groups as gr  # noqa: E402
from rnnviz_core import rankings as rk  # noqa: E402


def _regression_table():
    pred = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    true = np.array([0.1, 1.3, 1.5, 3.9, 2.5, 5.6, 8.0, 3.0])   # |errors| 0.1 0.3 0.5 0.9 1.5 0.6 2.0 4.0
    return gr.sequence_table(pred, true), pred, true


def test_regression_table_has_each_sequences_absolute_error():
    table, pred, true = _regression_table()
    np.testing.assert_allclose(table["abs_error"], np.abs(pred - true))
    np.testing.assert_allclose(table["loss"], (pred - true) ** 2)
    assert "correct" not in gr.group_summary(table, "error_size").columns


@pytest.mark.parametrize("by, col, word", [("error_size", "abs_error", "error"), ("target_range", "true", "true value"),
                                           ("prediction_range", "pred", "prediction")])
def test_regression_groupings_cut_into_quarters_by_hand(by, col, word):
    table, pred, true = _regression_table()
    labels = gr.assign_groups(table, by)
    values = table[col].to_numpy()
    order = np.argsort(values, kind="stable")
    # 8 distinct values in quarters: the two smallest, the next two, ...
    for q in range(4):
        members = list(order[2 * q: 2 * q + 2])
        assert len({labels.iloc[i] for i in members}) == 1, (by, q)
        lo, hi = values[members].min(), values[members].max()
        assert labels.iloc[members[0]] == f"{word} {lo:.3g} to {hi:.3g}"   # named by its own smallest and largest
    assert labels.nunique() == 4
    summary = gr.group_summary(table, by)
    assert list(summary["size"]) == [2, 2, 2, 2]
    for _, row in summary.iterrows():
        idx = [i for i in range(8) if labels.iloc[i] == row["group"]]
        assert row["mean_abs_error"] == pytest.approx(np.abs(pred - true)[idx].mean())
    assert str(summary["group"].iloc[0]) == str(labels.iloc[order[0]])     # smallest first


def test_regression_groupings_are_refused_for_a_classifier():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    table = gr.sequence_table(logits, [0, 1, 1])
    with pytest.raises(gr.InputError, match="regression"):
        gr.assign_groups(table, "error_size")


def test_saturation_findings_in_regression_words():
    cmp = pd.DataFrame([
        {"metric": "frac_saturated", "group_a": "error 1 to 4", "group_b": "error 0 to 0.3", "n_a": 30, "n_b": 30,
         "mean_a": 0.4, "mean_b": 0.1, "p_value": 0.001, "effect_size": 0.6, "effect_name": "rank-biserial r"},
        {"metric": "abs_error", "group_a": "true value 2 to 4", "group_b": "true value 0 to 1", "n_a": 30, "n_b": 30,
         "mean_a": 0.52, "mean_b": 0.11, "p_value": 0.002, "effect_size": 0.5, "effect_name": "rank-biserial r"},
    ])
    out = fd.saturation_findings(cmp, by="target_range")
    text = " ".join(out)
    assert "off by 0.52 on average for true value 2 to 4 sequences and by 0.11" in text
    for word in ("class", "accura", "correct"):
        assert word not in text.lower()
    assert not any("off by" in s for s in fd.saturation_findings(cmp, by="error_size"))   # not circular


# ----------------------------------------------------------------------------- text: words named
def test_top_steps_and_findings_name_the_word():
    scores = np.array([[0.1, 0.2, 0.9, 0.3], [0.5, 0.1, np.nan, np.nan]])
    words = [["a", "long", "boring", "film"], ["supercalifragilisticexpialidocious-ness", "yes"]]
    top = rk.top_steps(scores, k=2, ids=["A1", "B1"], words=words)
    first = top[top["rank"] == 1].set_index("seq")
    assert first.loc["A1", "word"] == "boring"
    cut = first.loc["B1", "word"]
    assert cut.endswith("…") and len(cut) == rk.WORD_CHARS and words[1][0].startswith(cut[:-1])
    out = fd.contribution_findings(top=top, seqs=["A1", "B1"], method="grad_norm",
                                   labels={"grad_norm": "gradient norm"})
    assert out == [f"By gradient norm, the answer reacts most to 'boring' (word 2 of A) and '{cut}' (word 0 of B)."]
    plain = fd.contribution_findings(top=top.drop(columns="word"), seqs=["A1", "B1"], method="grad_norm",
                                     labels={"grad_norm": "gradient norm"})
    assert plain == ["By gradient norm, the answer reacts most strongly to step 2 of A and step 0 of B."]


def test_shorten_never_cuts_without_an_ellipsis():
    assert rk.shorten("Sorted as text, as labels read from a text file sort", 20) == "Sorted as text, as…"
    assert rk.shorten("short", 20) == "short"
    assert rk.shorten("two\nlines", 20) == "two lines"


def test_regression_head_readings_carry_the_scripts_error(tmp_path):
    import sys
    from pathlib import Path
    from sklearn.metrics import mean_squared_error
    import rnnviz_core as rv
    from rnnviz_core import pairing
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tutorial_files import make_regression_files
    files = make_regression_files(tmp_path)
    model, ds = rv.load_model(files["model"]), rv.load_data(files["csv"])
    table = pairing.readout_choices(model, ds).set_index("readout")
    script = np.sqrt(mean_squared_error(files["y"], files["pred"]))       # the tutorial reads out[:, -1]
    assert table.loc["last", "rmse"] == pytest.approx(script, rel=1e-5)
    assert table["accuracy"].isna().all()
    assert table.loc["mean", "rmse"] > 2 * script                          # a wrong reading shows its error


def test_trajectory_findings_name_the_words_read_at_the_steps_they_name():
    from rnnviz_core import trajectories as tj
    h_a = np.zeros((6, 2), dtype=np.float32)
    h_b = np.zeros((6, 2), dtype=np.float32)
    h_b[3:] = 5.0                                       # B moves away at step 3 and stays away
    dist = tj.pair_distance(h_a, h_b, 6, 6, align="start")
    words = (["the", "film", "was", "boring", "and", "long"], ["the", "film", "was", "great", "fun", "!"])
    plain = fd.trajectory_findings(dist, rel_threshold=0.25, k=2)
    named = fd.trajectory_findings(dist, rel_threshold=0.25, k=2, words=words)
    assert plain == ["Sequences A and B part at step 3 and stay apart to the end."]
    assert named == ["Sequences A and B part at step 3 ('boring' in A, 'great' in B) and stay apart to the end."]
    norms = pd.DataFrame({"seq": ["a", "b"], "plateau_step": [4, -1]})
    out = fd.trajectory_findings(None, norms=norms, seqs=["a", "b"], words=words)
    assert out == ["The memory of A settles from step 4 ('and'); that of B is still moving at its end."]
    end = tj.pair_distance(h_a, h_b, 6, 6, align="end")
    assert "('boring' in A, 'great' in B)" in fd.trajectory_findings(end, rel_threshold=0.25, k=2, words=words)[0]
