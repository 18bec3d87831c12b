"""The shared PCA basis fitted on a random sample of states (issue 18's cold Trajectories page):
one basis, close to scikit-learn's PCA of every state, every state projected exactly, and the
chart caption saying how many states the directions came from."""
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
