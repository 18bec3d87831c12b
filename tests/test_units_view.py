"""The Units page's table: filter, sort and columns on a hand-built dictionary."""
from __future__ import annotations

import numpy as np
import pandas as pd

from rnnviz_app.views import page_units as pu


def _d():
    return pd.DataFrame({
        "layer": 0, "direction": ["fwd", "fwd", "fwd", "bwd"], "kind": ["h", "h", "z", "h"], "unit": [0, 1, 0, 0],
        "name": ["h 0", "h 1", "z 0", "h 0"], "key": ["h 0", "h 1", "z 0", "h 0 (bwd)"],
        "limit": ["+1", "-1", "open", "+1"], "share_at_limit": [0.2, 0.5, 0.1, np.nan],
        "responds_to": ["'not' 1 step before", "speed high at the step", "", "'good' at the step"],
        "selectivity": [0.9, 0.1, np.nan, 0.3], "selective_for": ["negative", "win", None, "positive"],
        "output_correlation": [-0.8, 0.3, 0.95, np.nan], "correlated_with": ["positive", "win", "win", None],
        "pattern": None, "words": None})


def test_filter_and_sort():
    d = _d()
    assert list(pu.table(d)["key"]) == ["h 1", "h 0", "z 0", "h 0 (bwd)"]          # how often; NaN last
    assert list(pu.table(d, sort="abs_corr")["key"]) == ["z 0", "h 0", "h 1", "h 0 (bwd)"]
    assert list(pu.table(d, sort="unit")["key"]) == ["h 0", "h 1", "z 0", "h 0 (bwd)"]
    assert list(pu.table(d, ["z"])["key"]) == ["z 0"]
    assert list(pu.table(d, text="NOT")["key"]) == ["h 0"]
    assert list(pu.table(d, text="win", sort="unit")["key"]) == ["h 1", "z 0"]
    assert list(pu.table(d, text="bwd")["key"]) == ["h 0 (bwd)"]
    assert pu.table(d, text="nothing like this").empty


def test_shown_columns_in_words():
    t = pu.shown(_d())
    assert list(t.columns) == ["Unit", "Gate", "Limit reached", "How often (share of steps)", "What it responds to",
                               "Class selectivity", "Selective for", "Output correlation", "Correlated with"]
    assert list(t["Gate"]) == ["hidden state", "hidden state", "update gate", "hidden state"]
    assert t["Selective for"].iloc[2] == "" and t["Correlated with"].iloc[3] == ""


def test_pattern_and_words_frames():
    e = pd.Series({"pattern": np.array([[1.0, -2.0], [0.5, 3.0]]), "words": [("not", 1, 4.5, 30)]})
    p = pu.pattern_frame(e, ["speed", "box"])
    assert list(p.columns) == ["Steps before the event", "speed", "box"]
    assert p["Steps before the event"].tolist() == [1, 0] and p["box"].tolist() == [-2.0, 3.0]
    w = pu.words_frame(e)
    assert w.iloc[0].tolist() == ["not", 1, 4.5, 30]
    assert pu.pattern_frame(pd.Series({"pattern": None}), None) is None
    assert pu.words_frame(pd.Series({"words": []})) is None
