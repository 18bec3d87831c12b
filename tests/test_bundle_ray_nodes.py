"""A bundle built on a Ray cluster of two nodes equals one built locally (<= 1e-5).

The cluster is started in the test (``ray.cluster_utils.Cluster``): two nodes, each with its own
raylet and object store (100 MB each), so blocks, the model and the results travel between object
stores as on two machines. Each node declares one GPU (Ray accounts GPUs as resources; this
machine has none and the actors run on the CPU): the build's default then asks one GPU per actor
and one actor per GPU, which is the path a GPU cluster takes. The manifest records where the
blocks ran; the test checks that the actors were on both nodes and held a GPU each.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

try:
    import ray
    import ray.data  # noqa: F401
    from ray.cluster_utils import Cluster
except ImportError:
    if os.environ.get("RNNVIZ_REQUIRE_RAY"):
        raise RuntimeError("Ray tests required (RNNVIZ_REQUIRE_RAY is set) but ray[data] is not installed: "
                           "pip install -e '.[test,ray]'") from None
    pytest.skip("Ray is an optional extra: pip install -e '.[test,ray]'", allow_module_level=True)

import rnnviz_core as rv  # noqa: E402
from rnnviz_core import bundle  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]
TOL = 1e-5
STORE = 100 * 1024**2


@pytest.fixture(scope="module")
def two_nodes():
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "num_gpus": 1, "object_store_memory": STORE, "include_dashboard": False})
    cluster.add_node(num_cpus=2, num_gpus=1, object_store_memory=STORE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_two_nodes_build_the_local_bundle(two_nodes, tmp_path):
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(120))
    local = bundle.open(bundle.build(model, ds, tmp_path / "local", batch_size=20, sample=8, device="cpu"))
    seq = bundle.write_sequences(ds, tmp_path / "seq.parquet", block_size=20)
    before = ray.data.DataContext.get_current().wait_for_min_actors_s
    built = bundle.build(model, seq, tmp_path / "ray", engine="ray", batch_size=20, sample=8, device="cpu")
    on_ray = bundle.open(built)
    # the build waits for every actor before it hands out blocks, then leaves Ray's setting as it was
    assert ray.data.DataContext.get_current().wait_for_min_actors_s == before

    b = on_ray.manifest["build"]
    assert b["engine"] == "ray" and b["ray_nodes"] == 2, b          # actors on both nodes
    assert b["ray_actors"] == 2 and b["ray_gpus_per_actor"] == 1.0, b
    assert b["ray_blocks_on_gpu_actors"] == "6 of 6", b              # every block on an actor holding a GPU

    for m in local.methods:
        a, r = local.scores(m), on_ray.scores(m)
        assert np.array_equal(np.isnan(a), np.isnan(r))
        assert np.nanmax(np.abs(a - r)) <= TOL
    for name in ("sum_abs", "step_change", "frac_saturated", "pc1", "pc2"):
        assert np.nanmax(np.abs(local.steps(name) - on_ray.steps(name))) <= TOL
    assert np.abs(local.logits - on_ray.logits).max() <= TOL
    fa, fb = local.sequences, on_ray.sequences
    assert list(fa.columns) == list(fb.columns)
    for col in fa.columns:
        if fa[col].dtype.kind in "fiu":
            np.testing.assert_allclose(fa[col].to_numpy(float), fb[col].to_numpy(float), atol=TOL)
        else:
            assert fa[col].astype(str).tolist() == fb[col].astype(str).tolist(), col
    assert local.manifest["data"]["content_hash"] == on_ray.manifest["data"]["content_hash"]
    np.testing.assert_array_equal(local.sample_rows, on_ray.sample_rows)
    sa, sb = local.saturation_over_time("true_class"), on_ray.saturation_over_time("true_class")
    np.testing.assert_allclose(sa["frac_saturated"], sb["frac_saturated"], atol=TOL)
