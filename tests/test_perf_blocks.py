"""Whole-dataset results computed a block of sequences at a time (the perf pass of issue 18) equal
hand computations on the full arrays. Blocks are forced down to one sequence each, so every
function crosses many block edges; the arrays hold padding and a NaN step inside a sequence."""
from __future__ import annotations

import numpy as np
import pytest

from rnnviz_core import saturation as sa
from rnnviz_core import trajectories as tj


@pytest.fixture(autouse=True)
def tiny_blocks(monkeypatch):
    monkeypatch.setattr(tj._blocks, "__defaults__", (50,))  # one sequence per block here
    monkeypatch.setattr(sa._abs_values, "__defaults__", (50, True))


def states(n=9, t=12, h=5, seed=1):
    rng = np.random.default_rng(seed)
    H = np.tanh(2.0 * rng.normal(size=(n, t, h))).astype(np.float32)
    lens = rng.integers(2, t + 1, n)
    lens[0] = t
    for i in range(n):
        H[i, lens[i]:] = np.nan
    H[3, 1, 2] = np.nan  # a non-finite value inside a sequence
    return H, lens


def valid_points(H, lens):
    return [(i, s) for i in range(len(H)) for s in range(int(lens[i]))]


def test_blocks_cover_every_row_once():
    arr = np.zeros((10, 3, 4))
    rows = [i for sl in tj._blocks(arr, 25) for i in range(10)[sl]]
    assert rows == list(range(10))
    assert tj._blocks(arr, 10 ** 9) == [slice(0, 10)]


def test_pca_fit_on_a_sample_matches_sklearn_on_the_same_points_and_projects_by_hand():
    from sklearn.decomposition import PCA
    H, lens = states(n=20, t=15, h=6)
    pts = np.array([H[i, s] for i, s in valid_points(H, lens) if np.isfinite(H[i, s]).all()])
    pick = np.random.default_rng(3).choice(len(pts), size=40, replace=False)  # the sample's documented rule
    ref = PCA(n_components=2, svd_solver="full").fit(pts[pick])
    p = tj.StatePCA(2, max_points=40, random_state=3).fit(H, lens)
    assert p.n_samples_ == 40
    np.testing.assert_allclose(p.mean_, ref.mean_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.abs(p.components_ @ ref.components_.T), np.eye(2), atol=1e-4)
    proj = p.transform(H, lens)
    for i in range(len(H)):
        for s in range(H.shape[1]):
            want = (H[i, s].astype(np.float64) - p.mean_) @ p.components_.T
            if s < lens[i]:
                np.testing.assert_allclose(proj[i, s], want, rtol=1e-5, atol=1e-6)
            else:
                assert np.isnan(proj[i, s]).all()


def test_state_norms_by_hand():
    H, lens = states()
    f = tj.state_norms(H, lens)
    for (i, s), row in zip(valid_points(H, lens), f.itertuples()):
        assert (row.seq, row.step) == (i, s)
        want = np.abs(H[i, s].astype(np.float64)).sum()
        if np.isnan(want):
            assert np.isnan(row.sum_abs)
        else:
            assert row.sum_abs == pytest.approx(want, rel=1e-5)
            assert row.mean_abs == pytest.approx(want / H.shape[2], rel=1e-5)
        if s == 0:
            assert np.isnan(row.step_change)
        else:
            d = np.sqrt(((H[i, s].astype(np.float64) - H[i, s - 1]) ** 2).sum())
            assert (np.isnan(row.step_change) and np.isnan(d)) or row.step_change == pytest.approx(d, rel=1e-5)


def test_value_distribution_by_hand_with_gates():
    H, lens = states()
    rng = np.random.default_rng(5)
    g = rng.uniform(-0.05, 1.0, size=H.shape)  # a few values below 0: clipped into the first bin
    d = sa.value_distribution(H, lens, gates={"z": g}, bins=10, threshold=0.9, low=0.1, high=0.9)
    vals = np.array([abs(float(v)) for i, s in valid_points(H, lens) for v in H[i, s] if np.isfinite(v)])
    gv = np.array([float(v) for i, s in valid_points(H, lens) for v in g[i, s]])
    h = d[d["what"] == "|h|"]
    want, _ = np.histogram(vals, bins=10, range=(0.0, 1.0))
    assert h["count"].tolist() == want.tolist()
    assert h["share"].to_numpy() == pytest.approx(want / vals.size)
    gz = d[d["what"] == "gate z"]
    want_g, _ = np.histogram(np.clip(gv, 0, 1), bins=10, range=(0.0, 1.0))
    assert gz["count"].tolist() == want_g.tolist()
    assert d.attrs["share_saturated"] == pytest.approx((vals >= np.float32(0.9)).mean())
    assert d.attrs["gate_shares"]["z"] == pytest.approx(((gv < 0.1).mean(), (gv > 0.9).mean()))


def test_suggest_threshold_shares_by_hand():
    H, lens = states()
    H = H * np.float32(0.93)  # largest |h| just under 0.93: the default 0.9 shows little
    vals = np.array([abs(float(v)) for i, s in valid_points(H, lens) for v in H[i, s] if np.isfinite(v)],
                    dtype=np.float64)
    s = sa.suggest_threshold(H, lens, default=0.99, min_share=0.05)
    grid = np.round(np.arange(50, 100) * 0.01, 10)
    ok = [t for t in grid if (vals >= t).mean() >= 0.05]
    assert s.threshold == pytest.approx(ok[-1])
    assert s.share == pytest.approx((vals >= ok[-1]).mean())
    assert s.max_abs == pytest.approx(vals.max())
    keep = sa.suggest_threshold(H, lens, default=0.5, min_share=0.05)
    assert (keep.threshold, keep.share, keep.message) == (0.5, pytest.approx((vals >= 0.5).mean()), "")


def test_saturation_per_sequence_step_and_unit_by_hand():
    H, lens = states()
    thr = 0.8
    n, t, h = H.shape
    sat = np.zeros(H.shape, dtype=bool)
    for i, s in valid_points(H, lens):
        sat[i, s] = np.abs(H[i, s]) >= thr
    gates = {"r": np.random.default_rng(2).uniform(size=H.shape)}
    by_seq = sa.saturation_by_sequence(H, lens, threshold=thr, gates=gates, low=0.2, high=0.7)
    for i in range(n):
        L = int(lens[i])
        assert by_seq["frac_saturated"][i] == pytest.approx(sat[i, :L].sum() / (L * h))
        assert by_seq["r_left"][i] == pytest.approx((gates["r"][i, :L] < 0.2).sum() / (L * h))
        assert by_seq["r_right"][i] == pytest.approx((gates["r"][i, :L] > 0.7).sum() / (L * h))
    units = sa.unit_saturation_over_time(H, lens, threshold=thr)
    for row in units.itertuples():
        alive = [i for i in range(n) if row.step < lens[i]]
        assert row.n_sequences == len(alive)
        assert row.frac_saturated == pytest.approx(np.mean([sat[i, row.step, row.unit] for i in alive]))
    over = sa.saturation_over_time(H, lens, threshold=thr)
    for row in over.itertuples():
        alive = [i for i in range(n) if row.step < lens[i]]
        assert row.frac_saturated == pytest.approx(np.mean([sat[i, row.step].mean() for i in alive]))


def _points(H, lens):
    pts = np.array([H[i, s] for i, s in valid_points(H, lens)], dtype=np.float64)
    return pts[np.isfinite(pts).all(axis=1)]


def test_unit_order_by_variance_and_top_by_hand():
    H, lens = states(n=12, t=20, h=7)
    var = _points(H, lens).var(axis=0)
    assert tj.unit_order(H, lens, order="variance").tolist() == np.argsort(-var, kind="stable").tolist()
    top3 = sorted(np.argsort(-var, kind="stable")[:3].tolist())
    assert tj.unit_order(H, lens, order="index", top=3).tolist() == top3


def test_unit_order_by_similarity_clusters_the_sample_of_points_by_hand():
    from scipy.cluster.hierarchy import leaves_list, linkage
    H, lens = states(n=50, t=900, h=6)  # more than 20,000 points: the order is computed on a sample
    pts = _points(H, lens)
    assert len(pts) > 20000
    sub = pts[np.random.default_rng(0).choice(len(pts), 20000, replace=False)]  # the documented sample
    dist = np.clip(1.0 - np.corrcoef(sub, rowvar=False), 0.0, 2.0)
    want = leaves_list(linkage(dist[np.triu_indices(6, k=1)], method="average"))
    assert tj.unit_order(H, lens, order="similarity").tolist() == want.tolist()


def test_unit_shares_give_the_full_frame_and_the_charts_unit_choice():
    from rnnviz_core.charts.saturation import shared_units
    from rnnviz_core.unit_saturation import shared_saturated_units, unit_saturation_shares
    H, lens = states(n=14, t=300, h=40, seed=4)
    m = np.arange(14) % 3 == 0
    full_a = sa.unit_saturation_over_time(H[m], lens[m], threshold=0.8)
    full_b = sa.unit_saturation_over_time(H[~m], lens[~m], threshold=0.8)
    sh_a = unit_saturation_shares(H, lens, threshold=0.8, rows=m)
    sh_b = unit_saturation_shares(H, lens, threshold=0.8, rows=np.flatnonzero(~m))
    import pandas as pd
    pd.testing.assert_frame_equal(sh_a.frame(), full_a, check_dtype=False)
    assert sh_a.n_steps == int(full_a["step"].max()) + 1
    assert sh_b.top == pytest.approx(float(full_b["frac_saturated"].max()))
    n_steps = max(sh_a.n_steps, sh_b.n_steps)
    want = shared_units(full_a, full_b, n_steps=n_steps)
    got = shared_saturated_units(sh_a, sh_b, n_steps=n_steps)
    assert 0 < len(got) < 40 and got == want
    few = sh_a.frame(units=got)
    sub = full_a[full_a["unit"].isin(got)].sort_values(["step", "unit"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(few, sub, check_dtype=False)
    assert few.attrs["n_units_total"] == 40


def test_heatmap_of_the_drawn_units_only_counts_every_unit_in_its_caption():
    from rnnviz_core.charts.saturation import unit_saturation_chart
    from rnnviz_core.unit_saturation import shared_saturated_units, unit_saturation_shares
    H, lens = states(n=6, t=300, h=40, seed=4)
    sh = unit_saturation_shares(H, lens, threshold=0.8)
    drawn = shared_saturated_units(sh, n_steps=sh.n_steps)
    full = unit_saturation_chart(sa.unit_saturation_over_time(H, lens, threshold=0.8), threshold=0.8,
                                 n_steps=sh.n_steps, units=drawn)
    few = unit_saturation_chart(sh.frame(drawn), threshold=0.8, n_steps=sh.n_steps, units=drawn)
    assert f"only the {len(drawn)} units saturated most often of the 40 are drawn" in few.description
    assert few.description == full.description
    assert few.to_dict()["datasets"] == full.to_dict()["datasets"]
