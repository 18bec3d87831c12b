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
