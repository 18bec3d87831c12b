"""rnnviz_core.display: binned values against hand computations (numpy reshape, loops)."""
import numpy as np
import pandas as pd
import pytest

from rnnviz_core import display as dp


def test_bins_choose_a_nice_width_within_the_columns():
    b = dp.step_bins(2000, max_columns=125)
    assert (b.k, b.n_cols) == (16, 125)
    assert dp.step_bins(30).k == 1 and not dp.step_bins(30).binned
    b = dp.step_bins(10_000, max_columns=200)
    assert b.k == 50 and b.n_cols == 200
    w = dp.step_bins(10_000, window=(5000, 5100))
    assert (w.start, w.stop, w.k) == (5000, 5100, 1)
    assert w.starts()[:2] == [5000, 5001]


def test_bin_mean_equals_reshape_mean():
    a = np.arange(24, dtype=float).reshape(12, 2)      # 12 steps, 2 rows
    b = dp.StepBins(0, 12, 4)
    got = dp.bin_steps(a, b, "mean")
    want = a.reshape(3, 4, 2).mean(axis=1)
    np.testing.assert_allclose(got, want)


def test_partial_last_column_and_nan_are_left_out():
    a = np.array([1.0, 2.0, 3.0, 4.0, np.nan, 10.0, 20.0])  # 7 steps, k=3: [1,2,3] [4,nan,10] [20]
    got = dp.bin_steps(a, dp.StepBins(0, 7, 3), "mean")
    np.testing.assert_allclose(got, [2.0, 7.0, 20.0])
    got = dp.bin_steps(a, dp.StepBins(0, 7, 3), "max")
    np.testing.assert_allclose(got, [3.0, 10.0, 20.0])


def test_absmax_keeps_the_sign_of_the_largest_size():
    a = np.array([0.1, -5.0, 2.0, 3.0, -1.0, 0.0])
    got = dp.bin_steps(a, dp.StepBins(0, 6, 3), "absmax")
    np.testing.assert_allclose(got, [-5.0, 3.0])


def test_window_bins_only_its_steps():
    a = np.arange(100, dtype=float)
    got = dp.bin_steps(a, dp.StepBins(40, 50, 5), "mean")
    np.testing.assert_allclose(got, [42.0, 47.0])


def test_bin_tidy_matches_a_loop():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"unit": np.repeat([0, 1], 10), "step": np.tile(np.arange(10), 2),
                          "v": rng.normal(size=20), "s": rng.normal(size=20)})
    b = dp.StepBins(0, 10, 4)
    out = dp.bin_tidy(frame, b, {"v": "mean", "s": "absmax"}, keys=["unit"])
    for u in (0, 1):
        for c in (0, 4, 8):
            part = frame[(frame.unit == u) & (frame.step >= c) & (frame.step < c + 4)]
            row = out[(out.unit == u) & (out.step == c)].iloc[0]
            assert row.v == pytest.approx(part.v.mean())
            assert row.s == pytest.approx(part.s.iloc[np.argmax(np.abs(part.s.to_numpy()))])
            assert row.step_end == part.step.max()
    assert len(out) == 6


def test_rows_and_columns_stay_in_the_budget():
    for u, t in [(1024, 10_000), (32, 2000), (512, 300), (1, 10_000), (1000, 1000)]:
        rows, b = dp.heat_bins(u, t)
        assert rows * b.n_cols <= dp.ROW_BUDGET, (u, t)
    assert dp.heat_bins(32, 30) == (32, dp.StepBins(0, 30, 1))   # a demo: drawn as it is


def test_top_rows_are_the_most_varying():
    a = np.zeros((50, 5))
    a[:, 3] = np.sin(np.arange(50)) * 3
    a[:, 1] = np.sin(np.arange(50))
    assert dp.top_rows(a, 2).tolist() == [1, 3]
    assert dp.top_rows(a, 2, order=[3, 2, 1, 0, 4]).tolist() == [3, 1]


def test_short_label_never_cuts_without_an_ellipsis():
    assert dp.short_label("boring", 4) == "bor…"
    assert dp.short_label("ok", 4) == "ok"
    assert dp.short_label("accelerometerWiimoteZ", 10).endswith("…")
    assert len(dp.short_label("accelerometerWiimoteZ", 10)) == 10


def test_distinct_labels_keep_the_end_that_tells_names_apart():
    names = [f"sensor_{i:03d}" for i in range(200)]
    got = dp.distinct_labels(names, 8)
    assert len(set(got)) == 200 and all(len(g) <= 8 and "…" in g for g in got)
    assert got[12] == "sens…012"
    assert dp.distinct_labels(["accelerometerWiimoteX", "accelerometerWiimoteY", "ureWiimoteZ"], 8) == \
        ["accele…X", "accele…Y", "ureWii…Z"]
    assert dp.distinct_labels(["x", "y"], 8) == ["x", "y"]


def test_steps_words_writes_runs_as_ranges():
    """Hand-written expectations: the burst demo's 32-step window reads as one range."""
    assert dp.steps_words([7]) == "step 7"
    assert dp.steps_words([0, 4]) == "steps 0 and 4"
    assert dp.steps_words([3, 4]) == "steps 3 and 4"
    assert dp.steps_words([3, 4, 5]) == "steps 3–5"
    assert dp.steps_words(range(15, 47)) == "steps 15–46"
    assert dp.steps_words([12, 2, 5, 6, 7, 8, 9, 5]) == "steps 2, 5–9 and 12"
    assert dp.steps_words([1, 5, 9]) == "steps 1, 5 and 9"
    assert dp.steps_words([0, 1, 2, 10, 11]) == "steps 0–2, 10 and 11"
