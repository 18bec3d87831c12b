"""Findings in words: each sentence true on a case built for it, and none without evidence."""
import numpy as np
import pandas as pd
import pytest

from rnnviz_core.findings import (contribution_findings, known_step_hits, known_step_overlap, saturation_findings,
                                 trajectory_findings)
from rnnviz_core.groups import compare_groups, sequence_table
from rnnviz_core.saturation import saturation_over_time, suggest_threshold
from rnnviz_core.trajectories import pair_distance, state_norms


def _pair(dist, align="start"):
    d = np.asarray(dist, dtype=float)
    a = np.zeros((d.size, 2))
    b = np.zeros((d.size, 2))
    b[:, 0] = d
    return pair_distance(a, b, scale=1.0, align=align)


# ----------------------------------------------------------------------------- trajectories
def test_parting_sentences_one_per_case():
    assert trajectory_findings(_pair([0.1] * 8)) == [
        "Sequences A and B never part: their memories stay within the parting threshold at every step compared."]
    assert "never for 3 steps in a row" in trajectory_findings(_pair([0, 1, 1, 0, 0, 0]))[0]
    assert trajectory_findings(_pair([0] * 7 + [1] * 5)) == ["Sequences A and B part at step 7 and stay apart to the end."]
    assert trajectory_findings(_pair(np.r_[[0, 0.1], np.full(33, 2.0), np.full(65, 0.01)])) == [
        "Sequences A and B part at step 2 and come back together at step 35."]
    assert trajectory_findings(_pair([1.75] * 9, align="end")) == [
        "Sequences A and B are apart from the first step compared and stay apart to the end."]
    assert trajectory_findings(_pair([0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1])) == [
        "Sequences A and B first part at step 2 and part for good at step 8."]


def test_plateau_sentences():
    x = np.zeros((2, 10, 2))
    x[0, :, 0] = np.minimum(np.arange(10) / 4, 1.0)   # settles from step 4
    x[1, :, 0] = np.arange(10) * 0.1                   # a ramp: never settles
    norms = state_norms(x)
    assert trajectory_findings(None, norms=norms, seqs=[0, 1]) == [
        "The memory of A settles from step 4; that of B is still moving at its end."]
    x[1] = x[0]
    assert trajectory_findings(None, norms=state_norms(x), seqs=[0, 1]) == [
        "The memory settles from step 4 in A and from step 4 in B."]


def test_no_trajectory_sentence_without_evidence():
    assert trajectory_findings(None) == []
    assert trajectory_findings(None, norms=state_norms(np.zeros((2, 5, 2)) + 1), seqs=None) == []


# ----------------------------------------------------------------------------- saturation
def _sat_case(n=60, late_from=20, t=30, seed=0):
    """'wrong' sequences pin half their units from step late_from on; 'correct' ones pin none."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(-0.5, 0.5, size=(2 * n, t, 4))
    h[:n, late_from:, :2] = 0.99
    y = np.zeros(2 * n, dtype=int)
    logits = np.zeros((2 * n, 2))
    logits[:n, 1] = 3.0   # first n predicted 1 -> wrong
    logits[n:, 0] = 3.0   # the rest right
    table = sequence_table(logits, y, states=h)
    over = saturation_over_time(h, groups=table["outcome"].astype(str).to_numpy())
    return h, table, over


def test_wrong_answers_saturate_more_from_step_20_on():
    h, table, over = _sat_case()
    h[60:, 25:, 0] = 0.99  # correct ones saturate a little at the very end
    logits = np.c_[np.r_[np.zeros(60), 3 * np.ones(60)], np.r_[3 * np.ones(60), np.zeros(60)]]
    table = sequence_table(logits, np.zeros(120, dtype=int), states=h)
    over = saturation_over_time(h, groups=table["outcome"].astype(str).to_numpy())
    cmp = compare_groups(table, "correct", "wrong", "correct")
    out = saturation_findings(cmp, over_time=over, by="correct")
    fw = (np.abs(h[:60]) >= 0.9).mean()
    fc = (np.abs(h[60:]) >= 0.9).mean()
    assert out == [f"Wrong sequences saturate {fw / fc:.1f} times as much as correct ones ({fw:.0%} vs {fc:.1%} of "
                   f"unit-steps, p < 0.001, a large difference), and more at every step from step 20 on."]


def test_saturation_none_in_one_group_and_no_accuracy_sentence_when_grouped_by_outcome():
    h, table, over = _sat_case()
    cmp = compare_groups(table, "correct", "wrong", "correct")
    out = saturation_findings(cmp, over_time=over, by="correct")
    assert len(out) == 1 and "and correct ones never do" in out[0] and "from step 20 on" in out[0]


def test_no_clear_difference_and_accuracy_sentence():
    rng = np.random.default_rng(1)
    h = rng.uniform(-1, 1, size=(80, 10, 4))
    logits = rng.normal(size=(80, 2))
    y = rng.integers(0, 2, 80)
    table = sequence_table(logits, y, states=h, columns={"half": np.repeat(["first", "second"], 40)})
    cmp = compare_groups(table, "half", "first", "second")
    out = saturation_findings(cmp, by="half")
    assert "about as much" in out[0] and "no clear difference" in out[0]
    assert out[1].startswith("Accuracy does not clearly differ between first")


def test_nothing_saturates_sentence_and_no_sentence_without_evidence():
    z = np.full((6, 5, 3), 0.2)
    s = suggest_threshold(z)
    assert saturation_findings(None, suggestion=s) == [s.message]
    assert "Nothing saturates" in s.message
    assert saturation_findings(None) == []
    # groups of one sequence: no test, no sentence
    t = pd.DataFrame({"seq": [0, 1], "g": ["a", "b"], "frac_saturated": [0.5, 0.1]})
    assert saturation_findings(compare_groups(t, "g", "a", "b")) == []


# ----------------------------------------------------------------------------- contributions
def _summary(adv):
    rows = [{"method": m, "aopc": v + 0.1, "aopc_minus_random": v} for m, v in adv.items()]
    rows.append({"method": "random", "aopc": 0.1, "aopc_minus_random": 0.0})
    return pd.DataFrame(rows)


def test_trust_sentence_names_the_widest_margin():
    out = contribution_findings(_summary({"grad_norm": 0.05, "occlusion": 0.4, "integrated_gradients": 0.3,
                                          "prediction_delta": -0.02}))
    assert out[0] == ("On this model occlusion's ranking is the one to trust: it beats a random order by the widest "
                      "margin (0.4; next comes integrated gradients (0.3)).")
    assert out[1] == "Change of the running answer does no better than a random order here."


def test_no_method_beats_random_and_no_sentence_before_the_check():
    assert contribution_findings(_summary({"occlusion": -0.1, "grad_norm": 0.0})) == [
        "On this model no method's ranking beats a random order of the steps, so treat every ranking with caution."]
    assert contribution_findings(None) == []
    assert contribution_findings(None, hits={"occlusion": float("nan")}) == []


def test_known_step_hits_by_hand():
    scores = np.array([[0.1, 5.0, 0.2, -4.0], [3.0, 0.1, 0.2, 0.1], [1.0, 2.0, np.nan, np.nan]])
    known = np.array([[0, 1, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    assert known_step_hits(scores, known) == 0.5  # seq 0 hit (|-4| counts), seq 1 missed, seq 2 has none
    out = contribution_findings(None, hits={"occlusion": 0.5, "grad_norm": 0.25})
    assert out == ["On the steps known to decide the answer, occlusion ranks exactly those steps at its top in 50% "
                   "of sequences, the most of the methods compared."]


def test_top_step_sentence_follows_the_sign_of_the_method():
    from rnnviz_core.rankings import top_steps
    s = np.array([[0.5, -2.0, 1.0, 0.1], [3.0, 0.2, -0.1, 0.0]])
    top = top_steps(s, k=2)
    assert contribution_findings(top=top, seqs=[0, 1], method="occlusion") == [
        "By occlusion, the step that pushed the answer up most is step 2 of A and step 0 of B."]
    g = np.abs(s)
    assert contribution_findings(top=top_steps(g, k=2), seqs=[0, 1], method="grad_norm") == [
        "By gradient size, the answer reacts most strongly to step 1 of A and step 0 of B."]
    # nothing pushed a sequence up: no "pushed up" sentence
    assert contribution_findings(top=top_steps(-np.abs(s), k=1), seqs=[0, 1], method="occlusion") == []


def test_known_step_overlap_by_hand():
    nan = np.nan
    scores = np.array([[0.1, 5.0, 0.2, -4.0, 3.0, 0.0],
                       [1.0, 0.5, -2.0, 0.1, 0.05, 9.0],       # 9.0 lies past length 5: not counted
                       [1.0, 2.0, 3.0, nan, nan, nan]])
    known = np.array([[0, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=bool)
    o = known_step_overlap(scores, known, lengths=[6, 5, 3])
    # seq 0: top 3 by size = steps 1, 3, 4 -> 2 of 3 known, top step 1 known, chance 3/6
    # seq 1: top 3 = steps 2, 0, 1 -> 3 of 3, top step 2 known, chance 3/5; seq 2 has no known step
    assert o["n"] == 2 and o["k"] == 3
    assert o["found"] == pytest.approx(2.5) and o["precision"] == pytest.approx((2 / 3 + 1) / 2)
    assert o["chance"] == pytest.approx((3 / 6 + 3 / 5) / 2) and o["top1"] == 1.0 and o["exact"] == 0.5
    # without lengths, step 5's 9.0 counts: seq 1's top 3 = steps 5, 2, 0 -> 2 of 3, top step unknown
    o2 = known_step_overlap(scores, known)
    assert o2["precision"] == pytest.approx(2 / 3) and o2["top1"] == 0.5 and o2["chance"] == pytest.approx(0.5)
    assert known_step_overlap(scores, np.zeros_like(known)) is None
    out = contribution_findings(None, hits={"occlusion": o})
    assert out == ["On the steps known to decide the answer: of the 3 steps to which occlusion gives the largest "
                   "scores (by size) in each sequence, on average 2.5 (83%) lie among the 3 known steps, where a "
                   "random order of the steps would give 55%; its largest score falls on a known step in 100% of "
                   "sequences."]


def test_known_window_at_long_lengths_reads_as_a_share_not_an_exact_match():
    """burst-like: a 32-step window in 400 steps; the scores peak inside it but 8 of the top 32 fall
    outside (steps 0..7 score 5.0, above 24 of the window's steps), so the exact match is never met."""
    n, t = 4, 400
    scores = np.full((n, t), 0.01)
    known = np.zeros((n, t), dtype=bool)
    known[:, 100:132] = True
    scores[:, 100:132] = np.linspace(10.0, 1.0, 32)    # window descending 10 .. 1
    scores[:, 0:8] = 5.0                                 # 8 steps outside, above the window's tail
    assert known_step_hits(scores, known) == 0.0
    o = known_step_overlap(scores, known)
    # the window's steps above 5.0: 10 - 9k/31 > 5 -> k <= 17 -> 18 steps; top 32 = 18 window + 8 outside + 6 window
    assert o["found"] == 24 and o["precision"] == pytest.approx(24 / 32) and o["top1"] == 1.0
    assert o["chance"] == pytest.approx(32 / 400) and o["k"] == 32
    text = contribution_findings(None, hits={"grad_norm": o, "occlusion": {**o, "precision": 0.1}})[0]
    assert "gradient size" in text and "on average 24 (75%) lie among the 32 known steps" in text
    assert "would give 8.0%" in text and "(the most of the methods compared)." in text
