"""Groups, two-group tests, resilience and reproducibility against known answers."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rnnviz_core.errors import InputError
from rnnviz_core.groups import (
    assign_groups, compare_groups, group_summary, perturb_inputs, reproducibility, resilience,
    resilience_summary, resilience_sweep, saturation_levels, sequence_outcomes, sequence_table,
)


# ----------------------------------------------------------------------------- tiny models
class IgnoresInput(nn.Module):
    """GRU whose output reads only a constant: any damage to x changes nothing."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(2, 4, batch_first=True)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(torch.zeros_like(out[:, -1])) + 0.0 * out[:, -1].sum()


class Reads(nn.Module):
    """GRU classifier that reads its input (fixed seed)."""

    def __init__(self, cell=nn.GRU):
        super().__init__()
        torch.manual_seed(0)
        self.rnn = cell(2, 6, batch_first=True)
        self.head = nn.Linear(6, 3)

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        if lengths is None:
            last = out[:, -1]
        else:
            idx = torch.as_tensor(lengths).long() - 1
            last = out[torch.arange(out.shape[0]), idx]
        return self.head(last) * 5.0


def _torch_predict(model):
    def run(x, lengths):
        with torch.no_grad():
            xt = torch.as_tensor(x)
            try:
                return model(xt, torch.as_tensor(lengths)).numpy()
            except TypeError:
                return model(xt).numpy()
    return run


def _batch(n=40, t=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, t, 2)).astype(np.float32)
    lens = rng.integers(3, t + 1, size=n)
    x[np.arange(t)[None, :] >= lens[:, None]] = 0.0
    return x, lens


# ----------------------------------------------------------------------------- outcomes
def test_outcomes_by_hand():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    f = sequence_outcomes(logits, [0, 1])
    assert f["pred"].tolist() == [0, 2]
    assert f["confidence"].tolist() == pytest.approx([0.7, 0.6])
    assert f["correct"].tolist() == [True, False]
    assert f["loss"].tolist() == pytest.approx([-np.log(0.7), -np.log(0.3)])
    reg = sequence_outcomes(np.array([1.0, 3.0]), [2.0, 3.0])
    assert reg["loss"].tolist() == [1.0, 0.0] and reg["confidence"].isna().all()
    binary = sequence_outcomes(np.array([0.0, 2.0]), [1, 1], task="binary")
    assert binary["loss"].tolist() == pytest.approx([np.log(2), np.log(1 + np.exp(-2))])
    with pytest.raises(InputError):
        sequence_outcomes(logits, [0, 3])


def test_saturation_levels_thresholds():
    lv = saturation_levels([0.0, 0.099, 0.1, 0.49, 0.5, 1.0])
    assert list(lv) == ["not saturated", "not saturated", "partly saturated", "partly saturated",
                        "fully saturated", "fully saturated"]
    assert list(saturation_levels([0.3], levels=(0.2, 0.3))) == ["fully saturated"]
    with pytest.raises(InputError):
        saturation_levels([0.3], levels=(0.5, 0.1))


def _table():
    # 6 sequences: states saturate fully in 0-2 (|h| = 0.95), not at all in 3-5
    states = np.zeros((6, 4, 2))
    states[:3] = 0.95
    states[3:] = 0.2
    logits = np.log(np.array([[0.9, 0.1]] * 3 + [[0.6, 0.4]] * 3))
    y = np.array([0, 0, 1, 0, 1, 1])
    cols = pd.DataFrame({"track": list("ababab"), "age": np.arange(6.0)})
    return sequence_table(logits, y, states=states, columns=cols, class_names=["win", "lose"])


def test_sequence_table_and_groupings():
    t = _table()
    assert t["saturation"].tolist() == ["fully saturated"] * 3 + ["not saturated"] * 3
    assert t["true_class"].tolist() == ["win", "win", "lose", "win", "lose", "lose"]
    assert t["outcome"].tolist() == ["correct", "correct", "wrong", "correct", "wrong", "wrong"]
    s = group_summary(t, by="saturation").set_index("group")
    assert s.index.tolist() == ["not saturated", "fully saturated"]  # level order, not alphabetical
    assert s.loc["fully saturated", "size"] == 3
    assert s.loc["fully saturated", "accuracy"] == pytest.approx(2 / 3)
    assert s.loc["not saturated", "accuracy"] == pytest.approx(1 / 3)
    assert s.loc["fully saturated", "mean_confidence"] == pytest.approx(0.9)
    assert s.loc["fully saturated", "mean_loss"] == pytest.approx((2 * -np.log(0.9) - np.log(0.1)) / 3)
    assert s.loc["fully saturated", "sat_mean"] == 1.0 and s.loc["not saturated", "sat_mean"] == 0.0
    assert s.loc["fully saturated", "share_fully_saturated"] == 1.0
    by_col = group_summary(t, by="track").set_index("group")
    assert by_col["size"].tolist() == [3, 3]
    assert assign_groups(t, "correct").tolist() == t["outcome"].tolist()
    assert set(group_summary(t, by="predicted_class")["group"]) == {"win"}
    with pytest.raises(InputError, match="no such column"):
        group_summary(t, by="weather")
    with pytest.raises(InputError, match="needs y"):
        assign_groups(sequence_table(np.zeros((2, 2))), "true_class")


def test_compare_groups_detects_known_difference_and_not_a_null_one():
    rng = np.random.default_rng(0)
    n = 200
    table = pd.DataFrame({"seq": np.arange(2 * n), "g": ["a"] * n + ["b"] * n,
                          "loss": np.r_[rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)],
                          "confidence": rng.uniform(size=2 * n)})
    mw = compare_groups(table, "g", "a", "b").set_index("metric")
    assert mw.loc["loss", "p_value"] < 1e-8
    # rank-biserial for a shift of one SD is about 2*Phi(1/sqrt2)-1 = 0.52
    assert 0.4 < mw.loc["loss", "effect_size"] < 0.65
    assert mw.loc["confidence", "p_value"] > 0.01
    assert abs(mw.loc["confidence", "effect_size"]) < 0.2
    w = compare_groups(table, "g", "a", "b", metrics="loss", test="welch").iloc[0]
    assert w["effect_name"] == "Cohen's d" and 0.8 < w["effect_size"] < 1.2 and w["p_value"] < 1e-8
    # reversing the groups flips the sign of the effect
    assert compare_groups(table, "g", "b", "a", metrics="loss")["effect_size"].iloc[0] == pytest.approx(
        -mw.loc["loss", "effect_size"])
    # rank-biserial by hand on a tiny case: a = [3, 4], b = [1, 2] -> U_a = 4, r = 1
    tiny = pd.DataFrame({"seq": range(4), "g": list("aabb"), "loss": [3.0, 4.0, 1.0, 2.0]})
    assert compare_groups(tiny, "g", "a", "b", metrics="loss")["effect_size"].iloc[0] == 1.0
    with pytest.raises(InputError, match="no group"):
        compare_groups(table, "g", "a", "c")


# ----------------------------------------------------------------------------- perturbation
def test_perturb_missing_positions_and_drop():
    x = np.arange(1, 11, dtype=np.float32).reshape(1, 10, 1).repeat(2, axis=0)
    lens = np.array([10, 5])
    x[1, 5:] = 0
    early, l1 = perturb_inputs(x, lens, kind="missing", fraction=0.2, position="early", baseline="zeros")
    assert early[0, :, 0].tolist() == [0, 0, 3, 4, 5, 6, 7, 8, 9, 10]
    assert early[1, :, 0].tolist() == [0, 2, 3, 4, 5, 0, 0, 0, 0, 0]  # k = max(1, round(1.0)) = 1
    assert l1.tolist() == [10, 5]
    late, _ = perturb_inputs(x, lens, kind="missing", fraction=0.2, position="late", baseline=[-1.0])
    assert late[0, :, 0].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, -1, -1]
    assert late[1, :, 0].tolist() == [1, 2, 3, 4, -1, 0, 0, 0, 0, 0]
    dropped, l2 = perturb_inputs(x, lens, kind="missing", fraction=0.2, position="early", fill="drop")
    assert l2.tolist() == [8, 4]
    assert dropped[0, :, 0].tolist() == [3, 4, 5, 6, 7, 8, 9, 10, 0, 0]
    assert dropped[1, :, 0].tolist() == [2, 3, 4, 5, 0, 0, 0, 0, 0, 0]
    rnd, _ = perturb_inputs(x, lens, kind="missing", fraction=0.3, position="random", baseline="zeros", seed=1)
    assert (rnd[0] == 0).sum() == 3 and (rnd[1, :5] == 0).sum() == 2
    again, _ = perturb_inputs(x, lens, kind="missing", fraction=0.3, position="random", baseline="zeros", seed=1)
    np.testing.assert_array_equal(rnd, again)
    mean_fill, _ = perturb_inputs(x, lens, kind="missing", fraction=0.1, position="early")
    assert mean_fill[0, 0, 0] == pytest.approx((55 + 15) / 15)
    assert x[0, 0, 0] == 1  # input untouched


def test_perturb_noise_scale_and_padding():
    rng = np.random.default_rng(0)
    x = np.zeros((500, 6, 2), dtype=np.float32)
    x[..., 0] = rng.normal(0, 1, size=(500, 6))
    x[..., 1] = rng.normal(0, 10, size=(500, 6))
    lens = np.full(500, 6)
    lens[:10] = 3
    x[:10, 3:] = 0
    xn, ln = perturb_inputs(x, lens, kind="noise", scale=0.5)
    d = (xn - x)[lens == 6].reshape(-1, 2)
    assert d.std(axis=0) == pytest.approx([0.5, 5.0], rel=0.1)
    assert (xn[:10, 3:] == 0).all() and (ln == lens).all()
    same, _ = perturb_inputs(x, lens, kind="noise", scale=0.0)
    np.testing.assert_array_equal(same, x)


# ----------------------------------------------------------------------------- resilience
def test_resilience_zero_when_model_ignores_input_positive_when_it_reads():
    x, lens = _batch()
    deaf = IgnoresInput()
    for cond in ({"kind": "noise", "scale": 1.0}, {"kind": "missing", "fraction": 0.5, "position": "late"},
                 {"kind": "missing", "fraction": 0.5, "fill": "drop"}):
        r = resilience(deaf, x, lens, predict_fn=_torch_predict(deaf), **cond)
        assert (r["output_change"] == 0).all(), cond
        assert not r["flipped"].any()
    model = Reads()
    r = resilience(model, x, lens, kind="noise", scale=1.0, predict_fn=_torch_predict(model))
    assert (r["output_change"] > 0).all() and r["output_change"].max() <= 2.0
    assert r["flipped"].any()
    late = resilience(model, x, lens, kind="missing", fraction=0.3, position="late", predict_fn=_torch_predict(model))
    assert late["output_change"].mean() > 0


def test_resilience_counts_calls_sweep_and_summary():
    x, lens = _batch(n=30)
    model = Reads()
    calls = []
    inner = _torch_predict(model)

    def counting(xx, ll):
        calls.append(xx.shape[0])
        return inner(xx, ll)

    sweep = resilience_sweep(model, x, lens, predict_fn=counting)
    assert calls == [30] * 5  # one clean run + one batched run per condition, never per sequence
    assert sweep["condition"].nunique() == 4 and len(sweep) == 4 * 30
    table = sequence_table(inner(x, lens), np.zeros(30, dtype=int))
    summ = resilience_summary(sweep, table, "predicted_class")
    assert set(summ.columns) >= {"condition", "group", "size", "mean_output_change", "flip_rate"}
    assert summ.groupby("condition")["size"].sum().tolist() == [30] * 4


def test_resilience_with_engine_predict():
    pytest.importorskip("rnnviz_core.trace")
    x, lens = _batch(n=12)
    model = Reads()
    r = resilience(model, x, lens, kind="missing", fraction=0.25, position="early", device="cpu")
    assert len(r) == 12 and (r["output_change"] >= 0).all()
    deaf = IgnoresInput()
    assert (resilience(deaf, x, lens, kind="noise", scale=1.0, device="cpu")["output_change"] == 0).all()


# ----------------------------------------------------------------------------- reproducibility
def test_reproducibility_known_answers():
    rng = np.random.default_rng(0)
    n, t, h = 20, 5, 8
    sa = rng.uniform(-1, 1, size=(n, t, h))
    perm = rng.permutation(h)
    sb = sa[:, :, perm]  # same states with units in another order: saturation identical
    logits = rng.normal(size=(n, 3))
    groups = np.array(["x"] * 10 + ["y"] * 10)
    r = reproducibility(sa, sb, logits_a=logits, logits_b=logits, groups=groups).set_index("group")
    assert r.loc["x", "agreement"] == 1.0 and r.loc["all", "size"] == n
    assert r.loc["x", "sat_corr_sequences"] == pytest.approx(1.0)
    assert r.loc["all", "sat_corr_time"] == pytest.approx(1.0)
    lb = logits.copy()
    lb[:4] = np.eye(3)[(logits[:4].argmax(1) + 1) % 3] * 100  # model B disagrees on 4 of group x
    r2 = reproducibility(sa, sb, logits_a=logits, logits_b=lb, groups=groups).set_index("group")
    assert r2.loc["x", "agreement"] == pytest.approx(0.6) and r2.loc["y", "agreement"] == 1.0
    # an unrelated second model: correlation far from 1
    sc = rng.uniform(-1, 1, size=(n, t, h))
    r3 = reproducibility(sa, sc)
    assert abs(r3["sat_corr_sequences"].iloc[0]) < 0.9


def test_compare_models_and_guards():
    pytest.importorskip("rnnviz_core.trace")
    from rnnviz_core.groups import compare_models

    x, lens = _batch(n=10)
    r = compare_models(Reads(), Reads(), x, lens, device="cpu")
    assert r["agreement"].iloc[0] == 1.0  # same seed, same weights
    with pytest.raises(InputError, match="binary"):
        sequence_outcomes(np.zeros((3, 2)), task="binary")
    res = resilience(Reads(), x, lens, predict_fn=_torch_predict(Reads()), ids=[f"s{i}" for i in range(10)])
    with pytest.raises(InputError, match="share no sequence ids"):
        resilience_summary(res, sequence_table(np.zeros((10, 2))), "predicted_class")


def test_numeric_column_is_binned_in_order():
    table = sequence_table(np.zeros((40, 2)), columns={"age": np.arange(40.0)})
    s = group_summary(table, by="age")
    assert s["size"].tolist() == [10, 10, 10, 10]
    assert s["group"].tolist()[0].startswith("-0.001 to") and s["group"].tolist()[-1].endswith("to 39")
    two = compare_groups(table.assign(loss=np.arange(40.0)), "age", s["group"][0], s["group"][3], metrics="loss")
    assert two["effect_size"].iloc[0] == -1.0


# ----------------------------------------------------------------------------- issue 12: scipy for the numbers
def test_confidently_wrong_logit_has_its_true_loss_and_no_warning():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow/divide warning fails the test
        # classification: logits (1e4, 0) with true class 1 -> loss = 1e4 nats (log-sum-exp by hand)
        f = sequence_outcomes(np.array([[1e4, 0.0], [0.0, 1e4]]), [1, 1])
        assert f["loss"].tolist() == pytest.approx([1e4, 0.0], abs=1e-9)
        assert f["confidence"].tolist() == [1.0, 1.0]
        # binary: logit -1e4 with true label 1 -> loss = log(1 + e^1e4) = 1e4; logit 1e4 -> 0
        b = sequence_outcomes(np.array([-1e4, 1e4, -1e4]), [1, 1, 0], task="binary")
        assert b["loss"].tolist() == pytest.approx([1e4, 0.0, 0.0], abs=1e-9)
        assert b["pred"].tolist() == [0, 1, 0]


def test_share_intervals_are_clopper_pearson_by_hand():
    from scipy.stats import beta
    # 7 of 10 correct in a, 2 of 10 in b
    t = pd.DataFrame({"seq": range(20), "g": ["a"] * 10 + ["b"] * 10,
                      "correct": [True] * 7 + [False] * 3 + [True] * 2 + [False] * 8})
    s = group_summary(t, by="g").set_index("group")
    for g, k in (("a", 7), ("b", 2)):
        assert s.loc[g, "accuracy_low"] == pytest.approx(beta.ppf(0.025, k, 10 - k + 1))
        assert s.loc[g, "accuracy_high"] == pytest.approx(beta.ppf(0.975, k + 1, 10 - k))
    c = compare_groups(t, "g", "a", "b", metrics="correct").iloc[0]
    assert c["test"] == "Fisher's exact" and c["effect_name"] == "Cohen's h"
    assert c["ci_a_low"] == pytest.approx(beta.ppf(0.025, 7, 4))
    # Fisher's exact p by hand: hypergeometric tables at least as extreme as [[7, 3], [2, 8]]
    from math import comb
    prob = [comb(10, k) * comb(10, 9 - k) / comb(20, 9) for k in range(0, 10)]
    p_obs = prob[7]
    assert c["p_value"] == pytest.approx(sum(q for q in prob if q <= p_obs * (1 + 1e-7)))
    assert c["effect_size"] == pytest.approx(2 * np.arcsin(np.sqrt(0.7)) - 2 * np.arcsin(np.sqrt(0.2)))


def test_mean_interval_bootstrap_matches_the_normal_interval():
    rng = np.random.default_rng(5)
    for n in (400, 4000):  # bootstrap up to BOOTSTRAP_MAX_N (500), t interval above
        x = rng.normal(3.0, 2.0, n)
        t = pd.DataFrame({"seq": range(n), "g": ["a"] * n, "loss": x})
        s = group_summary(t, by="g").iloc[0]
        half = 1.96 * x.std(ddof=1) / np.sqrt(x.size)
        assert s["mean_loss_low"] == pytest.approx(x.mean() - half, abs=0.15 * half)
        assert s["mean_loss_high"] == pytest.approx(x.mean() + half, abs=0.15 * half)


def test_false_discovery_control_across_rows_by_hand():
    # Benjamini-Hochberg on p = [0.01, 0.04, 0.03, 0.5]: sorted ranks give
    # 0.01*4/1 = 0.04, 0.03*4/2 = 0.06, 0.04*4/3 = 0.0533, 0.5 -> running minimum from the top
    from rnnviz_core.groups import benjamini_hochberg
    assert benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5, np.nan])) == pytest.approx(
        [0.04, 0.16 / 3, 0.16 / 3, 0.5, np.nan], nan_ok=True)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"seq": range(400), "g": ["a"] * 200 + ["b"] * 200,
                          "loss": np.r_[rng.normal(1, 1, 200), rng.normal(0, 1, 200)],
                          "confidence": rng.uniform(size=400)})
    cmp = compare_groups(table, "g", "a", "b")
    assert (cmp["p_adjusted"] >= cmp["p_value"]).all()
    from scipy.stats import false_discovery_control
    assert cmp["p_adjusted"].tolist() == pytest.approx(false_discovery_control(cmp["p_value"]).tolist())


def test_people_tables_plain_names_no_none():
    from rnnviz_core.groups import comparison_table, effect_words, format_p, summary_table
    assert [format_p(p) for p in (2.98e-219, 0.0004, 0.004, 0.0312, 0.5, np.nan, None)] == \
        ["p < 0.001", "p < 0.001", "p = 0.004", "p = 0.03", "p = 0.50", "", ""]
    assert [effect_words(r, "rank-biserial r") for r in (0.05, -0.2, 0.4, 0.9, np.nan)] == \
        ["negligible", "small", "medium", "large", ""]
    assert [effect_words(d, "Cohen's d") for d in (0.1, 0.3, -0.6, 1.2)] == ["negligible", "small", "medium", "large"]
    t = _table()
    cmp = compare_groups(t, "saturation", "fully saturated", "not saturated")
    view = comparison_table(cmp)
    text = " ".join(view.columns) + " " + " ".join(view.astype(str).to_numpy().ravel())
    for bad in ("Mann-Whitney", "rank-biserial", "None", "nan", "e-", "frac_", "sat_", "_"):
        assert bad not in text, bad
    assert list(view.columns[:3]) == ["Measure", "A: fully saturated", "B: not saturated"]
    assert view.loc[view["Measure"] == "accuracy (share correct)", "A: fully saturated"].iloc[0].startswith("66.7% (")
    s = summary_table(group_summary(t, by="saturation"))
    assert "Accuracy" in s.columns and not {"None", "nan"} & set(s.astype(str).to_numpy().ravel())


@pytest.mark.parametrize("n", [1, 2, 3, 10, 137, 1000, 250_000])
def test_share_interval_is_scipys_clopper_pearson(n):
    """share_ci's closed form (beta quantiles) against scipy's binomtest, which finds each end of
    the same Clopper-Pearson interval by root search."""
    from scipy import stats

    from rnnviz_core.analyses.intervals import share_ci

    for k in sorted({0, 1, n // 3, n // 2, n - 1, n} & set(range(n + 1))):
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95)
        lo, hi = share_ci(k, n)
        assert abs(lo - ref.low) < 1e-10 and abs(hi - ref.high) < 1e-10, (k, n)
        assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n)
    assert np.isnan(share_ci(0, 0)).all()


def test_mean_interval_equals_scipy_bootstrap_and_t_interval():
    """mean_ci's bootstrap draws the resamples scipy.stats.bootstrap draws with the same seed
    (cached per size and seed, shared by the measures of one group): the interval equals scipy's
    within rounding, for many sizes, seeds, scales and ties; beyond BOOTSTRAP_MAX_N it equals
    scipy.stats.t.interval. mean_cis (rows sharing the resamples) equals mean_ci row by row."""
    from scipy import stats

    from rnnviz_core.analyses.intervals import BOOTSTRAP_MAX_N, mean_ci, mean_cis
    rng = np.random.default_rng(11)
    for trial in range(120):
        n = int(rng.integers(2, BOOTSTRAP_MAX_N + 1))
        seed = int(rng.integers(0, 4))
        x = rng.standard_normal(n) * 10 ** rng.uniform(-3, 3) + rng.uniform(-50, 50)
        if trial % 3 == 0:
            x = np.round(x)          # ties
        if np.ptp(x) == 0:
            continue
        ref = stats.bootstrap((x,), np.mean, n_resamples=999, confidence_level=0.95, method="percentile",
                              vectorized=True, rng=np.random.default_rng(seed)).confidence_interval
        lo, hi = mean_ci(x, seed)
        tol = 1e-13 * np.abs(x).max()
        assert abs(lo - ref.low) <= tol and abs(hi - ref.high) <= tol, (n, seed)
        assert mean_ci(x, seed) == (lo, hi)          # again, from the cached resamples
    for n in (BOOTSTRAP_MAX_N + 1, 2_000, 50_000):
        x = rng.gamma(2.0, 3.0, n)
        ref = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
        assert mean_ci(x) == pytest.approx(ref, rel=1e-14, abs=0)
    rows = rng.standard_normal((4, 300))
    rows[2] = 1.5                                   # a constant row: (v, v)
    rows[3, 7] = np.nan                             # a row with a missing value: on its own
    got = mean_cis(rows, seed=3)
    for r, g in zip(rows, got):
        assert g == pytest.approx(mean_ci(r, 3), rel=1e-13, abs=1e-15)
    assert got[2] == (1.5, 1.5)


def test_mann_whitney_and_benjamini_hochberg_equal_scipy():
    """compare_groups' Mann-Whitney U (own normal approximation with the tie and continuity
    corrections, scipy's exact test for small groups without ties) and its Benjamini-Hochberg
    adjustment against scipy.stats.mannwhitneyu and false_discovery_control."""
    from scipy import stats

    from rnnviz_core.analyses.compare import benjamini_hochberg, mann_whitney
    rng = np.random.default_rng(12)
    cases = 0
    for trial in range(300):
        n1, n2 = (int(v) for v in rng.integers(1, 200, 2))
        a = rng.standard_normal(n1)
        b = rng.standard_normal(n2) + rng.uniform(-1.5, 1.5)
        if trial % 2:
            a, b = np.round(a, 1), np.round(b, 1)      # many ties
        if trial % 5 == 0:
            a, b = a[:int(rng.integers(1, 9))], b[:int(rng.integers(1, 9))]   # scipy's exact test
        if np.ptp(np.r_[a, b]) == 0:
            continue
        ref = stats.mannwhitneyu(a, b, alternative="two-sided")
        u, p = mann_whitney(a, b)
        assert u == pytest.approx(ref.statistic, rel=1e-12, abs=1e-9)
        assert p == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
        cases += 1
    assert cases > 250
    for trial in range(100):
        p = rng.uniform(size=int(rng.integers(1, 40))) ** 4
        if trial % 3 == 0:
            p[: p.size // 2] = p[0]                      # equal p-values
        assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p), rel=1e-13, abs=0)


def test_a_group_shows_the_same_interval_as_a_or_as_b():
    """Swapping A and B swaps the two groups' columns: each group's bootstrap interval depends on
    its values and the seed, not on its side (before, B's resamples used another seed), and the
    test's p-value is the same both ways."""
    rng = np.random.default_rng(4)
    t = pd.DataFrame({"seq": range(300), "g": rng.choice(["x", "y"], 300),
                      "loss": rng.gamma(2.0, 1.0, 300), "confidence": rng.uniform(size=300)})
    ab = compare_groups(t, "g", "x", "y", metrics=["loss", "confidence"]).set_index("metric")
    ba = compare_groups(t, "g", "y", "x", metrics=["loss", "confidence"]).set_index("metric")
    for side, other in (("a", "b"), ("b", "a")):
        for end in ("low", "high"):
            assert ab[f"ci_{side}_{end}"].tolist() == ba[f"ci_{other}_{end}"].tolist()
    assert ab["p_value"].tolist() == pytest.approx(ba["p_value"].tolist(), rel=1e-12)


def test_fisher_exact_equals_scipy():
    """The comparisons' Fisher exact test (odds ratio and two-sided p, from log-gamma sums) equals
    scipy.stats.fisher_exact over random 2x2 tables of many sizes, equally likely (mirrored)
    tables, zero cells, and a zero row or column (NaN, 1)."""
    from scipy import stats

    from rnnviz_core.analyses.compare import fisher_exact_2x2
    rng = np.random.default_rng(5)
    for i in range(1500):
        size = int(10 ** rng.uniform(0.3, 4))
        a, b, c, d = (int(v) for v in rng.integers(0, size + 1, 4))
        if i % 5 == 0:
            c, d = a, b               # both rows alike: ties among the tables' probabilities
        if i % 7 == 0:
            b = 0                     # an infinite odds ratio
        ref = stats.fisher_exact([[a, b], [c, d]])
        odds, p = fisher_exact_2x2(a, b, c, d)
        if np.isnan(ref.statistic):
            assert np.isnan(odds) and p == 1.0
        else:
            assert odds == ref.statistic, (a, b, c, d)
        assert p == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-300), (a, b, c, d)
    assert fisher_exact_2x2(0, 0, 3, 4)[1] == 1.0
