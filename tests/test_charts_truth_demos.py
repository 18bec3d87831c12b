"""Captions against the numbers on every shipped demo: what a caption says is checked against an
independent, step-by-step reading of the same numbers (not against the code that wrote it)."""
import numpy as np
import pytest

import rnnviz_core as rv
from rnnviz_core.charts.trajectories import caption, distance_chart, heatmap_chart, norms_chart
from rnnviz_core.demos import list_demos, load_demo
from rnnviz_core.saturation import suggest_threshold
from rnnviz_core.trajectories import heatmap_data, pair_distance, state_norms
from chart_specs import drawn, views as _views

KEYS = [getattr(d, "key", d) for d in list_demos()]


def _runs_above(rel, thr, k):
    """Reference: the (start, end) of every run above thr that lasts k steps or reaches the end."""
    runs, t, m = [], 0, len(rel)
    while t < m:
        if rel[t] > thr:
            u = t
            while u < m and rel[u] > thr:
                u += 1
            if u - t >= k or u == m:
                runs.append((t, u))
            t = u
        else:
            t += 1
    return runs


@pytest.fixture(scope="module", params=KEYS)
def demo(request):
    model, ds = load_demo(request.param)
    n = min(40, len(ds.X))
    tr = rv.trace(model, ds.X[:n], ds.lengths[:n])
    return request.param, tr.hidden, tr.lengths


def test_parting_captions_match_the_curve(demo):
    key, H, L = demo
    pairs = [(0, 1), (2, 3), (0, 5), (4, 7), (1, 1)]
    for a, b in pairs:
        for align in ("start", "end"):
            d = pair_distance(H[a], H[b], int(L[a]), int(L[b]), align=align)
            rel, steps = d["rel_distance"].to_numpy(), d["step"].to_numpy()
            text = caption(distance_chart(d))
            runs = _runs_above(rel, 0.25, 3)
            where = f"{key} {a}-{b} {align}"
            if not runs:
                assert "never" in text and "stay apart" not in text, where
                if "never rises above" in text:
                    assert (rel <= 0.25).all(), where
            elif runs[-1][1] == len(rel):
                assert "never" not in text and "come back together at" not in text, where
                last = int(steps[runs[-1][0]])
                if len(runs) == 1:
                    assert "stay apart to the end" in text, where
                elif align == "start":
                    assert f"part for good at step {last}" in text, where
                if runs[-1][0] == 0:
                    assert "already apart at the first compared step" in text, where
                    assert f"({rel[0] / 0.25:.1f} times the threshold)" in text, where
            else:
                assert "come back together" in text and "for good" not in text, where
                rejoin = int(steps[runs[-1][1]])
                word = f"step {rejoin}" if align == "start" else None
                if word:
                    assert word in text, where
                assert rel[runs[-1][1]] <= 0.25, where


def test_plateau_line_drawn_exactly_when_the_caption_says(demo):
    key, H, L = demo
    norms = state_norms(H[:6], L[:6])
    for a, b in ((0, 1), (2, 3), (4, 5)):
        chart = norms_chart(norms, [a, b], names=["A", "B"])
        spec = chart.to_dict()
        rules = [r for v in _views(spec) if v["encoding"].get("x", {}).get("field") == "plateau_step"
                 for r in drawn(spec, v)]
        text = caption(chart)
        plat = [int(norms.loc[norms["seq"] == s, "plateau_step"].iloc[0]) for s in (a, b)]
        assert bool(rules) == ("dashed line" in text) == any(p >= 0 for p in plat), key
        assert sorted((r["sequence"], r["plateau_step"]) for r in rules) == \
            [(name, p) for name, p in zip("AB", plat) if p >= 0], key
        for name, p in zip("AB", plat):
            if p >= 0:
                assert f"sequence {name} from step {p}" in text


def test_heatmap_caption_equals_colour_bar(demo):
    key, H, L = demo
    hm = heatmap_data(H, L, seqs=[0, 1])
    chart = heatmap_chart(hm, 0)
    rect = [v for v in _views(chart.to_dict()) if "color" in v.get("encoding", {})][0]
    lo, hi = rect["encoding"]["color"]["scale"]["domain"]
    assert rect["encoding"]["color"]["legend"]["values"][::2] == [lo, hi]
    assert f"blue at {lo:.3g}" in caption(chart) and f"red at {hi:.3g}" in caption(chart)
    m = np.nanmax(np.abs(H[[0, 1]]))
    assert hi == pytest.approx(m)


def test_suggested_threshold_shows_something_or_says_so(demo):
    key, H, L = demo
    s = suggest_threshold(H, L)
    mask = np.arange(H.shape[1])[None, :] < L[:, None]
    vals = np.abs(H[mask])
    share = (vals >= s.threshold).mean()
    assert share == pytest.approx(s.share)
    assert share >= 0.01 or s.message, key
    if s.threshold != 0.9:
        assert (vals >= 0.9).mean() < 0.01 and s.message
