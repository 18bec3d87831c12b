"""A model class of the user's own, written out as a user would: an attention GRU with a conv
front end (nothing the built-in family can rebuild from a state dict), its training script's
state dict, its factory module and the test data. Shared by the ``rnnviz app`` / ``rv.show``
tests (app and browser)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

MODULE = "my_attn_nets"
FACTORY = f"{MODULE}:make_model"

MODULE_SOURCE = '''
"""The user's own model code (written by the test)."""
import os
import pathlib

import torch
from torch import nn

# A marker that this module was imported: the tests check that only a launch imports it.
_marker = os.environ.get("RNNVIZ_TEST_IMPORT_MARKER")
if _marker:
    pathlib.Path(_marker).write_text("imported")


class AttnConvGRU(nn.Module):
    """Conv1d front end -> GRU -> additive attention over the valid steps -> linear head."""

    def __init__(self, n_features=3, channels=8, hidden=12, n_classes=2):
        super().__init__()
        self.conv = nn.Conv1d(n_features, channels, kernel_size=3, padding=1)
        self.gru = nn.GRU(channels, hidden, batch_first=True)
        self.score = nn.Linear(hidden, 1)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x, lengths=None):
        z = torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)   # (N, T, C)
        out, _ = self.gru(z)                                          # (N, T, H)
        s = self.score(out).squeeze(-1)                               # (N, T)
        if lengths is not None:
            t = torch.arange(x.shape[1], device=x.device)
            s = s.masked_fill(t[None, :] >= lengths.to(x.device)[:, None], float("-inf"))
        w = torch.softmax(s, dim=1)
        return self.head((w.unsqueeze(-1) * out).sum(1))              # (N, classes)


def make_model():
    return AttnConvGRU()
'''


def task(n: int = 48, t: int = 14, f: int = 3, seed: int = 0):
    """Sequences of varying length; class 1 when feature 0 summed over the valid steps is > 0."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(6, t + 1, size=n)
    X = rng.normal(size=(n, t, f)).astype(np.float32)
    for i, n_i in enumerate(lengths):
        X[i, n_i:] = 0.0
    y = (X[:, :, 0].sum(1) > 0).astype(np.int64)
    return X, lengths.astype(np.int64), y


def write_files(folder: Path, marker: Path | None = None, train_steps: int = 10):
    """Write the module, a trained state dict and the data into ``folder``.

    Returns ``dict(module, weights, data, accuracy, model)``: ``accuracy`` is what the training
    script itself measures on the data (plain torch: argmax of the forward with lengths).
    """
    import importlib
    import os
    import sys

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODULE}.py").write_text(MODULE_SOURCE)
    X, lengths, y = task()
    np.savez(folder / "test_data.npz", X=X, lengths=lengths, y=y, class_names=np.array(["low", "high"]))
    old = os.environ.pop("RNNVIZ_TEST_IMPORT_MARKER", None)  # the test's own import is not the app's
    sys.path.insert(0, str(folder))
    try:
        sys.modules.pop(MODULE, None)
        mod = importlib.import_module(MODULE)
        torch.manual_seed(0)
        model = mod.make_model()
        opt = torch.optim.Adam(model.parameters(), lr=0.03)
        xt, lt, yt = torch.from_numpy(X), torch.from_numpy(lengths), torch.from_numpy(y)
        for _ in range(train_steps):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xt, lt), yt)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(xt, lt).argmax(1) == yt).float().mean())
        torch.save(model.state_dict(), folder / "weights.pt")
        torch.save(model, folder / "whole_model.pt")   # a pickle: loading it imports the module
    finally:
        sys.path.remove(str(folder))
        if old is not None:
            os.environ["RNNVIZ_TEST_IMPORT_MARKER"] = old
    if marker is not None and marker.exists():
        marker.unlink()
    return {"module": folder / f"{MODULE}.py", "weights": folder / "weights.pt", "data": folder / "test_data.npz",
            "pickle": folder / "whole_model.pt",
            "accuracy": acc, "model": model}
