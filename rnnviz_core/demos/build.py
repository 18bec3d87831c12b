"""Regenerate the shipped demo models and data, deterministically.

    python -m rnnviz_core.demos.build            # all demos
    python -m rnnviz_core.demos.build --only race

Each demo trains on data generated (or read) here and ships only its held-out test set, so
the accuracy recorded in ``files/demos.json`` is the accuracy on the shipped data file,
measured after reloading both files through ``load_model``/``load_data`` exactly as an
upload would be. Training is seeded and single-threaded; on the same torch build the files
come out byte-identical.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..arrays import valid_mask
from ..data import SequenceDataset, from_arrays
from ..models import ModelConfig, build_model, save_model
from . import DEMO_FILES, DEMOS, evaluate_demo
from .tasks import (
    REVIEW_CLASSES,
    make_burst_task,
    make_marker_task,
    make_race_form,
    make_reviews,
    make_window_sum_task,
    review_vocabulary,
)


# ------------------------------------------------------------------------------ training
def normalization_of(ds: SequenceDataset) -> dict:
    """Per-feature mean/std over the valid steps of ``ds`` (std floored at 1e-3)."""
    valid = valid_mask(ds.lengths, ds.max_len)                           # (N, T)
    v = ds.X[valid].astype(np.float64)                                  # (steps, F)
    return {"mean": v.mean(0).tolist(), "std": np.maximum(v.std(0), 1e-3).tolist()}


def train(model: nn.Module, ds: SequenceDataset, *, epochs: int, lr: float = 3e-3, batch_size: int = 64,
          seed: int = 0, weight_decay: float = 0.0, log: str = "", augment=None) -> nn.Module:
    """Plain Adam + cross-entropy on (X, lengths, y), seeded; returns the model in eval mode.

    ``augment(idx, xb, rng) -> xb`` (optional) changes each batch's inputs before the step.
    A regression model (``config.task == "regression"``) is trained on mean squared error instead.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    X = torch.from_numpy(ds.X)
    L = torch.from_numpy(ds.lengths)
    Y = torch.from_numpy(ds.y)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    regression = getattr(getattr(model, "config", None), "task", None) == "regression"
    loss_fn = nn.MSELoss() if regression else nn.CrossEntropyLoss()
    for epoch in range(epochs):
        model.train()
        perm = rng.permutation(len(ds))
        total = 0.0
        for start in range(0, len(perm), batch_size):
            idx = torch.from_numpy(perm[start:start + batch_size])
            opt.zero_grad()
            xb = X[idx] if augment is None else augment(idx, X[idx], rng)
            loss = loss_fn(model(xb, L[idx]), Y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        if log and (epoch % 5 == 4 or epoch == epochs - 1):
            print(f"  [{log}] epoch {epoch + 1}/{epochs} loss {total / len(ds):.4f}", flush=True)
    return model.eval()


def accuracy(model: nn.Module, ds: SequenceDataset) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(ds.X), torch.from_numpy(ds.lengths)).argmax(-1).numpy()
    return float((pred == ds.y).mean())


# --------------------------------------------------------------------------------- demos
def _race_csv(ds: SequenceDataset, path: Path) -> None:
    df = ds.to_frame(id_col="dog_id", order_col="race_no", label_col="next_result")
    for c in ("position", "box", "days_since"):
        df[c] = df[c].round().astype(np.int64)
    df["time"] = df["time"].map(lambda v: f"{v:.2f}")
    df["weight"] = df["weight"].map(lambda v: f"{v:.1f}")
    path.write_text(df.to_csv(index=False, lineterminator="\n"))


def build_race(out: Path) -> None:
    full = make_race_form(6000, seed=20240)
    full.X[:, :, 1] = np.round(full.X[:, :, 1], 2)      # the CSV keeps time to 0.01 s
    full.X[:, :, 2] = np.round(full.X[:, :, 2], 1)      # and weight to 0.1 kg
    tr, te = full.subset(np.arange(5000)), full.subset(np.arange(5000, 6000))
    cfg = ModelConfig(cell="GRU", input_size=5, hidden_size=32, head="linear", num_outputs=3)
    torch.manual_seed(1)
    model = build_model(cfg, class_names=full.class_names, feature_names=full.feature_names,
                        normalization=normalization_of(tr))
    train(model, tr, epochs=25, lr=3e-3, batch_size=128, seed=1, log="race")
    print(f"  race in-memory test accuracy {accuracy(model, te):.4f}")
    save_model(model, out / DEMO_FILES["race"][0])
    _race_csv(te, out / DEMO_FILES["race"][1])


def build_marker(out: Path) -> None:
    tr, _ = make_marker_task(8000, seed=1)
    te, _ = make_marker_task(1000, seed=2)
    cfg = ModelConfig(cell="GRU", input_size=3, hidden_size=48, head="mlp", head_hidden=32, num_outputs=2)
    torch.manual_seed(2)
    model = build_model(cfg, class_names=tr.class_names, feature_names=tr.feature_names)
    train(model, tr, epochs=40, lr=3e-3, seed=2, log="marker")
    print(f"  marker in-memory test accuracy {accuracy(model, te):.4f}")
    save_model(model, out / DEMO_FILES["marker"][0])
    _save_npz(te, out / DEMO_FILES["marker"][1])


def build_burst(out: Path) -> None:
    # trained on short recordings (96-160 steps, the same generator) so it trains in about a minute on
    # one core; max pooling over the steps makes the burst detector independent of the length, and
    # the shipped test set is the long recordings (400-480 steps) it was made for
    tr, _ = make_burst_task(2000, t_min=96, t_max=160, seed=21)
    te, _ = make_burst_task(240, seed=22)
    cfg = ModelConfig(cell="GRU", input_size=2, hidden_size=32, head="linear", num_outputs=3, readout="max")
    torch.manual_seed(6)
    model = build_model(cfg, class_names=tr.class_names, feature_names=tr.feature_names,
                        normalization=normalization_of(tr))
    train(model, tr, epochs=8, lr=1e-2, batch_size=128, seed=6, log="burst")
    print(f"  burst in-memory test accuracy {accuracy(model, te):.4f}")
    save_model(model, out / DEMO_FILES["burst"][0])
    _save_npz(te, out / DEMO_FILES["burst"][1])


def rmse(model: nn.Module, ds: SequenceDataset) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(ds.X), torch.from_numpy(ds.lengths)).numpy()
    return float(np.sqrt(np.mean((pred - ds.y) ** 2)))


def build_window_sum(out: Path) -> None:
    tr, _ = make_window_sum_task(4000, seed=31)
    te, _ = make_window_sum_task(500, seed=32)
    cfg = ModelConfig(cell="GRU", input_size=2, hidden_size=32, head="linear", num_outputs=1, task="regression")
    torch.manual_seed(7)
    model = build_model(cfg, feature_names=tr.feature_names)
    train(model, tr, epochs=12, lr=5e-3, batch_size=64, seed=7, log="window_sum")
    print(f"  window_sum in-memory test RMSE {rmse(model, te):.4f} (std of the targets {te.y.std():.4f})")
    save_model(model, out / DEMO_FILES["window_sum"][0])
    _save_npz(te, out / DEMO_FILES["window_sum"][1])


def _digits_split() -> tuple[SequenceDataset, SequenceDataset]:
    from sklearn.datasets import load_digits

    d = load_digits()
    X = d.images.astype(np.float32)                                    # (1797, 8, 8): rows as steps
    ds = from_arrays(X, y=d.target.astype(np.int64), ids=[f"digit{i:04d}" for i in range(len(X))],
                     feature_names=[f"col {j}" for j in range(8)], class_names=[str(i) for i in range(10)],
                     name="digits")
    perm = np.random.default_rng(0).permutation(len(ds))
    return ds.subset(np.sort(perm[:1300])), ds.subset(np.sort(perm[1300:]))


def build_digits(out: Path) -> None:
    tr, te = _digits_split()
    cfg = ModelConfig(cell="LSTM", input_size=8, hidden_size=64, head="linear", num_outputs=10)
    torch.manual_seed(3)
    model = build_model(cfg, class_names=tr.class_names, feature_names=tr.feature_names,
                        normalization=normalization_of(tr))
    train(model, tr, epochs=40, lr=3e-3, seed=3, log="digits")
    print(f"  digits in-memory test accuracy {accuracy(model, te):.4f}")
    save_model(model, out / DEMO_FILES["digits"][0])
    _save_npz(te, out / DEMO_FILES["digits"][1])


def build_vowels(out: Path) -> None:
    from ..data import load_data

    tr = load_data(out / "JapaneseVowels_TRAIN.ts")
    te = load_data(out / DEMO_FILES["vowels"][1], class_names=tr.class_names)
    cfg = ModelConfig(cell="LSTM", input_size=12, hidden_size=32, head="linear", num_outputs=len(tr.class_names))
    torch.manual_seed(4)
    model = build_model(cfg, class_names=tr.class_names, feature_names=tr.feature_names,
                        normalization=normalization_of(tr))
    train(model, tr, epochs=60, lr=3e-3, batch_size=32, seed=4, log="vowels")
    print(f"  vowels in-memory test accuracy {accuracy(model, te):.4f}")
    save_model(model, out / DEMO_FILES["vowels"][0])


def _save_npz(ds: SequenceDataset, path: Path) -> None:
    extra = {c: ds.groups[c].to_numpy() for c in ds.groups.columns}
    if ds.class_names is not None:                      # regression data has targets, no class names
        extra["class_names"] = np.array(ds.class_names, dtype=str)
    np.savez_compressed(path, X=ds.X, lengths=ds.lengths, y=ds.y, ids=ds.ids.astype(str),
                        feature_names=np.array(ds.feature_names, dtype=str), **extra)


def review_dataset(df, vocabulary: list[str], name: str = "text") -> SequenceDataset:
    """Token dataset of a reviews frame (:func:`~rnnviz_core.demos.tasks.make_reviews`).

    X int64 [N, T] of ids into ``vocabulary`` (``<pad>`` = 0 past each length), lengths [N],
    y int64 [N] indexing ``REVIEW_CLASSES``, groups ``negation``. The same arrays
    :func:`rnnviz_core.data.load_data` reads from the shipped CSV with the model's vocabulary.
    """
    index = {w: i for i, w in enumerate(vocabulary)}
    unk = index["<unk>"]
    words = [t.split() for t in df["text"]]
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    X = np.full((len(words), int(lengths.max())), index["<pad>"], dtype=np.int64)    # (N, T)
    for i, w in enumerate(words):
        X[i, :len(w)] = [index.get(t, unk) for t in w]
    y = np.array([REVIEW_CLASSES.index(v) for v in df["label"]], dtype=np.int64)
    import pandas as pd
    return SequenceDataset(X=X, lengths=lengths, y=y, ids=df["review_id"].to_numpy(),
                           groups=pd.DataFrame({"negation": df["negation"].to_numpy()}),
                           feature_names=["token"], class_names=list(REVIEW_CLASSES), name=name,
                           vocabulary=list(vocabulary))


def _filler_mask(ds: SequenceDataset) -> np.ndarray:
    """bool [N, T]: steps outside every sentiment phrase (negation .. sentiment word) and not padding."""
    from .tasks import NEGATIVE_WORDS, POSITIVE_WORDS, negated

    out = np.zeros(ds.X.shape, dtype=bool)
    for i in range(len(ds)):
        words = ds.tokens(i)
        keep = np.ones(len(words), dtype=bool)
        for j, w in enumerate(words):
            if w in POSITIVE_WORDS or w in NEGATIVE_WORDS:
                start = negated(words, j)
                keep[(j if start is None else start):j + 1] = False
        out[i, :len(words)] = keep
    return out


def build_text(out: Path) -> None:
    vocab = review_vocabulary()
    tr = review_dataset(make_reviews(4000, seed=11), vocab)
    te_frame = make_reviews(1000, seed=12)
    te = review_dataset(te_frame, vocab)
    cfg = ModelConfig(cell="LSTM", input_size=1, encoder="embedding", encoder_size=16, vocab_size=len(vocab),
                      hidden_size=32, head="linear", num_outputs=2, readout="last")
    torch.manual_seed(5)
    model = build_model(cfg, class_names=REVIEW_CLASSES, feature_names=["token"])
    model.vocabulary = list(vocab)
    # word dropout: filler words (never a sentiment phrase) become <pad> now and then, so the model
    # learns that <pad> says nothing, and occlusion / integrated gradients, whose baseline is the
    # <pad> token, compare each word with a neutral one
    droppable = torch.from_numpy(_filler_mask(tr))                          # (N, T)
    pad = vocab.index("<pad>")

    def word_dropout(idx, xb, rng):
        drop = torch.from_numpy(rng.random(tuple(xb.shape)) < 0.2) & droppable[idx]
        return torch.where(drop, torch.full_like(xb, pad), xb)

    train(model, tr, epochs=12, lr=5e-3, batch_size=64, seed=5, log="text", augment=word_dropout)
    print(f"  text in-memory test accuracy {accuracy(model, te):.4f}")
    save_model(model, out / DEMO_FILES["text"][0])
    (out / DEMO_FILES["text"][1]).write_text(te_frame.to_csv(index=False, lineterminator="\n"))


BUILDERS = {"race": build_race, "marker": build_marker, "digits": build_digits, "vowels": build_vowels,
            "text": build_text, "burst": build_burst, "window_sum": build_window_sum}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(BUILDERS), action="append", help="build only this demo (repeatable)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(__file__).parent / "files"
    out.mkdir(exist_ok=True)
    summary_path = out / "demos.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for key in args.only or [d.key for d in DEMOS]:
        t0 = time.time()
        print(f"building {key} ...", flush=True)
        BUILDERS[key](out)
        summary[key] = evaluate_demo(key)          # reloads through load_model/load_data
        print(f"  {key}: {summary[key]} ({time.time() - t0:.0f} s)", flush=True)
    ordered = {d.key: summary[d.key] for d in DEMOS if d.key in summary}
    summary_path.write_text(json.dumps(ordered, indent=2) + "\n")


if __name__ == "__main__":
    main()
