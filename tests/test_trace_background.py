"""Gates and cell states computed later (the app starts that in a background thread): computed
once when several threads ask at once, and equal to a trace that computed them at first."""
from __future__ import annotations

import threading

import numpy as np
import torch
from torch import nn

from rnnviz_core.trace import predict, trace


def test_arrays_asked_by_several_threads_are_computed_once_and_equal_an_eager_trace():
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 5, num_layers=2, batch_first=True)
            self.fc = nn.Linear(5, 2)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out[:, -1])

    model = Net().eval()
    x = np.random.default_rng(0).normal(size=(9, 7, 3)).astype(np.float32)
    ref = trace(model, x, gates=True, device="cpu")
    lazy = trace(model, x, gates=False, device="cpu")
    assert not lazy.arrays_loaded
    calls = []
    inner = lazy._loader

    def counted():
        calls.append(1)
        return inner()

    lazy._loader = counted
    got = []
    threads = [threading.Thread(target=lambda: got.append(lazy.arrays)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and lazy.arrays_loaded
    assert all(g is got[0] for g in got)
    assert set(got[0]) == set(ref.arrays)
    for k in ref.arrays:
        np.testing.assert_allclose(got[0][k], ref.arrays[k], rtol=1e-5, atol=1e-6, equal_nan=True)
    # the trace's outputs are the model's own fused run: what predict returns (the app's predictions)
    np.testing.assert_array_equal(lazy.logits, predict(model, x, device="cpu"))
    with torch.no_grad():
        np.testing.assert_allclose(lazy.logits, model(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
