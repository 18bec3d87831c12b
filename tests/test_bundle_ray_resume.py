"""A Ray build that stops midway resumes without redoing finished blocks (issue 21), and the
resumed bundle equals an uninterrupted local build (<= 1e-5).

The stop is the driver failing after it wrote two of the four blocks' parts (as a killed driver
would); the resumed run is counted on the driver: only the two unfinished blocks come back from
the actors, and the kept parts are not rewritten. One actor, the race demo's small GRU.
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
from rnnviz_core import bundle, bundle_engines  # noqa: E402
from test_bundle_resume import _same  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_a_ray_build_that_stops_midway_resumes_without_redoing_finished_blocks(cluster, tmp_path, monkeypatch):
    model, ds = rv.demos.load_demo("race")[:2]
    ds = ds.subset(np.arange(100))
    ref = bundle.open(bundle.build(model, ds, tmp_path / "ref", batch_size=25, sample=8, device="cpu"))

    written = []
    real = bundle_engines._write_block

    def flaky(pieces, path):   # the driver dies after two blocks' parts are written
        if len(written) == 2:
            raise RuntimeError("the driver went away")
        written.append(path.name)
        return real(pieces, path)

    monkeypatch.setattr(bundle_engines, "_write_block", flaky)
    out = tmp_path / "run"
    kw = dict(batch_size=25, sample=8, device="cpu", engine="ray", concurrency=1)
    with pytest.raises(RuntimeError, match="went away"):
        bundle.build(model, ds, out, **kw)
    assert not out.exists()
    kept = sorted((tmp_path / ".run.rnnviz-build" / "bundle" / "sequences").glob("part-*.parquet"))
    assert [p.name for p in kept] == sorted(written) and len(kept) == 2
    stamps = {p.name: p.stat().st_mtime_ns for p in kept}

    written.clear()
    seen = []
    bundle.build(model, ds, out, resume=True, progress=lambda d, t, w: seen.append(d), **kw)
    # 4 blocks: only the two unfinished come back from the actors and are written
    all_parts = {f"part-{k:05d}.parquet" for k in range(4)}
    assert len(written) == 2 and set(written) == all_parts - set(stamps)
    assert seen[0] == 50 and seen[-1] == 100      # the kept blocks counted as done at the start
    assert not (tmp_path / ".run.rnnviz-build").exists()
    b = bundle.open(out)
    assert b.manifest["build"]["engine"] == "ray"
    _same(b, ref)
