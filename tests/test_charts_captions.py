"""Every caption family is computed from the numbers it describes: one case per branch."""
import numpy as np
import pytest

from rnnviz_core.charts.trajectories import (
    caption, distance_chart, heatmap_chart, norms_chart, pair_heatmaps_chart,
)
from rnnviz_core.trajectories import heatmap_data, pair_distance, parting_summary, state_norms
from chart_specs import drawn, views as _views


RED, GREEN = "#e45756", "#54a24b"


def _rule_rows(spec, colour=None, field=None):
    """Rows drawn by the rule layers of one colour (dashed red: parting, green: rejoin) or on one x
    field (plateau_step): the layers are always there, their rows say what is drawn."""
    out = []
    for v in _views(spec):
        mark = v["mark"] if isinstance(v["mark"], dict) else {"type": v["mark"]}
        if mark["type"] != "rule":
            continue
        if (colour is not None and mark.get("color") == colour) or \
                (field is not None and v["encoding"].get("x", {}).get("field") == field):
            out += drawn(spec, v)
    return out


def _pair(dist_per_step):
    """States of A (all zero) and B whose distance to A at step t is dist_per_step[t]; scale 1."""
    d = np.asarray(dist_per_step, dtype=float)
    a = np.zeros((d.size, 2))
    b = np.zeros((d.size, 2))
    b[:, 0] = d
    return a, b


# ----------------------------------------------------------------------------- parting
def test_never_parted_distance_below_threshold():
    a, b = _pair([0.1] * 10)
    d = pair_distance(a, b, scale=1.0)
    p = parting_summary(d, rel_threshold=0.25)
    assert p.kind == "never" and p.part_step is None
    text = caption(distance_chart(d))
    assert "never rises above" in text and "part at" not in text


def test_never_parted_with_short_blips():
    a, b = _pair([0.1, 0.5, 0.5, 0.1, 0.1, 0.6, 0.1, 0.1])  # runs of 2 and 1 steps above 0.25
    d = pair_distance(a, b, scale=1.0)
    assert parting_summary(d).kind == "never"
    text = caption(distance_chart(d))
    assert "never stays above it for 3 steps in a row" in text
    assert "never rises above" not in text  # it does rise above, briefly


def test_parted_for_good():
    a, b = _pair([0.0] * 3 + [1.0] * 5)
    d = pair_distance(a, b, scale=1.0)
    p = parting_summary(d)
    assert (p.kind, p.part_step, p.last_part_step) == ("for good", 3, 3)
    chart = distance_chart(d)
    assert "part at step 3 (dashed red line) and stay apart to the end" in caption(chart)
    spec = chart.to_dict()
    assert not _rule_rows(spec, GREEN)
    assert [r["at"] for r in _rule_rows(spec, RED)] == [3]


def test_parted_and_rejoined_on_a_long_pair():
    """The issue's 100-step pair: apart at step 2, back to ~0 from step 35 on."""
    dist = np.r_[[0.0, 0.1], np.full(33, 2.0), np.full(65, 0.01)]
    a, b = _pair(dist)
    d = pair_distance(a, b, scale=1.0)
    p = parting_summary(d)
    assert (p.kind, p.part_step, p.rejoin_step) == ("rejoined", 2, 35)
    chart = distance_chart(d)
    text = caption(chart)
    assert "part at step 2" in text and "come back together at step 35" in text
    assert "stay within it to the end" in text and "for good" not in text
    spec = chart.to_dict()
    assert [r["at"] for r in _rule_rows(spec, GREEN)] == [35]
    assert [r["at"] for r in _rule_rows(spec, RED)] == [2]


def test_rejoined_then_a_blip_is_not_called_within():
    dist = np.r_[[0.0], np.full(5, 1.0), np.full(4, 0.0), [1.0], np.full(4, 0.0)]
    d = pair_distance(*_pair(dist), scale=1.0)
    p = parting_summary(d)
    assert (p.kind, p.rejoin_step) == ("rejoined", 6)
    text = caption(distance_chart(d))
    assert "never again stay above it for 3 steps in a row" in text and "stay within it" not in text


def test_part_rejoin_part_for_good():
    dist = np.r_[np.full(2, 0.0), np.full(4, 1.0), np.full(4, 0.0), np.full(4, 1.0)]
    d = pair_distance(*_pair(dist), scale=1.0)
    p = parting_summary(d)
    assert (p.kind, p.part_step, p.last_part_step, p.n_partings) == ("for good", 2, 10, 2)
    text = caption(distance_chart(d))
    assert "first part at step 2, come back together, and part for good at step 10" in text


def test_aligned_at_end_apart_from_the_start():
    """The issue's case: aligned at the end, distance ~7x the threshold from the first step."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 4))
    b = a[3:] + 0.0
    b[:, 0] += 7 * 0.25 * 1.0  # distance 1.75 = 7 x (0.25 * scale 1) at every aligned step
    d = pair_distance(a, b, align="end", scale=1.0)
    p = parting_summary(d)
    assert p.kind == "for good" and p.apart_from_start and p.first_step == -8
    text = caption(distance_chart(d))
    assert "already apart at the first compared step (7.0 times the threshold) and stay apart" in text
    assert "never" not in text


def test_end_alignment_names_steps_before_the_end():
    dist = np.r_[np.full(4, 0.0), np.full(4, 1.0)]
    d = pair_distance(*_pair(dist), align="end", scale=1.0)
    assert "part at 3 steps before the end" in caption(distance_chart(d))


# ----------------------------------------------------------------------------- plateau
def test_norms_plateau_drawn_and_named():
    x = np.zeros((2, 10, 2))
    x[:, :, 0] = np.minimum(np.arange(10) / 4, 1.0)
    chart = norms_chart(state_norms(x), names=["A", "B"])
    spec = chart.to_dict()
    rows = _rule_rows(spec, field="plateau_step")
    assert [(r["sequence"], r["plateau_step"]) for r in rows] == [("A", 4), ("B", 4)]
    text = caption(chart)
    assert "dashed line marks" in text and "sequence A from step 4" in text


def test_norms_no_plateau_no_line_and_caption_says_so():
    x = np.zeros((2, 10, 2))
    x[:, :, 0] = np.arange(10) * 0.1  # a steady ramp: never settles
    chart = norms_chart(state_norms(x), names=["A", "B"])
    assert not _rule_rows(chart.to_dict(), field="plateau_step")
    text = caption(chart)
    assert "dashed" not in text and "no plateau line is drawn" in text


def test_norms_one_settles_one_does_not():
    x = np.zeros((2, 10, 2))
    x[0, :, 0] = np.minimum(np.arange(10) / 4, 1.0)
    x[1, :, 0] = np.arange(10) * 0.1
    text = caption(norms_chart(state_norms(x), names=["A", "B"]))
    assert "sequence A from step 4" in text and "sequence B never settles" in text


# ----------------------------------------------------------------------------- heatmap
def _legend_and_domain(spec):
    rect = [v for v in _views(spec) if "color" in v.get("encoding", {})][0]
    col = rect["encoding"]["color"]
    return col["scale"]["domain"], col["legend"]["values"]


def test_heatmap_caption_range_equals_colour_bar():
    x = np.tanh(np.random.default_rng(1).normal(size=(2, 6, 3)))
    x *= 0.84 / np.abs(x).max()
    hm = heatmap_data(x, domain=(-1, 1))
    chart = heatmap_chart(hm, 0)
    domain, ticks = _legend_and_domain(chart.to_dict())
    assert domain == [-1.0, 1.0] and ticks == [-1.0, 0.0, 1.0]
    text = caption(chart)
    assert "blue at -1 through white at 0 to red at 1, as on the colour bar" in text
    assert f"to {np.abs(x[0]).max():.3g})" in text or "values here run from" in text
    # default domain: the largest |value| of the set, and the caption says that same number
    hm2 = heatmap_data(x)
    domain2, _ = _legend_and_domain(heatmap_chart(hm2, 0).to_dict())
    assert domain2[1] == pytest.approx(0.84)
    assert "red at 0.84," in caption(heatmap_chart(hm2, 0))


def test_pair_heatmaps_one_step_scale_for_different_lengths():
    x = np.full((2, 18, 4), np.nan)
    x[0] = 0.5
    x[1, :5] = -0.5
    hm = heatmap_data(x)
    chart = pair_heatmaps_chart(hm, 0, 1, width=360)
    spec = chart.to_dict()
    widths = [p["width"] for p in spec["hconcat"]]
    assert widths[0] == widths[1] == {"step": 20.0}  # 360 px / 18 steps, shared by both panels
    doms = [p["layer"][0]["encoding"]["x"]["scale"]["domain"] for p in spec["hconcat"]]
    assert len(doms[0]) == 18 and len(doms[1]) == 5  # so B is drawn 5/18 as wide
    # the step frame of the shorter sequence stays on its last step
    frames = [p["layer"][1] for p in spec["hconcat"]]
    assert "min(step_now, datum.last)" in str(frames[1]["transform"])
    assert [r["last"] for r in spec["datasets"][frames[1]["data"]["name"]]] == [4]
    assert "one step scale (18 and 5 steps)" in caption(chart)


# ----------------------------------------------------------------------------- PCA legend
def test_pca_legend_lists_both_sequences_and_explains_dashes():
    from rnnviz_core.charts.trajectories import DASHES, pca_paths_chart
    from rnnviz_core.trajectories import pca_paths

    x = np.random.default_rng(2).normal(size=(5, 8, 3))
    paths, _ = pca_paths(x)
    for a, b in ((0, 3), (2, 2), (4, 1)):  # also A == B: both still listed; also B's id before A's
        chart = pca_paths_chart(paths, [a, b])
        spec = chart.to_dict()
        (line,) = [v for v in _views(spec) if "strokeDash" in v["encoding"]]
        dash = line["encoding"]["strokeDash"]
        # the legend's entries are the drawn rows' names, sorted: A's first, so A gets the first dash
        names = sorted({r["sequence"] for r in spec["datasets"][line["data"]["name"]]})
        assert names == [f"A: {a}", f"B: {b}"]
        assert dash["sort"] == "ascending" and dash["scale"]["range"] == DASHES[:2]
        assert dash["scale"]["range"][0] != dash["scale"]["range"][1]
        text = caption(chart)
        assert f"A: {a} is a solid line" in text and f"B: {b} is a dashed line" in text
    # names that do not sort in the order given are spelled out in the scale, in that order
    chart = pca_paths_chart(paths, [0, 1], names=["second", "first"])
    (line,) = [v for v in _views(chart.to_dict()) if "strokeDash" in v["encoding"]]
    assert line["encoding"]["strokeDash"]["scale"]["domain"] == ["second", "first"]


def _definition(spec: dict) -> str:
    """A spec without its data: dataset names replaced by their order of first use, as
    Streamlit's frontend does before deciding whether a chart must be rebuilt."""
    import json
    text = json.dumps({k: v for k, v in spec.items() if k not in ("datasets", "description")}, sort_keys=True)
    for i, name in enumerate(spec.get("datasets", {})):
        text = text.replace(name, f"dataset_{i}")
    return text


def test_pair_charts_have_one_definition_for_every_pair():
    """Switching A or B must only swap the charts' data (the browser then updates the drawn chart in
    place instead of rebuilding it, the bulk of a rerun's time): the definitions of the paths, norms
    and distance charts do not depend on the pair, on sequences of different lengths, with and
    without plateaus, partings and rejoins; the data does."""
    from rnnviz_core.charts.trajectories import pca_paths_chart
    from rnnviz_core.trajectories import pca_paths

    rng = np.random.default_rng(5)
    lens = np.array([12, 5, 9, 12, 7])
    x = rng.normal(size=(5, 12, 4)).cumsum(axis=1) * 0.2
    x[2] = x[2, :1]                        # sequence 2 never moves: settles at once
    paths, _ = pca_paths(x, lens)
    norms = state_norms(x, lens)
    pairs = [(0, 1), (2, 3), (4, 0), (1, 1)]
    for align in ("start", "end"):
        defs, kinds, data = set(), set(), set()
        for a, b in pairs:
            dist = pair_distance(x[a], x[b], int(lens[a]), int(lens[b]), align=align)
            kinds.add(parting_summary(dist).kind)
            names = [f"A: {a}", f"B: {b}"]
            specs = [pca_paths_chart(paths, [a, b]).to_dict(),
                     norms_chart(norms, [a, b], names=names).to_dict(),
                     distance_chart(dist, steps=int(lens.max())).to_dict()]
            defs.add(tuple(_definition(sp) for sp in specs))
            data.add(tuple(str(sp["datasets"]) for sp in specs))
        assert len(defs) == 1, align
        assert len(data) == len(pairs)
        assert len(kinds) >= 2, kinds      # the pairs do differ in what the distance chart marks
    assert {p >= 0 for p in norms.groupby("seq")["plateau_step"].first()} == {True, False}


def test_heatmap_caption_says_when_only_top_units_are_drawn():
    from rnnviz_core.trajectories import unit_order
    x = np.random.default_rng(4).normal(size=(2, 6, 10))
    hm = heatmap_data(x, units=unit_order(x, top=4))
    assert "only 4 of the 10 units are drawn" in caption(heatmap_chart(hm, 0))
    assert "units are drawn" not in caption(heatmap_chart(heatmap_data(x), 0))


def test_charts_on_one_step_axis_line_up():
    """Input strip, heatmap, bars and per-feature heatmap share the step width and reserve the same
    y-label width, so step t sits in the same column in every one."""
    from rnnviz_core.charts.contributions import feature_scores_chart, step_scores_chart
    from rnnviz_core.charts.inputs import input_strip_chart
    from rnnviz_core.charts.trajectories import Y_EXTENT, on_one_step_axis
    from rnnviz_core.rankings import scores_frame

    rng = np.random.default_rng(0)
    L, sw = 12, 25.0
    x = rng.normal(size=(1, L, 5))
    parts = [input_strip_chart(rng.normal(size=(L, 3)), step_width=sw),
             heatmap_chart(heatmap_data(x), 0, step_width=sw),
             step_scores_chart(scores_frame(rng.normal(size=(1, L)), method="occlusion"), 0, step_width=sw),
             feature_scores_chart(rng.normal(size=(L, 3)), step_width=sw)]
    chart = on_one_step_axis(*parts)
    spec = chart.to_dict()
    views = [v for v in _views(spec) if "y" in v.get("encoding", {}) and "x" in v["encoding"]
             and v["encoding"]["x"].get("field") == "step"]
    extents = {(v["encoding"]["y"].get("axis") or {}).get("minExtent") for v in views
               if (v["encoding"]["y"].get("axis") or {}) is not None}
    assert extents == {Y_EXTENT}
    doms = {len(v["encoding"]["x"]["scale"]["domain"]) for v in views if "scale" in v["encoding"]["x"]}
    assert doms == {L}
    assert caption(chart).startswith("The inputs of this sequence over its 12 steps")


@pytest.mark.parametrize("dist,align", [
    (np.full(8, 1.0), "start"),                                          # apart from the first step, for good
    (np.full(8, 1.0), "end"),
    (np.r_[np.full(4, 1.0), np.full(6, 0.0)], "start"),                  # apart from the start, then rejoined
    (np.r_[np.full(2, 0.0), np.full(6, 1.0)], "start"),                  # part at step 2
    (np.r_[np.full(2, 0.0), np.full(4, 1.0), np.full(4, 0.0), np.full(4, 1.0)], "start"),
    (np.r_[[0.0], np.full(5, 1.0), np.full(6, 0.0)], "start"),
    (np.full(8, 0.0), "start"),                                          # never
])
def test_caption_names_the_dashed_red_line_exactly_when_one_is_drawn(dist, align):
    """Race demo, dog5000 vs dog5001: a dashed red rule stood at step 0 (apart from the start) and
    the caption never said what it was."""
    d = pair_distance(*_pair(dist), align=align, scale=1.0)
    chart = distance_chart(d)
    red = _rule_rows(chart.to_dict(), RED)
    assert bool(red) == ("dashed red" in caption(chart)), caption(chart)
