"""Background work started after the trace (rnnviz_app.state.prefetch): one job per key, its result
equal to the core's own computation, a failed job leaves the page to compute and explain."""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
import pytest
import streamlit as st

import rnnviz_core as rv
from rnnviz_app.sources import context as cx
from rnnviz_app.sources import loading as ld
from rnnviz_app.sources import sequences as sq
from rnnviz_app.sources import uploads as up
from rnnviz_app.state import prefetch
from rnnviz_app.state import state_url as su
from rnnviz_app.views import page_contributions as pc

logging.getLogger("streamlit").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    up.upload_store.clear()
    for k in list(st.session_state.keys()):
        del st.session_state[k]
    su.init_session()
    with prefetch._LOCK:
        prefetch._JOBS.clear()
        prefetch._CLAIMS.clear()
    yield


def test_one_job_per_key_even_when_asked_from_many_threads():
    calls, gate = [], threading.Event()

    def slow(v):
        calls.append(v)
        gate.wait(5)
        return v * 2

    futs = []
    threads = [threading.Thread(target=lambda: futs.append(prefetch.start(("k",), slow, 21))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    gate.set()
    assert prefetch.result(("k",)) == 42        # waits for the running job
    assert calls == [21] and len({id(f) for f in futs}) == 1


def test_a_failed_job_gives_none_and_an_unknown_key_too():
    def boom():
        raise RuntimeError("no")

    prefetch.start(("bad",), boom)
    deadline = time.time() + 5
    while not prefetch.get(("bad",)).done() and time.time() < deadline:
        time.sleep(0.01)
    assert prefetch.result(("bad",)) is None
    assert prefetch.result(("never",)) is None


def test_jobs_are_bounded_oldest_first():
    for i in range(prefetch.MAX_JOBS + 3):
        prefetch.start(("n", i), lambda i=i: i)
    assert prefetch.get(("n", 0)) is None and prefetch.get(("n", 2)) is None
    assert prefetch.result(("n", prefetch.MAX_JOBS + 2)) == prefetch.MAX_JOBS + 2


def test_the_trace_starts_the_default_scores_and_the_page_takes_them():
    keys = list(ld.demo_infos())
    ctx = ld.resolve_loaded(ld.DEFAULT_DEMO if ld.DEFAULT_DEMO in keys else keys[0])
    cx.set_loaded(ctx)
    key = prefetch.scores_key(ctx.key, pc.DEFAULT_METHOD, ctx.target)
    assert prefetch.get(key) is None
    sq.full_trace(ctx)                                     # what every page (the start page too) calls
    assert prefetch.get(key) is not None
    sc, _ = prefetch.get(key).result(timeout=120)
    # reference: the core's own call on the loaded sequences
    want = rv.contributions(ctx.model, ctx.data.X, "grad_norm", ctx.data.lengths, ctx.target)
    np.testing.assert_array_equal(np.asarray(sc), np.asarray(want))
    got, _ = pc.scores(ctx, "grad_norm")
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    # another method is computed by the page itself, and is not the prefetched array
    other, _ = pc.scores(ctx, "input_x_grad")
    np.testing.assert_allclose(np.asarray(other), np.asarray(rv.contributions(
        ctx.model, ctx.data.X, "input_x_grad", ctx.data.lengths, ctx.target)), atol=1e-6)


def test_a_page_that_asks_before_the_job_begins_computes_itself_and_the_job_stops():
    """The job first waits (for the trace's gates); a page asking meanwhile takes the work over
    instead of waiting for what the job waits for; the job then does not compute it again."""
    wait, ran = threading.Event(), []

    def job():
        wait.wait(5)                     # what the job waits for first
        if not prefetch.claim(("k2",)).take():
            return None
        ran.append(1)
        return "job's"

    prefetch.start(("k2",), job, claimable=True)
    assert prefetch.result(("k2",)) is None        # not begun: the caller computes it itself
    wait.set()
    assert prefetch.get(("k2",)).result(timeout=5) is None and ran == []

    gate = threading.Event()

    def begun():
        if not prefetch.claim(("k3",)).take():
            return None
        gate.wait(5)
        return "job's"

    prefetch.start(("k3",), begun, claimable=True)
    deadline = time.time() + 5
    while not prefetch.claim(("k3",)).taken and time.time() < deadline:
        time.sleep(0.01)
    threading.Timer(0.2, gate.set).start()
    assert prefetch.result(("k3",)) == "job's"      # begun: the caller waits for it


def test_the_trace_starts_the_saturation_pages_first_value_spread():
    import pandas as pd

    from rnnviz_app.views import page_saturation as ps
    from rnnviz_core import saturation as sa
    keys = list(ld.demo_infos())
    ctx = ld.resolve_loaded(ld.DEFAULT_DEMO if ld.DEFAULT_DEMO in keys else keys[0])
    cx.set_loaded(ctx)
    tr = sq.full_trace(ctx)
    layer = tr.modules[-1].num_layers - 1
    job = prefetch.get(ps._distribution_key(ctx, layer, "fwd"))
    assert job is not None
    limits, got = job.result(timeout=120)
    # reference: the core's own functions on the trace, at the suggested threshold
    h = tr.get("h", layer=layer, direction="fwd")
    thr = sa.suggest_threshold(h, tr.lengths).threshold
    assert limits == (thr, sa.DEFAULT_LOW, sa.DEFAULT_HIGH)
    want = sa.value_distribution(h, tr.lengths, gates=sa.trace_gates(tr, layer=layer, direction="fwd") or None,
                                 threshold=thr, low=0.1, high=0.9)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs == want.attrs
    page = ps.distribution(ctx, layer, "fwd", thr, 0.1, 0.9)
    pd.testing.assert_frame_equal(page, want)
    # other limits: computed by the page itself, not the prefetched frame
    other = ps.distribution(ctx, layer, "fwd", thr, 0.2, 0.8)
    assert other.attrs["low"] == 0.2 and other.attrs["high"] == 0.8


def test_the_host_can_turn_background_work_off(monkeypatch):
    monkeypatch.setenv("RNNVIZ_PREFETCH", "0")
    assert prefetch.start(("off",), lambda: 1) is None and prefetch.get(("off",)) is None
    keys = list(ld.demo_infos())
    ctx = ld.resolve_loaded(ld.DEFAULT_DEMO if ld.DEFAULT_DEMO in keys else keys[0])
    cx.set_loaded(ctx)
    sq.full_trace(ctx)
    assert prefetch.get(prefetch.scores_key(ctx.key, pc.DEFAULT_METHOD, ctx.target)) is None
    sc, _ = pc.scores(ctx, "grad_norm")                     # the page computes them itself
    np.testing.assert_array_equal(np.asarray(sc), np.asarray(rv.contributions(
        ctx.model, ctx.data.X, "grad_norm", ctx.data.lengths, ctx.target)))
