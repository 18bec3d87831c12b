"""Cost of the Contributions page's horizon findings and of the Units page's table.

Prints, per shipped demo: the decision steps of every loaded sequence (cached once per model and
data), the horizons from the page's scores, and the unit dictionary; then the unit dictionary and
one page of the table for a 1,024-unit GRU on long sequences. Run:
``PYTHONPATH=$PWD python3 bench/bench_units_view.py [--big-n 200 --big-t 400]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn


def _t(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


class Big(nn.Module):
    def __init__(self, f=4, h=1024, c=3):
        super().__init__()
        self.rnn = nn.GRU(f, h, batch_first=True)
        self.head = nn.Linear(h, c)

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-n", type=int, default=200)
    ap.add_argument("--big-t", type=int, default=400)
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import rnnviz_core as rv
    from rnnviz_app.views import page_units as pu
    from rnnviz_app.views.page_horizons import group_rows
    from rnnviz_core.horizons import horizon, horizons_from_scores
    print(f"{'demo':12s} {'N x T':>10s} {'rows used':>10s} {'decisions s':>12s} {'horizons ms':>12s} "
          f"{'dictionary s':>13s}")
    for info in rv.demos.list_demos():
        model, ds = rv.demos.load_demo(info.key)
        n, T = ds.X.shape[:2]
        sc = np.random.default_rng(0).random((n, T))
        task = "regression" if info.task == "regression" else "auto"
        rows = group_rows(ds.lengths)  # what the Contributions page's group findings use
        _, td = _t(lambda: horizon(model, ds.X[rows], ds.lengths[rows], scores=np.zeros((len(rows), T)), task=task))
        _, th = _t(lambda: horizons_from_scores(sc, ds.lengths))
        _, tu = _t(lambda: rv.unit_dictionary(model, ds.X, ds.lengths, feature_names=ds.feature_names))
        print(f"{info.key:12s} {f'{n}x{T}':>10s} {len(rows):10d} {td:12.2f} {th * 1e3:12.1f} {tu:13.2f}")
    if args.skip_big:
        return
    torch.manual_seed(0)
    big = Big().eval()
    x = np.random.default_rng(1).standard_normal((args.big_n, args.big_t, 4)).astype(np.float32)
    d, tu = _t(lambda: rv.unit_dictionary(big, x))
    d["key"] = d["name"]
    page, tp = _t(lambda: pu.shown(pu.table(d, text="high").iloc[: pu.PAGE_ROWS]))
    print(f"GRU 1024 units, {args.big_n}x{args.big_t}: dictionary {tu:.1f} s ({len(d)} rows), "
          f"filter + sort + one page of the table {tp * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
