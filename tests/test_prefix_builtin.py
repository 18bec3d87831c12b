"""prefix_outputs of a built-in-family model (one forward, the head on a running reading of the
outputs) against the model itself run on every prefix, and against the general restart path."""
import numpy as np
import pytest
import torch

import rnnviz_core.restart as rs
from rnnviz_core.models import ModelConfig, build_model

CASES = [
    dict(cell="GRU", readout="last"),
    dict(cell="LSTM", num_layers=2, readout="h_n"),
    dict(cell="GRU", readout="mean", encoder="linear", encoder_size=6),
    dict(cell="RNN_TANH", readout="max", head="mlp", head_hidden=5),
    dict(cell="GRU", readout="mean", task="regression", num_outputs=1),
    dict(cell="LSTM", readout="max", encoder="embedding", encoder_size=4, vocab_size=11, input_size=1),
]


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c['cell']}-{c['readout']}-{c.get('encoder')}")
def test_builtin_prefix_outputs_equal_the_model_on_each_prefix(cfg):
    torch.manual_seed(7)
    cfg = {"input_size": 3, "hidden_size": 8, "num_outputs": 3, **cfg}
    model = build_model(ModelConfig(**cfg)).eval()
    assert rs._cumulative_head(model)
    n, T = 5, 11
    lengths = torch.tensor([11, 4, 7, 1, 9])
    if cfg.get("encoder") == "embedding":
        x = torch.randint(0, cfg["vocab_size"], (n, T))
    else:
        x = torch.randn(n, T, cfg["input_size"])
    po = rs.prefix_outputs(model, x, lengths)
    k = 1 if cfg.get("task") == "regression" else cfg["num_outputs"]
    assert po.shape == (n, T, k)
    with torch.no_grad():
        for i in range(n):
            for t in range(int(lengths[i])):
                ref = model(x[i:i + 1, :t + 1], torch.tensor([t + 1])).reshape(-1).numpy()
                assert np.abs(po[i, t] - ref).max() < 1e-5, (i, t)
            assert np.isnan(po[i, int(lengths[i]):]).all()


def test_bidirectional_model_takes_the_general_path():
    torch.manual_seed(8)
    model = build_model(ModelConfig(input_size=2, hidden_size=5, bidirectional=True, readout="last")).eval()
    assert not rs._cumulative_head(model)
    x, lengths = torch.randn(3, 6, 2), torch.tensor([6, 3, 5])
    po = rs.prefix_outputs(model, x, lengths)
    with torch.no_grad():
        for i in range(3):
            for t in range(int(lengths[i])):
                ref = model(x[i:i + 1, :t + 1], torch.tensor([t + 1])).reshape(-1).numpy()
                assert np.abs(po[i, t] - ref).max() < 1e-5


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c['cell']}-{c['readout']}-{c.get('encoder')}")
def test_prefix_outputs_from_a_traces_states_equal_the_model_on_each_prefix(cfg):
    """Given the trace's last-layer states (what the bundle worker has), no second run: the head
    on them still equals the model run on every prefix."""
    import rnnviz_core as rv
    torch.manual_seed(8)
    cfg = {"input_size": 3, "hidden_size": 8, "num_outputs": 3, **cfg}
    model = build_model(ModelConfig(**cfg)).eval()
    n, T = 5, 11
    lengths = torch.tensor([11, 4, 7, 1, 9])
    if cfg.get("encoder") == "embedding":
        x = torch.randint(0, cfg["vocab_size"], (n, T))
    else:
        x = torch.randn(n, T, cfg["input_size"])
    h = rv.trace(model, x, lengths).get("h", layer=-1, direction="fwd")   # NaN past each length
    calls = []
    handle = model.rnn.register_forward_hook(lambda *a: calls.append(1))
    try:
        po = rs.prefix_outputs(model, x, lengths, states=h)
    finally:
        handle.remove()
    assert not calls                                  # the recurrence did not run again
    with torch.no_grad():
        for i in range(n):
            for t in range(int(lengths[i])):
                ref = model(x[i:i + 1, :t + 1], torch.tensor([t + 1])).reshape(-1).numpy()
                assert np.abs(po[i, t] - ref).max() < 1e-5, (i, t)
            assert np.isnan(po[i, int(lengths[i]):]).all()
