"""Saturation fractions on hand-made states and gates."""
import numpy as np
import pytest

from rnnviz_core.errors import InputError
from rnnviz_core.saturation import (
    gate_saturation, saturated_units, saturation_by_gate, saturation_by_sequence,
    saturation_by_step, saturation_by_unit, saturation_over_time, unit_saturation_over_time,
)

NAN = np.nan
# 2 sequences, 3 steps, 2 units; sequence 1 has length 2 (its step 2 is padding)
STATES = np.array([
    [[0.95, 0.10], [-0.92, 0.90], [0.00, -0.99]],
    [[0.50, 0.50], [0.91, -0.95], [NAN, NAN]],
])
LENS = np.array([3, 2])


def test_unit_saturation_by_hand():
    sat = saturated_units(STATES, LENS)
    np.testing.assert_array_equal(sat[0], [[1, 0], [1, 1], [0, 1]])
    np.testing.assert_array_equal(sat[1], [[0, 0], [1, 1], [0, 0]])
    # padding is excluded even when it holds large values
    garbage = np.where(np.isnan(STATES), 5.0, STATES)
    assert not saturated_units(garbage, LENS)[1, 2].any()

    by_step = saturation_by_step(STATES, LENS)
    assert by_step["frac_saturated"].tolist() == [0.5, 1.0, 0.5, 0.0, 1.0]
    by_seq = saturation_by_sequence(garbage, LENS)
    assert by_seq["frac_saturated"].tolist() == pytest.approx([4 / 6, 2 / 4])
    assert by_seq["frac_saturated_final"].tolist() == [0.5, 1.0]

    by_unit = saturation_by_unit(garbage, LENS)  # 5 valid steps
    assert by_unit["frac_saturated"].tolist() == pytest.approx([3 / 5, 3 / 5])
    assert by_unit["frac_positive"].tolist() == pytest.approx([2 / 5, 1 / 5])
    assert by_unit["frac_negative"].tolist() == pytest.approx([1 / 5, 2 / 5])

    # a higher threshold changes the answer (0.9 is no longer >= 0.91)
    assert saturation_by_step(STATES, LENS, threshold=0.91)["n_saturated"].tolist() == [1, 1, 1, 0, 2]


def test_unit_saturation_over_time_counts_only_running_sequences():
    f = unit_saturation_over_time(STATES, LENS)
    got = f.set_index(["unit", "step"])
    assert got.loc[(0, 0), "frac_saturated"] == 0.5
    assert got.loc[(1, 1), "frac_saturated"] == 1.0
    assert got.loc[(1, 2), "frac_saturated"] == 1.0 and got.loc[(1, 2), "n_sequences"] == 1


def test_saturation_over_time_by_group():
    f = saturation_over_time(STATES, LENS, groups=["a", "b"])
    a = f[f.group == "a"]["frac_saturated"].tolist()
    assert a == [0.5, 1.0, 0.5]
    assert f[f.group == "b"]["frac_saturated"].tolist() == [0.0, 1.0]
    both = saturation_over_time(STATES, LENS)
    assert both["frac_saturated"].tolist() == [0.25, 1.0, 0.5]
    assert both["n_sequences"].tolist() == [2, 2, 1]
    assert both["sem"].iloc[0] == pytest.approx(np.std([0.5, 0.0], ddof=1) / np.sqrt(2))


def test_gate_left_right_by_hand():
    z = np.array([[[0.05, 0.5], [0.95, 0.5], [0.09, 0.91]],
                  [[0.5, 0.99], [0.1, 0.9], [0.0, 0.0]]])  # seq 1 step 2 is padding (ignored)
    r = np.full_like(z, 0.5)
    gates = {"z": z, "r": r}
    per_unit = gate_saturation(gates, LENS).set_index(["gate", "unit"])
    # unit 0 of z over 5 valid steps: 0.05, 0.95, 0.09, 0.5, 0.1 -> left 2 (0.1 is not < 0.1), right 1
    assert per_unit.loc[("z", 0), "left"] == pytest.approx(2 / 5)
    assert per_unit.loc[("z", 0), "right"] == pytest.approx(1 / 5)
    # unit 1: 0.5, 0.5, 0.91, 0.99, 0.9 -> right 2 (0.9 is not > 0.9)
    assert per_unit.loc[("z", 1), "right"] == pytest.approx(2 / 5)
    assert per_unit.loc[("r", 0), "neither"] == 1.0
    per_gate = saturation_by_gate(gates, LENS).set_index("gate")
    assert per_gate.loc["z", "saturated"] == pytest.approx((3 + 2) / 10)
    seq = saturation_by_sequence(STATES, LENS, gates=gates)
    assert seq["z_left"].tolist() == pytest.approx([2 / 6, 0.0])
    assert seq["z_right"].tolist() == pytest.approx([2 / 6, 1 / 4])
    assert seq["r_left"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("lengths", [[40, 33, 36, 40, 35], [40, 3, 36, 1, 35], [40] * 5])
def test_gate_shares_per_sequence_count_only_real_steps_of_long_rows(lengths):
    """Rows long enough to be counted a row at a time (the steps every sequence has) and the rest
    step by step: the shares against a plain loop over each sequence's real steps; the padding
    holds 0 and 1 (every unit saturated if it were counted)."""
    rng = np.random.default_rng(5)
    lens = np.array(lengths)
    z = rng.random((5, 40, 32))
    z[rng.random(z.shape) < 0.1] = 0.1          # on the threshold: not below it
    for i, L in enumerate(lens):
        z[i, L:] = np.where(rng.random((40 - L, 32)) < 0.5, 0.0, 1.0)
    states = rng.uniform(-1, 1, (5, 40, 32))
    seq = saturation_by_sequence(states, lens, gates={"z": z}, low=0.1, high=0.9)
    for i, L in enumerate(lens):
        real = z[i, :L]
        assert seq["z_left"][i] == (real < 0.1).sum() / real.size
        assert seq["z_right"][i] == (real > 0.9).sum() / real.size


def test_bad_thresholds():
    with pytest.raises(InputError):
        saturated_units(STATES, LENS, threshold=-1)
    with pytest.raises(InputError):
        gate_saturation({"z": STATES}, LENS, low=0.9, high=0.1)
    with pytest.raises(InputError):
        gate_saturation({}, LENS)


def test_with_a_real_trace_of_an_lstm():
    torch = pytest.importorskip("torch")
    rv = pytest.importorskip("rnnviz_core.trace")
    from rnnviz_core.saturation import trace_gates

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.lstm = torch.nn.LSTM(3, 5, batch_first=True)
            with torch.no_grad():
                self.lstm.weight_ih_l0.mul_(4.0)  # push states and gates towards their limits
            self.head = torch.nn.Linear(5, 2)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out[:, -1])

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 6, 3)).astype(np.float32)
    lens = np.array([6, 3, 5, 6, 1, 2, 6])
    tr = rv.trace(Net(), x, lens, device="cpu")
    assert set(trace_gates(tr)) == {"i", "f", "o"}
    seq = saturation_by_sequence(tr, threshold=0.5)  # LSTM h = o * tanh(c) rarely reaches 0.9
    h = tr.hidden
    for i, n in enumerate(lens):
        assert seq["frac_saturated"][i] == pytest.approx((np.abs(h[i, :n]) >= 0.5).mean())
        assert seq["f_left"][i] == pytest.approx((tr["f"][i, :n] < 0.1).mean())
    assert 0 < seq["frac_saturated"].max() and (seq["i_right"] > 0).any()
    per_unit = gate_saturation(tr).set_index(["gate", "unit"])
    valid = np.concatenate([tr["o"][i, :n] for i, n in enumerate(lens)])
    np.testing.assert_allclose(per_unit.loc["o", "right"].to_numpy(), (valid > 0.9).mean(0))


def test_gate_saturation_over_time_by_hand():
    from rnnviz_core.saturation import gate_saturation_over_time

    z = np.array([[[0.05, 0.5], [0.95, 0.99], [0.5, 0.5]],
                  [[0.01, 0.02], [0.5, 0.5], [7.0, 7.0]]])  # seq 1 step 2 is padding
    f = gate_saturation_over_time({"z": z}, LENS, groups=["a", "b"])
    a = f[f.group == "a"]
    assert a["left"].tolist() == [0.5, 0.0, 0.0] and a["right"].tolist() == [0.0, 1.0, 0.0]
    both = gate_saturation_over_time({"z": z}, LENS)
    assert both["left"].tolist() == [0.75, 0.0, 0.0] and both["right"].tolist() == [0.0, 0.5, 0.0]
    assert both["n_sequences"].tolist() == [2, 2, 1]


# ----------------------------------------------------------------------------- thresholds by eye (issue 10)
def test_value_distribution_counts_by_hand():
    from rnnviz_core.saturation import value_distribution
    h = np.array([[[0.05, -0.95], [0.55, 0.91], [np.nan, np.nan]]])  # one sequence, 2 valid steps
    g = {"z": np.array([[[0.02, 0.5], [0.97, 0.99], [np.nan, np.nan]]])}
    d = value_distribution(h, gates=g, bins=10, threshold=0.9, low=0.1, high=0.9)
    hh = d[d["what"] == "|h|"]
    assert hh["count"].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert hh["share"].sum() == pytest.approx(1.0)
    assert d.attrs["share_saturated"] == pytest.approx(0.5)          # 0.95 and 0.91 of 4 values
    assert d.attrs["gate_shares"]["z"] == pytest.approx((0.25, 0.5))
    assert set(d["what"]) == {"|h|", "gate z"}


def test_suggest_threshold_branches():
    from rnnviz_core.saturation import suggest_threshold
    rng = np.random.default_rng(0)
    # plenty at 0.9: default kept, no word needed
    x = rng.uniform(-1, 1, size=(5, 20, 8))
    s = suggest_threshold(x)
    assert s.threshold == 0.9 and s.message == "" and s.share == pytest.approx((np.abs(x) >= 0.9).mean())
    # values up to ~0.7: the highest slider value where >= 1% saturate
    y = rng.uniform(-0.7, 0.7, size=(5, 20, 8))
    s = suggest_threshold(y)
    grid = np.round(np.arange(50, 100) / 100, 2)
    expect = max(t for t in grid if (np.abs(y) >= t).mean() >= 0.01)
    assert s.threshold == pytest.approx(expect) and (np.abs(y) >= s.threshold).mean() >= 0.01
    assert "starts at" in s.message
    # nothing reaches the slider's lowest value: say so
    z = rng.uniform(-0.3, 0.3, size=(5, 20, 8))
    s = suggest_threshold(z)
    assert s.share == 0 and "Nothing saturates at any threshold" in s.message
    assert f"{np.abs(z).max():.2f}" in s.message
    # one lonely value over 0.5: few at any threshold
    w = np.zeros((5, 20, 8))
    w[0, 0, 0] = 0.6
    s = suggest_threshold(w)
    assert s.threshold == 0.5 and "Few units saturate" in s.message


def test_flat_saturation_charts_say_nothing_saturates():
    from rnnviz_core.charts.saturation import caption, distribution_chart, saturation_time_chart, unit_saturation_chart
    from rnnviz_core.saturation import value_distribution
    z = np.full((3, 6, 4), 0.2)
    assert "no unit reaches 0.9 at any step" in caption(saturation_time_chart(saturation_over_time(z), threshold=0.9))
    assert "every cell is blank" in caption(unit_saturation_chart(unit_saturation_over_time(z), threshold=0.9))
    assert "no value reaches it" in caption(distribution_chart(value_distribution(z, threshold=0.9), threshold=0.9))
    x = np.full((3, 6, 4), 0.95)
    assert "flat" not in caption(saturation_time_chart(saturation_over_time(x), threshold=0.9))
    assert "100.0% of the values" in caption(distribution_chart(value_distribution(x, threshold=0.9), threshold=0.9))


def test_saturation_time_axis_fits_the_lines():
    """A few percent saturated is drawn on a few-percent axis, not flat at the bottom of 0-100%."""
    from rnnviz_core.charts.saturation import saturation_time_chart
    x = np.zeros((4, 10, 100))
    x[:, :, :3] = 0.95  # 3% of units
    spec = saturation_time_chart(saturation_over_time(x)).to_dict()
    lines = [v for v in spec["layer"] if (v["mark"] if isinstance(v["mark"], str) else v["mark"]["type"]) == "line"]
    assert lines[0]["encoding"]["y"]["scale"]["domain"] == [0, 0.05]
    full = saturation_time_chart(saturation_over_time(np.full((4, 10, 5), 0.95))).to_dict()
    lines = [v for v in full["layer"] if (v["mark"] if isinstance(v["mark"], str) else v["mark"]["type"]) == "line"]
    assert lines[0]["encoding"]["y"]["scale"]["domain"] == [0, 1.0]
