"""A forward that takes no lengths, given lengths: the cost of running each sequence at its own length.

rnnviz runs such a model once per distinct length (``x[rows, :L]``) so it never reads padding.
Printed: the time of ``rv.predict`` / ``rv.trace`` / ``grad_norm`` that way, against one padded
forward of the whole batch (what rnnviz did before, reading the padding: wrong outputs) and
against one forward per sequence (the obvious correct loop). Best of 5, one torch thread.

    PYTHONPATH=. python3 bench/bench_lengths.py [--n 512] [--t 100] [--h 64]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn

import rnnviz_core as rv


class Tutorial(nn.Module):
    def __init__(self, f: int, h: int):
        super().__init__()
        self.gru = nn.GRU(f, h, batch_first=True)
        self.fc = nn.Linear(h, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


def best(fn, reps: int = 5) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--t", type=int, default=100)
    ap.add_argument("--h", type=int, default=64)
    ap.add_argument("--f", type=int, default=8)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Tutorial(a.f, a.h).eval()
    rng = np.random.default_rng(0)
    x = torch.randn(a.n, a.t, a.f)
    lengths = rng.integers(a.t // 5, a.t + 1, a.n)
    lengths[0] = a.t
    print(f"load average {os.getloadavg()[0]:.2f}; N={a.n}, T={a.t}, F={a.f}, GRU {a.h} units, "
          f"{len(np.unique(lengths))} distinct lengths")

    def padded():
        with torch.no_grad():
            model(x)

    def per_sequence():
        with torch.no_grad():
            for i, n in enumerate(lengths):
                model(x[i : i + 1, :n])

    rows = [("one padded forward (reads padding: wrong)", best(padded)),
            ("one forward per sequence (correct loop)", best(per_sequence, 2)),
            ("rv.predict, one forward per distinct length", best(lambda: rv.predict(model, x, lengths))),
            ("rv.trace(...).hidden", best(lambda: rv.trace(model, x, lengths))),
            ("rv.contributions grad_norm", best(lambda: rv.contributions(model, x, lengths=lengths), 3)),
            ("  same, every sequence at full length (one batch)", best(lambda: rv.contributions(model, x), 3))]
    base = rows[0][1]
    for name, t in rows:
        print(f"{name:48s} {1000 * t:8.1f} ms  {t / base:6.2f}x the padded forward")


if __name__ == "__main__":
    main()
