"""A bundle build that stops midway resumes without redoing finished blocks, and shows progress.

The reference is an uninterrupted build of the same model and data: the resumed bundle must hold
the same numbers (<= 1e-5) while the analyses of the blocks finished before the stop are not run
again (counted on the worker).
"""
from __future__ import annotations

import numpy as np
import pytest

import rnnviz_core as rv
from rnnviz_core import bundle, bundle_engines

TOL = 1e-5


@pytest.fixture(scope="module")
def race():
    model, ds = rv.demos.load_demo("race")[:2]
    return model, ds.subset(np.arange(100))


def _same(a: bundle.Bundle, b: bundle.Bundle) -> None:
    fa, fb = a.sequences, b.sequences
    assert list(fa.columns) == list(fb.columns)
    for col in fa.columns:
        if fa[col].dtype.kind in "fiu":
            np.testing.assert_allclose(fa[col].to_numpy(float), fb[col].to_numpy(float), atol=TOL, equal_nan=True)
        else:
            assert fa[col].astype(str).tolist() == fb[col].astype(str).tolist(), col
    for m in a.methods:
        np.testing.assert_allclose(a.scores(m), b.scores(m), atol=TOL, equal_nan=True)
    for name in ("sum_abs", "step_change", "frac_saturated", "pc1", "pc2"):
        np.testing.assert_allclose(a.steps(name), b.steps(name), atol=TOL, equal_nan=True)
    np.testing.assert_allclose(a.logits, b.logits, atol=TOL)
    assert a.manifest["data"]["content_hash"] == b.manifest["data"]["content_hash"]
    np.testing.assert_array_equal(a.sample_rows, b.sample_rows)


def _third_analyse_fails_once(monkeypatch) -> dict:
    """Worker.analyse counts its calls in the returned dict; the third call fails once, as a crash
    would (later calls, after the count is reset, run)."""
    calls, failed = {"analyse": 0}, []
    real_call = bundle_engines.Worker.analyse

    def flaky(self, tbl):
        calls["analyse"] += 1
        if calls["analyse"] == 3 and not failed:
            failed.append(True)
            raise RuntimeError("the machine went away")
        return real_call(self, tbl)

    monkeypatch.setattr(bundle_engines.Worker, "analyse", flaky)
    return calls


def test_a_build_that_stops_midway_resumes_without_redoing_finished_blocks(race, tmp_path, monkeypatch):
    """Each block's part is kept as it is finished (here the PCA fit's rows are traced before the
    pass: bundle_engines.HOLD_BYTES = 0, so no block waits for the basis)."""
    model, ds = race
    ref = bundle.open(bundle.build(model, ds, tmp_path / "ref", batch_size=25, sample=8))

    monkeypatch.setattr(bundle_engines, "HOLD_BYTES", 0)
    calls = _third_analyse_fails_once(monkeypatch)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="went away"):
        bundle.build(model, ds, out, batch_size=25, sample=8)
    assert not out.exists()
    left = tmp_path / ".run.rnnviz-build"
    assert sorted(p.name for p in (left / "bundle" / "sequences").iterdir()) == \
        ["part-00000.parquet", "part-00001.parquet"]
    assert calls == {"analyse": 3}

    calls.update(analyse=0)
    bundle.build(model, ds, out, batch_size=25, sample=8, resume=True)
    # 4 blocks: the finished blocks are kept, only blocks 3 and 4 are analysed
    assert calls == {"analyse": 2}
    assert not left.exists()
    _same(bundle.open(out), ref)


def test_a_build_that_stops_while_the_fit_blocks_wait_resumes_and_equals_the_reference(race, tmp_path, monkeypatch):
    """With the PCA fit's blocks held until the basis is fitted (this small data: every block), a
    stop before the basis leaves no part; the resumed build analyses every block and writes the
    bundle an uninterrupted build writes."""
    model, ds = race
    ref = bundle.open(bundle.build(model, ds, tmp_path / "ref", batch_size=25, sample=8))
    calls = _third_analyse_fails_once(monkeypatch)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="went away"):
        bundle.build(model, ds, out, batch_size=25, sample=8)
    assert not list((tmp_path / ".run.rnnviz-build" / "bundle" / "sequences").iterdir())
    calls.update(analyse=0)
    bundle.build(model, ds, out, batch_size=25, sample=8, resume=True)
    assert calls == {"analyse": 4}
    _same(bundle.open(out), ref)


def test_a_resume_with_other_options_starts_again(race, tmp_path, monkeypatch):
    model, ds = race
    real_call = bundle_engines.Worker.analyse
    state = {"n": 0}

    def flaky(self, tbl):
        state["n"] += 1
        if state["n"] == 2:
            raise RuntimeError("stop")
        return real_call(self, tbl)

    monkeypatch.setattr(bundle_engines.Worker, "analyse", flaky)
    with pytest.raises(RuntimeError):
        bundle.build(model, ds, tmp_path / "run", batch_size=25, sample=0)
    state["n"] = 10
    # another threshold: the kept blocks were computed with the old one and must not be reused
    bundle.build(model, ds, tmp_path / "run", batch_size=25, sample=0, threshold=0.8, resume=True)
    assert state["n"] == 14
    ref = bundle.build(model, ds, tmp_path / "ref", batch_size=25, sample=0, threshold=0.8)
    _same(bundle.open(tmp_path / "run"), bundle.open(ref))


def test_progress_counts_every_sequence_of_the_one_pass(race, tmp_path):
    model, ds = race
    seen = []
    bundle.build(model, ds, tmp_path / "p", batch_size=30, sample=0,
                 progress=lambda done, total, what: seen.append((what, done, total)))
    analyses = [s for s in seen if "analyses" in s[0]]
    assert [d for _, d, _ in analyses] == [30, 60, 90, 100] and {t for *_, t in analyses} == {100}
    assert {w for w, *_ in seen} == {w for w, *_ in analyses}     # every sequence traced in one pass
