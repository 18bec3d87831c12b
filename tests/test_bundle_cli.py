"""`rnnviz precompute` run as a user runs it: a separate process, a model class of the user's own in
their project folder, weights saved the tutorial way, a long-form Parquet file made with pandas."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import rnnviz_core as rv
from rnnviz_core import bundle

ROOT = Path(__file__).resolve().parents[1]

FACTORY = textwrap.dedent('''
    import torch
    from torch import nn


    class AttnGRU(nn.Module):
        """A GRU with attention pooling: not a model rnnviz can rebuild from weights alone."""

        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 8, batch_first=True)
            self.score = nn.Linear(8, 1)
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            h, _ = self.gru(x)                      # (N, T, 8)
            w = torch.softmax(self.score(h).squeeze(-1), dim=1)
            return self.out((w.unsqueeze(-1) * h).sum(1))


    def build():
        return AttnGRU()
''')


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "rnnviz_core.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The engineer's folder: their model code, their weights and a long-form Parquet file."""
    d = tmp_path_factory.mktemp("proj")
    (d / "my_models.py").write_text(FACTORY)
    sys.path.insert(0, str(d))
    try:
        import my_models
        torch.manual_seed(0)
        model = my_models.build()
    finally:
        sys.path.remove(str(d))
    torch.save(model.state_dict(), d / "w.pt")
    rng = np.random.default_rng(1)
    rows = []
    for i in range(40):
        for t in range(int(rng.integers(3, 9))):
            rows.append({"seq_id": f"s{i:02d}", "step": t, "a": rng.normal(), "b": rng.normal(),
                         "c": rng.normal(), "site": "north" if i % 2 else "south", "label": int(i % 3 == 0)})
    pd.DataFrame(rows).to_parquet(d / "d.parquet", index=False)
    return d, model


def test_precompute_with_a_model_factory_matches_the_live_model(project):
    d, model = project
    r = _run(["precompute", "--model-factory", "my_models:build", "--weights", "w.pt", "--data", "d.parquet",
              "--out", "out.rnnviz", "--methods", "grad_norm,occlusion", "--batch-size", "16", "--sample", "6"], d)
    assert r.returncode == 0, r.stderr
    assert "Wrote out.rnnviz: 40 sequences, methods grad_norm, occlusion" in r.stdout
    b = bundle.open(d / "out.rnnviz")
    ds = rv.load_data(d / "d.parquet")
    assert list(b.ids) == list(ds.ids)
    for method in ("grad_norm", "occlusion"):
        ref = rv.contributions(model, ds.X, method, ds.lengths, device="cpu")
        got = b.scores(method)
        assert np.nanmax(np.abs(got - ref)) <= 1e-5
        assert np.array_equal(np.isnan(got), np.isnan(ref))
    logits = rv.predict(model, ds.X, ds.lengths, device="cpu")
    assert np.array_equal(b.sequences["pred"].to_numpy(), logits.argmax(1))
    assert list(b.sequences["site"]) == list(ds.groups["site"])
    m = b.manifest
    assert m["build"]["model_factory"] == "my_models:build"
    assert m["model"]["class"] == "my_models.AttnGRU"
    import hashlib
    assert m["build"]["weights_file_sha256"] == hashlib.sha256((d / "w.pt").read_bytes()).hexdigest()
    assert m["model"]["sha256"] == bundle.model_hash(model)

    r = _run(["inspect", "out.rnnviz"], d)
    assert r.returncode == 0 and "40 sequences" in r.stdout and "grad_norm, occlusion" in r.stdout
    assert f"sha256 {hashlib.sha256((d / 'out.rnnviz').read_bytes()).hexdigest()}" in r.stdout


def test_precompute_with_a_model_file(tmp_path):
    model, ds = rv.demos.load_demo("marker")[:2]
    ds = ds.subset(np.arange(60))
    rv.save_model(model, tmp_path / "m.safetensors")
    np.savez(tmp_path / "d.npz", X=ds.X, lengths=ds.lengths, y=ds.y)
    r = _run(["precompute", "--model", "m.safetensors", "--data", "d.npz", "--out", "b", "--sample", "4",
              "--batch-size", "16", "--resume"], tmp_path)
    assert r.returncode == 0, r.stderr
    # the progress bar (stderr): the one pass reaches 60 of 60 sequences, with a rate and a time left
    for what in ("rnnviz: analyses",):
        line = [ln for ln in r.stderr.replace("\r", "\n").splitlines() if ln.startswith(what)][-1]
        assert re.search(r"100%.* 60(\.0)?/60(\.0)? \[[0-9:]+<[0-9:]+, *[0-9.]+[kMG]?seq/s\]", line), line
    assert not (tmp_path / ".b.rnnviz-build").exists()
    b = bundle.open(tmp_path / "b")
    ref = rv.contributions(model, ds.X, "grad_norm", ds.lengths, device="cpu")
    assert np.nanmax(np.abs(b.scores("grad_norm") - ref)) <= 1e-5
    assert (tmp_path / "b").is_dir() and len(b.sample_rows) == 4


def test_precompute_says_what_is_wrong_without_a_traceback(project):
    d, _ = project
    r = _run(["precompute", "--model-factory", "my_models:nope", "--data", "d.parquet", "--out", "x.rnnviz"], d)
    assert r.returncode == 2
    assert "Could not find 'my_models:nope'" in r.stderr and "Traceback" not in r.stderr
    r = _run(["precompute", "--model-factory", "my_models:build", "--weights", "w.pt", "--data", "d.parquet",
              "--out", "x.rnnviz", "--methods", "gradnorm"], d)
    assert r.returncode == 2 and "Unknown contribution method" in r.stderr and "Traceback" not in r.stderr
    (d / "bad.rnnviz").write_bytes(b"nope")
    r = _run(["inspect", "bad.rnnviz"], d)
    assert r.returncode == 2 and "not an rnnviz bundle" in r.stderr
