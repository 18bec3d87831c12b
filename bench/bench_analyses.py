"""Time the trajectory and saturation analyses on a demo-sized dataset (CPU).

    python bench/bench_analyses.py            # random GRU, N=2000, T=30, H=64, plus the race demo
    python bench/bench_analyses.py --quick    # N=500

Prints one line per analysis and the total of the analyses themselves (model runs — trace,
predict — are reported separately, since they belong to the engine).
"""
from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import numpy as np
import torch

import rnnviz_core as rv
from rnnviz_core import findings as FD
from rnnviz_core import groups as G
from rnnviz_core import saturation as S
from rnnviz_core import trajectories as TJ

ROWS: list[tuple[str, float, str]] = []


@contextmanager
def timed(name: str, kind: str = "analysis"):
    t0 = time.perf_counter()
    yield
    ROWS.append((name, time.perf_counter() - t0, kind))


class RandomGRU(torch.nn.Module):
    def __init__(self, f: int, h: int, c: int, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.rnn = torch.nn.GRU(f, h, batch_first=True)
        self.head = torch.nn.Linear(h, c)

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        idx = (torch.as_tensor(lengths) - 1) if lengths is not None else torch.full((x.shape[0],), x.shape[1] - 1)
        return self.head(out[torch.arange(x.shape[0]), idx.long()])


def run(name: str, model, model_b, x, lengths, y, columns=None) -> None:
    ROWS.clear()
    n, t, f = x.shape
    with timed("trace (hidden)", "model"):
        tr = rv.trace(model, x, lengths, device="cpu")
    with timed("trace gates (unrolled)", "model"):
        gates = S.trace_gates(tr)
    with timed("PCA fit + paths"):
        paths, pca = TJ.pca_paths(tr)
    with timed("state norms + plateau"):
        norms = TJ.state_norms(tr)
    with timed("similar pairs within + across"):
        labels = tr.logits.argmax(1)
        TJ.similar_pairs(tr, labels=labels, mode="within")
        TJ.similar_pairs(tr, labels=labels, mode="across")
    with timed("pair distance + parting"):
        d = TJ.pair_distance(tr.hidden[0], tr.hidden[1], lengths[0], lengths[1])
        TJ.parting_step(d)
        TJ.parting_summary(d)
    with timed("unit order (similarity)"):
        TJ.unit_order(tr)
    with timed("heatmap data (2 sequences)"):
        TJ.heatmap_data(tr, seqs=[0, 1])
    with timed("saturation per sequence (+gates)"):
        S.saturation_by_sequence(tr, gates=gates)
    with timed("saturation per step / unit / unit x step"):
        S.saturation_by_step(tr)
        S.saturation_by_unit(tr)
        S.unit_saturation_over_time(tr)
    with timed("gate left/right per unit"):
        S.gate_saturation(gates, tr.lengths)
    with timed("value distribution + suggested threshold"):
        S.value_distribution(tr, threshold=0.9, low=0.1, high=0.9)
        S.suggest_threshold(tr)
    with timed("sequence table + group summaries"):
        table = G.sequence_table(tr, y, gates=gates, columns=columns)
        for by in ("saturation", "correct", "true_class", "predicted_class"):
            G.group_summary(table, by)
        S.saturation_over_time(tr, groups=table["saturation"])
    with timed("two-group tests"):
        levels = table["saturation"].value_counts()
        present = [lv for lv in levels.index if levels[lv] >= 2]
        if len(present) >= 2:
            G.compare_groups(table, "saturation", present[0], present[1])
        cmp = G.compare_groups(table, "correct", "correct", "wrong")
    with timed("tables for people + findings"):
        G.comparison_table(cmp)
        G.summary_table(G.group_summary(table, "correct"))
        FD.saturation_findings(cmp, by="correct")
        FD.trajectory_findings(d, norms=norms, seqs=[0, 1])
    calls = {"n": 0, "s": 0.0}

    def counting_predict(xx, ll):
        t0 = time.perf_counter()
        out = rv.predict(model, xx, ll, device="cpu")
        calls["n"] += 1
        calls["s"] += time.perf_counter() - t0
        return out

    with timed("resilience sweep (4 conditions)"):
        res = G.resilience_sweep(model, x, lengths, predict_fn=counting_predict, base_logits=tr.logits)
        G.resilience_summary(res, table, "saturation")
    ROWS.append((f"  of which model runs ({calls['n']} batched predict calls)", calls["s"], "model"))
    with timed("trace of second model", "model"):
        tr_b = rv.trace(model_b, x, lengths, device="cpu")
    with timed("reproducibility"):
        G.reproducibility(tr, tr_b, groups=table["saturation"].astype(str).to_numpy())

    analysis = sum(s for nm, s, k in ROWS if k == "analysis") - calls["s"]
    model_s = sum(s for nm, s, k in ROWS if k == "model")
    print(f"\n== {name}: N={n}, T={t}, F={f}, H={tr.hidden.shape[2]}, gates={sorted(gates)}")
    for nm, s, k in ROWS:
        print(f"  {nm:<48s} {s * 1000:8.1f} ms   ({k})")
    print(f"  {'TOTAL analyses (excluding model runs)':<48s} {analysis * 1000:8.1f} ms")
    print(f"  {'TOTAL model runs (trace, gates, predict)':<48s} {model_s * 1000:8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    import scipy.stats  # noqa: F401  one-off imports, paid once per process (the app pays them at start)
    import sklearn.decomposition  # noqa: F401
    print(f"one-off imports (scikit-learn, scipy.stats): {(time.perf_counter() - t0) * 1000:.0f} ms")
    n, t, f, h, c = (500 if args.quick else 2000), 30, 5, 64, 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, t, f)).astype(np.float32)
    lengths = rng.integers(5, t + 1, size=n)
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    y = rng.integers(0, c, size=n)
    run("random GRU", RandomGRU(f, h, c, 0), RandomGRU(f, h, c, 1), x, lengths, y)
    try:
        from rnnviz_core.demos import load_demo
        model, ds = load_demo("race")
    except Exception as exc:  # demo not built in this checkout
        print(f"\n(race demo unavailable: {exc})")
        return
    model_b = RandomGRU(ds.X.shape[2], model.config.hidden_size, len(ds.class_names), 2)
    model_b.rnn = torch.nn.GRU(ds.X.shape[2], model.config.hidden_size, batch_first=True)
    run("race demo (second model: untrained GRU of the same size)", model, model_b, ds.X, ds.lengths, ds.y,
        columns=ds.groups)


if __name__ == "__main__":
    main()
