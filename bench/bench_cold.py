"""Before/after seconds of the cold-path work issue 18's speed pass changed, run one after the
other in one process on the same files, so that the RATIOS hold on a loaded machine (the absolute
seconds do not: print ``uptime`` with them).

On the target_1000 files of tests/e2e/sizes_files.py (1,000 steps x 128 units x 1,000 sequences,
GRU, a plain state dict: the upload tries each head reading and class order):

  * upload tables: before = one model run per head reading (4) plus one for the class orders;
    after = one run of the recurrence giving every reading (rnnviz_core.outputs);
  * start page + pages' trace: before = ``predict`` for the start page and a full trace with
    gates for the pages; after = one trace of the outputs and last-layer states (its logits are the
    predictions; the gates follow in a background thread, not timed here);
  * PCA basis: fitted on 200,000 sampled states (before) and 20,000 (after), every state projected;
  * Saturation over time: the two groups' states copied (before) and read in place (after).

Run: ``PYTHONPATH=. python3 bench/bench_cold.py [--repeat 1]``.
"""
from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))


def _t(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from sizes_files import make_case

    from rnnviz_core import budget, pairing, saturation as sa, trajectories as tj
    from rnnviz_core import data as dm, models as mm
    from rnnviz_core.data import check_against_model, load_data
    from rnnviz_core.models import READOUTS, load_model, with_readout
    from rnnviz_core.outputs import outputs_by_readout
    from rnnviz_core.trace import predict, trace
    import sklearn.decomposition  # noqa: F401 - imported once per server (in the background since this pass)

    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_case("target_1000", Path(tmp))
        model = mm.with_readout(load_model(files["model"].read_bytes(), name="m.pt"), "last")
        ds = load_data(files["data"].read_bytes(), name="d.npz")
    cands = dm.class_order_candidates(ds)
    named = mm.with_class_names(model, list(cands[0][2]))
    feats = check_against_model(dataclasses.replace(ds, y=None, class_names=None), model)
    aligned = check_against_model(ds, named)
    small, plan = budget.fit(aligned, named, max_bytes=budget.DEFAULT_MAX_BYTES)
    print(f"target_1000: {len(ds)} sequences for the upload tables; {len(small)} traced (trace budget)", flush=True)
    rows = []
    for _ in range(args.repeat):
        def before_tables():
            pairing.class_order_choices(model, ds, cands)
            return {k: predict(with_readout(named, k), feats.X, feats.lengths) for k in READOUTS}

        def after_tables():
            outs = outputs_by_readout(model, feats.X, feats.lengths)
            pairing.class_order_choices(model, ds, cands, outputs=outs)
            pairing.readout_choices(named, ds, outputs=outs)
            return outs
        tb, ref = _t(before_tables)
        ta, got = _t(after_tables)
        same = all(np.array_equal(ref[k].argmax(1), got[k].argmax(1)) for k in READOUTS)
        rows.append(("upload tables (5 runs -> 1)", tb, ta, f"same predicted classes: {same}"))

        tb, _ = _t(lambda: (predict(named, small.X, small.lengths), trace(named, small.X, small.lengths, gates=True)))
        ta, tr = _t(lambda: trace(named, small.X, small.lengths, gates=False))
        rows.append(("start page + pages' trace", tb, ta, "gates then computed in the background"))

        H = np.ascontiguousarray(tr.get("h"))
        lens = small.lengths
        tb, _ = _t(lambda: tj.pca_paths(H, lens, pca=tj.StatePCA(2, max_points=200_000).fit(H, lens)))
        ta, _ = _t(lambda: tj.pca_paths(H, lens))
        rows.append(("PCA paths (fit 200k -> 20k)", tb, ta, ""))

        groups = np.where(small.y == 0, "g0", np.where(small.y == 1, "g1", None)).astype(object)
        m = groups != None  # noqa: E711
        tb, _ = _t(lambda: sa.saturation_over_time(H[m], lens[m], groups=groups[m], threshold=0.9))
        ta, _ = _t(lambda: sa.saturation_over_time(H, lens, groups=groups, threshold=0.9, rows=m))
        rows.append(("Saturation over time", tb, ta, f"{int(m.sum())} of {len(m)} sequences in the two groups"))
    for name, tb, ta, note in rows:
        print(f"  {name:30s} before {tb:7.2f} s  after {ta:7.2f} s  ratio {tb / ta:5.1f}x  {note}", flush=True)
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)


if __name__ == "__main__":
    main()
