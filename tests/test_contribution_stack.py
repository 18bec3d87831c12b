"""The live Contributions page's stacked chart (issue 20): ``contribution_stack.stacked_with_inputs``
draws what the page used to build inline — the input strip, the hidden-state heatmap and the step
scores, stacked, with their captions joined — built here by hand from the core chart functions."""
from __future__ import annotations

import altair as alt
import numpy as np
import pytest

from rnnviz_app.views.contribution_stack import stacked_with_inputs
from rnnviz_core.charts import contributions as cc
from rnnviz_core.charts.inputs import input_strip_chart
from rnnviz_core.charts.trajectories import caption, heatmap_chart
from rnnviz_core.rankings import scores_frame
from rnnviz_core.trajectories import heatmap_data


def _data():
    rng = np.random.default_rng(0)
    n, T, H = 3, 9, 5
    lengths = np.array([9, 6, 7])
    X = rng.normal(size=(n, T, 2))
    states = rng.normal(size=(n, T, H))
    scores = rng.normal(size=(n, T))
    for i, L in enumerate(lengths):
        states[i, L:] = np.nan
        scores[i, L:] = np.nan
    ids = ["s0", "s1", "s2"]
    hm = heatmap_data(states, lengths, seqs=[0, 1], ids=ids)
    frame = scores_frame(scores, ids=ids, lengths=lengths)
    return X, lengths, ids, hm, frame


def _by_hand(X, lengths, ids, hm, frame, r, side, *, tokens, marks, words, step_w, n_steps):
    parts = [] if tokens else [input_strip_chart(X[r], int(lengths[r]), feature_names=["f0", "f1"], marks=marks,
                                                 step_width=step_w, n_steps=n_steps, bins=None,
                                                 title=f"{side}: inputs")]
    parts.append(heatmap_chart(hm, ids[r], title=f"{side}: {ids[r]}, hidden state", scrubber=False, step_width=step_w,
                               height=max(100, min(260, 6 * hm.frame["unit"].nunique())), bins=None, words=words,
                               n_steps=n_steps))
    parts.append(cc.step_scores_chart(frame, ids[r], step_width=step_w, n_steps=n_steps, marks=marks, bins=None,
                                      words=words))
    return alt.vconcat(*parts, spacing=6).properties(description=" ".join(cc.caption(c) for c in parts))


@pytest.mark.parametrize("tokens", [False, True], ids=["numeric", "text"])
def test_stacked_with_inputs_is_the_pages_old_stack(tokens):
    X, lengths, ids, hm, frame = _data()
    r, side, marks, step_w, n_steps = 1, "B", [2, 4], 18.0, 9
    words = [f"w{t}" for t in range(int(lengths[r]))] if tokens else None
    got = stacked_with_inputs(None if tokens else X[r], int(lengths[r]), ["f0", "f1"], hm, ids[r], side, frame,
                              step_w, n_steps, None, words, marks)
    want = _by_hand(X, lengths, ids, hm, frame, r, side, tokens=tokens, marks=marks, words=words, step_w=step_w,
                    n_steps=n_steps)
    assert got.to_dict() == want.to_dict()
    assert caption(got) == caption(want) and caption(got)
    assert len(got.to_dict()["vconcat"]) == (2 if tokens else 3)
    assert ("B: inputs" in str(got.to_dict())) is (not tokens)
