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


def test_fit_rows_by_group_take_a_few_rows_from_groups_drawn_in_order():
    """With the input's groups: groups in a seeded random order, up to per_group rows at random
    from each, the fewest that reach the bound; so a large input is read in a few groups."""
    lens = np.full(1000, 10)
    starts = np.arange(0, 1001, 100)                                 # ten groups of 100 rows
    rows = bf.fit_rows(lens, 200, starts=starts, per_group=16)
    rng = np.random.default_rng(0)
    groups = rng.permutation(10)
    shuffled = [starts[g] + rng.permutation(100) for g in groups]
    assert list(rows) == sorted(np.r_[shuffled[0][:16], shuffled[1][:4]])   # 20 rows of 10 steps reach 200
    assert set(np.unique(rows // 100)) == set(groups[:2])
    # a first round that falls short: a second round over the same groups, not more groups at once
    few = bf.fit_rows(np.full(40, 10), 250, starts=np.arange(0, 41, 20), per_group=4)
    assert len(few) == 25 and all(np.sum(few // 20 == g) in (12, 13) for g in (0, 1))
    assert list(bf.fit_rows(lens, 20_000, starts=starts)) == list(range(1000))   # fewer steps than the bound: all


def test_reading_rows_reads_only_the_groups_that_hold_them(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from rnnviz_core.bundle_blocks import Source

    x = np.random.default_rng(1).normal(size=(50, 6, 2)).astype(np.float32)
    ds = rv.data.from_arrays(x, lengths=np.arange(50) % 6 + 1, y=np.arange(50) % 2)
    path = bundle.write_sequences(ds, tmp_path / "seq.parquet", block_size=10)
    read = []
    orig = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, g, *a, **k: read.append(g) or orig(self, g, *a, **k))
    for src in (Source(str(path), 10), Source(ds, 10)):
        assert list(src.group_starts()) == [0, 10, 20, 30, 40, 50]
        tbl = src.read_rows(np.array([3, 27, 28]))
        assert tbl["row"].to_pylist() == [3, 27, 28]
        assert tbl["length"].to_pylist() == [4, 4, 5]
        got = np.asarray(tbl["x"][1].values).reshape(-1, 2)
        np.testing.assert_array_equal(got, x[27, :4])
    assert read == [0, 2]            # the file: its first and third row groups only, one at a time


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
    rows = bf.fit_rows(ds.lengths, 1500, starts=np.array([0, 40, 80, 120, 150]))   # the build's blocks of 40
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
    # sampling variation: over seeds 0-19 the smaller cosine ran 0.989-0.999 for rows drawn from all
    # 150, 0.976-1.0 for rows drawn group by group (this seed, 0, gives 0.976): within 13 degrees
    assert cos.min() > 0.97, cos
    np.testing.assert_allclose(pca.explained_variance_ratio_, full.explained_variance_ratio_, atol=0.03)


def test_a_small_input_file_is_decoded_once_per_build(tmp_path, monkeypatch):
    """A build reads its input file for the PCA fit's rows, the pass, the sample's rows and the
    decision tolerance; the decoded row groups are kept (bundle_blocks.CACHE_BYTES), so a small
    file's groups are each decoded once, and the bundle is the one a build without the cache
    writes. Without the cache (a budget of 0) the groups are decoded again."""
    import pyarrow.parquet as pq

    from rnnviz_core import bundle_blocks

    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(120))
    path = bundle.write_sequences(ds, tmp_path / "seq.parquet", block_size=30)
    read = []
    orig = pq.ParquetFile.read_row_group
    monkeypatch.setattr(pq.ParquetFile, "read_row_group",
                        lambda self, g, *a, **k: read.append(g) or orig(self, g, *a, **k))
    monkeypatch.setattr(bf, "FIT_POINTS", 200)        # the fit draws rows, so it reads groups first
    cached = bundle.open(bundle.build(model, path, tmp_path / "a", batch_size=30, sample=8))
    assert sorted(read) == [0, 1, 2, 3]
    read.clear()
    monkeypatch.setattr(bundle_blocks, "CACHE_BYTES", 0)
    plain = bundle.open(bundle.build(model, path, tmp_path / "b", batch_size=30, sample=8))
    assert len(read) > 4
    np.testing.assert_array_equal(cached.sample_rows, plain.sample_rows)
    for m in cached.methods:
        np.testing.assert_allclose(cached.scores(m), plain.scores(m), atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(cached.steps("pc1"), plain.steps("pc1"), atol=1e-6, equal_nan=True)


def test_a_basis_fitted_from_the_held_blocks_gives_the_bundle_of_the_fit_rows_own_trace(tmp_path, monkeypatch):
    """The local build analyses the blocks that hold the fit rows first and fits the basis on those
    rows' states from its own pass (bundle_engines.HOLD_BYTES); traced on their own instead
    (HOLD_BYTES = 0) they give the same bundle: basis, parts, aggregates, comparisons, sample and
    data hash (<= 1e-5). Here the fit rows fall in 2 of the 8 blocks, so those two are finished
    first and the others after them."""
    from test_bundle_resume import _same

    from rnnviz_core import bundle_engines
    from rnnviz_core.bundle_aggregates import FILE

    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(150))
    monkeypatch.setattr(bf, "FIT_POINTS", 300)
    starts = np.append(np.arange(0, 150, 20), 150)
    rows = bf.fit_rows(ds.lengths, 300, starts=starts)
    assert len(np.unique(np.searchsorted(starts, rows, side="right") - 1)) == 2
    order = []
    real = bundle_engines.Worker.analyse
    monkeypatch.setattr(bundle_engines.Worker, "analyse",
                        lambda self, tbl: order.append(int(tbl["row"][0].as_py()) // 20) or real(self, tbl))
    held = bundle.open(bundle.build(model, ds, tmp_path / "held", batch_size=20, sample=10))
    assert len(order) == 8 and order[2:] == sorted(order[2:]) and order[:2] != [0, 1]
    monkeypatch.setattr(bundle_engines, "HOLD_BYTES", 0)
    traced = bundle.open(bundle.build(model, ds, tmp_path / "traced", batch_size=20, sample=10))
    np.testing.assert_allclose(held.pca.components_, traced.pca.components_, atol=1e-6)
    assert held.manifest["analysis"]["pca"] == traced.manifest["analysis"]["pca"]
    _same(held, traced)
    a, b = held._arrays(FILE), traced._arrays(FILE)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-5, equal_nan=True, err_msg=name)
