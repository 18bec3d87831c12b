"""Issue 18: a text model's words in the Trajectories distance chart's tooltips (A's and B's word
at each compared step; a binned point: the words of its steps), checked against the words by hand."""
from __future__ import annotations

import numpy as np
import pytest

from rnnviz_core import display as dp
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import trajectories as tc


def _data(spec: dict):
    rows = [v for v in spec["datasets"].values() if v and "distance" in v[0]]
    assert len(rows) == 1
    return rows[0]


def _tips(spec: dict) -> list[str]:
    layer = spec["layer"][0]
    return [t["field"] if isinstance(t, dict) else t for t in layer["encoding"]["tooltip"]]


@pytest.mark.parametrize("align", ["start", "end"])
def test_each_point_names_a_and_b_words(align):
    rng = np.random.default_rng(0)
    la, lb = 12, 9
    ha, hb = rng.normal(size=(la, 4)), rng.normal(size=(lb, 4))
    wa, wb = [f"a{i}" for i in range(la)], [f"b{i}" for i in range(lb)]
    dist = tj.pair_distance(ha, hb, la, lb, align=align)
    spec = tc.distance_chart(dist, None, words=[wa, wb]).to_dict()
    rows = _data(spec)
    assert len(rows) == len(dist)
    for r in rows:
        assert r["word_a"] == wa[r["step_a"]] and r["word_b"] == wb[r["step_b"]]
    assert "word_a" in _tips(spec) and "word_b" in _tips(spec)
    assert "word_a" not in str(tc.distance_chart(dist, None).to_dict())       # numeric data: no word columns


def test_binned_points_name_the_words_of_their_steps():
    rng = np.random.default_rng(1)
    n = 2_000
    ha, hb = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    wa, wb = [f"x{i}" for i in range(n)], [f"y{i}" for i in range(n)]
    dist = tj.pair_distance(ha, hb, n, n)
    spec = tc.distance_chart(dist, None, words=[wa, wb]).to_dict()
    rows = _data(spec)
    assert len(rows) < n                                                        # binned
    k = rows[1]["step"] - rows[0]["step"]
    for r in rows[:5] + rows[-3:]:
        s = r["step"]
        assert r["words_a"] == dp.short_label(" ".join(wa[s:min(s + k, n)]), 40)
        assert r["words_b"] == dp.short_label(" ".join(wb[s:min(s + k, n)]), 40)
        assert r["words_a"].startswith(wa[s])
    assert "words_a" in _tips(spec)
