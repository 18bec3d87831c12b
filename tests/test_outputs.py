"""rnnviz_core.outputs: outputs become classes in one place (a one-logit binary classifier by
its sign), and every head reading from one run equals the model run with that reading."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnviz_core.models import READOUTS, ModelConfig, build_model, with_readout
from rnnviz_core.outputs import outputs_by_readout, predicted_classes
from rnnviz_core.trace import predict


def test_predicted_classes_by_hand():
    logits = np.array([[0.2, 1.0, -3.0], [3.0, -1.0, 2.9], [-1.0, -2.0, -0.5]])
    assert predicted_classes(logits).tolist() == [1, 0, 2]
    # one logit, sigmoid: class 1 exactly when the logit is above 0 (probability above 1/2)
    one = np.array([-0.5, 2.0, 0.0, 1e-7, -30.0], dtype=np.float32)
    assert predicted_classes(one, n_classes=2).tolist() == [0, 1, 0, 1, 0]
    assert predicted_classes(one[:, None], n_classes=2).tolist() == [0, 1, 0, 1, 0]
    # an argmax over one column would call every sequence class 0: not what it does
    assert predicted_classes(np.array([[4.0], [-4.0]]), n_classes=2).tolist() == [1, 0]
    assert predicted_classes(one) is None                     # one number, no classes: regression
    assert predicted_classes(one, n_classes=3) is None        # one output cannot name 3 classes
    assert predicted_classes(logits, n_classes=2) is None     # 3 outputs for 2 classes


@pytest.mark.parametrize("cfg", [
    dict(cell="GRU", input_size=3, hidden_size=6, num_outputs=3),
    dict(cell="LSTM", input_size=3, hidden_size=5, num_layers=2, bidirectional=True, num_outputs=2),
    dict(cell="GRU", input_size=2, hidden_size=4, task="regression", num_outputs=1),
    dict(cell="LSTM", input_size=1, hidden_size=4, encoder="embedding", encoder_size=5, vocab_size=20,
         num_outputs=2),
])
def test_every_reading_equals_the_model_run_with_it(cfg):
    torch.manual_seed(0)
    model = build_model(ModelConfig(**cfg)).eval()
    rng = np.random.default_rng(1)
    n, t = 37, 15
    if cfg.get("encoder") == "embedding":
        X = rng.integers(0, 20, size=(n, t)).astype(np.int64)
    else:
        X = rng.normal(size=(n, t, cfg["input_size"])).astype(np.float32)
    lengths = rng.integers(1, t + 1, size=n)
    outs = outputs_by_readout(model, X, lengths, batch_size=8)       # several chunks
    assert set(outs) == set(READOUTS)
    for key in READOUTS:
        ref = predict(with_readout(model, key), X, lengths, device="cpu")
        assert outs[key].shape == ref.shape
        np.testing.assert_allclose(outs[key], ref, rtol=1e-5, atol=1e-6)
    assert model.config.readout == "last" and not model.training    # the model is unchanged
