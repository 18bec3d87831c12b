"""Benchmark of the trace engine (issue 2's figures), printed side by side in one run.

    python bench/bench_trace.py            # timings + the 10,000 x 200 x 128 memory figure
    python bench/bench_trace.py --quick    # timings only

CPU, 2 threads, N=512 sequences, T=100 steps, F=8 features, H=64 units, 1 layer.
- trace(...).hidden vs one no-grad forward of the same fused module on the same batch (target <= 1.3x)
- a full trace with gates and cell states vs that forward (target <= 3x; LSTM <= 2x, issue 12)
- tracing 10,000 x 200 x 128 (GRU): peak memory vs the float32 arrays returned (target < 3x)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import rnnviz_core as rv  # noqa: E402  (this checkout's, not an installed copy)

N, T, F, H = 512, 100, 8, 64


class Model(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(F, H, batch_first=True)
        self.head = nn.Linear(H, 3)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def interleaved(fns, repeat=9):
    """Best-of-``repeat`` wall time of each function, run in turns so they share the machine's state.

    The minimum is reported: on a shared virtual machine the noise only ever adds time.
    """
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return [min(t) for t in times], [statistics.median(t) for t in times]


def timings():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = []
    for cell in (nn.GRU, nn.LSTM):
        model = Model(cell).eval()
        x = torch.randn(N, T, F)

        def fused():
            with torch.no_grad():
                model(x)

        best, med = interleaved([fused, lambda: rv.trace(model, x).hidden, lambda: rv.trace(model, x, gates=True)])
        rows.append((cell.__name__, best, med))
    print(f"CPU, {torch.get_num_threads()} threads, N={N}, T={T}, F={F}, H={H}, 1 layer (best of 9, interleaved; median in brackets)")
    print(f"{'cell':5} {'fused fwd':>10} {'trace.hidden':>13} {'ratio':>6} {'full trace':>11} {'ratio':>6}")
    for name, (a, b, c), (am, bm, cm) in rows:
        print(f"{name:5} {a*1e3:8.1f}ms {b*1e3:11.1f}ms {b/a:5.2f}x {c*1e3:9.1f}ms {c/a:5.2f}x"
              f"   [median {am*1e3:.0f} / {bm*1e3:.0f} ({bm/am:.2f}x) / {cm*1e3:.0f} ms ({cm/am:.2f}x)]")
    print("targets: trace.hidden <= 1.3x, full trace <= 3x (issue 2), LSTM full trace <= 2x (issue 12)")


def _memory_child():
    torch.set_num_threads(2)
    n, t, f, h = 10_000, 200, 8, 128
    model = Model(nn.GRU)
    model.rnn = nn.GRU(f, h, batch_first=True)
    model.head = nn.Linear(h, 2)
    x = torch.randn(n, t, f)
    with open("/proc/self/statm") as fh:
        base = int(fh.read().split()[1]) * resource.getpagesize()
    t0 = time.perf_counter()
    tr = rv.trace(model, x)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    returned = tr.hidden.nbytes + tr.logits.nbytes
    print(json.dumps({"base": base, "peak": peak, "returned": returned, "seconds": secs}))


def memory():
    out = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    extra = r["peak"] - r["base"]
    print(
        f"trace of 10,000 x 200 x 128 (GRU): returned {r['returned']/2**30:.2f} GiB float32, "
        f"peak above the inputs {extra/2**30:.2f} GiB = {extra/r['returned']:.2f}x the returned arrays "
        f"(target < 3x); {r['seconds']:.1f} s"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--memory-child", action="store_true")
    args = ap.parse_args()
    if args.memory_child:
        _memory_child()
    else:
        timings()
        if not args.quick:
            memory()
