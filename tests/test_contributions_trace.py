"""rv.contributions_many(..., trace=True): the shared gradient pass records the trace as it goes.

The reference is rv.trace(..., gates=True), which runs its own forward without gradients; every
array, the states and the model's output must be the same numbers bit for bit, on every kind of
recurrent layer the engine runs (GRU, LSTM, plain RNN; stacked; bidirectional; packed lengths; a
forward that takes no lengths; token ids), and the scores must not change when the trace is asked
for. A bundle block then needs no trace of its own.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import rnnviz_core as rv


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def _check(model, x, lengths, methods, batch_size=7):
    got, tr = rv.contributions_many(model, x, list(methods), lengths, device="cpu", batch_size=batch_size,
                                    trace=True)
    plain = rv.contributions_many(model, x, list(methods), lengths, device="cpu", batch_size=batch_size)
    ref = rv.trace(model, x, lengths, gates=True, device="cpu", batch_size=batch_size)
    assert sorted(tr.arrays) == sorted(ref.arrays)
    for name in ref.arrays:
        assert _same(tr.arrays[name], ref.arrays[name]), name
        assert not tr.arrays[name].flags.writeable
    assert _same(tr.hidden, ref.hidden)
    assert _same(tr.logits, ref.logits)
    assert np.array_equal(tr.lengths, ref.lengths)
    assert [m.name for m in tr.modules] == [m.name for m in ref.modules]
    for m in methods:
        assert _same(got[m], plain[m]), m
    # trace="last": the last layer's forward states and sigmoid gates only, the same numbers
    got_last, last = rv.contributions_many(model, x, list(methods), lengths, device="cpu", batch_size=batch_size,
                                           trace="last")
    top = ref.modules[-1]
    want = {ref.name(k, -1, "fwd") for k in ("h", *top.gates) if k not in ("n", "g")}
    assert sorted(last.arrays) == sorted(want)
    for name in want:
        assert _same(last.arrays[name], ref.arrays[name]), name
    assert _same(last.hidden, ref.hidden) and _same(last.logits, ref.logits)
    for m in methods:
        assert _same(got_last[m], plain[m]), m
    return tr


def _x(n=20, t=12, f=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, t, f)).astype(np.float32), rng.integers(1, t + 1, n)


@pytest.mark.parametrize("cell", ["GRU", "LSTM", "RNN_TANH"])
@pytest.mark.parametrize("shape", [{}, {"num_layers": 2}, {"bidirectional": True},
                                   {"num_layers": 2, "bidirectional": True}])
@pytest.mark.parametrize("methods", [("grad_norm", "input_x_grad"), ("grad_norm",)])
def test_the_trace_equals_rv_trace_on_every_layer_kind(cell, shape, methods):
    torch.manual_seed(1)
    model = rv.build_model(rv.ModelConfig(cell=cell, input_size=3, hidden_size=6, num_outputs=2, **shape))
    x, L = _x()
    tr = _check(model, x, L, methods)
    # the trace's own rules hold: NaN at and past each length, real numbers before it
    h = tr.get("h")
    valid = np.arange(x.shape[1])[None, :] < L[:, None]
    assert np.isnan(h[~valid]).all() and np.isfinite(h[valid]).all()


def test_a_forward_without_lengths_runs_each_sequence_at_its_length():
    class NoLengths(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 5, batch_first=True)
            self.head = nn.Linear(5, 2)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    torch.manual_seed(2)
    x, L = _x(seed=1)
    _check(NoLengths(), x, L, ("grad_norm", "input_x_grad"))


def test_token_ids_with_a_packed_lstm():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.rnn = nn.LSTM(4, 5, batch_first=True)
            self.head = nn.Linear(5, 3)

        def forward(self, x, lengths):
            packed = nn.utils.rnn.pack_padded_sequence(self.emb(x), lengths, batch_first=True)
            _, (h, _) = self.rnn(packed)
            return self.head(h[-1])

    torch.manual_seed(3)
    rng = np.random.default_rng(2)
    ids, L = rng.integers(1, 10, (20, 12)), rng.integers(1, 13, 20)
    _check(Tokens(), ids, L, ("grad_norm", "grad_x_state", "input_x_grad"))


def test_without_a_shared_method_the_trace_is_traced_on_its_own():
    torch.manual_seed(4)
    model = rv.build_model(rv.ModelConfig(cell="GRU", input_size=3, hidden_size=6, num_outputs=2))
    x, L = _x(n=6)
    got, tr = rv.contributions_many(model, x, ["occlusion"], L, device="cpu", trace=True)
    ref = rv.trace(model, x, L, gates=True, device="cpu")
    assert _same(tr.get("z"), ref.get("z")) and _same(tr.logits, ref.logits)
    assert _same(got["occlusion"], rv.contributions(model, x, "occlusion", L, device="cpu"))


@pytest.mark.parametrize("hold", [True, False])
def test_a_bundle_block_is_traced_by_its_scores_pass_only(monkeypatch, tmp_path, hold):
    """The build's per-block work records its trace in the scores' pass: rv.trace never runs on
    a block, only on the sample's full traces, and on the PCA fit's rows when their blocks' states
    are too large to hold until the basis is fitted (bundle_engines.HOLD_BYTES; held, the basis
    comes from the pass's own states of those rows)."""
    import importlib

    from rnnviz_core import bundle, bundle_engines, bundle_fit

    trace_mod = importlib.import_module("rnnviz_core.trace")

    torch.manual_seed(5)
    model = rv.build_model(rv.ModelConfig(cell="GRU", input_size=3, hidden_size=6, num_outputs=2))
    x, L = _x(n=40, seed=3)
    ds = rv.data.from_arrays(x, lengths=L, y=np.arange(40) % 2)
    traced = []
    orig = trace_mod.trace

    def counting(m, xx, *a, **k):
        traced.append(len(xx))
        return orig(m, xx, *a, **k)

    monkeypatch.setattr(trace_mod, "trace", counting)
    fit_rows = []
    orig_fit_trace = bundle_engines.Worker._trace
    monkeypatch.setattr(bundle_engines.Worker, "_trace",
                        lambda self, b, gates: fit_rows.append(len(b["rows"])) or orig_fit_trace(self, b, gates))
    if not hold:
        monkeypatch.setattr(bundle_engines, "HOLD_BYTES", 0)
    bundle.build(model, ds, tmp_path / "b.rnnviz", batch_size=16, sample=4, device="cpu")
    # the PCA fit: every row of this small data, in one trace of their own or from the pass
    assert fit_rows == ([] if hold else [40])
    assert sum(traced) - sum(fit_rows) == 4             # then only the sample's full traces
    assert bundle_fit.FIT_POINTS >= int(L.sum())
