"""Rows each chart the three pages draw would embed, at real sizes (issue 18).

Builds the frames the pages build (from a real nn.GRU trace at 300 steps, and from random states
of the same shapes above that), calls every chart builder the pages call and prints, per chart,
the largest dataset it embeds, or the error it raises. Run: PYTHONPATH=. python3 bench/bench_chart_rows.py
"""
from __future__ import annotations

import sys
import time
import traceback

import numpy as np
import pandas as pd


def spec_rows(spec: dict) -> int:
    """The largest inline dataset of a Vega-Lite spec (rows)."""
    sizes = [len(v) for v in spec.get("datasets", {}).values() if isinstance(v, list)]
    return max(sizes, default=0)


def page_charts(H, lens, X, scores, feat_scores, feature_names, words=None):
    """(name, thunk) for every chart the three pages draw on these arrays (A = 0, B = 1)."""
    from rnnviz_core import rankings as rk
    from rnnviz_core import saturation as sa
    from rnnviz_core import trajectories as tj
    from rnnviz_core.charts import contributions as cc
    from rnnviz_core.charts import inputs as ci
    from rnnviz_core.charts import saturation as sc
    from rnnviz_core.charts import trajectories as tc
    n = len(H)
    ids = [f"s{i}" for i in range(n)]
    a, b = 0, 1
    hm = tj.heatmap_data(H, lens, seqs=[a, b], ids=ids)
    paths, _ = tj.pca_paths(H, lens, ids=ids)
    norms = tj.state_norms(H, lens, ids=ids)
    dist = tj.pair_distance(H[a], H[b], int(lens[a]), int(lens[b]))
    groups = np.where(np.arange(n) % 2 == 0, "g0", "g1")
    over = sa.saturation_over_time(H, lens, groups=groups, threshold=0.5)
    unit = sa.unit_saturation_over_time(H, lens, threshold=0.5)
    frame = rk.scores_frame(scores[[a, b]], method="grad_norm", ids=[ids[a], ids[b]], lengths=lens[[a, b]])
    pos = rk.mean_abs_by_position(scores, relative=True, normalize=True, lengths=lens)
    n_steps = int(max(lens[a], lens[b]))
    sw = max(2.0, 440 / n_steps)
    out = [
        ("traj.pca_paths", lambda: tc.pca_paths_chart(paths, [ids[a], ids[b]], width=470, height=380)),
        ("traj.norms", lambda: tc.norms_chart(norms, [ids[a], ids[b]], names=["A: x", "B: y"], width=480)),
        ("traj.distance", lambda: tc.distance_chart(dist, None, steps=int(lens.max()), width=590)),
        ("traj.pair_heatmaps", lambda: tc.pair_heatmaps_chart(hm, ids[a], ids[b])),
        ("sat.over_time", lambda: sc.saturation_time_chart(over, threshold=0.5, width=480)),
        ("sat.units", lambda: sc.unit_saturation_chart(unit, threshold=0.5, width=550, n_steps=int(lens.max()))),
        ("contrib.input_strip", lambda: ci.input_strip_chart(X[a], int(lens[a]), feature_names=feature_names,
                                                             step_width=sw, n_steps=n_steps)),
        ("contrib.heatmap", lambda: tc.heatmap_chart(hm, ids[a], scrubber=False, step_width=sw)),
        ("contrib.step_scores", lambda: cc.step_scores_chart(frame, ids[a], step_width=sw, n_steps=n_steps)),
        ("contrib.feature_scores", lambda: cc.feature_scores_chart(feat_scores, length=int(lens[a]),
                                                                   feature_names=feature_names, step_width=sw)),
        ("contrib.position", lambda: cc.position_chart(pos, width=220)),
    ]
    return out


def arrays(T: int, U: int, F: int, n: int = 6, seed: int = 0, real: bool = False):
    """States [n, T, U], lengths, inputs [n, T, F], scores [n, T], per-feature scores of A [T, F]."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F)).astype(np.float32)
    X[..., 0] *= 6557.0
    lens = np.full(n, T)
    lens[1] = max(1, T - T // 7)
    if real:
        import torch
        import rnnviz_core as rv
        torch.manual_seed(seed)

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = torch.nn.GRU(F, U, batch_first=True)
                self.head = torch.nn.Linear(U, 2)

            def forward(self, x):
                out, _ = self.rnn(x)
                return self.head(out[:, -1])

        H = np.array(rv.trace(Net().eval(), torch.from_numpy(X), lengths=lens).hidden)
    else:
        H = np.tanh(rng.normal(size=(n, T, U))).astype(np.float32)
    for i in range(n):
        H[i, lens[i]:] = np.nan
    scores = np.abs(rng.normal(size=(n, T))).astype(np.float32)
    for i in range(n):
        scores[i, lens[i]:] = np.nan
    return H, lens, X, scores, rng.normal(size=(T, F)), [f"feature_{j}_{'x' * (j % 3)}" for j in range(F)]


def main() -> None:
    import torch
    torch.set_num_threads(1)
    sizes = [(300, 128, 8, True), (2000, 128, 8, False), (10000, 128, 8, False), (300, 1024, 8, False),
             (1000, 128, 200, False), (1000, 64, 1000, False), (30, 32, 3, False)]
    if len(sys.argv) > 1:
        sizes = [tuple(int(v) for v in a.split("x")) + (False,) for a in sys.argv[1:]]
    for T, U, F, real in sizes:
        H, lens, X, scores, fs, names = arrays(T, U, F, real=real)
        print(f"--- {T} steps x {U} units x {F} features{' (nn.GRU trace)' if real else ''}")
        for name, make in page_charts(H, lens, X, scores, fs, names):
            t0 = time.perf_counter()
            try:
                rows = spec_rows(make().to_dict())
                verdict = "ok" if rows <= 4000 else "OVER BUDGET"
                print(f"  {name:24s} {rows:>9,d} rows  {time.perf_counter() - t0:6.2f} s  {verdict}")
            except Exception as exc:  # noqa: BLE001 - reported
                msg = traceback.format_exception_only(type(exc), exc)[-1].strip()
                print(f"  {name:24s}     RAISES  {msg[:110]}")


if __name__ == "__main__":
    main()
