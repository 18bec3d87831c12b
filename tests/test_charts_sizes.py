"""Charts at real sizes (issue 18): every chart the pages draw embeds at most ROW_BUDGET rows per
dataset whatever the steps, units and features; binned values equal a hand computation on the
raw arrays; captions' numbers equal the drawn data's; short sequences are drawn as they are."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from chart_specs import views
from rnnviz_core import display as dp
from rnnviz_core import rankings as rk
from rnnviz_core import saturation as sa
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import contributions as cc
from rnnviz_core.charts import inputs as ci
from rnnviz_core.charts import saturation as sc
from rnnviz_core.charts import trajectories as tc


def _rows(spec: dict) -> dict[str, list]:
    return {k: v for k, v in spec.get("datasets", {}).items() if isinstance(v, list)}


def _largest(spec: dict) -> int:
    return max((len(v) for v in _rows(spec).values()), default=0)


def _data_of(spec: dict, mark: str) -> list[dict]:
    """Rows of the first view drawing ``mark`` (rect, bar, line...)."""
    for v in views(spec):
        m = v["mark"] if isinstance(v["mark"], str) else v["mark"]["type"]
        if m == mark and "data" in v and v["data"].get("name") in spec.get("datasets", {}):
            return spec["datasets"][v["data"]["name"]]
    raise AssertionError(f"no {mark} view")


def _arrays(T, U, F, n=3, seed=0):
    rng = np.random.default_rng(seed)
    H = np.tanh(rng.normal(size=(n, T, U)) * 1.5).astype(np.float32)
    lens = np.full(n, T)
    lens[1] = T - T // 7
    H[1, lens[1]:] = np.nan
    X = rng.normal(size=(T, F))
    X[:, 0] = rng.uniform(0, 6557, size=T)
    scores = np.abs(rng.normal(size=(n, T)))
    scores[1, lens[1]:] = np.nan
    return H, lens, X, scores, rng.normal(size=(T, F))


# ------------------------------------------------------------------------------------- the budget
@pytest.mark.parametrize("T,U,F", [(10_000, 1024, 1000), (2_000, 32, 8), (300, 512, 200)])
def test_every_page_chart_stays_within_the_budget(T, U, F):
    H, lens, X, scores, fs = _arrays(T, U, F, n=2 if U * T > 5e6 else 3)
    ids = [f"s{i}" for i in range(len(H))]
    names = [f"f{j}" for j in range(F)]
    hm = tj.heatmap_data(H, lens, seqs=[0, 1], ids=ids)
    paths, _ = tj.pca_paths(H, lens, ids=ids)
    norms = tj.state_norms(H, lens, ids=ids)
    dist = tj.pair_distance(H[0], H[1], int(lens[0]), int(lens[1]))
    over = sa.saturation_over_time(H, lens, groups=np.array(["a", "b"] * 2)[:len(H)], threshold=0.5)
    unit = sa.unit_saturation_over_time(H, lens, threshold=0.5)
    frame = rk.scores_frame(scores[:2], method="grad_norm", ids=ids[:2], lengths=lens[:2])
    charts = {
        "pair_heatmaps": tc.pair_heatmaps_chart(hm, "s0", "s1"),
        "heatmap": tc.heatmap_chart(hm, "s0", scrubber=False, step_width=440 / T),
        "pca": tc.pca_paths_chart(paths, ["s0", "s1"]),
        "norms": tc.norms_chart(norms, ["s0", "s1"], names=["A: s0", "B: s1"]),
        "distance": tc.distance_chart(dist, steps=T),
        "over_time": sc.saturation_time_chart(over, threshold=0.5),
        "units": sc.unit_saturation_chart(unit, threshold=0.5, n_steps=T),
        "strip": ci.input_strip_chart(X, T, feature_names=names, step_width=440 / T),
        "bars": cc.step_scores_chart(frame, "s0", step_width=440 / T),
        "features": cc.feature_scores_chart(fs, length=T, feature_names=names),
    }
    for name, chart in charts.items():
        assert _largest(chart.to_dict()) <= dp.ROW_BUDGET, (name, T, U, F)


# -------------------------------------------------------------------------- against hand computations
def test_binned_heatmap_is_the_mean_of_each_columns_steps():
    H, lens, _, _, _ = _arrays(2000, 8, 2)
    hm = tj.heatmap_data(H, lens, seqs=[0], ids=["a", "b", "c"])
    spec = tc.heatmap_chart(hm, "a", scrubber=False).to_dict()
    rows = pd.DataFrame(_data_of(spec, "rect"))
    k = int(rows["step"].drop_duplicates().sort_values().diff().dropna().iloc[0])
    assert k > 1 and rows["step"].nunique() * rows["unit"].nunique() <= dp.ROW_BUDGET
    for _, r in rows.sample(20, random_state=0).iterrows():
        want = H[0, int(r.step): int(r.step) + k, int(r.unit)].astype(np.float64).mean()
        assert r.value == pytest.approx(want, abs=1e-6)   # float32 states summed in another order
    cap = tc.caption(tc.heatmap_chart(hm, "a", scrubber=False))
    assert f"each column {k} steps of the sequence (the value shown is the mean over them)" in cap
    lo, hi = (float(x) for x in re.search(r"values here run from (\S+) to (\S+?)\)", cap).groups())
    assert lo == pytest.approx(rows["value"].min(), abs=5e-3) and hi == pytest.approx(rows["value"].max(), abs=5e-3)


def test_wide_heatmap_keeps_the_most_varying_units_and_says_how_many():
    rng = np.random.default_rng(3)
    H = rng.normal(size=(1, 400, 200)) * 0.01
    loud = [5, 77, 150]
    H[0, :, loud] = rng.normal(size=(3, 400))
    hm = tj.heatmap_data(H, None, ids=["a"])
    chart = tc.heatmap_chart(hm, "a", scrubber=False)
    rows = pd.DataFrame(_data_of(chart.to_dict(), "rect"))
    drawn = sorted(rows["unit"].unique())
    assert set(loud) <= set(drawn)
    assert f"only {len(drawn)} of the 200 units are drawn" in tc.caption(chart)


def test_step_bars_keep_each_columns_largest_score_with_its_sign():
    s = np.zeros((1, 1000))
    s[0, 437] = -9.0     # one decisive step: a mean over its column would hide it
    s[0, 10] = 2.0
    frame = rk.scores_frame(s, method="input_x_grad", ids=["a"])
    chart = cc.step_scores_chart(frame, "a")
    rows = pd.DataFrame(_data_of(chart.to_dict(), "bar"))
    k = dp.step_bins(1000).k
    col = rows.set_index("step")["score"]
    assert col[437 // k * k] == -9.0 and col[10 // k * k] == 2.0 and col[0] == 0.0
    assert len(rows) == 1000 // k
    assert f"Each bar is {k} steps of the sequence, showing the score of largest size" in cc.caption(chart)


def test_unit_saturation_column_is_the_highest_share_among_its_steps():
    rng = np.random.default_rng(5)
    H = rng.uniform(-1, 1, size=(4, 900, 6))
    unit = sa.unit_saturation_over_time(H, None, threshold=0.9)
    chart = sc.unit_saturation_chart(unit, threshold=0.9)
    rows = pd.DataFrame(_data_of(chart.to_dict(), "rect"))
    k = dp.heat_bins(6, 900)[1].k
    share = (np.abs(H) >= 0.9).mean(axis=0)        # (T, U): share of the 4 sequences
    for _, r in rows.sample(15, random_state=1).iterrows():
        assert r.frac_saturated == pytest.approx(share[int(r.step): int(r.step) + k, int(r.unit)].max())
    assert f"each column {k} steps, showing the highest share among them" in tc.caption(chart)


def test_feature_strip_rows_on_their_own_range_and_capped():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 40))
    X[:, 0] = np.linspace(0, 6557, 50)            # a feature running 0-6,557 spans the colours too
    chart = ci.input_strip_chart(X, feature_names=[f"f{j}" for j in range(40)])
    rows = pd.DataFrame(_data_of(chart.to_dict(), "rect"))
    assert rows["feature"].nunique() == dp.MAX_FEATURES
    f0 = rows[rows["feature"] == "f0"]["scaled"]
    assert f0.min() == -1.0 and f0.max() == 1.0
    assert f"the first {dp.MAX_FEATURES} of its 40 features" in ci.caption(chart) if hasattr(ci, "caption") else \
        f"the first {dp.MAX_FEATURES} of its 40 features" in chart.description


def test_pca_cloud_caption_counts_the_sampled_states():
    H, lens, _, _, _ = _arrays(2000, 4, 1)
    paths, _ = tj.pca_paths(H, lens, ids=["a", "b", "c"])
    chart = tc.pca_paths_chart(paths, ["a", "b"])
    spec = chart.to_dict()
    cloud = _data_of(spec, "circle")
    m = re.search(r"grey dots are ([\d,]+) states sampled at random from all ([\d,]+)", tc.caption(chart))
    assert int(m.group(1).replace(",", "")) == len(cloud) and int(m.group(2).replace(",", "")) == len(paths)


# ------------------------------------------------------------------------------- short: unchanged
def test_short_sequences_are_drawn_step_by_step():
    H, lens, X, scores, fs = _arrays(30, 32, 3)
    hm = tj.heatmap_data(H, lens, seqs=[0], ids=["a", "b", "c"])
    rows = pd.DataFrame(_data_of(tc.heatmap_chart(hm, "a").to_dict(), "rect"))
    assert len(rows) == 30 * 32 and set(rows.columns) == {"seq", "step", "unit", "value"}
    got = rows.pivot(index="step", columns="unit", values="value").to_numpy()
    np.testing.assert_array_equal(got, H[0].astype(np.float64))
    frame = rk.scores_frame(scores[:1], method="grad_norm", ids=["a"])
    bars = pd.DataFrame(_data_of(cc.step_scores_chart(frame, "a").to_dict(), "bar"))
    np.testing.assert_allclose(bars.sort_values("step")["score"], scores[0])
    cap = tc.caption(tc.heatmap_chart(hm, "a"))
    assert "each column one step" in cap and "steps;" not in cap


def test_a_short_window_is_drawn_step_by_step_at_its_true_steps():
    H, lens, _, scores, _ = _arrays(3000, 8, 1)
    hm = tj.heatmap_data(H, lens, seqs=[0], ids=["a", "b", "c"])
    chart = tc.heatmap_chart(hm, "a", scrubber=False, window=(1500, 1600))
    rows = pd.DataFrame(_data_of(chart.to_dict(), "rect"))
    assert sorted(rows["step"].unique()) == list(range(1500, 1600))
    got = rows.pivot(index="step", columns="unit", values="value").to_numpy()
    np.testing.assert_allclose(got, H[0, 1500:1600].astype(np.float64))
    assert "steps 1500 to 1599 are drawn" in tc.caption(chart)
    frame = rk.scores_frame(scores[:1], method="grad_norm", ids=["a"])
    bars = pd.DataFrame(_data_of(cc.step_scores_chart(frame, "a", window=(10, 20)).to_dict(), "bar"))
    np.testing.assert_allclose(bars.sort_values("step")["score"], scores[0, 10:20])


def test_words_label_the_steps_trimmed_with_an_ellipsis():
    s = np.abs(np.random.default_rng(0).normal(size=(1, 12)))
    words = ["the", "film", "was", "unbelievably", "boring", "and", "far", "too", "long", "for", "a", "sunday"]
    spec = cc.step_scores_chart(rk.scores_frame(s, ids=["a"]), "a", words=words, width=600).to_dict()
    rows = pd.DataFrame(_data_of(spec, "bar"))
    assert rows.sort_values("step")["word"].tolist() == words               # the tooltip's word, whole
    axis = [v for v in views(spec) if v["mark"] == "bar" or v["mark"].get("type") == "bar"][0]["encoding"]["x"]["axis"]
    assert "unbeli…" in axis["labelExpr"] and "unbelievably" not in axis["labelExpr"]
    long = ["w%d" % i for i in range(2000)]
    spec = cc.step_scores_chart(rk.scores_frame(np.ones((1, 2000)), ids=["a"]), "a", words=long).to_dict()
    rows = pd.DataFrame(_data_of(spec, "bar"))
    k = dp.step_bins(2000).k
    assert rows.sort_values("step")["words"].iloc[1] == " ".join(long[k:2 * k])


def test_paths_and_norms_tooltips_name_each_sequences_word():
    H, lens, _, _, _ = _arrays(12, 4, 1)
    H[1] = H[0][::-1]
    lens = np.full(3, 12)
    wa = [f"a{i}" for i in range(12)]
    wb = [f"b{i}" for i in range(12)]
    paths, _ = tj.pca_paths(H, lens, ids=["x", "y", "z"])
    spec = tc.pca_paths_chart(paths, ["x", "y"], words=[wa, wb]).to_dict()
    rows = pd.DataFrame(_data_of(spec, "line"))
    assert rows[rows["sequence"] == "A: x"].sort_values("step")["word"].tolist() == wa
    assert rows[rows["sequence"] == "B: y"].sort_values("step")["word"].tolist() == wb
    norms = tj.state_norms(H, lens, ids=["x", "y", "z"])
    spec = tc.norms_chart(norms, ["x", "y"], names=["A: x", "B: y"], words=[wa, wb]).to_dict()
    rows = pd.DataFrame(_data_of(spec, "line"))
    assert rows[rows["sequence"] == "B: y"].sort_values("step")["word"].tolist() == wb
