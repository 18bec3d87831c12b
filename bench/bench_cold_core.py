"""CPU seconds (one thread) of the core work behind issue 18's cold Saturation and Contributions
pages at 1,000 steps x 128 units (the target_1000 files, 419 traced sequences), for the checkout
it runs from: run it from two checkouts to compare (the README gives main before and after).

  * gradient size and input x gradient of every traced sequence (the Contributions page's scores);
  * the trace with gates (computed in the background after an upload);
  * the Saturation page's threshold hint, value spread, one group's gate scatter and the
    per-sequence table.

CPU time (``time.process_time``) with one torch thread is what a loaded or idle machine agree on
best; wall seconds are printed beside it. Run: ``PYTHONPATH=. python3 bench/bench_cold_core.py``.
"""
from __future__ import annotations

import inspect
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


def _t(name: str, fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    print(f"  {name:34s} CPU {time.process_time() - c0:6.2f} s   wall {time.perf_counter() - w0:6.2f} s", flush=True)
    return out


def main() -> None:
    import torch
    torch.set_num_threads(1)
    from sizes_files import make_case

    from rnnviz_core import saturation as sa
    from rnnviz_core.contributions import contributions
    from rnnviz_core.data import load_data
    from rnnviz_core.models import load_model, with_readout
    from rnnviz_core.trace import trace

    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_case("target_1000", Path(tmp))
        model = with_readout(load_model(files["model"].read_bytes(), name="m.pt"), "last")
        ds = load_data(files["data"].read_bytes(), name="d.npz")
    X, L = ds.X[:419], ds.lengths[:419]
    print(f"target_1000: {X.shape[0]} sequences x {X.shape[1]} steps, 128 units, one torch thread", flush=True)
    for method in ("grad_norm", "input_x_grad"):
        _t(f"scores: {method}", lambda: contributions(model, X, method, L))
    tr = _t("trace with gates", lambda: trace(model, X, L, gates=True))
    H, gates = tr.get("h"), sa.trace_gates(tr)
    mask = np.zeros(len(X), bool)
    mask[::2] = True
    _t("suggest_threshold", lambda: sa.suggest_threshold(H, L))
    _t("value_distribution (|h| and gates)", lambda: sa.value_distribution(H, L, gates=gates, threshold=0.9,
                                                                          low=0.1, high=0.9))
    if "rows" in inspect.signature(sa.gate_saturation).parameters:
        _t("gate scatter, one group (in place)", lambda: sa.gate_saturation(gates, L, low=0.1, high=0.9, rows=mask))
    else:
        _t("gate scatter, one group (copied)", lambda: sa.gate_saturation({k: v[mask] for k, v in gates.items()},
                                                                          L[mask], low=0.1, high=0.9))
    _t("saturation_by_sequence", lambda: sa.saturation_by_sequence(H, L, gates=gates, threshold=0.9, low=0.1,
                                                                   high=0.9))
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
