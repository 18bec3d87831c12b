"""``groups.sequence_table`` takes the gate thresholds (issue 20), so the Saturation page and the
bundle worker call it once instead of recomputing saturation and overwriting its columns. Checked by
hand on a tiny batch, and against the old recompute-and-overwrite recipes on a traced model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rnnviz_core.groups import saturation_levels, sequence_table
from rnnviz_core.saturation import saturation_by_sequence, trace_gates


def test_gate_thresholds_by_hand():
    logits = np.array([[2.0, 0.0], [0.0, 1.0]])
    lengths = np.array([2, 3])
    h = np.full((2, 3, 2), 99.0)                          # padding (never read)
    h[0, :2] = [[0.95, 0.1], [0.99, -0.97]]               # |h| >= 0.9: 3 of 4 unit-steps
    h[1, :3] = [[0.0, 0.1], [0.5, 0.92], [0.2, 0.3]]      # 1 of 6
    z = np.full((2, 3, 2), 0.5)
    z[0, :2] = [[0.15, 0.5], [0.7, 0.85]]                 # low 0.2: 1 of 4; high 0.8: 1 of 4
    z[1, :3] = [[0.1, 0.05], [0.81, 0.9], [0.5, 0.5]]     # low: 2 of 6; high: 2 of 6
    z[0, 2] = [0.0, 1.0]                                  # padding at the extremes (never read)
    t = sequence_table(logits, [0, 1], states=h, lengths=lengths, gates={"z": z}, threshold=0.9, low=0.2,
                       high=0.8, levels=(0.2, 0.6))
    np.testing.assert_allclose(t["frac_saturated"], [3 / 4, 1 / 6])
    np.testing.assert_allclose(t["z_left"], [1 / 4, 2 / 6])
    np.testing.assert_allclose(t["z_right"], [1 / 4, 2 / 6])
    assert list(t["saturation"].astype(str)) == ["fully saturated", "not saturated"]
    # the defaults (0.1, 0.9) count other steps: the thresholds reached the gates
    d = sequence_table(logits, [0, 1], states=h, lengths=lengths, gates={"z": z})
    np.testing.assert_allclose(d["z_left"], [0 / 4, 1 / 6])
    np.testing.assert_allclose(d["z_right"], [0 / 4, 0 / 6])


@pytest.fixture(scope="module")
def traced():
    from rnnviz_core.models import ModelConfig, build_model
    from rnnviz_core.trace import trace
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=3, hidden_size=6, cell="LSTM", num_outputs=3)).eval()
    rng = np.random.default_rng(0)
    X = (3 * rng.normal(size=(20, 8, 3))).astype(np.float32)
    L = rng.integers(3, 9, 20)
    y = rng.integers(0, 3, 20)
    groups = pd.DataFrame({"source": rng.choice(["a", "b"], 20), "length": L + 100})
    return trace(model, X, L, gates=True, device="cpu"), y, groups


def _old_page(tr, y, columns, class_names, threshold, low, high):
    """The Saturation page's table as it was built before (page_saturation._sat_table)."""
    gates = trace_gates(tr, layer=-1, direction="fwd") or None
    table = sequence_table(tr.logits, y, states=tr.get("h", layer=-1, direction="fwd"), lengths=tr.lengths,
                           columns=columns, class_names=class_names, threshold=threshold)
    sat = saturation_by_sequence(tr.get("h", layer=-1, direction="fwd"), tr.lengths, gates=gates,
                                 threshold=threshold, low=low, high=high)
    for col in sat.columns.drop("seq"):
        table[col] = sat[col].to_numpy()
    return table


def test_the_saturation_page_table_equals_the_old_recompute(traced):
    from rnnviz_app.views.page_saturation import _sat_table
    tr, y, groups = traced
    names = ["x", "y", "z"]
    new = _sat_table(tr, y, groups, names, -1, "fwd", 0.8, 0.25, 0.7)
    old = _old_page(tr, y, groups, names, 0.8, 0.25, 0.7)
    assert {"i_left", "f_right", "o_left"} <= set(new.columns)
    pd.testing.assert_frame_equal(new, old[list(new.columns)])
    assert set(new.columns) == set(old.columns)


def test_the_bundle_workers_table_equals_the_old_recompute(traced):
    tr, y, groups = traced
    o = {"threshold": 0.8, "low": 0.25, "high": 0.7, "levels": (0.05, 0.3)}
    h = tr.get("h", layer=-1, direction="fwd")
    lens = tr.lengths
    gates = trace_gates(tr, layer=-1, direction="fwd") or None
    # before: outcomes only, then the saturation shares and levels spliced in ahead of the data columns
    table = sequence_table(tr.logits, y, columns=groups, class_names=None)
    gnames = list(groups.columns)
    data_cols = dict(zip(table.columns[len(table.columns) - len(gnames):], gnames))
    sat = saturation_by_sequence(h, lens, gates=gates, threshold=o["threshold"], low=o["low"], high=o["high"])
    base = [c for c in table.columns if c not in data_cols]
    extra = table[list(data_cols)]
    table = table[base]
    for col in sat.columns.drop("seq"):
        table[col] = sat[col].to_numpy()
    table["saturation"] = saturation_levels(table["frac_saturated"], o["levels"])
    for col in extra.columns:
        table[col] = extra[col].to_numpy()
    old = table
    # now: one call (rnnviz_core/bundle.py _Worker.__call__)
    new = sequence_table(tr.logits, y, states=h, lengths=lens, gates=gates, columns=groups, class_names=None,
                         threshold=o["threshold"], low=o["low"], high=o["high"], levels=o["levels"])
    # the data's own "length" column: before, it overwrote the sequences' lengths; now the table keeps
    # both ("length" from the states, the data's as "length_data"); every other column is the same,
    # in the same order
    np.testing.assert_array_equal(old["length"], groups["length"])
    np.testing.assert_array_equal(new["length"], lens)
    np.testing.assert_array_equal(new["length_data"], groups["length"])
    assert [c for c in new.columns if c != "length_data"] == list(old.columns)
    rest = [c for c in old.columns if c != "length"]
    pd.testing.assert_frame_equal(new[rest], old[rest])
    assert {"i_left", "f_right", "o_left", "saturation", "source"} <= set(rest)
