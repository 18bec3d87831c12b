"""Input strips: the drawing follows the data, and the marker demo's true steps are found."""
import numpy as np
import pytest

from rnnviz_core.charts.inputs import MARK_COLOUR, input_strip_chart, marker_steps
from rnnviz_core.charts.trajectories import caption
from rnnviz_core.demos.tasks import make_marker_task
from rnnviz_core.errors import InputError
from chart_specs import views as _views


def test_marker_steps_are_the_tasks_decisive_steps():
    ds, decisive = make_marker_task(30, seed=4)
    for i in range(30):
        got = marker_steps(ds.X[i], int(ds.lengths[i]), ds.feature_names)
        assert got == list(np.flatnonzero(decisive[i]))
    assert marker_steps(ds.X[0], None, ["a", "b", "c"]) is None      # no marker feature: nothing known
    from rnnviz_core.charts.inputs import marker_mask
    assert (marker_mask(ds.X, ds.lengths, ds.feature_names) == decisive).all()
    assert marker_mask(ds.X, ds.lengths, ["a", "b", "c"]) is None
    assert marker_steps(ds.X[0], None, None) is None


def test_few_features_as_lines_with_marks():
    ds, decisive = make_marker_task(3, seed=1)
    L = int(ds.lengths[0])
    marks = marker_steps(ds.X[0], L, ds.feature_names)
    chart = input_strip_chart(ds.X[0], L, feature_names=ds.feature_names, marks=marks, width=400)
    spec = chart.to_dict()
    assert len(spec["vconcat"]) == 3                                  # one panel per feature
    lines = [v for v in _views(spec) if (v["mark"] if isinstance(v["mark"], str) else v["mark"]["type"]) == "line"]
    assert [v["encoding"]["y"]["title"] for v in lines] == ["value", "marker", "noise"]
    rules = [v for v in _views(spec) if isinstance(v["mark"], dict) and v["mark"].get("color") == MARK_COLOUR]
    assert rules and [r["step"] for r in spec["datasets"][rules[0]["data"]["name"]]] == marks
    a, b = marks
    assert f"steps {a} and {b}, the steps known to decide the answer" in caption(chart)
    assert f"over its {L} steps" in caption(chart)
    # on the heatmap's step scale
    assert spec["vconcat"][0]["width"] == {"step": 400 / L}


def test_many_features_as_heatmap():
    x = np.random.default_rng(0).normal(size=(12, 20))
    chart = input_strip_chart(x, width=240)
    spec = chart.to_dict()
    rect = [v for v in _views(spec) if v["mark"] == "rect" or (isinstance(v["mark"], dict) and v["mark"]["type"] == "rect")]
    assert rect and rect[0]["encoding"]["y"]["field"] == "feature"
    assert "small heatmap of its 20 features" in caption(chart)


def test_tokens_as_text():
    ids = np.array([2, 0, 1, 7])
    chart = input_strip_chart(ids, vocabulary=["the", "cat", "sat"], marks=[1])
    spec = chart.to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert [r["token"] for r in rows] == ["sat", "the", "cat", "#7"]
    assert spec["mark"]["type"] == "text"
    assert "one token per step" in caption(chart) and "step 1" in caption(chart)
    assert "no vocabulary" in caption(input_strip_chart(ids))
    with pytest.raises(InputError):
        input_strip_chart(ids, length=9)


def test_long_feature_names_fit_their_panel_title():
    """The race demo's "days_since" was cut to "days_s..." by a 50 px title limit on a 44 px panel."""
    from rnnviz_core.charts.inputs import _MAX_ROW
    names = ["position", "time", "weight", "box", "days_since"]
    x = np.random.default_rng(0).normal(size=(18, 5))
    spec = input_strip_chart(x, feature_names=names, width=400).to_dict()
    lines = [v for v in _views(spec) if (v["mark"] if isinstance(v["mark"], str) else v["mark"]["type"]) == "line"]
    for v, nm in zip(lines, names):
        # 6 px per character is a lower bound on an 11 px bold sans label's width
        assert v["encoding"]["y"]["axis"]["titleLimit"] >= 6 * len(nm), nm
    assert all(p["height"] <= _MAX_ROW for p in spec["vconcat"])


def test_constant_feature_axis_is_not_labelled_with_six_zeros():
    """A feature that is 7 at every step (race demo, dog5001's position) was labelled "7.000000"."""
    x = np.random.default_rng(0).normal(size=(5, 2))
    x[:, 0] = 7.0
    spec = input_strip_chart(x, feature_names=["position", "time"], width=200).to_dict()
    lines = [v for v in _views(spec) if (v["mark"] if isinstance(v["mark"], str) else v["mark"]["type"]) == "line"]
    y = lines[0]["encoding"]["y"]
    lo, hi = y["scale"]["domain"]
    assert lo < 7.0 < hi                               # the value sits inside a non-empty range
    assert y["axis"]["format"].endswith("~g")          # d3 "~" trims trailing zeros: 7 -> "7"


def test_tokens_of_a_long_review_are_drawn_upright_text():
    """A 20-token review at the page's width (steps < 40 px) asked Vega-Lite for angle -90, which
    its schema refuses (0..360): the text demo's Contributions page broke on every review."""
    ids = np.arange(20) % 3
    chart = input_strip_chart(ids, vocabulary=["the", "cat", "sat"], width=300)
    spec = chart.to_dict(validate=True)                 # raised SchemaValidationError before the fix
    text = [v for v in _views(spec) if isinstance(v["mark"], dict) and v["mark"]["type"] == "text"]
    assert text and 0 <= text[0]["mark"]["angle"] <= 360 and text[0]["mark"]["angle"] % 180 == 90


def _x_encodings(spec):
    return [v["encoding"]["x"] for v in _views(spec) if "x" in v.get("encoding", {})]


@pytest.mark.parametrize("x,kw", [
    (np.arange(10) % 3, dict(vocabulary=["the", "cat", "sat"])),          # tokens (text mark)
    (np.random.default_rng(0).normal(size=(10, 3)), dict(marks=[2, 5])),  # line panels and red rules
])
def test_strip_steps_sit_on_the_same_bands_as_the_bars_below(x, kw):
    """Text demo, Contributions: the token strip used Vega-Lite's default point scale for a text mark
    (steps spaced over n-1 intervals, from the edge) while the heatmap and bars below use bands
    (n intervals, centred): the tokens drifted off their bars. Every mark now sits on a band scale,
    at the band's centre, as the bars do."""
    spec = input_strip_chart(x, step_width=330 / 14, n_steps=14, **kw).to_dict()
    xs = _x_encodings(spec)
    assert xs
    for enc in xs:
        assert enc.get("bandPosition") == 0.5
        if "scale" in enc:
            assert enc["scale"]["type"] == "band" and enc["scale"]["domain"] == list(range(14))


def test_rotated_tokens_start_at_the_strip_bottom_and_fit_its_height():
    from rnnviz_core.charts.inputs import _TOKEN_STRIP
    spec = input_strip_chart(np.arange(20) % 3, vocabulary=["the", "cat", "sat"], width=300).to_dict()
    (v,) = [v for v in _views(spec) if isinstance(v["mark"], dict) and v["mark"]["type"] == "text"]
    # a quantitative y on [0, 1] at 0: Vega draws it at the bottom edge; the text then runs up from it
    assert v["mark"]["align"] == "left" and v["encoding"]["y"]["scale"]["domain"] == [0, 1]
    assert spec["transform"] == [{"calculate": "0", "as": "row"}]
    assert v["mark"]["limit"] < _TOKEN_STRIP == spec["height"]
