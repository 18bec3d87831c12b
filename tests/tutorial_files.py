"""Files made the way tutorials make them, for the own-files tests (bare and in the browser).

Each model is a tutorial-style class (``self.gru``/``self.fc`` reading ``out[:, -1]``;
``self.lstm``/``self.linear`` reading ``h[-1]``; a bidirectional GRU with a mean-pooling head),
trained a little on a toy task and saved with ``torch.save(model.state_dict(), path)``. The data
is a UCR/UEA ``.ts`` file whose ``@classLabel`` line declares string class names in an order
that is not sorted (the order the training script used), and a long-form CSV whose id and label
columns rnnviz cannot guess. The accuracy each "script" prints is the reference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ["zebra", "apple", "mango"]        # declared order (not sorted): output 0 is "zebra"
F, T, N = 6, 12, 120


# ----------------------------------------------------------------------------- the "user's" files
def _toy(seed: int):
    """Three classes; class c shifts feature c (and c+3) a little at every step, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, N)
    X = rng.normal(0, 1, (N, T, F)).astype(np.float32)
    for c in range(3):
        X[y == c, :, c] += 0.25
        X[y == c, :, c + 3] -= 0.25
    return X, y


def _write_ts(path: Path, X, y) -> None:
    lines = ["@problemName toy", "@timeStamps false", "@missing false", "@univariate false",
             f"@dimensions {F}", "@equalLength true", f"@seriesLength {T}",
             f"@classLabel true {' '.join(CLASSES)}", "@data"]
    for xi, yi in zip(X, y):
        dims = [",".join(f"{v:.5f}" for v in xi[:, j]) for j in range(F)]
        lines.append(":".join(dims) + ":" + CLASSES[yi])
    path.write_text("\n".join(lines) + "\n")


def _train(model, X, y, epochs: int = 30):
    import torch
    torch.manual_seed(0)
    torch.set_num_threads(1)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())   # what the script prints


def _models():
    import torch
    from torch import nn

    class GRUNet(nn.Module):                      # the PyTorch-tutorial shape
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(F, 16, batch_first=True)
            self.fc = nn.Linear(16, 3)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out[:, -1])

    class LSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(F, 16, batch_first=True)
            self.linear = nn.Linear(16, 3)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.linear(h[-1])

    class BiGRUMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(F, 12, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(24, 3)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out.mean(dim=1))

    torch.manual_seed(1)
    return {"gru": GRUNet(), "lstm": LSTMNet(), "bigru_mean": BiGRUMean()}


def make_files(d: Path) -> dict:
    """Write the files into ``d``; return name -> path, or (path, accuracy the script printed)."""
    import torch
    X, y = _toy(7)
    out = {"ts": d / "toy_TEST.ts"}
    _write_ts(out["ts"], X, y)
    for name, model in _models().items():
        acc = _train(model, X, y)
        path = d / f"{name}.pt"
        torch.save(model.state_dict(), path)
        out[name] = (path, f"{acc:.1%}")
    # a long-form CSV whose id and label columns rnnviz cannot guess; labels sorted as LabelEncoder does
    import pandas as pd
    rows = []
    names = sorted(CLASSES)
    for i in range(N):
        for t in range(T):
            rows.append({"patient": f"p{i:03d}", "t": t, "diagnosis": names[y[i]],
                         **{f"m{j}": X[i, t, j] for j in range(F)}})
    out["csv"] = d / "long_form.csv"
    pd.DataFrame(rows).to_csv(out["csv"], index=False)
    model = _models()["gru"]
    acc = _train(model, X, y)          # trained on labels in sorted order: class index = sorted position
    path = d / "gru_csv.pt"
    torch.save(model.state_dict(), path)
    out["gru_csv"] = (path, f"{acc:.1%}")
    return out




# ----------------------------------------------------------------------------- a regression pair
def _regression_data(seed: int = 3, n: int = 150, t: int = 12, f: int = 3):
    """Known answer: the target is the sum of feature 0 over steps 3 to 6 (a marked window), scaled."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, t, f)).astype(np.float32)
    y = (0.5 * X[:, 3:7, 0].sum(1) + rng.normal(0, 0.1, n)).astype(np.float32)
    return X, y


def make_regression_files(d: Path) -> dict:
    """A tutorial GRU regressor (``self.gru``/``self.fc``, ``out[:, -1]``, output [N]) saved with
    ``torch.save(model.state_dict(), ...)``, and a long-form CSV (id, step, features, a ``target``
    per sequence). Returns paths, the predictions and targets the "script" computed."""
    import pandas as pd
    import torch
    from torch import nn

    X, y = _regression_data()
    n, t, f = X.shape

    class GRURegressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(f, 16, batch_first=True)
            self.fc = nn.Linear(16, 1)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out[:, -1]).squeeze(-1)

    torch.manual_seed(2)
    torch.set_num_threads(1)
    model = GRURegressor()
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(80):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(xt).numpy()
    out = {"model": d / "gru_regressor.pt", "csv": d / "regression.csv", "pred": pred, "y": y}
    torch.save(model.state_dict(), out["model"])
    rows = [{"id": f"s{i:03d}", "step": s, **{f"x{j}": float(X[i, s, j]) for j in range(f)}, "target": float(y[i])}
            for i in range(n) for s in range(t)]
    pd.DataFrame(rows).to_csv(out["csv"], index=False)
    return out
