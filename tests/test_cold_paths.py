"""Issue 18's cold page paths, against references: the shared PCA basis fitted on a random sample
of states (one basis, close to scikit-learn's PCA of every state, every state projected exactly,
the caption saying how many states the directions came from), and Saturation over time read on
the selected rows in place (equal to the copied rows and to a hand computation)."""
from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from rnnviz_core import trajectories as tj
from rnnviz_core.charts import trajectories as tc


def _states(n=60, t=200, h=32, seed=0):
    rng = np.random.default_rng(seed)
    scale = np.r_[3.0, 2.0, np.linspace(1.0, 0.2, h - 2)]   # clearly ordered variances: PC1, PC2 well defined
    H = (rng.normal(size=(n, t, h)) * scale).astype(np.float32) @ np.linalg.qr(rng.normal(size=(h, h)))[0].astype(np.float32)
    lens = rng.integers(t // 2, t + 1, n)
    return H, lens


def test_sampled_basis_is_close_to_the_full_pca_and_projects_every_state_exactly():
    H, lens = _states()
    pts = np.concatenate([H[i, :lens[i]] for i in range(len(H))])          # every valid state
    ref = PCA(2).fit(pts)
    paths, pca = tj.pca_paths(H, lens, pca=tj.StatePCA(2, max_points=2_000).fit(H, lens))
    assert pca.n_samples_ == 2_000 < len(pts)
    cos = np.abs(np.sum(pca.components_ * ref.components_, axis=1))
    assert (cos > 0.99).all()
    np.testing.assert_allclose(pca.explained_variance_ratio_, ref.explained_variance_ratio_, atol=0.02)
    # the projection of every state is exact in the fitted basis (by hand)
    proj = (pts - pca.mean_) @ pca.components_.T
    np.testing.assert_allclose(paths[["pc1", "pc2"]].to_numpy(), proj, rtol=1e-4, atol=1e-4)
    assert paths.attrs["fitted_points"] == 2_000 and paths.attrs["points"] == len(pts)
    cap = tc.pca_paths_chart(paths, [0, 1]).to_dict()["description"]
    assert f"computed from 2,000 states sampled at random from all {len(pts):,}" in cap


def test_small_data_is_fitted_on_every_state_and_the_caption_says_nothing_of_a_sample():
    H, lens = _states(n=10, t=30, h=8)
    paths, pca = tj.pca_paths(H, lens)
    assert pca.n_samples_ == int(lens.sum()) == paths.attrs["points"]
    ref = PCA(2).fit(np.concatenate([H[i, :lens[i]] for i in range(len(H))]))
    np.testing.assert_allclose(np.abs(pca.components_), np.abs(ref.components_), atol=1e-4)
    assert "sampled at random from all" not in tc.pca_paths_chart(paths, [0, 1]).to_dict()["description"].split("grey")[0]


def test_saturation_over_time_of_selected_rows_equals_the_copied_rows():
    """``rows=`` reads the selected sequences in place: the same frame as passing their copies."""
    import pandas as pd

    from rnnviz_core import saturation as sa
    rng = np.random.default_rng(2)
    H = np.tanh(rng.normal(scale=2.0, size=(30, 40, 6))).astype(np.float32)
    lens = rng.integers(5, 41, 30)
    groups = np.array(["a", "b", "c"], dtype=object)[rng.integers(0, 3, 30)]
    rows = groups != "c"
    got = sa.saturation_over_time(H, lens, groups=groups, threshold=0.9, rows=rows)
    ref = sa.saturation_over_time(H[rows], lens[rows], groups=groups[rows], threshold=0.9)
    pd.testing.assert_frame_equal(got, ref)
    # and by hand at one (group, step): mean over group a's running sequences of the share |h| >= 0.9
    a = [i for i in range(30) if groups[i] == "a" and lens[i] > 3]
    hand = np.mean([(np.abs(H[i, 3]) >= 0.9).mean() for i in a])
    assert np.isclose(got[(got["group"] == "a") & (got["step"] == 3)]["frac_saturated"].item(), hand)
