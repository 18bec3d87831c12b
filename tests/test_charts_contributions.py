"""Chart specs (to_dict) encode what the functions claim."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pytest

from rnnviz_core.charts.contributions import (CAPTIONS, NEGATIVE, POSITIVE, RANDOM, aopc_chart,
                                              caption, deletion_chart, position_chart,
                                              step_scores_chart, top_steps_table, under_heatmap)
from rnnviz_core.errors import InputError
from rnnviz_core.rankings import mean_abs_by_group, mean_abs_by_position, scores_frame, top_steps

S = np.array([[0.5, -2.0, 1.0, 0.1, np.nan], [3.0, 0.2, -0.1, 0.0, 0.4]])


def _data(d):
    """Rows of the (single) dataset embedded in a chart dict."""
    (rows,) = d["datasets"].values()
    return pd.DataFrame(rows)


def test_step_scores_chart_one_method():
    c = step_scores_chart(scores_frame(S, method="occlusion"), seq=0, top_k=2)
    d = c.to_dict()
    enc = d["encoding"]
    assert enc["x"]["field"] == "step" and enc["x"]["type"] == "ordinal"
    assert enc["y"]["field"] == "score"
    assert enc["color"]["scale"] == {"domain": ["up", "down"], "range": [POSITIVE, NEGATIVE]}
    assert enc["opacity"]["condition"]["value"] == 1.0
    rows = _data(d)
    assert sorted(rows.step) == [0, 1, 2, 3]                   # seq 0 only, NaN step dropped
    assert set(rows[rows.top].step) == {1, 2}                  # the 2 largest |score|
    assert (rows.direction == np.where(rows.score >= 0, "up", "down")).all()
    assert caption(c) == CAPTIONS["step_scores_chart"]
    assert "occlusion" in d["title"]


def test_step_scores_chart_methods_stacked_on_one_axis():
    f = pd.concat([scores_frame(S, method="a"), scores_frame(-2 * S, method="b")])
    d = step_scores_chart(f, seq=1, top_k=1).to_dict()
    assert d["facet"]["row"]["field"] == "method"
    assert d["resolve"]["scale"]["y"] == "independent"
    rows = _data(d)
    assert rows.groupby("method").top.sum().tolist() == [1, 1]
    assert rows[rows.top].step.tolist() == [0, 0]


def test_under_heatmap_shares_the_step_axis():
    heat = alt.Chart(pd.DataFrame({"step": [0, 1], "unit": [0, 0], "value": [0.1, 0.2]})) \
        .mark_rect().encode(x="step:O", y="unit:O", color="value:Q").properties(
            description="Heat.")
    c = under_heatmap(heat, step_scores_chart(scores_frame(S), seq=0))
    d = c.to_dict()
    assert len(d["vconcat"]) == 2 and d["resolve"]["scale"]["x"] == "shared"
    assert caption(c).startswith("Heat. Each bar")


def test_top_steps_table():
    t = top_steps_table(top_steps(S, k=2), method="ig")
    assert list(t.columns) == ["Method", "Sequence", "Rank", "Step", "Contribution",
                               "Where in the sequence", "Length"]
    assert t["Where in the sequence"].tolist() == ["67%", "0%", "0%", "100%"]
    assert t.attrs["caption"] == CAPTIONS["top_steps_table"]


def test_position_chart_absolute_relative_grouped():
    d = position_chart(mean_abs_by_position(S)).to_dict()
    assert d["encoding"]["x"]["title"] == "step" and "color" not in d["encoding"]
    d = position_chart(mean_abs_by_position(S, relative=True, bins=4)).to_dict()
    assert d["encoding"]["x"]["axis"]["format"] == "%"
    assert d["encoding"]["x"]["scale"]["domain"] == [0, 1]
    g = mean_abs_by_group(S, pd.Series(["cat", "dog"], name="label"))
    c = position_chart(g)
    d = c.to_dict()
    assert d["encoding"]["color"]["field"] == "label"
    assert set(_data(d).label) == {"cat", "dog"}
    assert caption(c) == CAPTIONS["position_chart"]
    with pytest.raises(InputError):
        position_chart(g, group="class")


def _curves():
    fr = np.linspace(0, 1, 3)
    rows = [("ig", f, 1 - f, False) for f in fr] + [("random", f, 1 - f / 2, True) for f in fr]
    return pd.DataFrame(rows, columns=["method", "fraction", "mean_output", "is_random"])


def test_deletion_chart_random_is_grey_and_dashed():
    c = deletion_chart(_curves())
    d = c.to_dict()
    enc = d["encoding"]
    assert enc["color"]["scale"]["domain"] == ["ig", "random"]
    assert enc["color"]["scale"]["range"][-1] == RANDOM
    assert enc["strokeDash"]["field"] == "is_random"
    assert enc["strokeDash"]["scale"]["range"][1] == [6, 4]
    assert enc["x"]["field"] == "fraction" and enc["y"]["field"] == "mean_output"
    assert len(_data(d)) == 6
    assert caption(c) == CAPTIONS["deletion_chart"]


def test_aopc_chart():
    summary = pd.DataFrame({"method": ["ig", "grad_norm", "random"], "aopc": [0.5, 0.1, 0.2],
                            "aopc_minus_random": [0.3, -0.1, 0.0]})
    c = aopc_chart(summary)
    d = c.to_dict()
    bars = d["layer"][0]
    assert bars["encoding"]["x"]["field"] == "aopc_minus_random"
    data = pd.DataFrame(d["datasets"][bars["data"]["name"]])
    assert data.method.tolist() == ["ig", "grad_norm"]
    assert data.beats_random.tolist() == [True, False]
    assert caption(c) == CAPTIONS["aopc_chart"]


def test_missing_columns_are_plain_errors():
    with pytest.raises(InputError, match="step"):
        step_scores_chart(pd.DataFrame({"seq": [0], "score": [1.0]}))
    with pytest.raises(InputError, match="is_random"):
        deletion_chart(pd.DataFrame({"method": ["a"], "fraction": [0], "mean_output": [1]}))
    with pytest.raises(InputError, match="not in this frame"):
        step_scores_chart(scores_frame(S), seq=7)


def test_captions_are_plain_sentences():
    for name, text in CAPTIONS.items():
        assert text.endswith(".") and "_" not in text and len(text) < 320, name
