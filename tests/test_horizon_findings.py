"""Horizon and decision-step findings of the Contributions page.

Sentences are checked against hand-built frames, and through the page's glue on demos whose
decision is known: the marker demo decides at the second marker where the first value points the
other way (checked by running the model on every prefix here, not through rnnviz), the regression
demo's prefix outputs come within the stated tolerance of the final output at the step found by
hand, and a text model's sentence names the word read at the decision step.
"""
from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
import streamlit as st
import torch

import rnnviz_core as rv
from rnnviz_core.horizon_findings import (
    horizon_group_findings,
    horizon_pair_findings,
    regression_tolerance,
)
from rnnviz_core.horizons import compare_horizons

logging.getLogger("streamlit").setLevel(logging.ERROR)


def _frame(rows):
    return pd.DataFrame(rows, columns=["seq", "length", "decision_step", "horizon_90"])


def test_pair_sentences_by_hand():
    f = _frame([[7, 30, 12, 6.0], [9, 20, 0, 20.0], [11, 10, 9, 1.0], [13, 8, 3, np.nan]])
    s = horizon_pair_findings(f, [7, 9], method_label="integrated gradients")
    assert s == ["A is decided at step 12 of 30 and stays; 90% of the contribution mass by integrated gradients "
                 "lies in its last 6 steps.",
                 "B's answer is the same from the first step on; 90% of the contribution mass by integrated "
                 "gradients lies in its last 20 steps (all of them)."]
    s = horizon_pair_findings(f, [11, 13], ["first", "second"])
    assert s == ["first is decided only at its last step (9 of 10); 90% of the contribution mass lies in its last step.",
                 "second is decided at step 3 of 8 and stays; it has no contribution mass, so no horizon."]
    s = horizon_pair_findings(f, [7], ["A"], regression=True, tol=0.25)
    assert s[0].startswith("A's output comes within 0.25 of its final value at step 12 of 30 and stays there;")
    words = [["w%d" % i for i in range(30)]]
    assert "step 12 ('w12') of 30" in horizon_pair_findings(f, [7], ["A"], words=words)[0]
    assert horizon_pair_findings(f.iloc[:0], [7]) == [] and horizon_pair_findings(None, [7]) == []


def _cmp(p, mean_a=18.0, mean_b=12.0, n_a=20, n_b=80, effect=0.6):
    return pd.DataFrame([{"metric": "decision_step", "group_a": "wrong", "group_b": "correct", "n_a": n_a,
                          "n_b": n_b, "mean_a": mean_a, "mean_b": mean_b, "p_value": p / 2, "p_adjusted": p,
                          "effect_size": effect, "effect_name": "rank-biserial r"}])


def test_group_sentences_claim_a_difference_only_under_the_corrected_p():
    assert horizon_group_findings(_cmp(0.01)) == [
        "Wrong sequences are decided 6.0 steps later than correct ones on average (step 18.0 vs 12.0, p = 0.01, "
        "a large difference)."]
    # the raw p (0.03) is below 0.05 but the corrected one is not: no difference is claimed
    assert horizon_group_findings(_cmp(0.06)) == [
        "The decision step does not clearly differ between wrong and correct sequences (step 18.0 vs 12.0 on "
        "average, p = 0.06)."]
    c = _cmp(0.01).assign(group_a="error 0.1 to 1", group_b="error 0 to 0.1")
    assert horizon_group_findings(c)[0].startswith(
        "Sequences with error 0.1 to 1 are decided 6.0 steps later than those with error 0 to 0.1 on average")
    # the later group comes first whichever side it is on
    assert horizon_group_findings(_cmp(0.001, 10.0, 14.5))[0].startswith(
        "Correct sequences are decided 4.5 steps later than wrong ones")
    assert horizon_group_findings(_cmp(0.01, n_a=1)) == []     # a group of one sequence says nothing
    assert horizon_group_findings(None) == []


def test_group_sentence_from_the_saturation_statistics():
    # 12 wrong sequences decided at steps 14..25, 40 correct ones at 0..19: the test must find it
    dec = np.r_[np.arange(14, 26), np.arange(40) % 20]
    frame = pd.DataFrame({"seq": np.arange(52), "length": 30, "decision_step": dec,
                          "steps_after_decision": 29 - dec, "horizon_50": 3.0, "horizon_90": 6.0})
    table = pd.DataFrame({"seq": np.arange(52), "outcome": np.r_[np.zeros(12, bool), np.ones(40, bool)]})
    table["outcome"] = np.where(table["outcome"], "correct", "wrong")
    cmp = compare_horizons(frame, table, "outcome", "wrong", "correct")
    s = horizon_group_findings(cmp)[0]
    diff = dec[:12].mean() - dec[12:].mean()
    assert s.startswith(f"Wrong sequences are decided {diff:.1f} steps later than correct ones on average "
                        f"(step {dec[:12].mean():.1f} vs {dec[12:].mean():.1f}, p ")


def test_regression_tolerance_is_the_decision_rule():
    final = np.array([1.0, 3.0, -2.0, 0.5])
    assert regression_tolerance(final) == pytest.approx(0.05 * np.std(final))
    assert regression_tolerance([2.0, 2.0]) == pytest.approx(0.1)
    prefix = np.array([[0.0, 1.0, 0.99], [3.0, 3.0, 3.0], [-2.0, -2.0, -2.0], [0.0, 0.5, 0.5]])[..., None]
    assert rv.horizons.decision_steps(prefix, [3, 3, 3, 3]).tolist() == [1, 0, 0, 1]


# ----------------------------------------------------------------------------- through the page's glue
@pytest.fixture
def loaded(monkeypatch, tmp_path):
    from rnnviz_app.sources import loading as ld
    from rnnviz_app.sources import uploads as up
    from rnnviz_app.state import state_url as su
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    up.upload_store.clear()
    for k in list(st.session_state.keys()):
        del st.session_state[k]
    su.init_session()
    torch.set_num_threads(1)

    def load(key):
        ctx = ld.resolve_loaded(key)
        assert ctx is not None
        return ctx
    return load


def _prefix_out(model, x, length):
    with torch.no_grad():
        return np.stack([model(torch.as_tensor(x[None, : t + 1]), torch.tensor([t + 1]))[0].numpy()
                         for t in range(length)]).reshape(length, -1)


def _first_settled(same):
    d = 0
    for t, ok in enumerate(same):
        if not ok:
            d = t + 1
    return d


def test_marker_sentence_names_the_second_marker(loaded):
    from rnnviz_app.views import page_horizons as ph
    ctx = loaded("marker")
    ds, model = ctx.data, ctx.model
    sc = rv.contributions(model, ds.X, "grad_norm", ds.lengths)
    # sequences whose first marked value points the other way than the sum: decided at the second marker
    rows = []
    for i in range(len(ds.X)):
        L = int(ds.lengths[i])
        m = np.flatnonzero(ds.X[i, :L, 1] > 0.5)
        v, w = ds.X[i, m[0], 0], ds.X[i, m[1], 0]
        if np.sign(v) != np.sign(v + w) and abs(v + w) > 0.3 and m[1] < L - 1:
            cls = _prefix_out(model, ds.X[i], L).argmax(1)
            if cls[-1] == ds.y[i] and _first_settled(cls == cls[-1]) == m[1]:
                rows.append((i, int(m[1]), L))
        if len(rows) == 2:
            break
    assert len(rows) == 2
    (a, ma, La), (b, mb, Lb) = rows
    s = ph.findings(ctx, sc, "grad_norm", a, b)
    assert s[0].startswith(f"A is decided at step {ma} of {La} and stays; 90% of the contribution mass by ")
    assert s[1].startswith(f"B is decided at step {mb} of {Lb} and stays;")
    assert any(x.startswith("The decision step does not clearly differ") or "steps later than" in x for x in s[2:])


def test_regression_sentence_states_its_tolerance(loaded):
    from rnnviz_app.views import page_horizons as ph
    ctx = loaded("window_sum")
    ds, model = ctx.data, ctx.model
    sc = rv.contributions(model, ds.X, "grad_norm", ds.lengths)
    with torch.no_grad():
        final = model(torch.as_tensor(ds.X), torch.as_tensor(ds.lengths)).numpy().reshape(-1)
    tol = 0.05 * np.std(final)
    s = ph.findings(ctx, sc, "grad_norm", 0, 1)
    for i, name, sent in ((0, "A", s[0]), (1, "B", s[1])):
        L = int(ds.lengths[i])
        out = _prefix_out(model, ds.X[i], L)[:, 0]
        d = _first_settled(np.abs(out - out[-1]) <= tol)
        m = re.match(rf"{name}'s output comes within ([0-9.e-]+) of its final value (?:at step (\d+) of {L}|"
                     rf"only at its last step \((\d+) of {L}\))", sent)
        assert m, sent
        assert float(m.group(1)) == pytest.approx(tol, rel=2e-3)
        assert int(m.group(2) or m.group(3)) == d
    # regression groups: the largest error quarter against the smallest
    assert any(x.startswith("The decision step does not clearly differ between sequences with error ") or
               re.match(r"Sequences with error .* are decided .* later than those with error ", x) for x in s[2:]), s


def test_text_sentence_names_the_deciding_word(loaded):
    from rnnviz_app.views import page_horizons as ph
    ctx = loaded("text")
    ds, model = ctx.data, ctx.model
    sc = rv.contributions(model, ds.X, "grad_norm", ds.lengths)
    voc = model.vocabulary
    s = ph.findings(ctx, sc, "grad_norm", 0, 1)
    for i, sent in ((0, s[0]), (1, s[1])):
        L = int(ds.lengths[i])
        cls = _prefix_out(model, ds.X[i], L).argmax(1)
        d = _first_settled(cls == cls[-1])
        if 0 < d < L - 1:
            assert f"decided at step {d} ('{voc[ds.X[i, d]]}') of {L} and stays" in sent
        else:
            assert str(d) in sent


def test_group_rows_bound_the_squared_steps():
    from rnnviz_app.views.page_horizons import GROUP_COST, group_rows
    assert group_rows(np.full(1000, 30)).tolist() == list(range(1000))      # 900,000 prefix-steps: all of them
    r = group_rows(np.full(240, 480))                                       # 230,400 each: a few, spread out
    assert 4 <= len(r) and len(r) * 480 ** 2 <= GROUP_COST and r[0] == 0 and r[-1] == 239
    assert np.all(np.diff(r) > 0)
    r = group_rows(np.full(1000, 50))                                       # 2.5M in all: 800 of them
    assert len(r) == 800 and len(r) * 50 ** 2 <= GROUP_COST

