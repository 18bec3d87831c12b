"""A bundle built on Ray Data equals one built locally, number for number (<= 1e-5).

Needs the optional extra: ``pip install -e '.[test,ray]'``; skipped cleanly without it. Starts a
local Ray cluster with two CPUs.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

try:
    import ray
    import ray.data  # noqa: F401
except ImportError:
    if os.environ.get("RNNVIZ_REQUIRE_RAY"):   # CI: a missing Ray extra is a failure, not a skip
        raise RuntimeError("Ray tests required (RNNVIZ_REQUIRE_RAY is set) but ray[data] is not installed: "
                           "pip install -e '.[test,ray]'") from None
    pytest.skip("Ray is an optional extra: pip install -e '.[test,ray]'", allow_module_level=True)

import rnnviz_core as rv  # noqa: E402
from rnnviz_core import bundle  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TOL = 1e-5
METHODS = ["grad_norm", "input_x_grad", "integrated_gradients"]
OPTIONS = {"integrated_gradients": {"steps": 16}}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pair(cluster, tmp_path_factory):
    """The same model and data, built locally from memory and on Ray from a sequence file."""
    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(160))
    d = tmp_path_factory.mktemp("ray")
    local = bundle.build(model, ds, d / "local.rnnviz", methods=METHODS, method_options=OPTIONS,
                         batch_size=64, sample=10, device="cpu")
    seq = bundle.write_sequences(ds, d / "seq.parquet", block_size=50)
    on_ray = bundle.build(model, seq, d / "ray.rnnviz", methods=METHODS, method_options=OPTIONS, engine="ray",
                          batch_size=50, sample=10, device="cpu")
    return bundle.open(local), bundle.open(on_ray), model, ds


def _close(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.nanmax(np.abs(a - b), initial=0.0) <= TOL


def test_ray_and_local_bundles_hold_equal_numbers(pair):
    a, b, _, _ = pair
    assert a.manifest["build"]["engine"] == "local" and b.manifest["build"]["engine"] == "ray"
    for key in ("model", "data"):
        assert a.manifest[key] == b.manifest[key]
    assert a.manifest["analysis"] == b.manifest["analysis"]
    sa, sb = a.sequences, b.sequences
    assert list(sa.columns) == list(sb.columns)
    for col in sa.columns:
        if sa[col].dtype.kind in "fiub":
            _close(sa[col], sb[col])
        else:
            assert list(sa[col].astype(str)) == list(sb[col].astype(str)), col
    for m in METHODS:
        _close(a.scores(m), b.scores(m))
    for name in ("sum_abs", "step_change", "frac_saturated", "pc1", "pc2"):
        _close(a.steps(name), b.steps(name))
    for f in ("pca.safetensors", "saturation.safetensors", "samples.safetensors"):
        xa, xb = a._arrays(f), b._arrays(f)
        assert set(xa) == set(xb)
        for k in xa:
            _close(xa[k], xb[k])


def test_ray_bundle_matches_the_live_model(pair):
    _, b, model, ds = pair
    for m in METHODS:
        ref = rv.contributions(model, ds.X, m, ds.lengths, device="cpu", **OPTIONS.get(m, {}))
        _close(b.scores(m), ref)
    logits = rv.predict(model, ds.X, ds.lengths, device="cpu")
    assert np.array_equal(b.sequences["pred"].to_numpy(), logits.argmax(1))
    assert any(n.startswith("sequences/part-") for n in b.manifest["files"])


def test_cli_on_ray_with_a_model_class_of_the_users_own(tmp_path):
    """`rnnviz precompute --engine ray`: Ray's workers import the user's class from their folder."""
    import subprocess
    import sys
    from pathlib import Path

    import torch

    from test_bundle_cli import FACTORY

    (tmp_path / "my_models.py").write_text(FACTORY)
    sys.path.insert(0, str(tmp_path))
    try:
        import my_models
        torch.manual_seed(0)
        model = my_models.build()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_models", None)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 6, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", X=X, y=rng.integers(0, 2, 30))
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-m", "rnnviz_core.cli", "precompute", "--model-factory", "my_models:build",
                        "--weights", "w.pt", "--data", "d.npz", "--out", "out.rnnviz", "--engine", "ray",
                        "--batch-size", "8", "--sample", "4"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=500, env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert r.returncode == 0, r.stderr[-2000:]
    b = bundle.open(tmp_path / "out.rnnviz")
    assert b.manifest["build"]["engine"] == "ray"
    _close(b.scores("grad_norm"), rv.contributions(model, X, "grad_norm", device="cpu"))
