"""rv.unit_dictionary against a hand-built RNN whose units saturate on known inputs, and on the
marker and text demos (marker units; negation units)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rnnviz_core as rv
from rnnviz_core.units import unit_entry


class Detector(nn.Module):
    """tanh RNN without recurrence: unit 0 = tanh(10 x0) (saturates at +1 when x0 is large),
    unit 1 = tanh(-10 x1) (saturates at -1 when x1 is large); logits = [sum h0, sum h1] over steps."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(2, 2, batch_first=True)
        with torch.no_grad():
            for p in self.rnn.parameters():
                p.zero_()
            self.rnn.weight_ih_l0[0, 0] = 10.0
            self.rnn.weight_ih_l0[1, 1] = -10.0
        self.head = nn.Linear(2, 2)

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        last = out[torch.arange(x.shape[0]), lengths.long() - 1] if lengths is not None else out[:, -1]
        return self.head(last)


def test_hand_built_detector_units_by_hand():
    torch.manual_seed(0)
    net = Detector().eval()
    rng = np.random.default_rng(0)
    n, T = 60, 12
    x = rng.uniform(-0.05, 0.2, size=(n, T, 2)).astype(np.float32)  # only one limit reachable
    L = rng.integers(4, T + 1, size=n)
    x[np.arange(T)[None] >= L[:, None]] = 0.0
    y = rng.integers(0, 2, size=n)
    d = rv.unit_dictionary(net, x, L, y=y, feature_names=["a", "b"], window=3)
    assert len(d) == 2 and list(d["kind"]) == ["h", "h"]
    valid = np.arange(T)[None] < L[:, None]
    h0 = np.tanh(10 * x[..., 0])
    ev = (h0 >= 0.9) & valid
    pts = x[valid]
    mu, sd = pts.mean(0), pts.std(0)
    row = unit_entry(d, "h", 0)
    assert row["limit"] == "+1" and row["n_events"] == ev.sum()
    assert row["share_at_limit"] == pytest.approx(ev.sum() / valid.sum())
    z0 = (x[ev].mean(0) - mu) / sd                                    # at the event's own step
    assert np.allclose(row["pattern"][-1], z0, atol=1e-4)
    ev1 = ev.copy()
    ev1[:, 0] = False                                                 # one step before: events at t >= 1
    prev = x[:, :-1][ev1[:, 1:]]
    assert np.allclose(row["pattern"][-2], (prev.mean(0) - mu) / sd, atol=1e-4)
    assert row["responds_to"].startswith("a high at the step")
    row1 = unit_entry(d, "h", 1)
    assert row1["limit"] == "-1" and row1["responds_to"].startswith("b high at the step")
    # selectivity index from per-sequence shares, by hand
    share = ev.sum(1) / L
    m = np.array([share[y == 0].mean(), share[y == 1].mean()])
    j = int(m.argmax())
    assert row["selectivity"] == pytest.approx((m[j] - m[1 - j]) / (m[j] + m[1 - j]))
    # correlation of the last value with each logit, by hand (largest |r|)
    with torch.no_grad():
        logits = net(torch.as_tensor(x), torch.as_tensor(L)).numpy()
    last = h0[np.arange(n), L - 1]
    rs = [np.corrcoef(last, logits[:, c])[0, 1] for c in range(2)]
    assert row["output_correlation"] == pytest.approx(max(rs, key=abs), abs=1e-5)
    # streaming in small batches gives the same numbers
    small = rv.unit_dictionary(net, x, L, y=y, feature_names=["a", "b"], window=3, batch_size=7)
    assert np.allclose(np.stack(small["pattern"]), np.stack(d["pattern"]), atol=1e-5)
    assert (small["n_events"] == d["n_events"]).all()


def test_marker_demo_has_marker_units():
    model, ds = rv.demos.load_demo("marker")
    d = rv.unit_dictionary(model, ds.X, ds.lengths, y=ds.y, feature_names=ds.feature_names)
    gates = {"r", "z"}
    assert set(d["kind"]) == {"h"} | gates and len(d) == 3 * model.rnn.hidden_size
    mk = ds.X[..., 1][np.arange(ds.X.shape[1])[None] < ds.lengths[:, None]]
    z_all = (1.0 - mk.mean()) / mk.std()                 # the z-score when every event is on a marker
    on_marker = np.array([p is not None and p[-1, 1] >= z_all - 1e-3 for p in d["pattern"]])
    at_marker = d[on_marker & (d["n_events"] >= 20).to_numpy()]
    assert len(at_marker) >= 1, "no unit reaches its limit only on marked steps"
    assert at_marker["responds_to"].str.startswith("marker high at the step").all()


def test_text_demo_has_negation_units():
    model, ds = rv.demos.load_demo("text")
    d = rv.unit_dictionary(model, ds.X, ds.lengths, y=ds.y)
    assert set(d["kind"]) == {"h", "i", "f", "o"}
    first = [w[0] for w in d["words"] if w]
    negation = [f for f in first if f[0] in ("not", "never") and f[2] >= 5]
    assert len(negation) >= 3
    word, offset, lift, count = negation[0]
    assert count >= 2 and offset in range(5)


def test_bad_options_are_named():
    net = Detector().eval()
    x = np.zeros((3, 4, 2), np.float32)
    with pytest.raises(rv.InputError, match="window"):
        rv.unit_dictionary(net, x, window=0)
    with pytest.raises(rv.InputError, match="sigmoid gates"):
        rv.unit_dictionary(net, x, kinds=("z",))
