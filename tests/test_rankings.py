"""Rankings and aggregates on hand-made score arrays whose answers are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnviz_core.errors import InputError
from rnnviz_core.rankings import (concentration, correctness, least_concentrated,
                                  lengths_from_scores, mean_abs_by_group, mean_abs_by_position,
                                  most_concentrated, scores_frame, top_steps)

nan = np.nan
S = np.array([
    [0.1, -3.0, 2.0, 0.5],     # length 4
    [1.0, 1.0, nan, nan],      # length 2 (tie)
    [-0.2, 0.4, 0.3, nan],     # length 3
])


def test_lengths_from_nan_padding():
    np.testing.assert_array_equal(lengths_from_scores(S), [4, 2, 3])
    np.testing.assert_array_equal(lengths_from_scores(S, [4, 1, 3]), [4, 1, 3])
    with pytest.raises(InputError):
        lengths_from_scores(np.array([[nan, 1.0]]))


def test_scores_frame_is_tidy():
    df = scores_frame(S, method="occlusion")
    assert list(df.columns) == ["method", "seq", "step", "score", "abs_score"]
    assert len(df) == 4 + 2 + 3
    assert df.loc[(df.seq == 0) & (df.step == 1), "abs_score"].item() == 3.0


def test_top_steps_signed_and_abs():
    df = top_steps(S, k=2)
    assert list(df.columns) == ["seq", "rank", "step", "score", "length", "relative_position"]
    got = {(r.seq, r.rank): r.step for r in df.itertuples()}
    assert got == {(0, 1): 2, (0, 2): 3, (1, 1): 0, (1, 2): 1, (2, 1): 1, (2, 2): 2}
    df_abs = top_steps(S, k=2, by="abs")
    assert df_abs[(df_abs.seq == 0) & (df_abs["rank"] == 1)].step.item() == 1    # |-3|
    # relative position: step / (L - 1)
    r = df_abs[(df_abs.seq == 0) & (df_abs["rank"] == 1)].relative_position.item()
    assert r == pytest.approx(1 / 3)
    # a sequence shorter than k gives all its steps, never a padded one
    df5 = top_steps(S, k=5)
    assert df5.groupby("seq").size().tolist() == [4, 2, 3]
    assert (df5.step < df5.length).all()


def test_top_steps_ids_and_bad_k():
    df = top_steps(S, k=1, ids=["a", "b", "c"])
    assert df.seq.tolist() == ["a", "b", "c"]
    with pytest.raises(InputError):
        top_steps(S, k=0)
    with pytest.raises(InputError):
        top_steps(S, by="rank")


def test_mean_abs_by_absolute_position():
    df = mean_abs_by_position(S)
    assert df.position.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(df.mean_abs, [(0.1 + 1 + 0.2) / 3, (3 + 1 + 0.4) / 3,
                                             (2 + 0.3) / 2, 0.5])
    assert df.n.tolist() == [3, 3, 2, 1]


def test_mean_abs_by_relative_position():
    s = np.array([[1.0, 2.0, nan, nan], [4.0, 4.0, 8.0, 8.0]])
    df = mean_abs_by_position(s, relative=True, bins=2)
    # (t+.5)/L: row0 -> .25, .75 ; row1 -> .125, .375, .625, .875
    np.testing.assert_allclose(df.mean_abs, [(1 + 4 + 4) / 3, (2 + 8 + 8) / 3])
    assert df.n.tolist() == [3, 3]
    assert df.bin_start.tolist() == [0.0, 0.5] and df.position.tolist() == [0.25, 0.75]
    dfn = mean_abs_by_position(s, relative=True, bins=2, normalize=True)
    np.testing.assert_allclose(dfn.mean_abs, [(1 / 3 + 1 / 6 + 1 / 6) / 3,
                                              (2 / 3 + 1 / 3 + 1 / 3) / 3])


def test_mean_abs_by_group():
    s = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, 5.0]])
    g = pd.Series(["cat", "cat", "dog"], name="label")
    df = mean_abs_by_group(s, g, relative=False, normalize=False)
    assert list(df.columns) == ["label", "position", "mean_abs", "n"]
    cat = df[df.label == "cat"].set_index("position").mean_abs
    assert cat[0] == 2.0 and cat[1] == 0.0
    assert df[(df.label == "dog") & (df.position == 1)].mean_abs.item() == 5.0
    with pytest.raises(InputError):
        mean_abs_by_group(s, ["a", "b"])


def test_concentration_measures():
    s = np.array([
        [0.0, 0.0, 9.0, 0.0, 0.0],      # all on one step
        [1.0, 1.0, 1.0, 1.0, 1.0],      # evenly spread
        [2.0, -2.0, 0.0, nan, nan],     # half-half on two of three
        [0.0, 0.0, nan, nan, nan],      # all zero: undefined
    ])
    c = concentration(s, k=1)
    np.testing.assert_allclose(c.top_k_share[:3], [1.0, 0.2, 0.5])
    np.testing.assert_allclose(c.entropy[:3], [0.0, 1.0, np.log(2) / np.log(3)])
    assert np.isnan(c.top_k_share[3])
    assert c.top_steps[0] == [2]
    most = most_concentrated(s, n=2, k=1)
    least = least_concentrated(s, n=2, k=1)
    assert most.seq.tolist() == [0, 2] and least.seq.tolist() == [1, 2]
    # sequences no longer than k are trivially concentrated and left out
    assert 2 not in most_concentrated(s, n=5, k=3).seq.tolist()


def test_correctness():
    assert correctness([1, 0, 2], [1, 1, 2]).tolist() == ["correct", "wrong", "correct"]
    with pytest.raises(InputError):
        correctness([1, 0], [1])
