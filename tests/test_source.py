"""The source interface every page renders (rnnviz_app/sources/source.py, issue 20).

A bundle of the race demo and the same model and data live: what each source holds (ids, lengths,
states of the sequences A and B can be) is checked against the model and data themselves
(``rv.trace`` on the sampled rows, the dataset's ids and lengths), the scores of A and B against
``rv.contributions``; the grouping key is "correct" on both; and each view a bundle cannot compute
has a plain sentence, while a live numeric model computes every one.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # rnnviz_app beside streamlit_app.py

N = 200


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    from rnnviz_app.sources.source import BundleSource
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    sub = ds.subset(np.arange(N))
    path = rvb.build(model, sub, tmp_path_factory.mktemp("src") / "race.rnnviz", methods=("grad_norm",), sample=12)
    return model, sub, BundleSource("f" * 64, rvb.open(path))


def test_a_bundle_source_holds_its_sampled_sequences_as_the_data_has_them(race):
    import rnnviz_core as rv

    model, ds, src = race
    rows = src.rows
    assert 0 < len(rows) < N and src.key == "bundle:" + "f" * 64 and src.bundle
    assert src.ids == [str(ds.ids[r]) for r in rows]
    np.testing.assert_array_equal(src.lengths, np.asarray(ds.lengths)[rows])
    assert list(src.labels()) == src.ids                       # picker labels keyed by those ids, in order
    assert src.class_names == list(ds.class_names) and src.task == "classification"
    layers, dirs, kinds = src.layer_options()
    tr = rv.trace(model, ds.X[rows], np.asarray(ds.lengths)[rows])
    info = tr.modules[-1]
    assert layers == list(range(info.num_layers)) and dirs == ["fwd", "bwd"][: info.num_directions]
    assert set(kinds) == set(info.kinds) and {"h", "r", "z", "n"} <= set(kinds)    # the race demo is a GRU
    for kind in kinds:   # every unit, gate and cell state of the sampled sequences, as the model computes them
        H = src.states(kind, layers[-1], "fwd")
        want = tr.get(kind, layer=layers[-1], direction="fwd")
        assert H.shape == want.shape, kind
        np.testing.assert_allclose(np.nan_to_num(H), np.nan_to_num(want), atol=1e-5, err_msg=kind)
    assert [src.row(p) for p in range(len(rows))] == rows
    # every sequence's paths and sizes are stored for h, last layer, forward only: a sentence for the rest
    assert src.cannot_view("h", layers[-1], "fwd") is None
    assert src.cannot_view("z", layers[-1], "fwd").startswith("This analysis bundle holds numbers only")


def test_a_bundle_sources_scores_of_a_and_b_are_the_models(race):
    import rnnviz_core as rv
    from rnnviz_app.views import page_scores as psc

    model, ds, src = race
    assert psc.methods(src) == ["grad_norm"]
    got = psc.scores(src, "grad_norm", 0, 1)
    rows = [src.row(0), src.row(1)]
    sc = rv.contributions(model, ds.X[rows], "grad_norm", np.asarray(ds.lengths)[rows])
    assert got.sc is None and got.pos is not None
    for i, r in enumerate(rows):
        part = got.frame[got.frame["seq"] == str(ds.ids[r])].sort_values("step")
        np.testing.assert_allclose(part["score"].to_numpy(), sc[i, : int(ds.lengths[r])], rtol=1e-4, atol=1e-6)
        top = got.top[got.top["seq"] == str(ds.ids[r])]
        assert int(top["step"].iloc[0]) == int(np.nanargmax(sc[i, : int(ds.lengths[r])]))


def test_the_grouping_key_is_correct_on_a_bundle_as_live(race):
    from rnnviz_app.sources import bundle_view as bv

    model, ds, src = race
    options = bv.groupings(src.b)
    assert "correct" in options and "outcome" not in options
    import torch
    with torch.no_grad():
        pred = model(torch.as_tensor(ds.X), torch.as_tensor(ds.lengths)).numpy().argmax(1)
    labels = bv.group_table(src.b, "correct")["_group"].astype(str).tolist()
    assert labels == ["correct" if p == y else "wrong" for p, y in zip(pred, ds.y)]


def test_what_a_bundle_cannot_compute_is_said_in_a_sentence(race):
    from rnnviz_app.sources.source import WHAT

    _, _, src = race
    for what in WHAT:
        text = src.cannot(what)
        assert text and text.endswith(".") and "model" in text, what
        assert "Traceback" not in text and "_" not in text.replace("RNNVIZ_", ""), (what, text)
    for what in ("whatif", "units", "unit_saturation", "gates", "features"):
        assert src.cannot(what).startswith("This analysis bundle holds numbers only, not the model, so ")
    assert src.cannot("no such view") is None


def test_a_live_numeric_model_computes_every_view():
    from rnnviz_app.sources.context import Loaded
    from rnnviz_app.sources.source import WHAT, LiveSource
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    src = LiveSource(Loaded(model, ds, "m", "d", "race", "race", "race"))
    assert not src.bundle and src.key == src.ctx.key
    assert all(src.cannot(w) is None for w in WHAT) and src.cannot_view("z", 0, "fwd") is None
    assert src.ids == [str(i) for i in ds.ids] and src.target is None


@pytest.mark.parametrize("demo", ["race", "window_sum"])
def test_the_pickers_say_the_live_words_on_a_bundle(demo, tmp_path):
    """A sequence's picker label on a bundle reads as the live picker's (``sequence_labels``):
    "id · true <class> · predicted <class>", or a number model's true and predicted values with 3
    significant digits; checked against the model's own forward pass."""
    import torch

    from rnnviz_app.sources.source import BundleSource
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo
    from rnnviz_core.regression import format_number

    model, ds = load_demo(demo)[:2]
    sub = ds.subset(np.arange(120))
    src = BundleSource("e" * 64, rvb.open(rvb.build(model, sub, tmp_path / "b.rnnviz", methods=("grad_norm",),
                                                     sample=8)))
    with torch.no_grad():
        out = model(torch.as_tensor(sub.X), torch.as_tensor(sub.lengths)).numpy()
    got = src.labels()
    assert list(got) == src.ids
    for r, sid in zip(src.rows, src.ids):
        if sub.class_names:
            want = f"{sid} · true {sub.class_names[int(sub.y[r])]} · predicted {sub.class_names[int(out[r].argmax())]}"
        else:
            want = f"{sid} · true {format_number(float(sub.y[r]))} · predicted {format_number(float(out[r].reshape(-1)[0]))}"
        assert got[sid] == want, (demo, got[sid], want)


def test_a_bundles_start_card_describes_the_models_recurrent_modules(race):
    from rnnviz_app.views import page_start as pst
    from rnnviz_core.engine import find_recurrent

    model, ds, src = race
    card = pst.card(src)
    want = "; ".join(info.describe() for info in find_recurrent(model))
    assert want and card["architecture"].startswith(want + " (class ")
    assert card["hashes"].splitlines()[2] == "bundle " + src.dig
