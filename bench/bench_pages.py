"""Server-side seconds of each page's computations and charts at real sizes (issue 18).

Calls what each page's script run calls in ``rnnviz_core`` (the frames the pages compute, the
chart builders they call, each spec serialised with ``to_dict`` as Streamlit does) on states of
the issue's target size, 1,000 steps x 128 units x 1,000 sequences (random tanh states, lengths
varying; the model's forward pass and the gradient scores are not included: they run once per
content hash and are cached). Prints seconds per step and per page, cold (nothing cached).

Run: ``PYTHONPATH=. python3 bench/bench_pages.py [T U N]``; ``PYTHONPATH=/path/to/other/checkout`` times
another version of rnnviz_core on the same arrays (before/after). The machine's load average is printed
with the figures: compare versions only from runs taken one after the other.

Measured 2026-12-05 on the shared 2-core machine (loaded: figures are ratios, not targets), main
(37fd75c) then this branch, one after the other, 1,000 x 128 x 1,000:
  load ~13: Trajectories 51.1 -> 12.6 s (unit order 27.2 -> 1.6, PCA 11.1 -> 8.9, norms 12.6 -> 1.9),
            Saturation 37.4 -> 9.4 s (hint 9.9 -> 0.8, histogram 13.7 -> 5.7), Contributions 2.9 -> 1.0 s;
  load ~4:  Trajectories 26.4 -> 7.1 s, Saturation 14.2 -> 3.3 s, Contributions 0.4 -> 0.8 s (noise).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np


def arrays(T: int, U: int, N: int, F: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    H = np.tanh(rng.normal(scale=1.5, size=(N, T, U)).astype(np.float32))
    lens = rng.integers(T // 2, T + 1, N)
    lens[0] = T
    for i in range(N):
        H[i, lens[i]:] = np.nan
    X = rng.normal(size=(N, T, F)).astype(np.float32)
    scores = np.abs(rng.normal(size=(N, T))).astype(np.float32)
    for i in range(N):
        scores[i, lens[i]:] = np.nan
    y = rng.integers(0, 2, N)
    return H, lens, X, scores, y, [f"feature_{j}" for j in range(F)]


def pages(H, lens, X, scores, y, names):
    from rnnviz_core import display as dp
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
    ia, ib = ids[a], ids[b]
    st = {}

    # ---- Trajectories
    def traj_heat():  # the play control's rows (page_trajectories.play_view): the unit order on every sequence
        from rnnviz_app.views.play import MAX_PLAY_ROWS
        return tj.unit_order(H, lens, order="similarity", top=None if H.shape[2] <= MAX_PLAY_ROWS else 64)

    def traj_paths():
        paths, _ = tj.pca_paths(H, lens, ids=ids)
        return tc.pca_paths_chart(paths, [ia, ib], width=470, height=380).to_dict()

    def traj_norms():
        norms = tj.state_norms(H, lens, ids=ids)
        return tc.norms_chart(norms, [ia, ib], names=["A", "B"], width=480).to_dict()

    def traj_dist():
        dist = tj.pair_distance(H[a], H[b], int(lens[a]), int(lens[b]))
        return tc.distance_chart(dist, None, steps=int(lens.max()), width=590).to_dict()

    # ---- Saturation
    groups = np.where(y == 0, "g0", "g1")
    ma, mb = groups == "g0", groups == "g1"

    def sat_hint():
        return sa.suggest_threshold(H, lens)

    def sat_dist():
        d = sa.value_distribution(H, lens, threshold=0.9)
        return sc.distribution_chart(d, threshold=0.9, width=235).to_dict()

    def sat_table():
        return sa.saturation_by_sequence(H, lens, threshold=0.9)

    def sat_over():
        over = sa.saturation_over_time(H, lens, groups=groups, threshold=0.9)
        return sc.saturation_time_chart(over, threshold=0.9, width=480).to_dict()

    def sat_units():
        try:  # the page's path since the perf pass: [T, H] shares, only the drawn units' rows as frames
            from rnnviz_core import unit_saturation as us
        except ImportError:  # an older checkout: full frames
            us = None
        if us is not None:
            shares = [us.unit_saturation_shares(H, lens, m, threshold=0.9) for m in (ma, mb)]
            n_steps = max(s.n_steps for s in shares)
            drawn = us.shared_saturated_units(*shares, n_steps=n_steps)
            top = max(s.top or 0.0 for s in shares) or None
            return [sc.unit_saturation_chart(s.frame(drawn), threshold=0.9, width=550, n_steps=n_steps, units=drawn,
                                             top=top).to_dict() for s in shares]
        units = {s: sa.unit_saturation_over_time(H[m], lens[m], threshold=0.9) for m, s in ((ma, "a"), (mb, "b"))}
        n_steps = max(int(u["step"].max()) + 1 for u in units.values())
        drawn = sc.shared_units(*units.values(), n_steps=n_steps)
        return [sc.unit_saturation_chart(u, threshold=0.9, width=550, n_steps=n_steps, units=drawn).to_dict()
                for u in units.values()]

    # ---- Contributions
    n_steps = int(max(lens[a], lens[b]))

    def con_views():
        rk.scores_frame(scores[[a, b]], method="grad_norm", ids=[ia, ib], lengths=lens[[a, b]])
        rk.top_steps(scores[[a, b]], k=5, ids=[ia, ib], lengths=lens[[a, b]])
        pos = rk.mean_abs_by_position(scores, relative=True, normalize=True, lengths=lens)
        rk.mean_abs_by_group(scores, np.asarray(["c0", "c1"], dtype=object)[y], lengths=lens, name="true class")
        return cc.position_chart(pos, width=220).to_dict()

    def con_stack():
        import altair as alt
        frame = rk.scores_frame(scores[[a, b]], method="grad_norm", ids=[ia, ib], lengths=lens[[a, b]])
        n_units = dp.rows_shown(H.shape[2], n_steps)
        rows = max(n_units, min(X.shape[2], dp.MAX_FEATURES))
        bins = dp.step_bins(n_steps, max_columns=min(dp.MAX_COLUMNS, dp.ROW_BUDGET // rows))
        units = None
        if n_units < H.shape[2]:
            units = dp.top_rows(np.concatenate([H[a, :lens[a]], H[b, :lens[b]]]), n_units)
        hm = tj.heatmap_data(H, lens, seqs=[a, b], ids=ids, units=units)
        sw = min(40.0, 440 / n_steps) if bins.binned else max(2.0, 440 / n_steps)
        out = []
        for r in (a, b):
            parts = [ci.input_strip_chart(X[r], int(lens[r]), feature_names=names, step_width=sw, n_steps=n_steps,
                                          bins=bins),
                     tc.heatmap_chart(hm, ids[r], scrubber=False, step_width=sw, bins=bins, n_steps=n_steps),
                     cc.step_scores_chart(frame, ids[r], step_width=sw, n_steps=n_steps, bins=bins)]
            out.append(alt.vconcat(*parts).to_dict())
        return out

    return {
        "Trajectories": [("unit order (play)", traj_heat), ("pca paths", traj_paths), ("norms", traj_norms),
                         ("distance", traj_dist)],
        "Saturation": [("suggest threshold", sat_hint), ("distribution", sat_dist), ("per-sequence table", sat_table),
                       ("over time", sat_over), ("unit heatmaps A+B", sat_units)],
        "Contributions": [("views + position", con_views), ("stacked A, B", con_stack)],
    }


def main() -> None:
    import torch
    torch.set_num_threads(1)
    T, U, N = (int(v) for v in sys.argv[1:4]) if len(sys.argv) >= 4 else (1000, 128, 1000)
    t0 = time.perf_counter()
    import altair  # noqa: F401 - imported once per server, not per page
    import sklearn.decomposition  # noqa: F401
    print(f"imports (once per server process): {time.perf_counter() - t0:.2f} s")
    H, lens, X, scores, y, names = arrays(T, U, N)
    import rnnviz_core
    print(f"{T} steps x {U} units x {N} sequences; rnnviz_core from {os.path.dirname(rnnviz_core.__file__)}; "
          f"load average {tuple(round(v, 2) for v in os.getloadavg())}")
    for page, steps in pages(H, lens, X, scores, y, names).items():
        total = 0.0
        for name, fn in steps:
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            total += dt
            print(f"  {page:14s} {name:22s} {dt:6.2f} s")
        print(f"{page:16s} total {total:6.2f} s")


if __name__ == "__main__":
    main()
