"""The pages read a host's bundle lazily (issues 20, 21): never its sequence table whole.

A bundle of the race demo is opened as the host's bundle (``bundle_source.open_lazy``) with the
whole-table read (``Bundle._table``) replaced by a spy that fails; every figure the pages draw is
then compared with the same figure computed from the full table of the same bundle opened the
ordinary way (``Bundle.sequences``, ``paths()``, ``norms()``, ``scores()``, the live page's
``compare`` and ``rankings``), and every page (the same files as for a live model) is run under
AppTest with the spy in place.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # rnnviz_app beside streamlit_app.py

#: the unified pages (the same files render a live model and a bundle)
PAGE_FILES = {"trajectories": "pages/1_Trajectories.py", "saturation": "pages/2_Saturation.py",
              "contributions": "pages/3_Contributions.py"}
ENTRY = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
N = 300


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    path = rvb.build(model, ds.subset(np.arange(N)), tmp_path_factory.mktemp("lz") / "race", batch_size=70,
                     methods=("grad_norm", "input_x_grad"), sample=16)
    return path, rvb.open(path)


@pytest.fixture
def no_whole_reads(monkeypatch):
    """Every read of the table whole is recorded and fails."""
    from rnnviz_core.bundle import Bundle

    calls = []

    def spy(self):
        calls.append(self)
        raise AssertionError("the sequence table was read whole")

    monkeypatch.setattr(Bundle, "_table", spy)
    return calls


def _lazy(path):
    from rnnviz_app.sources import bundle_source as bs

    return bs.open_lazy(path)


def test_every_figure_equals_the_full_tables(made, no_whole_reads):
    from rnnviz_app.sources import bundle_reads as br
    from rnnviz_app.sources import bundle_view as bv
    from rnnviz_app.views import page_saturation as ps
    from rnnviz_core.attribution import rankings as rk

    path, full = made
    seq = full.sequences
    b = _lazy(path)
    assert b._frame is None
    # Start: the score over every sequence
    s = bv.summary(b)
    assert s["score_value"] == f"{seq['correct'].astype(float).mean():.1%}"
    # the pickers: the sampled rows, ids and lengths from the table
    rows = [int(r) for r in b.sample_rows]
    assert bv.sample_ids(b) == {r: str(seq["id"].iloc[r]) for r in rows}
    assert bv.sample_lengths(b) == {r: int(seq["length"].iloc[r]) for r in rows}
    # Trajectories: paths and |h| of the rows drawn, equal to the full frames' rows
    ids = [str(seq["id"].iloc[r]) for r in rows]
    got = br.paths(b, rows, ids)
    want = full.paths()
    want = want[want["seq"].isin(ids)]
    want = pd.concat([want[want["seq"] == i] for i in ids]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert got.attrs["explained_variance_ratio"] == want.attrs["explained_variance_ratio"]
    got = br.norms(b, rows[:2], ids[:2])
    want = full.norms()
    want = pd.concat([want[want["seq"] == i] for i in ids[:2]]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # Saturation: the groups and the comparison table, as the live page computes them on the full table
    for key in bv.groupings(b):
        labels = bv.group_table(b, key)["_group"]
        stored = bv.stored_grouping(b, key)
        full_col = stored if stored in seq else key      # a data column: its key is its column
        assert labels.tolist() == seq[full_col].astype(str).tolist(), key
    table = bv.group_table(b, "correct")
    ref = seq.copy()
    ref["_group"] = seq["outcome"].astype(str).to_numpy()
    pd.testing.assert_frame_equal(ps.compare(table, "_group", "correct", "wrong"),
                                  ps.compare(ref, "_group", "correct", "wrong"))
    # Contributions: A and B's scores, their top steps, the position curves over every sequence
    names = np.asarray(full.class_names, dtype=object)
    for m in full.methods:
        frame, top, pos, by_class, note = bv.contribution_frames(b, m, rows[0], rows[1])
        sc = np.nan_to_num(full.scores(m))
        lens = seq["length"].to_numpy()
        pick = [rows[0], rows[1]]
        pd.testing.assert_frame_equal(frame, rk.scores_frame(sc[pick], method=m, ids=np.asarray(ids[:2], object),
                                                             lengths=lens[pick]))
        pd.testing.assert_frame_equal(top, rk.top_steps(sc[pick], k=5, ids=np.asarray(ids[:2], object),
                                                        lengths=lens[pick]))
        want = rk.mean_abs_by_position(sc, relative=True, normalize=True, lengths=lens)
        pd.testing.assert_frame_equal(pos, want, check_dtype=False, rtol=1e-6)
        want = rk.mean_abs_by_group(sc, names[seq["true"].to_numpy()], lengths=lens, name="true class")
        pd.testing.assert_frame_equal(by_class, want, check_dtype=False, rtol=1e-6)
        assert note is None
    assert not no_whole_reads
    assert b._frame is None


def test_an_old_bundle_without_position_aggregates_falls_back(made, monkeypatch):
    """A bundle built before the position aggregates: small, the curves come from its scores;
    large, the page gets a sentence instead (and reads nothing whole)."""
    from rnnviz_app.sources import bundle_reads as br
    from rnnviz_app.sources import bundle_view as bv

    path, full = made
    b = _lazy(path)
    agg = dict(b.manifest["analysis"]["aggregates"])
    agg.pop("position_bins")
    monkeypatch.setitem(b.manifest["analysis"], "aggregates", agg)
    rows = [int(r) for r in b.sample_rows]
    *_, pos, by_class, note = bv.contribution_frames(b, "grad_norm", rows[0], rows[1])
    assert note is None and pos is not None and by_class is not None
    monkeypatch.setattr(br, "FALLBACK_CELLS", 10)
    b2 = _lazy(path)
    monkeypatch.setitem(b2.manifest["analysis"], "aggregates", agg)
    b2._frame = None
    from rnnviz_core.bundle import Bundle

    monkeypatch.setattr(Bundle, "_table", lambda self: (_ for _ in ()).throw(AssertionError("read whole")))
    *_, pos, by_class, note = bv.contribution_frames(b2, "grad_norm", rows[0], rows[1])
    assert pos is None and by_class is None and "build it again" in note


def test_every_bundle_page_draws_from_a_host_bundle_never_read_whole(made, no_whole_reads, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    path, full = made
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("RNNVIZ_BUNDLE", str(path))
    at = AppTest.from_file(ENTRY, default_timeout=180)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    acc = f"{full.sequences['correct'].astype(float).mean():.1%}"
    assert at.metric[0].value == acc
    for page in ("trajectories", "saturation", "contributions"):
        at.switch_page(PAGE_FILES[page])
        at.run()
        assert not at.exception, (page, [e.message for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        charts = at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
        assert charts, page
        assert at.title[0].value == page.capitalize()
        assert any("analysis bundle" in i.value for i in list(at.info) + list(at.caption)), page   # the bundle's page
    # the id search: every id of the bundle, the sampled ones marked as pickable
    seq = full.sequences
    sampled = {int(r) for r in full.sample_rows}
    other = next(r for r in range(N) if r not in sampled)
    for row in (min(sampled), other):
        want = str(seq["id"].iloc[row])
        at.text_input(key="bundle_find").input(want).run()
        assert not at.exception
        text = next(c.value for c in at.caption if "contain" in c.value).replace("\\", "")
        hits = [str(i) for i in seq["id"] if want.lower() in str(i).lower()]
        assert all(h in text for h in hits[:20])
        mark = f"{want} (row {row}, full traces: pick it under Sequence A or B)"
        assert (mark in text) == (row in sampled), text
    at.text_input(key="bundle_find").input("no such id at all").run()
    assert any("No sequence id in this analysis bundle contains" in c.value for c in at.caption)
    assert not no_whole_reads


def test_a_bundle_from_before_the_aggregates_still_draws_every_page(made, tmp_path, monkeypatch):
    """No aggregates file at all (a bundle built before them): every page still runs; the position
    curves come from the scores (a small bundle), equal to rankings on the full table."""
    import json
    import shutil

    from streamlit.testing.v1 import AppTest

    from rnnviz_app.sources import bundle_view as bv
    from rnnviz_core.attribution import rankings as rk

    path, full = made
    old = tmp_path / "old"
    shutil.copytree(path, old)
    (old / "aggregates.safetensors").unlink()
    man = json.loads((old / "manifest.json").read_text())
    del man["files"]["aggregates.safetensors"]
    del man["analysis"]["aggregates"]
    (old / "manifest.json").write_text(json.dumps(man))
    b = _lazy(old)
    rows = [int(r) for r in b.sample_rows]
    *_, pos, by_class, note = bv.contribution_frames(b, "grad_norm", rows[0], rows[1])
    want = rk.mean_abs_by_position(np.nan_to_num(full.scores("grad_norm")), relative=True, normalize=True,
                                   lengths=full.lengths)
    assert note is None
    pd.testing.assert_frame_equal(pos, want, check_dtype=False)
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("RNNVIZ_BUNDLE", str(old))
    at = AppTest.from_file(ENTRY, default_timeout=180)
    at.run()
    for page in ("trajectories", "saturation", "contributions"):
        at.switch_page(PAGE_FILES[page])
        at.run()
        assert not at.exception and not at.error, page
        assert at.title[0].value == page.capitalize()
