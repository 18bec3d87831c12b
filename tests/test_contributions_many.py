"""rv.contributions_many: several methods from one call. grad_norm, grad_x_state and input_x_grad
share one forward and one backward pass; the scores are checked against the per-sequence recipe
users write (GRUCell / LSTMCell loops with retain_grad), not against the one-method path."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from test_contributions import _usual_recipe

import rnnviz_core as rv
from rnnviz_core.errors import InputError, ModelError


class Net(nn.Module):
    def __init__(self, cell="GRU", F=3, H=5, C=3):
        super().__init__()
        self.rnn = getattr(nn, cell)(F, H, batch_first=True)
        self.head = nn.Linear(H, C)

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        idx = torch.full((x.shape[0],), x.shape[1] - 1) if lengths is None else lengths.long() - 1
        return self.head(out[torch.arange(x.shape[0]), idx])


def _recipe(model: Net, x, L, cls) -> dict:
    """The per-sequence recipe of test_contributions (a cell with the module's weights, one
    sequence at a time, retain_grad on every h_t), by method."""
    gn, gxs, ixg = _usual_recipe(model, x, L, cls)
    model.zero_grad(set_to_none=True)
    return {"grad_norm": gn, "grad_x_state": gxs, "input_x_grad": ixg}


def _data(N=5, T=9, F=3):
    g = torch.Generator().manual_seed(3)
    return torch.randn(N, T, F, generator=g), np.array([T, 6, 1, T - 1, 4][:N])


@pytest.mark.parametrize("cell", ["GRU", "LSTM"])
@pytest.mark.parametrize("batch_size", [None, 2])
def test_shared_pass_matches_the_usual_recipe(cell, batch_size, monkeypatch):
    torch.manual_seed(0)
    model = Net(cell)
    x, L = _data()
    calls = []
    real = torch.autograd.grad

    def spy(outputs, inputs, *a, **k):
        calls.append(len(inputs))
        return real(outputs, inputs, *a, **k)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    methods = ["grad_norm", "grad_x_state", "input_x_grad"]
    got = rv.contributions_many(model, x, methods, L, batch_size=batch_size, device="cpu", return_info=True)
    monkeypatch.undo()
    # one backward pass per chunk of rows, to the state probe and to x together
    assert calls == [2] * (1 if batch_size is None else 3)
    with torch.no_grad():
        pred = model(x, torch.as_tensor(L)).argmax(1).numpy()
    ref = _recipe(model, x, L, pred)
    for m in methods:
        scores, info = got[m]
        assert info["method"] == m and scores.shape == (5, 9) and scores.dtype == np.float32
        np.testing.assert_array_equal(info["target"], pred)
        for i, n in enumerate(L):
            np.testing.assert_allclose(scores[i, :n], ref[m][i], rtol=1e-4, atol=1e-6, err_msg=f"{m}, row {i}")
            assert np.isnan(scores[i, n:]).all(), f"{m}: not NaN past length, row {i}"


def test_other_methods_and_options_run_on_their_own():
    torch.manual_seed(1)
    model = Net()
    x, L = _data()
    got = rv.contributions_many(model, x, ["grad_norm", "occlusion", "input_x_grad"], L,
                                method_options={"input_x_grad": {"per_feature": True}})
    assert list(got) == ["grad_norm", "occlusion", "input_x_grad"]
    assert got["input_x_grad"].shape == (5, 9, 3)       # per feature: its own pass
    # occlusion by hand on row 0, step 2: the logit of the predicted class drops by the score
    with torch.no_grad():
        lt = torch.as_tensor(L)
        z = model(x, lt)
        k = int(z[0].argmax())
        x2 = x.clone()
        x2[0, 2] = 0.0
        drop = float(z[0, k] - model(x2, lt)[0, k])
    assert got["occlusion"][0, 2] == pytest.approx(drop, rel=1e-4, abs=1e-6)


def test_token_ids_get_input_x_grad_from_the_embedding_output():
    class Tok(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 4)
            self.rnn = nn.GRU(4, 6, batch_first=True)
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            out, _ = self.rnn(self.emb(x))
            return self.head(out[:, -1])

    torch.manual_seed(2)
    model = Tok()
    ids = torch.randint(1, 20, (3, 7))
    got = rv.contributions_many(model, ids, ["grad_norm", "input_x_grad"])
    # input_x_grad of token ids: E * dE summed over the embedding, by hand for row 0
    e = model.emb(ids[:1]).detach().requires_grad_(True)
    out, _ = model.rnn(e)
    z = model.head(out[:, -1])
    z[0, int(z[0].argmax())].backward()
    np.testing.assert_allclose(got["input_x_grad"][0], (e * e.grad).sum(-1)[0].detach().numpy(), rtol=1e-4, atol=1e-6)
    assert np.isfinite(got["grad_norm"]).all() and (got["grad_norm"] >= 0).all()


def test_a_model_that_detaches_x_gets_input_x_grads_own_error():
    class Detach(Net):
        def forward(self, x, lengths=None):
            return super().forward(x.detach(), lengths)

    model = Detach()
    x, L = _data()
    with pytest.raises(ModelError, match="does not depend differentiably on x"):
        rv.contributions_many(model, x, ["grad_norm", "input_x_grad"], L)
    only = rv.contributions_many(model, x, ["grad_norm"], L)     # the states' gradient still works
    assert np.isfinite(only["grad_norm"][0]).all()


def test_unknown_method_is_named():
    with pytest.raises(InputError, match="saliency"):
        rv.contributions_many(Net(), _data()[0], ["grad_norm", "saliency"])
