"""A model whose forward takes no lengths, given lengths: every output is the sequence's own.

The reference is the user's own model run on each sequence alone, cut to its length (what the
model would give if it had been called on that sequence only).
"""
import numpy as np
import pytest
import torch
import torch.nn as nn

import rnnviz_core as rv

METHODS = ["grad_norm", "grad_x_state", "input_x_grad", "integrated_gradients", "occlusion", "prediction_delta"]


class LastStepGRU(nn.Module):  # tutorial style: out[:, -1], no lengths
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(3, 8, num_layers=2, batch_first=True)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class MeanBiLSTM(nn.Module):  # bidirectional, mean over every step it is given
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 6, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.fc(out.mean(1))


class TokenLSTM(nn.Module):  # embedding + LSTM reading h_n, a regression output [N]
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(20, 5, padding_idx=0)
        self.lstm = nn.LSTM(5, 7, batch_first=True)
        self.out = nn.Linear(7, 1)

    def forward(self, x):
        _, (h, _) = self.lstm(self.embedding(x))
        return self.out(h[-1]).squeeze(-1)


def _data(kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = np.array([10, 4, 7, 4, 1, 9, 10, 2])
    if kind == "tokens":
        x = torch.randint(1, 20, (8, 10), generator=g)
        for i, n in enumerate(lengths):
            x[i, n:] = 0
    else:
        x = torch.randn(8, 10, 3, generator=g)
    return x, lengths


def _model(kind):
    torch.manual_seed(1)
    return {"gru": LastStepGRU, "bilstm": MeanBiLSTM, "tokens": TokenLSTM}[kind]().eval()


def _alone(model, x, lengths):
    with torch.no_grad():
        return [model(x[i : i + 1, : lengths[i]]).reshape(-1).numpy() for i in range(len(lengths))]


@pytest.mark.parametrize("kind", ["gru", "bilstm", "tokens"])
def test_predict_and_trace_equal_each_sequence_run_alone(kind):
    model, (x, lengths) = _model(kind), _data(kind)
    ref = np.stack(_alone(model, x, lengths))
    pred = rv.predict(model, x, lengths).reshape(len(lengths), -1)
    np.testing.assert_allclose(pred, ref, atol=1e-5, err_msg=kind)
    tr = rv.trace(model, x, lengths, gates=True)
    np.testing.assert_allclose(tr.logits.reshape(len(lengths), -1), ref, atol=1e-5, err_msg=kind)
    rnn = model.gru if kind == "gru" else model.lstm
    for i, n in enumerate(lengths):
        xi = x[i : i + 1, :n]
        with torch.no_grad():
            own = rnn(model.embedding(xi) if kind == "tokens" else xi)[0][0].numpy()
        np.testing.assert_allclose(tr.hidden[i, :n], own, atol=1e-5, err_msg=f"{kind} sequence {i}")
        assert np.isnan(tr.hidden[i, n:]).all()
        alone = rv.trace(model, xi, gates=True)  # no padding at all: the path checked against nn.GRU/LSTM
        for name in tr.keys():
            np.testing.assert_allclose(tr[name][i, :n], alone[name][0], atol=1e-5, err_msg=f"{kind} {name} {i}")
            assert np.isnan(tr[name][i, n:]).all()


def test_predicted_classes_are_the_sequences_own():
    model, (x, lengths) = _model("gru"), _data("gru", seed=3)
    ref = np.stack(_alone(model, x, lengths)).argmax(1)
    assert (rv.predict(model, x, lengths).argmax(1) == ref).all()


@pytest.mark.parametrize("kind", ["gru", "bilstm", "tokens"])
@pytest.mark.parametrize("method", METHODS)
def test_every_contribution_method_equals_each_sequence_run_alone(kind, method):
    model, (x, lengths) = _model(kind), _data(kind)
    opts = {"steps": 16} if method == "integrated_gradients" else {}
    scores = rv.contributions(model, x, method=method, lengths=lengths, **opts)
    for i, n in enumerate(lengths):
        own = rv.contributions(model, x[i : i + 1, :n], method=method, **opts)[0]
        np.testing.assert_allclose(scores[i, :n], own, atol=2e-5, rtol=1e-4, err_msg=f"{kind} {method} {i}")
        assert np.isnan(scores[i, n:]).all()


def test_one_forward_per_distinct_length():
    model, (x, lengths) = _model("gru"), _data("gru")
    calls = []
    handle = model.register_forward_pre_hook(lambda mod, args: calls.append(args[0].shape[1]))
    try:
        rv.predict(model, x, lengths)
    finally:
        handle.remove()
    assert sorted(calls) == sorted(set(lengths.tolist()))


def test_a_model_that_takes_lengths_still_gets_the_padded_batch():
    class Packed(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 5, batch_first=True)
            self.fc = nn.Linear(5, 2)

        def forward(self, x, lengths):
            packed = nn.utils.rnn.pack_padded_sequence(x, torch.as_tensor(lengths).cpu(), batch_first=True)
            _, h = self.gru(packed)
            return self.fc(h[-1])

    torch.manual_seed(0)
    model, (x, lengths) = Packed().eval(), _data("gru")
    shapes = []
    handle = model.register_forward_pre_hook(lambda mod, args: shapes.append(tuple(args[0].shape)))
    try:
        pred = rv.predict(model, x, lengths)
    finally:
        handle.remove()
    assert shapes == [tuple(x.shape)]
    ref = np.stack(_alone_packed(model, x, lengths))
    np.testing.assert_allclose(pred, ref, atol=1e-5)


def _alone_packed(model, x, lengths):
    with torch.no_grad():
        return [model(x[i : i + 1, : lengths[i]], [int(lengths[i])])[0].numpy() for i in range(len(lengths))]
