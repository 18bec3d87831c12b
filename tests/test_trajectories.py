"""Trajectory analyses against hand-computed references."""
import numpy as np
import pandas as pd
import pytest

from rnnviz_core import trajectories as tj

from rnnviz_core.errors import InputError
from rnnviz_core.trajectories import (
    StatePCA, heatmap_data, pair_distance, parting_step, pca_paths, plateau_steps,
    similar_pairs, state_norms, valid_mask,
)


def _padded(rng, n=6, t=7, h=5, lengths=(7, 5, 3, 7, 1, 4)):
    x = rng.normal(size=(n, t, h))
    lens = np.array(lengths)
    x[~valid_mask(lens, t)] = np.nan
    return x, lens


def test_pca_matches_hand_svd_and_ignores_padding():
    rng = np.random.default_rng(0)
    x, lens = _padded(rng)
    x_garbage = np.where(np.isnan(x), 1e6, x)  # padding must never be read
    pts = np.concatenate([x[i, :l] for i, l in enumerate(lens)])
    mean = pts.mean(0)
    _, s, vt = np.linalg.svd(pts - mean, full_matrices=False)
    ref = (x - mean) @ vt[:2].T
    pca = StatePCA(2).fit(x_garbage, lens)
    got = pca.transform(x_garbage, lens)
    for i, l in enumerate(lens):
        # components are defined up to sign
        for j in range(2):
            sign = np.sign(got[i, :l, j] @ ref[i, :l, j]) or 1.0
            np.testing.assert_allclose(got[i, :l, j], sign * ref[i, :l, j], atol=1e-9)
        assert np.isnan(got[i, l:]).all()
    np.testing.assert_allclose(pca.explained_variance_ratio_, (s**2 / (s**2).sum())[:2], rtol=1e-9)


def test_pca_paths_frame_and_lengths_inferred_from_nan():
    rng = np.random.default_rng(1)
    x, lens = _padded(rng)
    frame, pca = pca_paths(x, labels=np.array(list("aabbcc")))
    assert list(frame.columns) == ["seq", "step", "pc1", "pc2", "label"]
    assert len(frame) == lens.sum()
    assert frame.groupby("seq").size().tolist() == lens.tolist()
    assert frame.attrs["explained_variance_ratio"] == pytest.approx(list(pca.explained_variance_ratio_))
    with pytest.raises(InputError):
        StatePCA(2).transform(x, lens)
    with pytest.raises(InputError):
        StatePCA(9).fit(x, lens)


def test_state_norms_by_hand():
    h = np.array([[[1.0, -2.0], [1.0, 2.0], [4.0, 6.0], [np.nan, np.nan]]])
    f = state_norms(h, [3])
    assert f["sum_abs"].tolist() == [3.0, 3.0, 10.0]
    assert f["mean_abs"].tolist() == [1.5, 1.5, 5.0]
    assert np.isnan(f["step_change"].iloc[0])
    assert f["step_change"].iloc[1:].tolist() == pytest.approx([4.0, 5.0])


def test_plateau_rule_on_constructed_curves():
    strict = dict(rel_tol=0.05, final_window=1)  # band: within 5 % of the last value
    rise = np.r_[np.linspace(0, 10, 11)[:-1], [10.0] * 8]  # settles at index 10
    assert plateau_steps(rise, **strict) == 10
    # inside the 5 % band (|c - 10| <= 0.5) counts as settled
    wobble = rise.copy()
    wobble[12] = 10.4
    assert plateau_steps(wobble, **strict) == 10
    wobble[14] = 10.6  # leaves the band: plateau starts after it
    assert plateau_steps(wobble, **strict) == 15
    # still rising at the end: fewer than min_steps in the band
    assert plateau_steps(np.arange(1.0, 20.0), **strict) == -1
    # a slow ramp whose last steps fit in the 10 % band is still not a plateau (trend check)
    assert plateau_steps(np.arange(1.0, 20.0)) == -1
    assert plateau_steps(np.r_[np.arange(1.0, 17.0), 18, 18, 18]) == 16
    assert plateau_steps(np.full(5, 3.0)) == 0
    # batched, with padding and lengths; padding values never read
    curves = np.full((3, 18), 999.0)
    curves[0] = rise
    curves[1, :6] = [1, 2, 5, 5, 5, 5]
    curves[2, :4] = [5, 5, 5, 9]
    np.testing.assert_array_equal(plateau_steps(curves, [18, 6, 4], **strict), [10, 2, -1])
    assert plateau_steps(np.r_[0.0, 5, 7, 8, 9, 10, 10], rel_tol=0.25, final_window=1, min_steps=2) == 3
    # defaults (10 % band around the mean of the last 3 steps) accept a noisy level that the
    # strict rule only accepts near the end
    noisy = np.r_[0, 2, 4, 6, 8, 10, 9.3, 10.8, 9.5, 10.6, 9.4, 10.2, 9.8, 10.0]
    assert plateau_steps(noisy) == 5
    assert plateau_steps(noisy, **strict) == 11


def test_pair_distance_alignments_and_parting():
    t, h = 10, 3
    a = np.zeros((t, h))
    b = np.zeros((t, h))
    a[:, 0] = 1.0
    b[:, 0] = 1.0
    b[6:, 1] = 2.0  # b moves away at step 6 for good
    b[2, 1] = 2.0  # a one-step blip at step 2 does not count
    d = pair_distance(a, b)
    assert d["distance"].tolist() == pytest.approx([0, 0, 2, 0, 0, 0, 2, 2, 2, 2])
    assert parting_step(d, rel_threshold=0.5, k=3) == 6
    assert parting_step(d, rel_threshold=0.5, k=1) == 2
    assert parting_step(d, rel_threshold=50.0) == -1
    assert parting_step(d["distance"].to_numpy(), scale=1.0, k=3) == 6
    # end alignment of unequal lengths: the last steps meet at aligned step 0
    c = np.full((t, h), np.nan)
    c[:4] = a[6:] + np.array([0.0, 0.0, 3.0])
    e = pair_distance(a, c, align="end")
    assert e["step"].tolist() == [-3, -2, -1, 0]
    assert e["step_a"].tolist() == [6, 7, 8, 9]
    assert e["step_b"].tolist() == [0, 1, 2, 3]
    assert e["distance"].tolist() == pytest.approx([3.0] * 4)
    assert parting_step(e, rel_threshold=0.1) == -3
    s = pair_distance(a, c, align="start")
    assert s["step_a"].tolist() == [0, 1, 2, 3] and s["step_b"].tolist() == [0, 1, 2, 3]
    with pytest.raises(InputError):
        pair_distance(a, c, align="middle")


def test_similar_pairs_within_and_across():
    # final states on a line; labels split them
    pos = np.array([0.0, 0.1, 5.0, 9.0, 9.5, 20.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    states = np.zeros((6, 2, 1))
    states[:, 1, 0] = pos
    w = similar_pairs(states, None, labels, mode="within")
    most = w[w.kind == "most similar"].iloc[0]
    least = w[w.kind == "least similar"].iloc[0]
    assert (most.seq_a, most.seq_b) == (0, 1)
    assert (least.seq_a, least.seq_b) == (3, 5) and least.distance == pytest.approx(11.0)
    x = similar_pairs(states, None, labels, mode="across", n_pairs=2)
    most = x[x.kind == "most similar"]
    assert (most.seq_a.iloc[0], most.seq_b.iloc[0]) == (2, 3)
    assert x[x.kind == "least similar"].iloc[0][["seq_a", "seq_b"]].tolist() == [0, 5]
    assert (x.label_a != x.label_b).all()
    sampled = similar_pairs(np.random.default_rng(0).normal(size=(50, 3, 2)), labels=np.arange(50) % 2,
                            max_candidates=10, random_state=3)
    again = similar_pairs(np.random.default_rng(0).normal(size=(50, 3, 2)), labels=np.arange(50) % 2,
                          max_candidates=10, random_state=3)
    assert sampled.attrs["sampled"] and sampled.equals(again)
    with pytest.raises(InputError):
        similar_pairs(states, None, np.zeros(6), mode="across")


def test_heatmap_shared_domain():
    rng = np.random.default_rng(2)
    x, lens = _padded(rng)
    x[3, 2, 4] = -7.5
    hm = heatmap_data(x, lens, seqs=[0, 3])
    assert hm.domain == (-7.5, 7.5)
    assert set(hm.frame.columns) == {"seq", "step", "unit", "value"}
    assert len(hm.frame) == (7 + 7) * 5
    row = hm.frame[(hm.frame.seq == 3) & (hm.frame.step == 2) & (hm.frame.unit == 4)]
    assert row.value.item() == -7.5
    assert not hm.frame.value.isna().any()
    assert heatmap_data(x, lens, seqs=[2], domain=(-1, 1)).domain == (-1.0, 1.0)


def test_bad_inputs_are_input_errors():
    with pytest.raises(InputError, match=r"\[N, T, H\]"):
        StatePCA().fit(np.zeros((3, 4)))
    with pytest.raises(InputError, match="between 1"):
        state_norms(np.zeros((2, 3, 4)), [0, 3])
    with pytest.raises(InputError):
        plateau_steps(np.zeros(4), rel_tol=-1)


def test_with_a_real_trace_of_a_gru():
    torch = pytest.importorskip("torch")
    rv = pytest.importorskip("rnnviz_core.trace")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.rnn = torch.nn.GRU(2, 4, batch_first=True)
            self.head = torch.nn.Linear(4, 3)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    x = np.random.default_rng(0).normal(size=(5, 8, 2)).astype(np.float32)
    lens = np.array([8, 4, 6, 8, 2])
    tr = rv.trace(Net(), x, lens, device="cpu")
    frame, pca = pca_paths(tr)
    assert len(frame) == lens.sum() and not frame[["pc1", "pc2"]].isna().any().any()
    norms = state_norms(tr)
    assert norms.groupby("seq").size().tolist() == lens.tolist()
    np.testing.assert_allclose(norms.loc[norms.seq == 1, "sum_abs"], np.abs(tr.hidden[1, :4]).sum(1), rtol=1e-6)
    d = pair_distance(tr.hidden[0], tr.hidden[1], 8, 4, align="end")
    np.testing.assert_allclose(d["distance"].iloc[-1], np.linalg.norm(tr.hidden[0, 7] - tr.hidden[1, 3]), rtol=1e-6)
    assert len(similar_pairs(tr, labels=tr.logits.argmax(1), mode="within")) == 2


def test_typical_state_norm_by_hand():
    from rnnviz_core.trajectories import typical_state_norm

    h = np.array([[[3.0, 4.0], [0.0, 1.0]], [[0.0, 2.0], [np.nan, np.nan]]])
    assert typical_state_norm(h) == pytest.approx((5 + 1 + 2) / 3)
    d = pair_distance(h[0], h[1], scale=typical_state_norm(h))
    assert d["rel_distance"].iloc[0] == pytest.approx(np.hypot(3, 2) / (8 / 3))


def test_inputs_are_never_modified():
    rng = np.random.default_rng(5)
    x, lens = _padded(rng)
    x32 = x.astype(np.float32)
    keep = x32.copy()
    StatePCA(2).fit_transform(x32, lens)
    pca_paths(x32, lens)
    state_norms(x32, lens)
    similar_pairs(x32, lens, labels=np.arange(6) % 2)
    heatmap_data(x32, lens, seqs=[0, 1])
    pair_distance(x32[0], x32[1], 7, 5)
    np.testing.assert_array_equal(x32, keep)


def test_unit_order_groups_units_that_move_together():
    """Units 0, 2, 4 follow one signal and 1, 3, 5 another: similarity puts each trio together."""
    rng = np.random.default_rng(3)
    s1, s2 = rng.normal(size=(2, 4, 30))
    x = np.zeros((4, 30, 6))
    for u in (0, 2, 4):
        x[:, :, u] = s1 * (1 + 0.1 * u) + 0.01 * rng.normal(size=(4, 30))
    for u in (1, 3, 5):
        x[:, :, u] = s2 * (1 + 0.1 * u) + 0.01 * rng.normal(size=(4, 30))
    order = list(tj.unit_order(x))
    assert sorted(order) == list(range(6))
    assert {frozenset(order[:3]), frozenset(order[3:])} == {frozenset({0, 2, 4}), frozenset({1, 3, 5})}
    var = x.reshape(-1, 6).var(axis=0)
    assert list(tj.unit_order(x, order="variance")) == list(np.argsort(-var))
    top = tj.unit_order(x, order="variance", top=2)
    assert list(top) == list(np.argsort(-var)[:2])
    hm = tj.heatmap_data(x, units=order)
    assert hm.frame.attrs["unit_order"] == order
