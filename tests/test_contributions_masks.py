"""Occlusion restarted from cached states, at_steps=, and the perturbation-mask method.

References: the whole-model occlusion (attribution.perturbation.occlusion_reference, which reruns the
model for every replacement), occlusion by hand through the user's own fused model, and
hand-built models whose answer depends on known steps only.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rnnviz_core import contributions as _c  # noqa: F401  (module, for the reference)
from rnnviz_core.attribution.perturbation import occlusion_reference
from rnnviz_core.contributions import contributions
from rnnviz_core.errors import InputError
from rnnviz_core.models import ModelConfig, build_model

import importlib

C = importlib.import_module("rnnviz_core.contributions")


def _data(seed=0, N=5, T=9, F=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, T, F, generator=g)
    return x, np.array([T, 6, 1, T - 1, 4][:N])


def _reference(model, x, L, per_feature, baseline=None):
    prob = C.setup(model, x, L, None, device="cpu", batch_size=None, target_kind="logit",
                    y=None, loss="auto")
    prob.per_feature = per_feature
    b = C.resolve_baseline(baseline, prob.xt, prob.L)
    ref = occlusion_reference(prob, b, {}).numpy()
    pad = np.arange(prob.T)[None, :] >= prob.L[:, None]
    ref[pad] = np.nan
    return ref


_CONFIGS = {
    "GRU": dict(cell="GRU"),
    "LSTM-2layer": dict(cell="LSTM", num_layers=2),
    "GRU-bi": dict(cell="GRU", bidirectional=True),
    "LSTM-proj-bi-2layer": dict(cell="LSTM", proj_size=3, bidirectional=True, num_layers=2),
    "RNN_TANH-linear-encoder": dict(cell="RNN_TANH", encoder="linear", encoder_size=4),
    "GRU-regression": dict(cell="GRU", task="regression", num_outputs=1),
}


@pytest.mark.parametrize("name", list(_CONFIGS))
@pytest.mark.parametrize("per_feature", [False, True])
def test_restarted_occlusion_equals_whole_model_occlusion(name, per_feature):
    torch.manual_seed(5)
    m = build_model(ModelConfig(input_size=3, hidden_size=5, **_CONFIGS[name])).eval()
    x, L = _data(seed=1)
    got, info = contributions(m, x, "occlusion", lengths=L, per_feature=per_feature,
                              return_info=True)
    ref = _reference(m, x, L, per_feature)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0, equal_nan=True, err_msg=name)
    if "bi" not in name:                        # unidirectional modules really restart
        assert info["restarted_passes"] > 0, name
    else:
        assert info["restarted_passes"] == 0, name


class _PlainGRU(nn.Module):
    """Unpacked nn.GRU (padding runs through the recurrence), head on the last step."""

    def __init__(self, cell="GRU", layers=2):
        super().__init__()
        self.rnn = getattr(nn, cell)(3, 6, num_layers=layers, batch_first=False)
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.rnn(x.transpose(0, 1))                 # time-major module
        return self.head(out[-1])


@pytest.mark.parametrize("cell", ["GRU", "LSTM", "RNN"])
def test_restarted_occlusion_by_hand_through_the_fused_model(cell):
    torch.manual_seed(3)
    m = _PlainGRU(cell).eval()
    x, _ = _data(seed=2, T=7)
    got = contributions(m, x, "occlusion", per_feature=True)
    with torch.no_grad():
        z = m(x)
        cls = z.argmax(1)
        ref = np.zeros((5, 7, 3), dtype=np.float32)
        for t in range(7):
            for k in range(3):
                xo = x.clone()
                xo[:, t, k] = 0
                ref[:, t, k] = (z.gather(1, cls[:, None]) - m(xo).gather(1, cls[:, None]))[:, 0]
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_restarted_occlusion_token_model():
    torch.manual_seed(4)
    m = build_model(ModelConfig(input_size=1, hidden_size=5, encoder="embedding", encoder_size=4,
                                vocab_size=11)).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 11, (5, 8), generator=g)
    L = np.array([8, 5, 1, 7, 3])
    got, info = contributions(m, x, "occlusion", lengths=L, return_info=True)
    prob = C.setup(m, x, L, None, device="cpu", batch_size=None, target_kind="logit", y=None,
                    loss="auto")
    b = C.resolve_baseline(None, prob.xt, prob.L, baseline_token=prob.baseline_token)
    ref = occlusion_reference(prob, b, {}).numpy()
    valid = np.arange(8)[None, :] < L[:, None]
    np.testing.assert_allclose(got[valid], ref[valid], atol=1e-5, rtol=0)
    assert info["restarted_passes"] > 0


def test_at_steps_scores_only_the_chosen_steps():
    torch.manual_seed(5)
    m = build_model(ModelConfig(input_size=3, hidden_size=5)).eval()
    x, L = _data(seed=1)
    full = _reference(m, x, L, True)
    last = contributions(m, x, "occlusion", lengths=L, per_feature=True, at_steps=-1)
    rows = np.arange(5)
    np.testing.assert_allclose(last[rows, L - 1], full[rows, L - 1], atol=1e-5, rtol=0)
    others = np.ones((5, 9), bool)
    others[rows, L - 1] = False
    assert np.isnan(last[others]).all()
    two = contributions(m, x, "occlusion", lengths=L, at_steps=[0, 5])
    ref = _reference(m, x, L, False)
    for i in range(5):
        for t in range(9):
            if t in (0, 5) and t < L[i]:
                assert abs(two[i, t] - ref[i, t]) < 1e-5
            else:
                assert np.isnan(two[i, t])
    with pytest.raises(InputError, match="at_steps"):
        contributions(m, x, "occlusion", at_steps="last")


# --------------------------------------------------------------------------- masks

class OnlyStepK(nn.Module):
    """An accumulating ReLU RNN (h_t = h_{t-1} + x_t[0]) whose answer is +-2 h_L.

    The data put a positive value in feature 0 at step k only (zeros elsewhere, noise in the
    unread feature 2), so the answer depends on x_k[0] alone: replacing it by 0 removes it all.
    """

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(3, 1, nonlinearity="relu", bias=False, batch_first=True)
        self.head = nn.Linear(1, 2)
        with torch.no_grad():
            self.rnn.weight_ih_l0.copy_(torch.tensor([[1.0, 0.0, 0.0]]))
            self.rnn.weight_hh_l0.fill_(1.0)
            self.head.weight.copy_(torch.tensor([[2.0], [-2.0]]))
            self.head.bias.zero_()

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        idx = torch.full((x.shape[0],), x.shape[1] - 1) if lengths is None else lengths.long() - 1
        return self.head(out[torch.arange(x.shape[0]), idx])


def _only_k_data(N=6, T=10, k=(3, 2, 6, 0, 4, 1), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(N, T, 3)
    x[:, :, 2] = torch.randn(N, T, generator=g)              # noise the model never reads
    for i in range(N):
        x[i, k[i], 0] = 1.0 + torch.rand(1, generator=g).item()
    return x, np.array(k)


def test_mask_finds_the_deciding_step_and_keeps_nothing_else():
    m = OnlyStepK().eval()
    x, k = _only_k_data()
    L = np.array([10, 10, 8, 10, 5, 3])
    s, info = contributions(m, x, "mask", lengths=L, per_feature=True, return_info=True)
    rows = np.arange(6)
    assert (s[rows, k, 0] > 0.9).all(), s[rows, k, 0]
    other = np.ones(s.shape, bool)
    other[rows, k, 0] = False
    valid = (np.arange(10)[None, :] < L[:, None])[..., None].repeat(3, 2)
    assert (s[other & valid] < 0.1).all()
    assert np.isnan(s[~valid]).all()                   # no mask mass past a length
    per_step = contributions(m, x, "mask", lengths=L)
    assert (np.nanargmax(per_step, 1) == k).all()
    curve = info["loss_curve"]
    assert curve.shape == (60,) and curve[-1] < 0.5 * curve[0]
    # the area kept: one cell of each sequence's 3 * L cells
    np.testing.assert_allclose(info["area"], 1 / (3 * L), rtol=0.35)


def test_mask_is_deterministic_under_a_seed_and_batching():
    m = OnlyStepK().eval()
    x, _ = _only_k_data()
    a = contributions(m, x, "mask", per_feature=True, seed=3, iterations=20)
    b = contributions(m, x, "mask", per_feature=True, seed=3, iterations=20, batch_size=2)
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    c = contributions(m, x, "mask", per_feature=True, seed=3, iterations=20)
    assert np.array_equal(a, c)


def test_mask_at_last_step_restarts_and_matches_full_mask_there():
    """With at_steps=-1 only the last step is masked; the rest is kept as it is."""
    torch.manual_seed(0)
    m = build_model(ModelConfig(input_size=3, hidden_size=5)).eval()
    x, L = _data(seed=4)
    s = contributions(m, x, "mask", lengths=L, at_steps=-1, per_feature=True, iterations=40)
    rows = np.arange(5)
    last = s[rows, L - 1]
    assert np.isfinite(last).all() and ((last >= 0) & (last <= 1)).all()
    others = np.ones((5, 9), bool)
    others[rows, L - 1] = False
    assert np.isnan(s[others]).all()


def test_mask_blur_and_token_models_and_bad_options():
    m = OnlyStepK().eval()
    x, k = _only_k_data()
    # a blur spreads x_k over its neighbours and this model only sums them, so the blur leaves
    # the answer nearly unchanged: the mask may keep little; it stays a share in [0, 1] per cell
    s = contributions(m, x, "mask", perturbation="blur", sigma=1.0, per_feature=True,
                      iterations=20)
    assert ((s >= 0) & (s <= 1)).all()
    tm = build_model(ModelConfig(input_size=1, hidden_size=5, encoder="embedding",
                                 encoder_size=4, vocab_size=11)).eval()
    ids = torch.randint(1, 11, (3, 6), generator=torch.Generator().manual_seed(0))
    st = contributions(tm, ids, "mask", lengths=[6, 4, 2], iterations=10)
    assert st.shape == (3, 6) and np.isnan(st[2, 2:]).all() and np.isfinite(st[2, :2]).all()
    with pytest.raises(InputError, match="iterations"):
        contributions(m, x, "mask", iterations=0)
    with pytest.raises(InputError, match="perturbation"):
        contributions(m, x, "mask", perturbation="noise")
    with pytest.raises(InputError, match="blur"):
        contributions(tm, ids, "mask", perturbation="blur")


# ------------------------------------------------------------------------- shapley

def _brute_shapley(model, x, L, cls, players):
    """Shapley values by the definition: every order of the players of one sequence."""
    import itertools
    with torch.no_grad():
        def v(S):
            xs = x.clone()
            for j, steps in enumerate(players):
                if j not in S:
                    xs[steps] = 0.0
            return model(xs[None], torch.as_tensor([L]))[0, cls].item()
        n = len(players)
        phi = np.zeros(n)
        perms = list(itertools.permutations(range(n)))
        for order in perms:
            S = set()
            for j in order:
                before = v(S)
                S.add(j)
                phi[j] += v(S) - before
        return phi / len(perms)


def test_exact_shapley_equals_enumeration_of_orders_and_is_efficient():
    torch.manual_seed(7)
    m = build_model(ModelConfig(input_size=3, hidden_size=5, num_outputs=3)).eval()
    x, L = _data(seed=6, N=4, T=5)
    L = np.array([5, 3, 1, 4])
    s, info = contributions(m, x, "shapley", lengths=L, return_info=True)
    assert info["exact"]
    for i in range(4):
        players = [[t] for t in range(L[i])]
        ref = _brute_shapley(m, x[i], L[i], int(info["target"][i]), players)
        np.testing.assert_allclose(s[i, :L[i]], ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.nansum(s, 1), info["target_x"] - info["target_baseline"],
                               atol=1e-5)
    # blocks of steps: 2 blocks of a 5-step sequence are steps {0, 1, 2}? floor(t*2/5): 0,0,0,1,1
    s2, info2 = contributions(m, x[:1], "shapley", lengths=[5], groups=2, return_info=True)
    ref2 = _brute_shapley(m, x[0], 5, int(info2["target"][0]), [[0, 1, 2], [3, 4]])
    np.testing.assert_allclose(info2["group_values"][0], ref2, atol=1e-5, rtol=0)
    np.testing.assert_allclose(s2[0, :3], ref2[0] / 3, atol=1e-6)


def test_sampled_shapley_is_efficient_and_within_its_standard_error():
    torch.manual_seed(7)
    m = build_model(ModelConfig(input_size=3, hidden_size=5, num_outputs=3)).eval()
    x, _ = _data(seed=6, N=3, T=6)
    exact, ie = contributions(m, x, "shapley", return_info=True)
    est, info = contributions(m, x, "shapley", samples=200, seed=1, return_info=True)
    assert not info["exact"] and (info["standard_error"] > 0).any()
    np.testing.assert_allclose(est.sum(1), info["target_x"] - info["target_baseline"], atol=1e-5)
    z = np.abs(est - exact) / np.maximum(info["standard_error"], 1e-6)
    assert (z < 5).all(), z.max()
    with pytest.raises(InputError, match="samples="):
        contributions(m, x, "shapley", groups=13)


def test_restarted_occlusion_model_without_lengths_runs_each_length_alone():
    """A forward without lengths runs each sequence at its own length; the restart follows."""
    torch.manual_seed(3)
    m = _PlainGRU("LSTM").eval()
    x, L = _data(seed=2, T=7)
    L = np.array([7, 4, 1, 6, 4])
    got, info = contributions(m, x, "occlusion", lengths=L, per_feature=True, return_info=True)
    ref = _reference(m, x, L, True)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0, equal_nan=True)
    with torch.no_grad():                       # by hand: sequence 1 alone, at its own length
        x1 = x[1:2, :4]
        z = m(x1)
        c = int(info["target"][1])
        xo = x1.clone()
        xo[0, 2, 1] = 0
        assert abs(got[1, 2, 1] - float(z[0, c] - m(xo)[0, c])) < 1e-5
    assert info["restarted_passes"] > 0
    s = contributions(m, x, "mask", lengths=L, at_steps=-1, iterations=5)
    assert np.isfinite(s[np.arange(5), L - 1]).all()
