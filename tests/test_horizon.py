"""rv.horizon on tasks whose answers are known.

* A GRU built by hand as a k-step shift register: its output is a sum over the last k inputs
  only, so horizon_90 = k and the decision step follows from the inputs by hand.
* The marker demo: the answer is fixed once the second marker is read.
* The text demo: no decision after the last sentiment word; deleting "not" flips the answer and
  moves the decision step to the sentiment word.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import rnnviz_core as rv
from rnnviz_core.horizons import (compare_horizons, damage_by_distance, damage_summary, decision_steps,
                                 horizon_summary, horizons_from_scores)
from rnnviz_core.demos.tasks import NEGATIONS, NEGATIVE_WORDS, POSITIVE_WORDS


class ShiftRegister(nn.Module):
    """GRU whose unit j holds tanh applied j+1 times to the input j steps ago (z = 0, r = 1);
    logits [s, -s] with s the sum of the units: the output reads exactly the last k inputs."""

    def __init__(self, k: int):
        super().__init__()
        self.rnn = nn.GRU(1, k, batch_first=True)
        with torch.no_grad():
            for p in self.rnn.parameters():
                p.zero_()
            self.rnn.bias_ih_l0[:k] = 30.0          # r = 1
            self.rnn.bias_ih_l0[k : 2 * k] = -30.0  # z = 0: h' = n
            self.rnn.weight_ih_l0[2 * k, 0] = 1.0   # unit 0 reads x_t
            for j in range(1, k):
                self.rnn.weight_hh_l0[2 * k + j, j - 1] = 1.0  # unit j reads unit j-1 one step ago
        self.k = k

    def forward(self, x, lengths=None):
        out, _ = self.rnn(x)
        if lengths is None:
            last = out[:, -1]
        else:
            last = out[torch.arange(x.shape[0]), lengths.long() - 1]
        s = last.sum(-1, keepdim=True)
        return torch.cat([s, -s], -1)


def _by_hand(x: np.ndarray, k: int) -> np.ndarray:
    """s_t = sum_j tanh^(j+1)(x_{t-j}) over the last k steps, per prefix."""
    n, T = x.shape
    s = np.zeros((n, T))
    for t in range(T):
        for j in range(min(t + 1, k)):
            v = x[:, t - j]
            for _ in range(j + 1):
                v = np.tanh(v)
            s[:, t] += v
    return s


def test_hand_built_gru_remembers_exactly_k_steps():
    k, T, n = 5, 14, 40
    net = ShiftRegister(k).eval()
    rng = np.random.default_rng(0)
    x = (0.1 * rng.choice([-1.0, 1.0], size=(n, T))).astype(np.float32)
    lengths = rng.integers(k + 2, T + 1, size=n)
    x[np.arange(T)[None] >= lengths[:, None]] = 0.0
    s = _by_hand(x, k)
    with torch.no_grad():  # the construction itself: the model's output is the hand sum
        out = net(torch.as_tensor(x[..., None]), torch.as_tensor(lengths))[:, 0].numpy()
    assert np.abs(out - s[np.arange(n), lengths - 1]).max() < 1e-5
    h = rv.horizon(net, x[..., None], lengths, method="integrated_gradients", steps=32)
    assert (h["horizon_90"] == k).all(), h["horizon_90"].tolist()
    assert (h["horizon_50"] == (k + 1) // 2).all(), h["horizon_50"].tolist()   # 5 near-equal shares
    # decision step by hand: the first t from which sign(s_t) is the final sign through the end
    for i in range(n):
        Li = lengths[i]
        sign = np.sign(s[i, :Li])
        same = sign == sign[-1]
        expect = Li - np.argmin(same[::-1]) if not same.all() else 0
        assert h["decision_step"][i] == expect, (i, sign)
    assert (h["steps_after_decision"] == lengths - 1 - h["decision_step"]).all()


def test_horizons_from_scores_by_hand():
    sc = np.array([[0.0, 0.0, 1.0, 1.0, 2.0, np.nan], [5.0, 0.0, 0.0, 0.0, 0.0, 5.0], [0, 0, 0, 0, 0, 0]])
    hz = horizons_from_scores(sc, [5, 6, 6])
    # seq 0: from the end 2, 1, 1 of 4 -> 50% in 1 step, 90% in 3; seq 1: 5 then 5 far back
    assert hz[0].tolist() == [1.0, 3.0]
    assert hz[1].tolist() == [1.0, 6.0]
    assert np.isnan(hz[2]).all()


def test_decision_steps_by_hand_for_classes_and_regression():
    p = np.zeros((2, 4, 2))
    p[0, :, 0] = [1, -1, 1, 1]      # class 0, 1, 0, 0 -> decided at step 2
    p[1, :, 1] = [1, 1, 1, 1]       # always class 1 -> step 0
    assert decision_steps(p, [4, 4]).tolist() == [2, 0]
    r = np.array([[0.0, 5.0, 9.9, 10.0], [3.0, 3.0, 0.0, np.nan]])[..., None]
    assert decision_steps(r, [4, 3], tol=0.5).tolist() == [2, 2]


def test_decision_steps_of_float32_logits_match_the_class_of_highest_probability():
    """float32 prefix outputs take the largest logit (no probabilities); the reference is the class
    sequence_outputs names (probabilities in float64), on near-ties one float32 step apart, exact
    ties, huge and infinite logits and NaN padding."""
    from rnnviz_core.analyses.outcomes import sequence_outcomes

    rng = np.random.default_rng(3)
    n, T, k = 300, 12, 3
    p = rng.normal(size=(n, T, k)).astype(np.float32)
    near = rng.random((n, T)) < 0.3      # the second class one float32 step above or below the first
    step = np.where(rng.random((n, T)) < 0.5, np.float32(np.inf), np.float32(-np.inf))
    p[..., 1] = np.where(near, np.nextafter(p[..., 0], step), p[..., 1])
    tie = rng.random((n, T)) < 0.2
    p[..., 2] = np.where(tie, np.maximum(p[..., 0], p[..., 1]), p[..., 2])   # exact ties with the top
    p[::11, ::3] *= np.float32(3e37)                                    # huge
    p[5, 4, 1], p[6, 2, 0], p[8, 1, :] = np.inf, -np.inf, np.inf         # infinite
    L = rng.integers(1, T + 1, n)
    p[np.arange(T)[None, :] >= L[:, None]] = np.nan                      # padding
    flat = np.nan_to_num(p.astype(np.float64)).reshape(n * T, k)
    ans = sequence_outcomes(flat)["pred"].to_numpy().reshape(n, T)
    same = (ans == ans[np.arange(n), L - 1][:, None]) | (np.arange(T)[None, :] >= L[:, None])
    want = np.array([T - np.argmax(~row[::-1]) if (~row).any() else 0 for row in same])
    assert (p[..., 0] != p[..., 1])[near].mean() > 0.9 and not np.all(want == 0)
    assert decision_steps(p, L).tolist() == want.tolist()
    assert decision_steps(p.astype(np.float64), L).tolist() == want.tolist()   # the probability path


@pytest.fixture(scope="module")
def marker():
    model, ds = rv.demos.load_demo("marker")
    X, L, y = ds.X[:300], ds.lengths[:300], ds.y[:300]
    return model, X, L, y, rv.horizon(model, X, L, method="integrated_gradients", steps=16)


def test_marker_demo_decides_at_the_second_marker(marker):
    model, X, L, y, h = marker
    marks = [np.flatnonzero(X[i, : L[i], 1] > 0.5) for i in range(len(X))]
    a = np.array([m[0] for m in marks])
    b = np.array([m[1] for m in marks])
    v, w = X[np.arange(len(X)), a, 0], X[np.arange(len(X)), b, 0]
    right = h["final"].to_numpy() == y
    d = h["decision_step"].to_numpy()
    assert (d[right] <= b[right]).mean() >= 0.95          # fixed once the second value is read
    # where the first value points the other way, the answer can only be known at the second marker
    turn = right & (np.sign(v) != np.sign(v + w))
    assert turn.sum() >= 30 and (d[turn] == b[turn]).mean() >= 0.85
    # the contribution mass reaches back to the first marker
    assert (h["horizon_90"].to_numpy()[right] >= (L - a)[right]).mean() >= 0.9


def test_text_demo_not_moves_the_decision_to_the_sentiment_word():
    model, ds = rv.demos.load_demo("text")
    voc = model.vocabulary
    X, L, y = ds.X[:600], ds.lengths[:600], ds.y[:600]
    h = rv.horizon(model, X, L, method="grad_x_state")
    d, right = h["decision_step"].to_numpy(), h["final"].to_numpy() == y
    words = [[voc[t] for t in X[i, : L[i]]] for i in range(len(X))]
    sentiment = POSITIVE_WORDS + NEGATIVE_WORDS
    last = np.array([max(j for j, w in enumerate(ws) if w in sentiment) for ws in words])
    assert (d[right] <= last[right]).mean() >= 0.98      # nothing after the last sentiment word decides
    # one "not WORD" phrase, and the model's answer just before "not" already equals the final one
    picked = []
    with torch.no_grad():
        for i, ws in enumerate(words):
            s = [j for j, w in enumerate(ws) if w in sentiment]
            if len(s) == 1 and s[0] >= 2 and ws[s[0] - 1] in NEGATIONS and right[i]:
                neg = s[0] - 1
                before = model(torch.as_tensor(X[i : i + 1, :neg]), torch.tensor([neg])).argmax(-1).item()
                if before == y[i]:
                    picked.append((i, neg))
    assert len(picked) >= 30
    rows = [i for i, _ in picked]
    res = rv.what_if(model, X, [(i, neg, "delete", None) for i, neg in picked], L)
    h2 = rv.horizon(model, res.x[rows], res.lengths[rows], method="grad_x_state")
    assert (h2["final"].to_numpy() != y[rows]).mean() >= 0.95          # without "not" the answer flips
    word_at = np.array([neg for _, neg in picked])                     # the word moved up into "not"'s place
    assert (h2["decision_step"].to_numpy() == word_at).mean() >= 0.9
    # with "not", the (same) answer held from before the phrase in most reviews, never later than the word
    assert (d[rows] <= word_at + 1).all() and (d[rows] < word_at).mean() >= 0.5


def test_group_summaries_and_comparison_use_the_saturation_statistics(marker):
    model, X, L, y, h = marker
    tr = rv.trace(model, X, L)
    table = rv.groups.sequence_table(tr, y, class_names=["negative", "positive"])
    summ = horizon_summary(h, table, by="correct")
    assert set(summ["group"].astype(str)) <= {"correct", "wrong"}
    right = h["final"].to_numpy() == y
    row = summ[summ["group"].astype(str) == "correct"].iloc[0]
    assert row["size"] == right.sum()
    assert row["decision_step_median"] == np.median(h["decision_step"][right])
    cmp = compare_horizons(h, table, "correct", "correct", "wrong")
    assert list(cmp["metric"]) == ["decision_step", "steps_after_decision", "horizon_50", "horizon_90"]
    ref = rv.groups.compare_groups(table.assign(decision_step=h["decision_step"].to_numpy()), "correct",
                                   "correct", "wrong", metrics="decision_step")
    assert cmp.iloc[0]["p_value"] == pytest.approx(ref.iloc[0]["p_value"])


def test_damage_by_distance_equals_the_model_on_the_damaged_step(marker):
    model, X, L, y, _ = marker
    x, lengths = X[:20], L[:20]
    frame = damage_by_distance(model, x, lengths, distances=[0, 3], baseline="zeros")
    assert set(frame["distance"]) == {0, 3} and len(frame) == 40
    i = 7
    xd = x[i : i + 1].copy()
    xd[0, lengths[i] - 1 - 3] = 0.0
    with torch.no_grad():
        p0 = torch.softmax(model(torch.as_tensor(x[i : i + 1]), torch.as_tensor(lengths[i : i + 1])), -1).numpy()
        p1 = torch.softmax(model(torch.as_tensor(xd), torch.as_tensor(lengths[i : i + 1])), -1).numpy()
    got = frame[(frame["seq"] == i) & (frame["distance"] == 3)].iloc[0]
    assert got["output_change"] == pytest.approx(np.abs(p1 - p0).sum(), abs=1e-5)
    assert got["flipped"] == float(p0.argmax() != p1.argmax())
    summ = damage_summary(frame)
    assert list(summ["distance"]) == [0, 3]
    assert summ.iloc[0]["mean_output_change"] == pytest.approx(frame[frame.distance == 0]["output_change"].mean())


def test_the_three_verbs_stay_functions_after_their_modules_are_imported():
    import importlib

    for mod in ("whatif", "horizons", "units", "restart"):
        importlib.import_module(f"rnnviz_core.{mod}")
    assert rv.what_if.__name__ == "what_if" and rv.horizon.__name__ == "horizon"
    assert rv.unit_dictionary.__name__ == "unit_dictionary"


@pytest.mark.parametrize("shape,task", [((50, 3), "auto"), ((50, 1), "binary"), ((50,), "binary"), ((50, 1), "auto"),
                                        ((50, 2), "regression"), ((50, 4), "classification")])
def test_answers_are_the_outcome_tables_pred(shape, task):
    """horizons._answers (each prefix's answer, without a table) against sequence_outcomes' pred
    and whether its confidence is a number, the rule it stands for; NaN rows included."""
    from rnnviz_core.groups import sequence_outcomes
    from rnnviz_core.horizons import _answers

    rng = np.random.default_rng(7)
    for with_nan in (False, True):
        out = rng.normal(size=shape) * 3
        if with_nan:
            out[3] = np.nan
        frame = sequence_outcomes(out, task=task)
        pred, classes = _answers(out, task)
        assert classes == bool(frame["confidence"].notna().all())
        np.testing.assert_array_equal(pred, frame["pred"].to_numpy())


def test_joined_tables_in_the_same_order_equal_the_merge():
    """horizon_summary / compare_horizons join the horizon frame with the sequence table: when
    both list the same sequences in the same order the columns are put side by side (no merge);
    that equals pandas' merge on seq, dtypes included, and a table in another order still merges."""
    from rnnviz_core.horizons import _joined

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"seq": np.arange(50), "length": rng.integers(1, 9, 50),
                          "decision_step": rng.integers(0, 5, 50), "method": "x"})
    table = pd.DataFrame({"seq": np.arange(50), "predicted_class": pd.Categorical(rng.choice(["a", "b"], 50)),
                          "outcome": rng.choice(["correct", "wrong"], 50), "length": 3,
                          "f": np.where(rng.random(50) < 0.2, np.nan, 1.0), "ok": rng.random(50) < 0.5})
    for t in (table, table.iloc[::-1], table.iloc[5:]):
        cols = [c for c in t.columns if c not in frame.columns or c == "seq"]
        pd.testing.assert_frame_equal(_joined(frame, t), frame.merge(t[cols], on="seq", how="left"))


def test_horizon_summary_equals_pandas_grouped_statistics():
    """horizon_summary's statistics (numpy over each group's rows) against pandas' grouped mean,
    quartiles and median, missing horizons left out, for a categorical grouping with an unused
    category, text with missing labels, numbers with NaN, and one group of everything."""
    from rnnviz_core import horizons as hz

    rng = np.random.default_rng(0)
    for trial in range(12):
        n = int(rng.integers(1, 300))
        frame = pd.DataFrame({"seq": np.arange(n), "length": rng.integers(1, 50, n),
                              "decision_step": rng.integers(0, 50, n), "steps_after_decision": rng.integers(0, 50, n),
                              "horizon_50": np.where(rng.random(n) < 0.3, np.nan, rng.random(n) * 9),
                              "horizon_90": np.where(rng.random(n) < 0.05, np.nan, rng.random(n)), "method": "x"})
        table = pd.DataFrame({"seq": np.arange(n),
                              "predicted_class": pd.Categorical(rng.choice(["b", "a", "c"], n),
                                                                categories=["c", "b", "a", "z"]),
                              "grp": rng.choice(["p", "q", None], n), "num": rng.choice([1.0, 2.0, np.nan], n)})
        for by in ("predicted_class", "grp", "num", ["all"] * n):
            got = hz.horizon_summary(frame, table, by=by)
            df = frame.merge(table, on="seq")
            grouped = df.assign(_g=hz.assign_groups(df, by).values).groupby("_g", observed=True, sort=True,
                                                                             dropna=False)
            ref = pd.DataFrame({"size": grouped.size()})
            for m in hz.HORIZON_METRICS:
                col = grouped[m]
                ref[f"{m}_mean"], ref[f"{m}_q25"] = col.mean(), col.quantile(0.25)
                ref[f"{m}_median"], ref[f"{m}_q75"] = col.median(), col.quantile(0.75)
            ref.index.name = "group"
            pd.testing.assert_frame_equal(got, ref.reset_index(), check_dtype=False, rtol=1e-12, atol=1e-12)
