"""The bundle's PCA basis fitted before its one pass over the data (rnnviz_core.bundle_fit),
against scikit-learn's PCA: on the fitted rows exactly, on every state within a tolerance, and
every state placed on the basis as scikit-learn's ``transform`` places it."""
from __future__ import annotations

import numpy as np
import pytest

import rnnviz_core as rv
from rnnviz_core import bundle
from rnnviz_core import bundle_fit as bf
from rnnviz_core import trajectories as tj


def test_fit_rows_are_all_rows_or_a_seeded_draw_just_past_the_bound():
    lens = np.array([5, 7, 3, 9, 4, 6, 8, 2])
    assert list(bf.fit_rows(lens, 100)) == list(range(8))
    rows = bf.fit_rows(lens, 20)
    order = np.random.default_rng(0).permutation(8)
    took = order[: len(rows)]
    assert sorted(took) == list(rows)
    assert lens[took].sum() >= 20 and lens[took[:-1]].sum() < 20      # the fewest draws that reach the bound
    assert list(bf.fit_rows(lens, 20)) == list(rows)                 # seeded: the same rows every time


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(150))
    mp = pytest.MonkeyPatch()
    mp.setattr(bf, "FIT_POINTS", 1500)
    try:
        path = bundle.build(model, ds, tmp_path_factory.mktemp("fit") / "b", batch_size=40, sample=0)
    finally:
        mp.undo()
    tr = rv.trace(model, ds.X, ds.lengths, device="cpu")
    return bundle.open(path), ds, tr.get("h", layer=-1, direction="fwd").astype(np.float64)


def test_a_sampled_basis_is_sklearns_pca_of_the_fitted_rows_and_close_to_the_full_one(sampled):
    from sklearn.decomposition import PCA

    b, ds, h = sampled
    rows = bf.fit_rows(ds.lengths, 1500)
    assert 0 < len(rows) < len(ds.lengths)
    fit_pts = h[rows][tj.valid_mask(ds.lengths[rows], h.shape[1])]
    ref = PCA(n_components=2, svd_solver="full").fit(fit_pts)
    pca = b.pca
    np.testing.assert_allclose(pca.components_, ref.components_, atol=1e-5)
    np.testing.assert_allclose(pca.mean_, ref.mean_, atol=1e-5)
    np.testing.assert_allclose(pca.explained_variance_ratio_, ref.explained_variance_ratio_, atol=1e-5)
    info = b.manifest["analysis"]["pca"]
    assert info["fitted_points"] == len(fit_pts) and info["points"] == int(ds.lengths.sum())
    # every state placed on it: scikit-learn's transform of every valid step
    all_pts = h[tj.valid_mask(ds.lengths, h.shape[1])]
    paths = b.paths()
    np.testing.assert_allclose(paths[["pc1", "pc2"]].to_numpy(), ref.transform(all_pts), atol=1e-4)
    assert (paths.attrs["fitted_points"], paths.attrs["points"]) == (len(fit_pts), len(all_pts))
    from rnnviz_core.charts.trajectories import pca_caption
    text = pca_caption(paths.attrs["explained_variance_ratio"], fitted=(len(fit_pts), len(all_pts)))
    assert f"computed from {len(fit_pts):,} states sampled at random from all {len(all_pts):,}" in text
    # within tolerance of the exact PCA of every state (what bundles stored before)
    full = PCA(n_components=2, svd_solver="full").fit(all_pts)
    cos = np.abs(np.sum(pca.components_ * full.components_, axis=1))
    assert cos.min() > 0.99, cos
    np.testing.assert_allclose(pca.explained_variance_ratio_, full.explained_variance_ratio_, atol=0.03)
