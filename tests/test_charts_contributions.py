"""Chart specs (to_dict) encode what the functions claim."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import pytest

from rnnviz_core.charts.contributions import (CAPTIONS, NEGATIVE, NEUTRAL, POSITIVE, RANDOM, aopc_chart,
                                              caption, deletion_chart, faithfulness_table,
                                              feature_scores_chart, position_chart,
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
    # plain names (issue 10): "random" is shown as "random order"
    assert enc["color"]["scale"]["domain"] == ["ig", "random order"]
    assert enc["color"]["scale"]["range"][-1] == RANDOM
    assert enc["strokeDash"]["field"] == "method"
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
    assert data.method.tolist() == ["ig", "gradient size"]  # plain names (issue 10)
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


# ------------------------------------------------------------------ issue 10: truthful, readable
ALL6 = ["grad_norm", "grad_x_state", "input_x_grad", "integrated_gradients", "occlusion", "prediction_delta"]


def test_unsigned_scores_one_neutral_colour_and_magnitude_caption():
    g = np.abs(S)  # grad_norm is never negative
    c = step_scores_chart(scores_frame(g, method="grad_norm"), seq=0)
    d = c.to_dict()
    assert d["encoding"]["color"]["scale"] == {"domain": ["strength"], "range": [NEUTRAL]}
    assert "strength (no direction)" in d["encoding"]["color"]["legend"]["labelExpr"]
    assert set(_data(d).direction) == {"strength"}
    assert caption(c) == CAPTIONS["step_scores_chart_unsigned"]
    assert "pushed" not in caption(c) and "orange" not in caption(c)


def test_signed_caption_follows_the_signs_drawn():
    assert caption(step_scores_chart(scores_frame(S, method="occlusion"), seq=0)) == CAPTIONS["step_scores_chart"]
    up = caption(step_scores_chart(scores_frame(np.abs(S), method="occlusion"), seq=0))
    assert up == CAPTIONS["step_scores_chart_up_only"] and "none pushed it down" in up
    down = caption(step_scores_chart(scores_frame(-np.abs(S), method="input_x_grad"), seq=0))
    assert down == CAPTIONS["step_scores_chart_down_only"]


def test_step_scores_marks_known_steps():
    c = step_scores_chart(scores_frame(S, method="occlusion"), seq=1, marks=[0, 4])
    d = c.to_dict()
    tri = [v for v in d["layer"] if isinstance(v["mark"], dict) and v["mark"].get("shape") == "triangle-down"]
    assert [r["step"] for r in d["datasets"][tri[0]["data"]["name"]]] == [0, 4]
    assert "(steps 0 and 4)" in caption(c)


def _six_curves():
    fr = np.linspace(0, 1, 5)
    rows = [(m, f, 1 - f, False) for m in ALL6 for f in fr]          # six identical lines
    rows += [("random", f, 1 - f / 2, True) for f in fr]
    return pd.DataFrame(rows, columns=["method", "fraction", "mean_output", "is_random"])


def test_deletion_chart_six_methods_readable_and_distinct():
    d = deletion_chart(_six_curves()).to_dict()
    enc = d["encoding"]
    names = enc["color"]["scale"]["domain"]
    assert names == ["gradient size", "gradient × memory", "input × gradient", "integrated gradients",
                     "occlusion", "change of the running answer", "random order"]
    assert enc["color"]["legend"]["labelLimit"] == 0           # never cut ("integrated_gra")
    dashes = [tuple(x) for x in enc["strokeDash"]["scale"]["range"]]
    shapes = enc["shape"]["scale"]["range"]
    assert len(set(dashes)) == 7 and len(set(shapes)) == 7      # identical curves stay distinguishable
    assert "_" not in " ".join(names)
    # curves that coincide are named in the caption (all six are identical here)
    assert "draw the same curve, one on top of the other" in caption(deletion_chart(_six_curves()))
    assert "same curve" not in caption(deletion_chart(_curves()))
    f = deletion_chart(_six_curves(), facet=True).to_dict()
    assert sum(len(r["hconcat"]) for r in f["vconcat"]) == 6


def test_faithfulness_table_plain_and_no_none():
    summary = pd.DataFrame({"method": ["integrated_gradients", "occlusion", "random"],
                            "aopc": [0.4, 0.6, 0.1], "aopc_minus_random": [0.3, 0.5, 0.0],
                            "output_start": [2.0, 2.0, 2.0], "output_end": [0.1, 0.1, 0.1],
                            "completeness_error": [0.004, np.nan, np.nan],
                            "completeness_error_max": [0.01, np.nan, np.nan],
                            "converged_share": [1.0, np.nan, np.nan]})
    t = faithfulness_table(summary)
    assert t["Method"].tolist() == ["occlusion", "integrated gradients", "random order"]
    assert all("_" not in c for c in t.columns)
    assert "aopc" not in " ".join(t.columns).lower()
    cells = t.astype(str).to_numpy().ravel()
    assert not {"None", "nan", "NaN"} & set(cells)
    assert t.loc[1, "Scores miss the total change by (median)"] == "0.4%"
    assert t.loc[0, "Scores miss the total change by (median)"] == ""


def test_feature_scores_chart_signed_and_unsigned():
    sc = np.array([[0.5, -1.0], [0.0, 2.0], [np.nan, np.nan]])
    c = feature_scores_chart(sc, feature_names=["value", "marker"], marks=[1])
    d = c.to_dict()
    rect = d["layer"][0]
    assert rect["encoding"]["color"]["scale"]["domain"] == [-2.0, 2.0]
    assert "from -2 to 2" in caption(c) and "Black frames" in caption(c)
    rows = pd.DataFrame(d["datasets"][rect["data"]["name"]])
    assert len(rows) == 4 and set(rows.feature) == {"value", "marker"}
    u = feature_scores_chart(np.abs(sc), signed=False)
    assert u.to_dict()["encoding"]["color"]["scale"]["domain"] == [0.0, 2.0]
    assert "no direction" in caption(u) and "orange" not in caption(u)


def test_bar_legend_sits_below_the_bars_so_it_is_not_cut():
    """Marker demo, Contributions: beside B's bars in a half-width column the legend read
    "strength (no directio"; below them it has the column's width."""
    frame = pd.DataFrame({"seq": 0, "step": np.arange(28), "score": np.linspace(0, 1, 28), "method": "grad_norm"})
    spec = step_scores_chart(frame, width=330, marks=[17, 19]).to_dict()
    legends = [v["encoding"]["color"]["legend"] for v in _all_views(spec) if "color" in v.get("encoding", {})
               and v["encoding"]["color"].get("field") == "direction"]
    assert legends and all(lg["orient"] == "bottom" for lg in legends)
    assert "(steps 17 and 19)" in caption(step_scores_chart(frame, width=330, marks=[17, 19]))


def test_a_window_of_marked_steps_reads_as_one_range():
    """burst demo: 32 known steps 15..46 were listed one by one; now "steps 15–46", in both captions."""
    from rnnviz_core.charts.inputs import input_strip_chart
    frame = pd.DataFrame({"seq": 0, "step": np.arange(60), "score": np.linspace(0, 1, 60), "method": "grad_norm"})
    text = caption(step_scores_chart(frame, width=330, marks=list(range(15, 47))))
    assert "(steps 15–46)" in text and "16," not in text
    x = np.zeros((60, 2))
    strip = caption(input_strip_chart(x, feature_names=["value", "marker"], marks=list(range(15, 47))))
    assert "Red marks show steps 15–46, the steps known" in strip and "16," not in strip


def _all_views(spec):
    out = [spec] if "mark" in spec else []
    for key in ("layer", "hconcat", "vconcat", "concat"):
        for sub in spec.get(key, []):
            out += _all_views(sub)
    if "spec" in spec:
        out += _all_views(spec["spec"])
    return out
