"""The What-if charts: binned by hand, valid Vega-Lite, bounded at real sizes, captions true."""
from __future__ import annotations

import altair as alt
import numpy as np
import pytest

from rnnviz_core.charts import whatif as cw


def test_binned_states_are_bin_means_by_hand():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((10, 3))
    fr = cw.binned_states(h, [0, 2], 4, "edited")          # bins [0,4) [4,8) [8,10)
    assert list(fr["start"].unique()) == [0, 4, 8] and list(fr["end"].unique()) == [4, 8, 10]
    got = fr[(fr["unit"] == "2") & (fr["start"] == 8)]["value"].item()
    assert got == pytest.approx(h[8:10, 2].mean())
    got = fr[(fr["unit"] == "0") & (fr["start"] == 4)]["value"].item()
    assert got == pytest.approx(h[4:8, 0].mean())


def test_pick_units_takes_the_units_the_edit_moved_most():
    rng = np.random.default_rng(1)
    orig = rng.standard_normal((50, 40))
    edited = orig.copy()
    edited[30:, [3, 17, 29]] += np.array([0.5, 2.0, 1.0])
    units, why = cw.pick_units(orig, edited, max_units=2)
    assert units == [17, 29] and "moved most" in why
    units, why = cw.pick_units(orig, orig, max_units=5)       # nothing moved: the most variable units
    assert units == sorted(np.argsort(-orig.var(0))[:5].tolist())


@pytest.mark.parametrize("T, H", [(30, 8), (1000, 64), (10_000, 1024)])
def test_charts_are_valid_bounded_and_say_what_a_cell_is(T, H):
    rng = np.random.default_rng(2)
    orig = np.tanh(rng.standard_normal((T, H)))
    edited = orig.copy()
    edited[T // 2 :] *= 0.5
    units, why = cw.pick_units(orig, edited)
    per_bin = cw.step_bins(T)
    fr = cw.binned_states(edited, units, per_bin, "edited")
    assert len(fr) <= cw.MAX_UNITS * cw.MAX_BINS <= 5000
    spec = cw.states_chart(fr, parting=T // 2, units_why=why, per_bin=per_bin, title="Edited")
    alt.LayerChart.from_dict(spec.to_dict())               # raises on a spec Vega-Lite's schema refuses
    words = spec.description
    assert f"steps 0 to {T - 1}" in words and f"step {T // 2}" in words
    assert ("one step" in words) if per_bin == 1 else (f"the mean of {per_bin} steps" in words)
    sc = cw.binned_scores(rng.standard_normal(T), per_bin, "edited")
    sc2 = cw.binned_scores(rng.standard_normal(T - 1), per_bin, "original")
    import pandas as pd
    s2 = cw.scores_chart(pd.concat([sc2, sc]), method="grad", parting=3, per_bin=per_bin)
    alt.LayerChart.from_dict(s2.to_dict())
    assert f"original ({T - 1} steps" in s2.description and f"edited sequence ({T} steps" in s2.description


def test_edited_paths_are_both_versions_in_the_originals_pca_basis_by_hand():
    from rnnviz_core.whatif import edited_paths
    rng = np.random.default_rng(5)
    orig = np.tanh(rng.standard_normal((40, 6)) @ rng.standard_normal((6, 6)))
    edited = np.concatenate([orig[:25], np.tanh(rng.standard_normal((17, 6)))])   # parts at step 25, 2 steps longer
    fr = edited_paths(orig, edited)
    # the reference: principal axes of the original's centred states from numpy's SVD
    mean = orig.mean(0)
    _, s, vt = np.linalg.svd(orig - mean, full_matrices=False)
    for name, h in (("original", orig), ("edited", edited)):
        got = fr[fr["version"] == name].sort_values("step")[["pc1", "pc2"]].to_numpy()
        want = (h - mean) @ vt[:2].T
        assert got.shape == (len(h), 2)
        np.testing.assert_allclose(np.abs(got), np.abs(want), atol=1e-9)    # an axis' sign is arbitrary
        sign = np.sign((got * want).sum(0))
        np.testing.assert_allclose(got, want * sign, atol=1e-9)
    np.testing.assert_allclose(fr.attrs["explained_variance_ratio"], (s[:2] ** 2) / (s ** 2).sum(), rtol=1e-9)
    o = fr[fr["version"] == "original"].set_index("step")
    e = fr[fr["version"] == "edited"].set_index("step")
    np.testing.assert_allclose(o.loc[:24, ["pc1", "pc2"]], e.loc[:24, ["pc1", "pc2"]], atol=1e-12)


@pytest.mark.parametrize("T", [30, 1000, 10_000])
def test_paths_chart_is_valid_small_and_its_points_are_bin_means(T):
    from rnnviz_core.whatif import edited_paths
    rng = np.random.default_rng(3)
    orig = np.tanh(np.cumsum(rng.standard_normal((T, 16)), 0) * 0.1)
    edited = orig.copy()
    edited[T // 2:] *= -1
    per_bin = cw.step_bins(T)
    spec = cw.paths_chart(edited_paths(orig, edited), per_bin=per_bin, parting=T // 2)
    d = spec.to_dict()
    alt.LayerChart.from_dict(d)
    rows = d["datasets"][d["layer"][0]["data"]["name"]]
    assert len(rows) == 2 * int(np.ceil(T / per_bin)) <= 2 * cw.MAX_BINS
    ref = edited_paths(orig, edited)
    ref = ref[ref["version"] == "edited"]
    first = ref[ref["step"] < per_bin]["pc1"].mean()                    # the edited path's first point, by hand
    got = next(r for r in rows if r["version"] == "edited" and r["start"] == 0)["pc1"]
    assert abs(got - first) < 1e-9
    assert f"original ({T} steps" in spec.description and f"before step {T // 2}" in spec.description
