"""Trajectory and saturation charts: encodings, sliders, shared colour scale, captions."""
import numpy as np
import pytest

from rnnviz_core.charts.saturation import (
    gate_scatter_chart, group_metric_chart, resilience_chart, saturation_time_chart, unit_saturation_chart,
)
from rnnviz_core.charts.trajectories import (
    STEP_PARAM, caption, distance_chart, heatmap_chart, norms_chart, pair_heatmaps_chart, pca_paths_chart,
)
from rnnviz_core.errors import InputError
from rnnviz_core.groups import group_summary, resilience_summary, sequence_table
from rnnviz_core.saturation import gate_saturation, saturation_over_time, unit_saturation_over_time
from rnnviz_core.trajectories import heatmap_data, pair_distance, parting_step, pca_paths, state_norms
from chart_specs import drawn, views as _views

RNG = np.random.default_rng(0)
X = np.tanh(RNG.normal(size=(12, 10, 6)).cumsum(1) * 0.4)
LENS = np.array([10, 7] + [10] * 10)
X[1, 7:] = np.nan


def _mark(view):
    m = view["mark"]
    return m if isinstance(m, str) else m["type"]


def _slider(spec, lo=0, hi=None):
    params = [p for p in spec.get("params", []) if p["name"] == STEP_PARAM]
    assert len(params) == 1, "one step slider at the top level"
    bind = params[0]["bind"]
    assert bind["input"] == "range" and bind["min"] == lo and bind["step"] == 1
    if hi is not None:
        assert bind["max"] == hi
    return params[0]


def _check_caption(chart):
    text = caption(chart)
    assert text and text.endswith(".") and "\n" not in text and len(text) < 400
    return text


def test_pair_heatmaps_share_one_colour_domain_and_slider():
    hm = heatmap_data(X, LENS, seqs=[0, 1])
    chart = pair_heatmaps_chart(hm, 0, 1)
    spec = chart.to_dict()
    rects = [v for v in _views(spec) if _mark(v) == "rect" and "color" in v["encoding"]]
    assert len(rects) == 2
    domains = [v["encoding"]["color"]["scale"]["domain"] for v in rects]
    assert domains[0] == domains[1] == list(hm.domain)
    assert hm.domain[1] == pytest.approx(np.nanmax(np.abs(X[[0, 1]])))
    assert spec["resolve"]["scale"]["color"] == "shared"
    for v in rects:
        assert v["encoding"]["x"]["field"] == "step" and v["encoding"]["y"]["field"] == "unit"
        assert v["encoding"]["color"]["field"] == "value"
    _slider(spec, hi=9)
    assert "colour range" in _check_caption(chart)
    # a single heatmap uses the same domain as the pair
    one = heatmap_chart(hm, 1).to_dict()
    assert [v for v in _views(one) if "color" in v.get("encoding", {})][0]["encoding"]["color"]["scale"]["domain"] \
        == list(hm.domain)
    _slider(one, hi=6)
    with pytest.raises(InputError):
        pair_heatmaps_chart(hm, 0, 5)


def test_pca_paths_chart_colours_by_time_over_cloud():
    paths, _ = pca_paths(X, LENS)
    chart = pca_paths_chart(paths, [0, 1])
    spec = chart.to_dict()
    views = _views(spec)
    colour = [v for v in views if v["encoding"].get("color", {}).get("field") == "step"]
    assert colour and colour[0]["encoding"]["color"]["scale"]["scheme"] == "viridis"
    assert any(_mark(v) == "line" for v in views)
    cloud = [v for v in views if _mark(v) == "circle" and v["mark"].get("opacity", 1) < 0.5]
    assert cloud, "faint cloud of all states"
    assert "of variance" in views[0]["encoding"]["x"]["title"]
    _slider(spec, hi=9)
    filters = [t["filter"] for v in views for t in v.get("transform", []) if "filter" in t]
    assert any(STEP_PARAM in str(f) for f in filters), "paths follow the slider"
    _check_caption(chart)
    assert "step_now" not in str(pca_paths_chart(paths, [0], scrubber=False).to_dict())


def test_norms_chart_marks_plateau():
    x = np.zeros((2, 8, 2))
    x[:, :, 0] = np.minimum(np.arange(8) / 4, 1.0)  # sum |h| rises then stays at 1 from step 4
    norms = state_norms(x)
    chart = norms_chart(norms)
    spec = chart.to_dict()
    rules = [v for v in _views(spec) if _mark(v) == "rule" and v["encoding"].get("x", {}).get("field") == "plateau_step"]
    assert len(rules) == 1
    assert [d["plateau_step"] for d in drawn(spec, rules[0])] == [4, 4]
    fields = {v["encoding"]["y"]["field"] for v in _views(spec) if "y" in v["encoding"]}
    assert {"sum_abs", "step_change"} <= fields
    _slider(spec, hi=7)
    assert "step 4" in _check_caption(chart)


def test_distance_chart_marks_parting_step():
    a = np.zeros((6, 2))
    b = np.zeros((6, 2))
    b[3:, 0] = 1.0
    d = pair_distance(a, b, scale=1.0)
    p = parting_step(d)
    assert p == 3
    chart = distance_chart(d, p, rel_threshold=0.25)
    spec = chart.to_dict()
    views = _views(spec)
    red = [v for v in views if _mark(v) == "rule" and v["mark"].get("color") == "#e45756"]
    assert len(red) == 1 and [r["at"] for r in drawn(spec, red[0])] == [3]
    (thr,) = [v for v in views if v["encoding"].get("y", {}).get("field") == "value"]
    assert [r["value"] for r in drawn(spec, thr)] == [0.25]
    _slider(spec, hi=5)
    assert "part at step 3" in _check_caption(chart)
    # the caption follows the curve, not the parting argument: b == a never parts
    never = distance_chart(pair_distance(a, a + 0.1, scale=1.0), -1)
    nspec = never.to_dict()
    assert not [r for v in _views(nspec) if _mark(v) == "rule" and v["mark"].get("color") == "#e45756"
                for r in drawn(nspec, v)]
    assert "never" in caption(never)
    end = distance_chart(pair_distance(a, b[:4], align="end"), None).to_dict()
    _slider(end, lo=-3, hi=0)


def test_saturation_charts():
    groups = np.array(["a", "b"] * 6)
    over = saturation_over_time(X, LENS, groups=groups)
    chart = saturation_time_chart(over)
    spec = chart.to_dict()
    lines = [v for v in _views(spec) if _mark(v) == "line"]
    assert lines[0]["encoding"]["color"]["field"] == "group"
    assert lines[0]["encoding"]["y"]["field"] == "frac_saturated"
    _slider(spec, hi=9)
    _check_caption(chart)

    unit = unit_saturation_chart(unit_saturation_over_time(X, LENS))
    spec = unit.to_dict()
    rect = [v for v in _views(spec) if _mark(v) == "rect" and "color" in v["encoding"]][0]
    assert rect["encoding"]["color"]["scale"]["domain"] == [0, 1]
    assert {rect["encoding"]["x"]["field"], rect["encoding"]["y"]["field"]} == {"step", "unit"}
    _slider(spec, hi=9)
    _check_caption(unit)

    g = 1 / (1 + np.exp(-3 * X))
    scat = gate_scatter_chart(gate_saturation({"z": g, "r": g**3}, LENS))
    spec = scat.to_dict()
    pts = [v for v in _views(spec) if _mark(v) == "circle"][0]
    assert pts["encoding"]["x"]["field"] == "left" and pts["encoding"]["y"]["field"] == "right"
    assert pts["encoding"]["color"]["field"] == "gate"
    assert pts["encoding"]["x"]["scale"]["domain"] == [0, 1]
    _check_caption(scat)


def test_group_and_resilience_charts():
    logits = RNG.normal(size=(12, 2))
    table = sequence_table(logits, np.arange(12) % 2, states=X, lengths=LENS)
    bars = group_metric_chart(group_summary(table, "correct"), "accuracy")
    spec = bars.to_dict()
    (bar,) = [v for v in _views(spec) if _mark(v) == "bar"]  # bars under their 95% interval rules
    assert bar["encoding"]["y"]["field"] == "accuracy"
    (ci,) = [v for v in _views(spec) if _mark(v) == "rule"]
    assert (ci["encoding"]["y"]["field"], ci["encoding"]["y2"]["field"]) == ("accuracy_low", "accuracy_high")
    _check_caption(bars)
    import pandas as pd
    res = pd.DataFrame({"seq": np.r_[np.arange(12), np.arange(12)], "output_change": RNG.uniform(size=24),
                        "flipped": RNG.uniform(size=24) > 0.5, "condition": ["noise"] * 12 + ["early"] * 12})
    rc = resilience_chart(resilience_summary(res, table, "correct"), metric="flip_rate")
    spec = rc.to_dict()
    (bar,) = [v for v in _views(spec) if _mark(v) == "bar"]
    assert bar["encoding"]["xOffset"]["field"] == "group" and bar["encoding"]["y"]["field"] == "flip_rate"
    _check_caption(rc)
    with pytest.raises(InputError):
        group_metric_chart(group_summary(table, "correct"), "nonsense")


def test_saturation_time_legend_is_the_lines_not_the_pale_bands():
    """The 95% band (opacity 0.2) carried the group legend, so its swatches were pale shades that
    matched no drawn line. The first fix set legend=None on the band, and Vega-Lite, which merges
    the legends of one field, then drew no legend at all (seen in the browser:
    test_saturation_over_time_says_which_line_is_which_group). Now no layer turns the group legend
    off, and the legend draws full-opacity line symbols."""
    over = saturation_over_time(X, LENS, groups=np.array(["a", "b"] * 6))
    spec = saturation_time_chart(over).to_dict()
    coloured = [v for v in _views(spec) if v["encoding"].get("color", {}).get("field") == "group"]
    assert {_mark(v) for v in coloured} == {"area", "line"}
    legends = [v["encoding"]["color"].get("legend", "absent") for v in coloured]
    assert None not in legends
    line = [v for v in coloured if _mark(v) == "line"][0]["encoding"]["color"]["legend"]
    assert line["symbolType"] == "stroke" and line["symbolOpacity"] == 1


def test_unit_heatmap_legend_sits_below_so_its_title_is_not_cut():
    """Beside a 330 px heatmap in a half-width column the title read "share satu"."""
    spec = unit_saturation_chart(unit_saturation_over_time(X, LENS), width=330).to_dict()
    rect = [v for v in _views(spec) if _mark(v) == "rect" and "color" in v["encoding"]][0]
    legend = rect["encoding"]["color"]["legend"]
    assert legend["orient"] == "bottom" and legend["gradientLength"] <= 330
    assert legend["values"] == [0, 0.5, 1]          # six labels on 200 px ran together ("80%100%")


@pytest.mark.parametrize("gates,words", [
    ({"r": 0, "z": 0}, {"reset gate (r)", "update gate (z)"}),                      # torch.nn.GRU's docs
    ({"i": 0, "f": 0, "o": 0}, {"input gate (i)", "forget gate (f)", "output gate (o)"}),   # torch.nn.LSTM's
])
def test_gate_legend_names_the_gates_in_words(gates, words):
    g = 1 / (1 + np.exp(-3 * X))
    spec = gate_scatter_chart(gate_saturation({k: g for k in gates}, LENS)).to_dict()
    pts = [v for v in _views(spec) if _mark(v) == "circle"][0]
    rows = spec["datasets"][pts["data"]["name"]] if "data" in pts else spec["datasets"][spec["data"]["name"]]
    assert {r["gate"] for r in rows} == words


def test_unit_heatmap_scale_can_end_at_the_highest_share_and_says_so():
    """Race demo at its starting threshold: every share is under 25%, so on a 0-100% scale both
    heatmaps were pale orange throughout. With ``top`` the darkest colour is that share, and the
    caption names where the scale ends (never a silently stretched scale)."""
    ut = unit_saturation_over_time(X, LENS, threshold=0.9)
    hi = float(ut["frac_saturated"].max())
    chart = unit_saturation_chart(ut, top=0.25)
    rect = [v for v in _views(chart.to_dict()) if _mark(v) == "rect" and "color" in v["encoding"]][0]
    assert rect["encoding"]["color"]["scale"]["domain"] == [0, 0.25]
    assert rect["encoding"]["color"]["scale"]["clamp"] is True        # shares above 25% draw darkest
    assert "25% of the sequences or more, not 100%" in caption(chart)
    assert "almost always" not in caption(chart)
    default = unit_saturation_chart(ut)
    assert "not 100%" not in caption(default) and hi <= 1


@pytest.mark.parametrize("ragged", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_norm_arrays_equal_a_hand_computation(ragged, dtype):
    """sum |h| per step and the step-to-step change ||h_t - h_{t-1}|| (NaN at and past each length
    and at step 0) equal a float64 hand computation; the same for a reversed (negative-stride) view."""
    from rnnviz_core.analyses.state_paths import norm_arrays

    rng = np.random.default_rng(2)
    h = np.tanh(rng.normal(size=(9, 13, 6))).astype(dtype)
    lens = rng.integers(1, 14, 9) if ragged else np.full(9, 13)
    for arr in (h, h[::-1][::-1], h[:, :, ::-1]):
        sum_abs, mean_abs, change = norm_arrays(arr, lens)
        ref = np.abs(arr.astype(np.float64)).sum(axis=2)
        step = np.sqrt((np.diff(arr.astype(np.float64), axis=1) ** 2).sum(axis=2))
        valid = np.arange(13)[None, :] < lens[:, None]
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(sum_abs[valid], ref[valid], rtol=tol)
        np.testing.assert_allclose(mean_abs[valid], ref[valid] / 6, rtol=tol)
        assert np.isnan(sum_abs[~valid]).all()
        np.testing.assert_allclose(change[:, 1:][valid[:, 1:]], step[valid[:, 1:]], rtol=tol)
        assert np.isnan(change[:, 0]).all() and np.isnan(change[:, 1:][~valid[:, 1:]]).all()
