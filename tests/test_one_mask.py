"""One length mask (issue 20): the functions that used to write ``arange(T) < lengths`` by hand now
call ``rnnviz_core.arrays.valid_mask``. Each is checked on padded data whose padding holds garbage,
against a mask and a result computed here by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rnnviz_core.arrays import valid_mask

LENGTHS = np.array([3, 5, 1, 4])
T = 6


def hand_mask(lengths, t):
    return np.array([[s < int(n) for s in range(t)] for n in lengths], dtype=bool)


def test_valid_mask_numpy_and_torch_match_the_hand_mask():
    want = hand_mask(LENGTHS, T)
    np.testing.assert_array_equal(valid_mask(LENGTHS, T), want)
    got = valid_mask(torch.as_tensor(LENGTHS), T)
    assert got.dtype == torch.bool
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(valid_mask(list(LENGTHS), T, device="cpu").numpy(), want)


def test_occlusion_chosen_steps_is_the_valid_steps():
    from rnnviz_core.occlusion import chosen_steps
    np.testing.assert_array_equal(chosen_steps(None, LENGTHS, T), hand_mask(LENGTHS, T))
    # -1 = each sequence's own last valid step
    want = np.zeros((4, T), bool)
    want[np.arange(4), LENGTHS - 1] = True
    np.testing.assert_array_equal(chosen_steps(-1, LENGTHS, T), want)


def test_marker_mask_ignores_markers_in_the_padding():
    from rnnviz_core.charts.inputs import marker_mask
    x = np.zeros((4, T, 2))
    x[:, :, 1] = 1.0                     # the marker column is on everywhere, padding included
    x[0, 1, 1] = 0.0
    got = marker_mask(x, LENGTHS, ["value", "marker"])
    want = hand_mask(LENGTHS, T)
    want[0, 1] = False
    np.testing.assert_array_equal(got, want)


def test_decision_steps_by_hand_with_garbage_padding():
    from rnnviz_core.horizons import decision_steps
    # regression prefix outputs: seq 0 settles at step 1 (len 3), seq 1 changes at its last step (len 5)
    prefix = np.full((2, T), 99.0)       # garbage past the lengths, far from every final answer
    prefix[0, :3] = [5.0, 1.0, 1.0]
    prefix[1, :5] = [0.0, 0.0, 0.0, 0.0, 2.0]
    got = decision_steps(prefix, np.array([3, 5]), task="regression", tol=0.01)
    np.testing.assert_array_equal(got, [1, 4])


def test_horizons_from_scores_by_hand_with_garbage_padding():
    from rnnviz_core.horizons import horizons_from_scores
    s = np.full((2, T), 1e6)             # padding would swamp every share if it were read
    s[0, :3] = [1.0, 1.0, 2.0]           # from the end: 2 (50%), 3 (75%), 4 (100%)
    s[1, :5] = [8.0, 0.0, 0.0, 1.0, 1.0]  # from the end: 1, 2, 2, 2, 10
    got = horizons_from_scores(s, np.array([3, 5]), shares=(0.5, 0.9))
    np.testing.assert_array_equal(got, [[1.0, 3.0], [5.0, 5.0]])


def test_blur_reads_only_valid_steps():
    from rnnviz_core.masks import _blur
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, T, 2))
    x[hand_mask(LENGTHS, T) == 0] = 1e6  # garbage padding
    sigma = 0.8
    got = _blur(torch.as_tensor(x), LENGTHS, sigma).numpy()
    half = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    for i, n in enumerate(LENGTHS):
        for t in range(n):
            js = [j for j in range(t - half, t + half + 1) if 0 <= j < n]
            w = np.array([k[j - t + half] for j in js])
            want = (w[:, None] * x[i, js]).sum(0) / w.sum()
            np.testing.assert_allclose(got[i, t], want, rtol=1e-10, err_msg=f"seq {i} step {t}")


class LastStep(nn.Module):
    """Output = W x at each sequence's last real step (padding never reaches it)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(2, 2, batch_first=True)
        self.head = nn.Linear(2, 2)
        with torch.no_grad():
            for p in self.rnn.parameters():
                p.zero_()
            self.rnn.weight_ih_l0.copy_(torch.eye(2))
            self.head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
            self.head.bias.zero_()

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        last = out[torch.arange(x.shape[0]), lengths.long() - 1] if lengths is not None else out[:, -1]
        return self.head(last)


def _padded(garbage: float):
    rng = np.random.default_rng(1)
    x = rng.uniform(-0.5, 0.5, size=(4, T, 2)).astype(np.float32)
    x[~hand_mask(LENGTHS, T)] = garbage
    return x


def test_damage_by_distance_mean_baseline_is_the_mean_over_valid_steps():
    from rnnviz_core.horizons import damage_by_distance
    net = LastStep().eval()
    x = _padded(50.0)
    hand_mean = x[hand_mask(LENGTHS, T)].astype(np.float64).mean(0)   # padding left out
    a = damage_by_distance(net, x, LENGTHS, distances=[0, 1], baseline="mean", task="regression", device="cpu")
    b = damage_by_distance(net, x, LENGTHS, distances=[0, 1], baseline=hand_mean, task="regression", device="cpu")
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(hand_mean, x.reshape(-1, 2).mean(0))        # the padding would move it
    # the model reads only the last real step: damage there moves the output, one step earlier does not
    assert (a.loc[a["distance"] == 0, "output_change"] > 0).all()
    assert (a.loc[a["distance"] == 1, "output_change"] == 0).all()


def test_unit_dictionary_does_not_read_the_padding():
    import rnnviz_core as rv
    net = LastStep().eval()
    y = np.array([0, 1, 0, 1])
    d0 = rv.unit_dictionary(net, _padded(0.0), LENGTHS, y=y, window=2, device="cpu")
    d1 = rv.unit_dictionary(net, _padded(40.0), LENGTHS, y=y, window=2, device="cpu")
    pd.testing.assert_frame_equal(d0, d1)


@pytest.mark.parametrize("lengths", [None, LENGTHS])
def test_plateau_steps_by_hand(lengths):
    from rnnviz_core.trajectories import plateau_steps
    curves = np.full((4, T), np.nan if lengths is None else 1e6)
    for i, n in enumerate(LENGTHS):
        curves[i, :n] = [0.0] * (n - min(n, 3)) + [1.0] * min(n, 3)
    got = plateau_steps(curves, lengths, min_steps=1)
    np.testing.assert_array_equal(got, [max(int(n) - 3, 0) for n in LENGTHS])
