"""Benchmark for rv.contributions (issue 3). Run: python bench/bench_contributions.py [--quick]

CPU, torch.set_num_threads(2), N=512 sequences, T=100 steps, F=8 features, GRU with H=64 units
and a linear head on the last step, briefly trained (full-batch Adam on a marker-style task) so
the classifier is as sharp as a real one. Everything is measured side by side in one run;
times are medians over repeats after a warm-up.

(a) "grad_norm" for all N sequences vs one fused forward + input backward of the same model
    (x.requires_grad, autograd.grad to x) — target <= 1.3x; and the same for an LSTM of the
    same sizes (untrained weights; the cost does not depend on them) — target <= 1.1x.
(b) "grad_norm" vs the usual recipe: a GRUCell loop per sequence with retain_grad on every h_t
    and .backward(), one sequence at a time. Timed on a subset and extrapolated to N (printed).
    Target >= 50x faster.
(c) "integrated_gradients" with steps=50 vs Captum's IntegratedGradients (n_steps=50,
    Gauss-Legendre, internal_batch_size = our rows per pass) — target: no slower; and the
    default refinement (adaptive Gauss-Kronrod to 1% completeness) vs Captum at 50 steps: time
    and completeness error (|sum(scores) - (f(x) - f(0))| / max(|f(x) - f(0)|, 0.01), per
    sequence) of each.
(d) every shipped demo, all of its sequences with their lengths: the default refinement vs
    Captum at 50 steps (lengths passed to the model as Captum's additional_forward_args), time
    ratio, completeness and gradient evaluations per sequence — target: faster than Captum-50
    on every demo, 100% of sequences within 1%. ``--demos race,vowels`` picks some.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rnnviz_core.contributions import contributions  # noqa: E402

N, T, F, H, C = 512, 100, 8, 64, 2


class BenchNet(nn.Module):
    def __init__(self, cell=nn.GRU):
        super().__init__()
        self.rnn = cell(F, H, batch_first=True)
        self.head = nn.Linear(H, C)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def make_data(seed=0):
    """Marker-style task with 8 features: f0 value, f1 marks two steps, f2..f7 noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, T, F, generator=g)
    x[..., 0] = torch.rand(N, T, generator=g) * 2 - 1
    x[..., 1] = 0
    idx = torch.stack([torch.randperm(T, generator=g)[:2] for _ in range(N)])
    x[torch.arange(N)[:, None], idx, 1] = 1.0
    y = (x[torch.arange(N)[:, None], idx, 0].sum(1) > 0).long()
    return x, y


def train(model, x, y, steps):
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def timeit(fns, repeat, warmup=True):
    """Median wall seconds of each function, run interleaved (a, b, a, b, ...) after one
    warm-up each, so a machine whose load changes affects all of them alike. Returns
    (wall medians, CPU-time medians of this process, last results). On a shared machine the
    CPU-time ratio is the steadier of the two."""
    results = [fn() for fn in fns] if warmup else [None] * len(fns)
    ts = [[] for _ in fns]
    cs = [[] for _ in fns]
    for _ in range(repeat):
        for j, fn in enumerate(fns):
            c0, t0 = time.process_time(), time.perf_counter()
            results[j] = fn()
            ts[j].append(time.perf_counter() - t0)
            cs[j].append(time.process_time() - c0)
    return [statistics.median(t) for t in ts], [statistics.median(c) for c in cs], results


def usual_recipe(model, x, cls, rows):
    cell = nn.GRUCell(F, H)
    with torch.no_grad():
        cell.weight_ih.copy_(model.rnn.weight_ih_l0)
        cell.weight_hh.copy_(model.rnn.weight_hh_l0)
        cell.bias_ih.copy_(model.rnn.bias_ih_l0)
        cell.bias_hh.copy_(model.rnn.bias_hh_l0)
    res = []
    for i in rows:
        h = torch.zeros(1, H)
        hs = []
        for t in range(T):
            h = cell(x[i:i + 1, t], h)
            h.retain_grad()
            hs.append(h)
        model.head(h)[0, cls[i]].backward()
        res.append(torch.stack([hh.grad[0].norm() for hh in hs]))
    return torch.stack(res)


def completeness(sums, fx, fb, floor=0.01):
    d = fx - fb
    return np.abs(sums - d) / np.maximum(np.abs(d), floor)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--train-steps", type=int, default=40)
    ap.add_argument("--demos", default="marker,race,vowels,digits,text",
                    help="comma-separated shipped demos for (d); empty to skip")
    ap.add_argument("--only-demos", action="store_true", help="run (d) only")
    ap.add_argument("--only-a", action="store_true", help="run (a) only (grad_norm vs the fused pass)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rep = 2 if args.quick else 5
    demos = [k for k in args.demos.split(",") if k]
    if args.only_demos:
        demo_ig(demos, 1 if args.quick else 3)
        return
    model = BenchNet()
    x, y = make_data()
    t0 = time.perf_counter()
    acc = train(model, x, y, args.train_steps)
    print(f"setup: N={N} T={T} F={F} H={H} GRU + linear head, trained {args.train_steps} "
          f"full-batch steps in {time.perf_counter() - t0:.1f}s (train accuracy {acc:.2f}); "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    model.eval()
    with torch.no_grad():
        logits = model(x)
    cls = logits.argmax(1)

    # (a) ------------------------------------------------------------------------------
    def fused_fwd_bwd():
        xr = x.clone().requires_grad_(True)
        out = model(xr).gather(1, cls[:, None]).sum()
        torch.autograd.grad(out, [xr])

    def grad_norm():
        return contributions(model, x, "grad_norm", device="cpu")

    (t_fused, t_gn), (c_fused, c_gn), (_, gn) = timeit([fused_fwd_bwd, grad_norm], rep)
    print(f"(a) fused forward + input backward: {t_fused * 1e3:8.1f} ms wall "
          f"({c_fused * 1e3:.0f} ms CPU)")
    print(f"    grad_norm, all {N} sequences:   {t_gn * 1e3:8.1f} ms wall ({c_gn * 1e3:.0f} ms CPU)"
          f"   ratio {t_gn / t_fused:.2f}x wall, {c_gn / c_fused:.2f}x CPU (target <= 1.3x)")
    lstm = BenchNet(nn.LSTM).eval()

    def lstm_fused_fwd_bwd():
        xr = x.clone().requires_grad_(True)
        out = lstm(xr).gather(1, cls[:, None]).sum()
        torch.autograd.grad(out, [xr])

    def lstm_grad_norm():
        return contributions(lstm, x, "grad_norm", target=cls.numpy(), device="cpu")

    (t_lf, t_lg), (c_lf, c_lg), _ = timeit([lstm_fused_fwd_bwd, lstm_grad_norm], rep * 2)
    print(f"    LSTM: fused forward + input backward {t_lf * 1e3:6.1f} ms wall ({c_lf * 1e3:.0f} ms CPU); "
          f"grad_norm {t_lg * 1e3:6.1f} ms wall ({c_lg * 1e3:.0f} ms CPU)   ratio {t_lg / t_lf:.2f}x wall, "
          f"{c_lg / c_lf:.2f}x CPU (target <= 1.1x)")

    if args.only_a:
        return
    # (b) ------------------------------------------------------------------------------
    sub = 16 if args.quick else 32
    rows = list(range(sub))
    t0 = time.perf_counter()
    ref = usual_recipe(model, x, cls, rows)
    t_sub = time.perf_counter() - t0
    model.zero_grad(set_to_none=True)
    t_usual = t_sub * N / sub
    err = np.abs(gn[:sub] - ref.numpy()).max() / np.abs(ref.numpy()).max()
    print(f"(b) usual recipe (GRUCell loop + retain_grad, one sequence at a time): {sub} sequences "
          f"in {t_sub:.2f}s, extrapolated to {N}: {t_usual:.1f}s")
    print(f"    grad_norm is {t_usual / t_gn:.0f}x faster (target >= 50x); "
          f"max relative difference on the subset {err:.1e}")

    # (c) ------------------------------------------------------------------------------
    from captum.attr import IntegratedGradients

    rows_per_pass = max(1, (1 << 23) // (T * H))
    ig = IntegratedGradients(model)
    zeros = torch.zeros_like(x)

    def captum50():
        a, delta = ig.attribute(x, baselines=zeros, target=cls, n_steps=50,
                                method="gausslegendre", internal_batch_size=rows_per_pass,
                                return_convergence_delta=True)
        return a, delta

    def ours50():
        return contributions(model, x, "integrated_gradients", steps=50, device="cpu",
                             return_info=True)

    def ours_default():
        return contributions(model, x, "integrated_gradients", device="cpu", return_info=True)

    rep_ig = 1 if args.quick else 3
    (t_c, t_o, t_d), (c_c, c_o, c_d), ((a, _), (_, info50), (_, infod)) = timeit(
        [captum50, ours50, ours_default], rep_ig, warmup=False)   # (a) warmed up torch
    with torch.no_grad():
        fx = model(x).gather(1, cls[:, None])[:, 0].numpy()
        fb = model(zeros).gather(1, cls[:, None])[:, 0].numpy()
    err_c = completeness(a.sum((1, 2)).detach().numpy(), fx, fb)
    err_d = infod["completeness_error"]
    err_o = info50["completeness_error"]

    def q(e):
        return (f"median {np.median(e):.2%}, 90th pct {np.quantile(e, 0.9):.2%}, "
                f"max {e.max():.2%}, within 1%: {np.mean(e <= 0.01):.0%}")

    print(f"(c) Captum IG, 50 steps:                     {t_c:7.2f} s wall ({c_c:.2f} s CPU)   "
          f"completeness {q(err_c)}")
    print(f"    ours, steps=50:                          {t_o:7.2f} s wall ({c_o:.2f} s CPU)   "
          f"ratio {t_o / t_c:.2f}x wall, {c_o / c_c:.2f}x CPU (target <= 1x); "
          f"completeness {q(err_o)}")
    print(f"    ours, default refinement (to 1%, cap 2048 evaluations): "
          f"{t_d:7.2f} s wall ({c_d:.2f} s CPU)   {t_d / t_c:.2f}x Captum-50 wall, "
          f"{c_d / c_c:.2f}x CPU; completeness {q(err_d)}")
    ev = infod["steps"]
    print(f"    gradient evaluations per sequence: mean {ev.mean():.0f}, median {np.median(ev):.0f}, "
          f"max {ev.max()}; total {infod['gradient_evaluations']} (Captum-50: {50 * N})")
    if demos:
        demo_ig(demos, 1 if args.quick else 3)


def demo_ig(keys, rep):
    """(d): default refinement vs Captum-50 on each shipped demo, all sequences, their lengths."""
    from captum.attr import IntegratedGradients

    from rnnviz_core.demos import load_demo
    from rnnviz_core.engine import default_baseline_token

    print("(d) shipped demos, all sequences with their lengths: default refinement vs Captum at 50 "
          "steps (median wall time of interleaved runs)")
    for key in keys:
        model, ds = load_demo(key)
        model.eval()
        tokens = ds.X.dtype.kind in "iu"
        xd = torch.from_numpy(ds.X) if tokens else torch.from_numpy(ds.X).float()
        ld = torch.from_numpy(ds.lengths).long()
        with torch.no_grad():
            cls_d = model(xd, ld).argmax(1)
        width = model.rnn.hidden_size * (2 if model.rnn.bidirectional else 1)
        feat = model.encoder.embedding_dim if tokens else xd.shape[2]
        per = max(1, (1 << 23) // (xd.shape[1] * max(width, feat)))
        if tokens:  # text: the path runs in the embedding space, from the padding token's embedding
            from captum.attr import LayerIntegratedGradients
            ig = LayerIntegratedGradients(model, model.encoder)
            zeros = torch.full_like(xd, default_baseline_token(model))
        else:
            ig = IntegratedGradients(model)
            zeros = torch.zeros_like(xd)

        def captum50():
            a = ig.attribute(xd, baselines=zeros, target=cls_d, n_steps=50, method="gausslegendre",
                             internal_batch_size=per, additional_forward_args=(ld,))
            return a.sum(-1) if tokens else a

        def ours():
            return contributions(model, ds.X, "integrated_gradients", lengths=ds.lengths,
                                 device="cpu", return_info=True)

        (t_c, t_o), (c_c, c_o), (a, (_, info)) = timeit([captum50, ours], rep, warmup=False)
        with torch.no_grad():
            fx = model(xd, ld).gather(1, cls_d[:, None])[:, 0].numpy()
            fb = model(zeros, ld).gather(1, cls_d[:, None])[:, 0].numpy()
        err_c = completeness(a.reshape(a.shape[0], -1).sum(1).detach().numpy(), fx, fb)
        e, ev = info["completeness_error"], info["steps"]
        print(f"    {key:7} N={len(ds)} T={xd.shape[1]} lengths {ds.lengths.min()}-{ds.lengths.max()}: "
              f"Captum-50 {t_c:6.2f} s (within 1%: {np.mean(err_c <= 0.01):.0%}), ours {t_o:6.2f} s = "
              f"{t_o / t_c:.2f}x wall, {c_o / c_c:.2f}x CPU (target < 1x); ours within 1%: "
              f"{np.mean(e <= 0.01):.0%}, median error {np.median(e):.2%}, max {e.max():.2%}; "
              f"evaluations per sequence mean {ev.mean():.1f}, median {np.median(ev):.0f}, max {ev.max()}")


if __name__ == "__main__":
    main()
