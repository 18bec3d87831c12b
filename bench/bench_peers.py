"""rnnviz's contributions beside time-interpret (tint) on tint's own HMM benchmark.

Reproduces tint's ``experiments/hmm`` protocol (time-interpret 0.3.0, as its main.py runs it):

* data: ``tint.datasets.HMM(n_folds=5, fold=0, seed=42)``: 800 train / 200 test sequences of 200
  steps and 3 features from a 2-state hidden Markov model; the label at each time is drawn from
  the one feature that matters in the current state; the true salient cells
  (``true_saliency``) are that feature at every step;
* model: tint's ``StateClassifier`` (GRU, 200 units, BatchNorm-ReLU-Dropout-Linear head, 2
  classes; copied below, without torchmetrics), trained as tint's ``StateClassifierNet``: 50
  epochs, Adam lr 1e-4, weight decay 1e-3, batches of 32 in the fold's order, each batch cut
  at one random time t and trained on the label at t, cross-entropy;
* explanations: for each time t, the predicted class of the prefix x[:t+1] is explained and
  the attribution of step t is kept (tint's ``TimeForwardTunnel``); tint's masks
  (ExtremalMask 500 epochs, DynaMask 150 epochs) explain every time's output at once, as its
  main.py runs them (``return_all=True``); every attribution is taken in absolute value;
* metrics: tint's white-box ``aup``, ``aur`` and ``roc_auc`` (attributions min-max normalised
  per sequence) against ``true_saliency``.

Everything runs in one process on one thread. rnnviz's occlusion and mask use
``at_steps=-1`` (only the last step of each prefix is scored, which is all the protocol
keeps); the occlusion scores are compared cell by cell with tint's.

Run (needs the ``bench`` extra: time-interpret 0.3.0, pytorch-lightning 1.9.5):
    PYTHONPATH=. python3 bench/bench_peers.py [--quick] [--skip-tint] [--demos]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)
warnings.filterwarnings("ignore")

import rnnviz_core as rv  # noqa: E402


class StateClassifier(nn.Module):
    """tint experiments/hmm/classifier.py StateClassifier (GRU, regres=True)."""

    def __init__(self, feature_size=3, n_state=2, hidden_size=200, dropout=0.5):
        super().__init__()
        self.hidden_size = hidden_size
        self.rnn = nn.GRU(feature_size, hidden_size, batch_first=True)
        self.regressor = nn.Sequential(nn.BatchNorm1d(num_features=hidden_size), nn.ReLU(),
                                       nn.Dropout(dropout), nn.Linear(hidden_size, n_state))

    def forward(self, x, return_all: bool = False):
        all_encodings, encoding = self.rnn(x)
        if return_all:
            flat = all_encodings.reshape(all_encodings.shape[0] * all_encodings.shape[1], -1)
            return self.regressor(flat).reshape(all_encodings.shape[0], all_encodings.shape[1], -1)
        return self.regressor(encoding.reshape(encoding.shape[1], -1))


def load(data_dir: str, cache: str | None, split: str = "test"):
    from tint.datasets import HMM
    np.random.seed(42)
    torch.manual_seed(42)
    hmm = HMM(n_folds=5, fold=0, seed=42, data_dir=data_dir)
    hmm.prepare_data()
    hmm.setup("fit")
    model = StateClassifier()
    if cache and os.path.exists(cache):
        model.load_state_dict(torch.load(cache))
    else:
        t0 = time.perf_counter()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-3)
        loader = hmm.train_dataloader()
        model.train()
        for _ in range(50):
            for x, y in loader:
                t = torch.randint(y.shape[-1], (1,)).item()
                loss = nn.functional.cross_entropy(model(x[:, : t + 1]), y[:, t])
                opt.zero_grad()
                loss.backward()
                opt.step()
        print(f"trained the classifier in {time.perf_counter() - t0:.0f} s")
        if cache:
            torch.save(model.state_dict(), cache)
    model.eval()
    x_train = hmm.preprocess("train")["x"]
    x_test = hmm.preprocess(split)["x"]
    y_test = hmm.preprocess(split)["y"]
    with torch.no_grad():
        acc = (model(x_test, True).argmax(-1) == y_test).float().mean().item()
    print(f"classifier accuracy over all {split} times: {acc:.3f}")
    return model, x_train, x_test, hmm.true_saliency(split)


def prefix_loop(fn, x):
    """TimeForwardTunnel: explain prefix x[:t+1], keep step t -> [N, T, F]."""
    out = np.zeros(x.shape, dtype=np.float32)
    for t in range(x.shape[1]):
        out[:, t] = fn(x[:, : t + 1], t)
    return out


def rnnviz_methods(model, x_train, x, quick: bool):
    mean = x_train.mean(0).numpy()                                         # [T, F]

    def method(name, **kw):
        def fn(xp, t):
            opts = dict(kw)
            if "baseline" in opts:
                opts["baseline"] = mean[: t + 1]
            s = rv.contributions(model, xp, name, per_feature=True, device="cpu", **opts)
            return np.abs(s[:, t])
        return fn

    # mask settings chosen on the train split (--split train), never on the test sequences
    sharp = {"at_steps": -1, "iterations": 20, "lr": 1.0, "area": 1.0, "temperature": 0.2}
    runs = {
        "rnnviz mask_x_grad (at_steps=-1)": method("mask_x_grad", **sharp),
        "rnnviz mask, zeros, temperature 0.2 (at_steps=-1)": method("mask", **sharp),
        "rnnviz occlusion (at_steps=-1)": method("occlusion", at_steps=-1, baseline="mean"),
    }
    if not quick:
        runs["rnnviz input_x_grad"] = method("input_x_grad")
        runs["rnnviz integrated_gradients"] = method("integrated_gradients")
    return runs


def tint_methods(model, x_train, x, quick: bool, extremal_epochs=500, dyna_epochs=150):
    from pytorch_lightning import Trainer
    from tint.attr import (DynaMask, ExtremalMask, TemporalIntegratedGradients,
                           TemporalOcclusion, TimeForwardTunnel)
    from tint.attr.models import ExtremalMaskNet, MaskNet
    from tint.models import MLP, RNN

    def trainer(epochs):
        return Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                       enable_checkpointing=False, enable_progress_bar=False,
                       enable_model_summary=False, log_every_n_steps=2)

    def occlusion():
        e = TimeForwardTunnel(TemporalOcclusion(model))
        return e.attribute(x, sliding_window_shapes=(1,), baselines=x_train.mean(0, keepdim=True),
                           attributions_fn=abs, task="binary").abs()

    def temporal_ig():
        with torch.no_grad():
            target = model(x).argmax(-1)
        return TemporalIntegratedGradients(model).attribute(
            x, baselines=x * 0, target=target, internal_batch_size=200).abs()

    def extremal(epochs=extremal_epochs):
        torch.manual_seed(42)
        mask = ExtremalMaskNet(forward_func=model, model=nn.Sequential(
            RNN(input_size=x.shape[-1], rnn="gru", hidden_size=x.shape[-1], bidirectional=True),
            MLP([2 * x.shape[-1], x.shape[-1]])), lambda_1=1.0, lambda_2=1.0, optim="adam", lr=0.01)
        return ExtremalMask(model).attribute(x, additional_forward_args=(True,),
                                             trainer=trainer(epochs), mask_net=mask,
                                             batch_size=100).abs()

    def dyna(epochs=dyna_epochs):
        torch.manual_seed(42)
        mask = MaskNet(forward_func=model, perturbation="gaussian_blur", sigma_max=1,
                       keep_ratio=list(np.arange(0.25, 0.35, 0.01)), size_reg_factor_init=0.1,
                       size_reg_factor_dilation=100, time_reg_factor=1.0)
        out = DynaMask(model).attribute(x, additional_forward_args=(True,), trainer=trainer(epochs),
                                        mask_net=mask, batch_size=100, return_best_ratio=True)
        return out[0].abs()

    runs = {"tint Occlusion (TemporalOcclusion)": occlusion}
    if not quick:
        runs["tint TemporalIntegratedGradients"] = temporal_ig
    runs[f"tint ExtremalMask ({extremal_epochs} epochs)"] = extremal
    runs[f"tint DynaMask ({dyna_epochs} epochs)"] = dyna
    return runs


def _row(name, p, r, auc, sec):
    print(f"  {name}: AUP {p:.3f} AUR {r:.3f} AUROC {auc:.3f}, {sec:.1f} s", flush=True)


def score(attr, truth):
    from tint.metrics.white_box import aup, aur, roc_auc
    a = torch.as_tensor(np.asarray(attr, dtype=np.float32))
    return aup(a, truth), aur(a, truth), roc_auc(a, truth)


DEMO_METHODS = {
    "integrated_gradients": {}, "input_x_grad": {}, "occlusion": {}, "grad_norm": {},
    "grad_x_state": {}, "prediction_delta": {}, "mask": {}, "mask_x_grad": {},
    "shapley (20 sampled orders of the steps)": {"samples": 20},
}


def demos(n: int = 160):
    """Top-k precision against the known deciding steps of the marker and text demos.

    k = the number of deciding steps of each sequence (2 for the marker task; the sentiment
    words and the negations that flip them for the reviews); precision = share of the k
    highest-|score| steps that decide.
    """
    from rnnviz_core.demos import load_demo
    from rnnviz_core.demos.tasks import make_marker_task, review_decisive_steps
    print(f"\nKnown-answer demos, first {n} sequences: top-k precision (k = deciding steps)\n")
    print("| method | marker | text | seconds (marker + text) |\n|---|---|---|---|")
    model_m, ds_m = load_demo("marker")
    xm, lm = ds_m.X[:n], ds_m.lengths[:n]
    dec_m = make_marker_task(1000, seed=2)[1][:n]
    model_t, ds_t = load_demo("text")
    xt, lt = ds_t.X[:n], ds_t.lengths[:n]
    vocab = ds_t.vocabulary
    dec_t = np.zeros(xt.shape, bool)
    for i in range(len(xt)):
        words = [vocab[j] for j in xt[i, : lt[i]]]
        dec_t[i, : lt[i]] = review_decisive_steps(words)
    for label, opts in DEMO_METHODS.items():
        name = label.split(" ")[0]
        row, sec = [], 0.0
        for model, x, L, dec in ((model_m, xm, lm, dec_m), (model_t, xt, lt, dec_t)):
            t0 = time.perf_counter()
            s = rv.contributions(model, x, name, lengths=L, device="cpu", **opts)
            sec += time.perf_counter() - t0
            a = np.where(np.isnan(s), -np.inf, np.abs(s))
            hits = []
            for i in range(len(x)):
                k = int(dec[i].sum())
                if k:
                    top = np.argsort(-a[i], kind="stable")[:k]
                    hits.append(dec[i, top].mean())
            row.append(float(np.mean(hits)))
        print(f"| {label} | {row[0]:.3f} | {row[1]:.3f} | {sec:.1f} |", flush=True)


def costs(n: int = 100):
    """What the new methods cost where the app runs them (the deletion check's 100 sequences),
    and how tight sampled Shapley values over single steps are."""
    from rnnviz_core.demos import load_demo
    print(f"\nCost on the demos' first {n} sequences (the deletion check's sample)\n")
    print("| demo | method | seconds | model passes | median standard error / value |")
    print("|---|---|---|---|---|")
    for key in ("marker", "text"):
        model, ds = load_demo(key)
        x, L = ds.X[:n], ds.lengths[:n]
        for name, kw in (("occlusion", {}), ("mask", {}), ("shapley", {}),
                         ("shapley", {"groups": 50, "samples": 20})):
            t0 = time.perf_counter()
            _, info = rv.contributions(model, x, name, lengths=L, device="cpu", return_info=True,
                                       **kw)
            sec = time.perf_counter() - t0
            passes = rel = ""
            if name == "shapley":
                gv, se = np.abs(info["group_values"]), info["standard_error"]
                passes = f"{info['evaluations']:,}"
                rel = f"{np.median(se[gv > 0] / gv[gv > 0]):.2f}"
                name = (f"shapley, {kw['samples']} orders of single steps" if kw
                        else "shapley, exact over 10 blocks")
            print(f"| {key} | {name} | {sec:.1f} | {passes} | {rel} |", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the slow methods")
    ap.add_argument("--skip-tint", action="store_true")
    ap.add_argument("--n", type=int, default=200, help="test sequences explained")
    ap.add_argument("--extremal-epochs", type=int, default=500,
                    help="fewer epochs on a loaded machine: the time is also given scaled to 500")
    ap.add_argument("--dyna-epochs", type=int, default=150)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "rnnviz_hmm_gru.pt"))
    ap.add_argument("--demos", action="store_true", help="only the known-answer demos")
    ap.add_argument("--only", default="",
                    help="comma-separated parts of method names: run only the methods matching one")
    ap.add_argument("--split", default="test", choices=("test", "train"),
                    help="train: explain training sequences instead (where settings are tuned)")
    args = ap.parse_args(argv)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if args.demos:
        demos()
        costs()
        print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
        return
    data_dir = os.path.join(tempfile.gettempdir(), "rnnviz_tint_hmm")
    os.makedirs(data_dir, exist_ok=True)
    model, x_train, x_test, truth = load(data_dir, args.cache, args.split)
    x, truth = x_test[: args.n], truth[: args.n]
    results, attrs = [], {}
    only = [w.strip() for w in args.only.split(",") if w.strip()]

    def chosen(runs):
        return {k: f for k, f in runs.items() if not only or any(w in k for w in only)}

    runs = chosen(rnnviz_methods(model, x_train, x, args.quick))
    for name, fn in runs.items():
        t0 = time.perf_counter()
        attrs[name] = prefix_loop(fn, x)
        results.append((name, *score(attrs[name], truth), time.perf_counter() - t0))
        _row(*results[-1])
    if not args.skip_tint:
        for name, fn in chosen(tint_methods(model, x_train, x, args.quick, args.extremal_epochs,
                                            args.dyna_epochs)).items():
            t0 = time.perf_counter()
            attrs[name] = fn().detach().numpy()
            results.append((name, *score(attrs[name], truth), time.perf_counter() - t0))
            _row(*results[-1])
        pair = ("rnnviz occlusion (at_steps=-1)", "tint Occlusion (TemporalOcclusion)")
        if all(k in attrs for k in pair):
            a, b = attrs[pair[0]], attrs[pair[1]]
            print(f"rnnviz occlusion vs tint occlusion: largest difference {np.abs(a - b).max():.2e}")
    print(f"\n{len(x)} {args.split} sequences, one thread, one process\n")
    print("| method | AUP | AUR | AUROC | seconds |\n|---|---|---|---|---|")
    for name, p, r, auc, sec in results:
        print(f"| {name} | {p:.3f} | {r:.3f} | {auc:.3f} | {sec:.1f} |")
    full = {"ExtremalMask": (args.extremal_epochs, 500), "DynaMask": (args.dyna_epochs, 150)}
    for name, p, r, auc, sec in results:
        for key, (ran, ref) in full.items():
            if key in name and ran != ref:
                print(f"{key}: {sec:.1f} s for {ran} epochs, so about {sec * ref / ran:.0f} s for "
                      f"{ref} (its epochs all cost the same: one pass over the sequences)")
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
