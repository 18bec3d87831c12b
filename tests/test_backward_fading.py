"""Back-propagation through long sequences whose gradient fades (issue 18's speed pass).

The hand-written backward sets gradients below ``GRAD_FLOOR`` times the largest incoming one to
zero (so they never reach float32's subnormal range, where each multiply costs up to 200x more)
and stops once nothing earlier can change. Checked against PyTorch's own autograd through the
fused ``nn.GRU`` / ``nn.LSTM`` (no floor, no early stop): equal wherever the reference is above
the floor, exactly zero where the reference has faded below it.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rnnviz_core as rv
from rnnviz_core.engine import prepare, unrolled_forward
from rnnviz_core.engine import backward as rec

T, N, F_IN, H = 400, 6, 3, 16


class Net(nn.Module):
    def __init__(self, cell, readout):
        super().__init__()
        self.rnn = getattr(nn, cell)(F_IN, H, batch_first=True)
        self.head = nn.Linear(H, 2)
        self.readout = readout

    def forward(self, x, lengths=None):
        if lengths is not None:
            z = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = self.rnn(z)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
            last = out[torch.arange(x.shape[0]), torch.as_tensor(lengths) - 1]
        else:
            out, _ = self.rnn(x)
            last = out[:, -1]
        return self.head(last if self.readout == "last" else out.mean(1))


def _fading(cell, readout, seed=0):
    """A model whose memory is short: the recurrent weights are small, so d out / d h_t shrinks by
    a large factor per step and reaches zero in float32 long before the start of 400 steps."""
    torch.manual_seed(seed)
    net = Net(cell, readout)
    with torch.no_grad():
        net.rnn.weight_hh_l0.mul_(0.05)
    return net.eval()


def _reference(net, x):
    """d out / d h_t by PyTorch's autograd through the fused module run one step at a time, with a
    zero leaf added to every h_t (no floor, no early stop). Returns (d y / d h_t [N, T, H])."""
    rnn = net.rnn
    h = torch.zeros(1, x.shape[0], H)
    c = torch.zeros(1, x.shape[0], H)
    probes = []
    for t in range(x.shape[1]):
        if isinstance(rnn, nn.LSTM):
            _, (h, c) = rnn(x[:, t : t + 1], (h, c))
        else:
            _, h = rnn(x[:, t : t + 1], h)
        e = torch.zeros_like(h, requires_grad=True)
        probes.append(e)
        h = h + e
    y = net.head(h[0])[:, 0].sum()
    return torch.stack([g[0] for g in torch.autograd.grad(y, probes)], 1).numpy()


@pytest.mark.parametrize("cell", ["GRU", "LSTM", "RNN"])
@pytest.mark.parametrize("readout", ["last", "mean"])
def test_fading_gradient_matches_autograd_and_is_zero_past_the_floor(cell, readout):
    net = _fading(cell, readout)
    x = torch.randn(N, T, F_IN, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([T, T - 37, T, 250, T - 1, 399])
    # reference: plain autograd with the states h_t as leaves, through the fused module's own step
    xt, lt = prepare(net, x, lengths, "cpu")
    probe = torch.zeros(N, T, H, requires_grad=True)
    out, _ = unrolled_forward(net, xt, lt, probe=probe, recurrence="stepwise")
    (ref,) = torch.autograd.grad(out[:, 0].sum(), [probe])
    probe2 = torch.zeros(N, T, H, requires_grad=True)
    out2, _ = unrolled_forward(net, xt, lt, probe=probe2)           # the fast path
    np.testing.assert_allclose(out2.detach().numpy(), out.detach().numpy(), atol=1e-5)
    (fast,) = torch.autograd.grad(out2[:, 0].sum(), [probe2])
    ref, fast = ref.numpy(), fast.numpy()
    top = np.abs(ref).max()
    floor = top * rec.GRAD_FLOOR
    np.testing.assert_allclose(fast, ref, atol=1e-5 * max(1.0, top))
    above = np.abs(ref) >= 1e-6 * top
    np.testing.assert_allclose(fast[above], ref[above], rtol=1e-3)   # relative agreement where it is not faded
    # the reference fades far below the floor on the early steps; the fast path has exact zeros there
    faded = np.abs(ref) < floor
    if readout == "last":
        assert faded.mean() > 0.3, "the test model must fade to exercise the floor"
    assert np.all(fast[faded & (np.abs(ref) < floor * 1e-3)] == 0)
    # no subnormal number anywhere in the result
    assert not np.any((fast != 0) & (np.abs(fast) < np.finfo(np.float32).tiny))


def test_fading_gradient_against_the_fused_module_by_hand():
    """The same quantity from nn.GRU one step at a time with a zero leaf on every state (autograd
    through PyTorch's own GRU, not through rnnviz's stepwise engine)."""
    net = _fading("GRU", "last", seed=3)
    x = torch.randn(N, T, F_IN, generator=torch.Generator().manual_seed(4))
    ref = _reference(net, x)
    xt, lt = prepare(net, x, None, "cpu")
    probe = torch.zeros(N, T, H, requires_grad=True)
    out, _ = unrolled_forward(net, xt, lt, probe=probe)
    (fast,) = torch.autograd.grad(out[:, 0].sum(), [probe])
    fast = fast.numpy()
    top = np.abs(ref).max()
    np.testing.assert_allclose(fast, ref, atol=1e-5 * top)
    assert (np.abs(ref) < top * rec.GRAD_FLOOR * 1e-3).mean() > 0.3
    assert np.all(fast[np.abs(ref) < top * rec.GRAD_FLOOR * 1e-3] == 0)


def test_grad_norm_scores_unchanged_on_a_long_model_with_lengths():
    """rv.contributions on the fast path equals the stepwise engine within float32 rounding."""
    net = _fading("GRU", "last", seed=5)
    x = np.random.default_rng(6).normal(size=(N, T, F_IN)).astype(np.float32)
    lengths = np.array([T, 200, 321, T, 5, 399])
    fast = rv.contributions(net, x, "grad_norm", lengths)
    # reference: the norm of the per-step gradient from autograd through the stepwise engine
    xt, lt = prepare(net, torch.from_numpy(x), torch.from_numpy(lengths), "cpu")
    probe = torch.zeros(N, T, H, requires_grad=True)
    out, _ = unrolled_forward(net, xt, lt, probe=probe, recurrence="stepwise")
    pred = out.argmax(1)
    (g,) = torch.autograd.grad(out[torch.arange(N), pred].sum(), [probe])
    slow = g.norm(dim=-1).numpy()
    valid = np.arange(T)[None, :] < lengths[:, None]
    np.testing.assert_allclose(fast[valid], slow[valid], atol=1e-6)
    assert np.isnan(fast[4, 5:]).all() and np.isfinite(fast[4, :5]).all()
