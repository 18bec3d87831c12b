"""The output width is learned from a short probe of the first row (a whole long row was a forward
of its own per call), and from the whole row when a model refuses short input."""
import numpy as np
import torch
from torch import nn

import rnnviz_core as rv
from rnnviz_core.attribution import problem


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.head = nn.Linear(8, 4)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.shape[1])
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class FixedLength(nn.Module):
    """A head over every step's state flattened: only sequences of exactly T steps are accepted."""
    def __init__(self, T):
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.head = nn.Linear(8 * T, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out.reshape(out.shape[0], -1))


def _x(n, T, seed=0):
    return np.random.default_rng(seed).normal(size=(n, T, 3)).astype(np.float32)


def test_the_width_comes_from_a_short_probe_and_equals_the_models_output():
    torch.manual_seed(0)
    m = Plain().eval()
    x = _x(2, 300)
    xt = torch.as_tensor(x)
    assert problem.probe_output_width(m, xt, None, torch.device("cpu")) == m(xt).shape[1] == 4
    m.seen.clear()
    rv.contributions(m, x, "grad_x_state")
    assert m.seen[0] == problem.WIDTH_PROBE_STEPS      # the first forward was the short probe
    assert 300 not in m.seen[:1]


def test_a_model_that_refuses_short_input_gets_the_whole_row_and_the_same_scores():
    torch.manual_seed(1)
    T = 40
    m = FixedLength(T).eval()
    x = _x(3, T, 1)
    xt = torch.as_tensor(x)
    assert problem.probe_output_width(m, xt, None, torch.device("cpu")) == 2
    got = rv.contributions(m, x, "grad_norm")
    # reference: the predicted class from the model itself, and d logit / d h_t from an explicit
    # step-by-step unroll (the head reads every h_t, and each h_t also drives the later steps)
    ref = []
    for i in range(3):
        k = int(m(xt[i:i + 1]).argmax())
        g = _bptt_grad(m, xt[i:i + 1], k)
        ref.append(np.linalg.norm(g, axis=-1))
    np.testing.assert_allclose(got, np.stack(ref), rtol=1e-4, atol=1e-6)


def _bptt_grad(m, x, k):
    """d logits[k] / d h_t for every t, by an explicit step-by-step GRU with a zero probe added to h_t."""
    cell = nn.GRUCell(3, 8)
    cell.weight_ih.data, cell.weight_hh.data = m.rnn.weight_ih_l0.data, m.rnn.weight_hh_l0.data
    cell.bias_ih.data, cell.bias_hh.data = m.rnn.bias_ih_l0.data, m.rnn.bias_hh_l0.data
    T = x.shape[1]
    probe = torch.zeros(T, 8, requires_grad=True)
    h = torch.zeros(1, 8)
    hs = []
    for t in range(T):
        h = cell(x[:, t], h) + probe[t]
        hs.append(h)
    logits = m.head(torch.cat(hs, 1))
    logits[0, k].backward()
    return probe.grad.numpy()
