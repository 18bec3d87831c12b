"""Files at real sizes, made the way tutorials make them (tests/e2e/test_sizes.py, bench/bench_sizes.py).

Each case is a tutorial-style model class (``self.gru``/``self.fc`` reading ``out[:, -1]``,
``self.lstm``/``self.fc`` reading ``h[-1]``, an embedding before an LSTM, a GRU regressor),
trained a few full-batch epochs on SHORT sequences of the same generator (so it takes seconds;
the recurrence's weights do not depend on the length) and saved with
``torch.save(model.state_dict(), path)``. The data is then written at the case's size in the
format a tutorial writes: ``.npz`` with ``X``/``y``/``lengths``, a UCR/UEA ``.ts`` file, a
long-form CSV (one row per step), a CSV with a text column plus a ``.json`` vocabulary.

The task is the one of ``tests/tutorial_files.py``: class ``c`` shifts feature ``c`` a little at
every step (text: class words are a little more common), so the last state carries the class at
any length; regression: the target is the mean of feature 0. What the "script" prints (accuracy
or RMSE on the written data, each sequence run at its own length) is returned as the reference.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CLASSES = ["cold", "mild", "warm"]            # sorted order = class index (LabelEncoder)


@dataclass(frozen=True)
class Case:
    """One size case: what is written and how the model is shaped."""

    key: str
    steps: int
    units: int
    features: int = 3
    n: int = 16                       # sequences written
    cell: str = "GRU"
    layers: int = 1
    bidirectional: bool = False
    fmt: str = "npz"                  # "npz", "ts", "csv_long", "text_csv"
    task: str = "classification"      # or "regression"
    varied_lengths: bool = False      # lengths between 3/4 of steps and steps (npz only)
    train_epochs: int = 15
    train_n: int = 96                 # short training sequences
    lr: float = 0.02                  # Adam's step size (the wide case: small, see MATRIX)
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        kind = "words" if self.fmt == "text_csv" else "steps"
        bi = " bidirectional" if self.bidirectional else ""
        lay = f" {self.layers} layers" if self.layers > 1 else ""
        return (f"{self.key}: {self.steps:,} {kind} x {self.units} units{bi}{lay} x {self.features} features, "
                f"{self.n:,} sequences ({self.cell}, {self.fmt}, {self.task})")


#: the issue's browser matrix (small N: the trace budget samples above it anyway)
MATRIX = [
    Case("long", steps=2000, units=32, n=12, fmt="npz", varied_lengths=True),
    Case("wide", steps=300, units=512, n=8, cell="GRU", layers=2, bidirectional=True, fmt="ts", features=4,
         train_epochs=2, train_n=24, lr=1e-3,
         note="trained 2 small full-batch steps only (its accuracy is not the point here); at lr 0.02 its 512-unit "
              "recurrence became chaotic: a 1e-6 change of one input moved the logits by 18, so no two programs "
              "could agree on its predictions"),
    Case("features", steps=60, units=32, n=24, cell="LSTM", features=200, fmt="csv_long"),
    Case("text", steps=2000, units=32, n=8, cell="LSTM", features=1, fmt="text_csv"),
    Case("regression", steps=150, units=32, n=24, fmt="npz", features=2, task="regression", varied_lengths=True),
]
#: the issue's performance targets (bench only)
TARGETS = [
    Case("target_1000", steps=1000, units=128, n=1000, fmt="npz", features=4, train_epochs=5),
    Case("target_10000", steps=10_000, units=32, n=100, fmt="npz", features=4),
]
CASES = {c.key: c for c in MATRIX + TARGETS}

VOCAB = ["<pad>", "<unk>"] + [f"w{i:03d}" for i in range(120)]
CLASS_WORDS = {0: ["w000", "w001", "w002"], 1: ["w003", "w004", "w005"], 2: ["w006", "w007", "w008"]}


# ----------------------------------------------------------------------------- data
def _numeric(case: Case, n: int, steps: int, seed: int):
    """X float32 [n, steps, F], y, lengths [n]."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, steps, case.features)).astype(np.float32)
    if case.varied_lengths:
        lengths = rng.integers(max(1, steps * 3 // 4), steps + 1, n)
        lengths[0] = steps
    else:
        lengths = np.full(n, steps)
    if case.task == "regression":
        X[..., 0] += rng.normal(0, 0.5, (n, 1)).astype(np.float32)       # a level per sequence
        valid = np.arange(steps)[None, :] < lengths[:, None]
        y = ((X[..., 0] * valid).sum(1) / lengths).astype(np.float32)    # mean of feature 0 over its steps
    else:
        y = rng.integers(0, len(CLASSES), n)
        for c in range(len(CLASSES)):
            X[y == c, :, c % case.features] += 0.5
    X[np.arange(steps)[None, :] >= lengths[:, None]] = 0.0
    return X, y, lengths


def _text(case: Case, n: int, words: int, seed: int):
    """ids int64 [n, words] (no padding: every text has ``words`` words), y."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASSES), n)
    ids = rng.integers(2, len(VOCAB), (n, words))
    for i in range(n):
        hot = rng.random(words) < 0.15
        ids[i, hot] = [VOCAB.index(w) for w in rng.choice(CLASS_WORDS[int(y[i])], hot.sum())]
    return ids.astype(np.int64), y


# ----------------------------------------------------------------------------- models
def _model(case: Case):
    import torch
    from torch import nn

    F, H, C = case.features, case.units, len(CLASSES)
    out_size = 1 if case.task == "regression" else C

    class GRUNet(nn.Module):                        # the PyTorch-tutorial shape
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(F, H, num_layers=case.layers, batch_first=True, bidirectional=case.bidirectional)
            self.fc = nn.Linear(H * (2 if case.bidirectional else 1), out_size)

        def forward(self, x):
            out, _ = self.gru(x)
            y = self.fc(out[:, -1])
            return y.squeeze(-1) if out_size == 1 else y

    class LSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(F, H, num_layers=case.layers, batch_first=True)
            self.fc = nn.Linear(H, out_size)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.fc(h[-1])

    class TextLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(len(VOCAB), 16, padding_idx=0)
            self.lstm = nn.LSTM(16, H, batch_first=True)
            self.fc = nn.Linear(H, C)

        def forward(self, x):
            _, (h, _) = self.lstm(self.embedding(x))
            return self.fc(h[-1])

    torch.manual_seed(0)
    if case.fmt == "text_csv":
        return TextLSTM()
    return LSTMNet() if case.cell == "LSTM" else GRUNet()


def _fit(model, X, y, case: Case) -> None:
    import torch
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=case.lr)
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(case.train_epochs):
        opt.zero_grad()
        out = model(xt)
        loss = torch.nn.functional.mse_loss(out, yt) if case.task == "regression" else \
            torch.nn.functional.cross_entropy(out, yt)
        loss.backward()
        opt.step()
    model.eval()


def _script_score(model, X, y, lengths, case: Case) -> float:
    """What the training script prints: accuracy, or RMSE (each sequence run at its own length:
    the sequences of one length in one batch, in chunks of 64)."""
    import torch
    out = np.zeros((len(X), 1 if case.task == "regression" else len(CLASSES)))   # (N, C) or (N, 1)
    with torch.no_grad():
        for length in np.unique(lengths):
            rows = np.flatnonzero(lengths == length)
            for start in range(0, len(rows), 64):
                r = rows[start:start + 64]
                out[r] = model(torch.as_tensor(X[r, : int(length)])).reshape(len(r), -1).numpy()
    if case.task == "regression":
        return float(np.sqrt(np.mean((out[:, 0] - y) ** 2)))
    return float((out.argmax(1) == y).mean())


# ----------------------------------------------------------------------------- writers
def _write_npz(path: Path, X, y, lengths) -> None:
    np.savez_compressed(path, X=X, y=y, lengths=lengths.astype(np.int64))


def _write_ts(path: Path, X, y, case: Case) -> None:
    lines = ["@problemName sizes", "@timeStamps false", "@missing false", "@univariate false",
             f"@dimensions {case.features}", "@equalLength true", f"@seriesLength {case.steps}",
             f"@classLabel true {' '.join(CLASSES)}", "@data"]
    for xi, yi in zip(X, y):
        dims = [",".join(f"{v:.4f}" for v in xi[:, j]) for j in range(case.features)]
        lines.append(":".join(dims) + ":" + CLASSES[yi])
    path.write_text("\n".join(lines) + "\n")


def _write_csv_long(path: Path, X, y, case: Case) -> None:
    import pandas as pd
    n, t, f = X.shape
    frame = pd.DataFrame(X.reshape(n * t, f), columns=[f"sensor_{j:03d}" for j in range(f)]).round(4)
    frame.insert(0, "label", np.repeat(np.array(CLASSES)[y], t))
    frame.insert(0, "step", np.tile(np.arange(t), n))
    frame.insert(0, "sequence_id", np.repeat([f"seq{i:03d}" for i in range(n)], t))
    frame.to_csv(path, index=False)


def _write_text_csv(path: Path, ids, y) -> None:
    import pandas as pd
    texts = [" ".join(VOCAB[i] for i in row) for row in ids]
    pd.DataFrame({"review_id": [f"r{i:03d}" for i in range(len(ids))], "text": texts,
                  "sentiment": np.array(CLASSES)[y]}).to_csv(path, index=False)


def make_case(case: Case | str, d: Path) -> dict:
    """Write one case's files into ``d``.

    Returns ``{"model": path, "data": path, "vocab": path or None, "score": float, "case": Case,
    "facts": {...}}`` where ``score`` is what the training script printed (accuracy or RMSE on the
    written data) and ``facts`` the written data's own counts (sequences, steps, states = the sum of
    the lengths, units, features), computed here from the arrays.
    """
    import torch
    torch.set_num_threads(1)
    case = CASES[case] if isinstance(case, str) else case
    d.mkdir(parents=True, exist_ok=True)
    model = _model(case)
    train_steps = 30
    if case.fmt == "text_csv":
        Xtr, ytr = _text(case, case.train_n, train_steps, seed=1)
        X, y = _text(case, case.n, case.steps, seed=2)
        lengths = np.full(case.n, case.steps)
    else:
        Xtr, ytr, _ = _numeric(case, case.train_n, train_steps, seed=1)
        X, y, lengths = _numeric(case, case.n, case.steps, seed=2)
    if case.fmt in ("ts", "csv_long"):
        X = np.round(X, 4)                 # the text files keep 4 decimals: score what is written
    _fit(model, Xtr, ytr, case)
    score = _script_score(model, X, y, lengths, case)
    baseline = float(np.sqrt(np.mean((y - y.mean()) ** 2))) if case.task == "regression" else None
    out = {"case": case, "score": score, "baseline": baseline, "vocab": None, "model": d / f"{case.key}.pt",
           "facts": {"sequences": case.n, "steps": int(lengths.max()), "states": int(lengths.sum()),
                     "units": case.units, "features": case.features}}
    torch.save(model.state_dict(), out["model"])
    if case.fmt == "npz":
        out["data"] = d / f"{case.key}.npz"
        _write_npz(out["data"], X, y, lengths)
    elif case.fmt == "ts":
        out["data"] = d / f"{case.key}_TEST.ts"
        _write_ts(out["data"], X, y, case)
    elif case.fmt == "csv_long":
        out["data"] = d / f"{case.key}.csv"
        _write_csv_long(out["data"], X, y, case)
    else:
        out["data"] = d / f"{case.key}.csv"
        _write_text_csv(out["data"], X, y)
        out["vocab"] = d / "vocab.json"
        out["vocab"].write_text(json.dumps(VOCAB))
    return out
