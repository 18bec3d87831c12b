"""Integrated gradients' default refinement: the first panels come from a forward-only scan.

A model whose output along the straight path has one sharp step at a known point: the scan must
start that sequence with a narrow panel around the step, and the refinement must reach 1%
completeness with fewer gradient evaluations than halving [0, 1] does (the schedule before).
"""
import importlib

import numpy as np
import torch
from torch import nn

from rnnviz_core.contributions import contributions

C = importlib.import_module("rnnviz_core.contributions")  # the module (the package exports the function)
IG = importlib.import_module("rnnviz_core.attribution.integrated_gradients")  # the schedule lives here


class StepNet(nn.Module):
    """out = 20 * tanh(k * (mean_t x_t - c)): along the path a x it steps where a * mean(x) = c."""

    def __init__(self, k=60.0, c=0.4):
        super().__init__()
        self.rnn = nn.RNN(1, 1, batch_first=True, nonlinearity="relu", bias=False)
        with torch.no_grad():
            self.rnn.weight_ih_l0.fill_(1.0)
            self.rnn.weight_hh_l0.fill_(1.0)    # h_T = sum_t x_t (inputs are positive)
        self.k, self.c = k, c

    def forward(self, x):
        h = self.rnn(x)[0][:, -1, 0] / x.shape[1]
        return 20 * torch.tanh(self.k * (h - self.c))[:, None]


def _x(n=6, t=5):
    g = torch.Generator().manual_seed(0)
    return 0.8 + 0.4 * torch.rand(n, t, 1, generator=g)    # mean near 1: the step sits near a = 0.4


def test_scan_puts_a_narrow_panel_on_the_step():
    net, x = StepNet(), _x()
    prob = C.setup(net, x, None, None, device="cpu", batch_size=None, target_kind="logit", y=None,
                    loss="auto")
    rows, lo, hi = (v.numpy() for v in IG._ig_first_panels(prob, torch.zeros_like(prob.xt), 100))
    step = 0.4 / x.mean((1, 2)).numpy()                     # where a * mean(x) = c, per sequence
    for i in range(x.shape[0]):
        a, b = lo[rows == i], hi[rows == i]
        assert a[0] == 0 and b[-1] == 1 and np.all(a[1:] == b[:-1])   # panels tile [0, 1]
        (k,) = np.nonzero((a <= step[i]) & (step[i] <= b))[0][:1]
        assert b[k] - a[k] <= 4 / IG._IG_SCAN, (i, step[i], list(zip(a, b)))  # a few cells, not [0, 1]


def test_scan_reaches_completeness_with_fewer_evaluations(monkeypatch):
    net, x = StepNet(), _x()
    _, with_scan = contributions(net, x, "integrated_gradients", return_info=True)
    monkeypatch.setattr(IG, "_IG_SCAN", 0)                    # the schedule before: start from [0, 1]
    _, halving = contributions(net, x, "integrated_gradients", return_info=True)
    for info in (with_scan, halving):
        assert info["converged"].all()
        assert (info["completeness_error"] <= 0.01).all()
    assert with_scan["gradient_evaluations"] < 0.8 * halving["gradient_evaluations"], (
        with_scan["steps"], halving["steps"])


def test_first_panels_respect_the_budget():
    net, x = StepNet(), _x()
    _, info = contributions(net, x, "integrated_gradients", max_steps=15, return_info=True)
    assert (info["steps"] == 15).all()                      # one panel each: no room for more
