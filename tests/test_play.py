"""rnnviz_app.views.play without a browser: what the control is sent, and its caption's branches.
(The control in the browser: tests/e2e/test_play_browser.py.)"""
from __future__ import annotations

import base64

import numpy as np
import pytest

from rnnviz_app.views.play import panel, play_caption, steps_per_second


def _decode(b64: str, rows: int, steps: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4").reshape(rows, steps)


def test_panel_sends_units_by_steps_cut_at_the_real_length():
    x = np.arange(6 * 3, dtype=np.float64).reshape(6, 3)  # 6 steps, 3 units
    p = panel(x, 4, title="A", domain=(-1, 20))
    assert (p["rows"], p["steps"]) == (3, 4)
    np.testing.assert_array_equal(_decode(p["values"], 3, 4), x[:4].T)  # row = unit, column = step
    assert p["labels"] == ["unit 0", "unit 1", "unit 2"] and p["signed"] is True


def test_panel_marks_outside_the_sequence_are_dropped_and_raw_values_travel():
    x = np.ones((5, 1))
    p = panel(x, 3, title="A", domain=(0, 1), marks=[1, 4, -1, 1], raw=x * 7)
    assert p["marks"] == [1] and p["signed"] is False
    np.testing.assert_array_equal(_decode(p["raw"], 1, 3), np.full((1, 3), 7.0))


@pytest.mark.parametrize("kw, match", [({"steps": 0}, "steps"), ({"steps": 9}, "steps"),
                                       ({"domain": (1, 1)}, "low < high"), ({"labels": ["a"]}, "labels")])
def test_panel_refuses_inconsistent_input(kw, match):
    args = {"steps": 3, "domain": (-1, 1), "labels": None} | kw
    with pytest.raises(ValueError, match=match):
        panel(np.zeros((5, 2)), args["steps"], title="A", domain=args["domain"], labels=args["labels"])


def test_caption_says_when_lengths_differ_and_the_colour_range_drawn():
    same = play_caption(5, 5, (-1.0, 1.0), (-0.5, 0.7))
    assert "both sequences have 5 steps" in same and "from -1 to 1" in same and "from -0.5 to 0.7" in same
    diff = play_caption(18, 5, (-0.84, 0.84), (-0.82, 0.84))
    assert "A has 18 steps and B 5" in diff and "shorter heatmap is narrower" in diff
    assert "from -0.84 to 0.84" in diff


def test_caption_of_an_unsigned_scale_names_no_red_or_blue():
    text = play_caption(3, 4, (0.0, 1.0), (0.1, 0.9), rows="unit of the update gate z")
    assert "grey scale from 0 to 1" in text and "red" not in text and "update gate z" in text


def test_normal_speed_plays_a_sequence_in_about_twelve_seconds():
    assert steps_per_second(9) == 4 and steps_per_second(119) == 10 and steps_per_second(2000) == 30


def test_token_strip_sends_the_words_as_text_one_per_step():
    from rnnviz_app.views.play import token_panel
    p = token_panel(["<b>bold</b>", "fine"], title="A: words")
    assert p["tokens"] == ["<b>bold</b>", "fine"] and p["steps"] == 2 and p["strip"] is True
    with pytest.raises(ValueError):
        token_panel([], title="A")


def test_shared_domain_covers_the_real_steps_of_both_only():
    from rnnviz_app.views.play import shared_domain
    a = np.array([[0.5, -3.0], [1.0, 2.0], [100.0, 100.0]])   # step 2 is past A's end: not drawn, not counted
    b = np.array([[np.nan, 2.5], [-50.0, 0.0]])               # B has 1 real step; its NaN is ignored
    assert shared_domain(a, b, 2, 1) == (-3.0, 3.0)
    assert shared_domain(np.full((2, 2), np.nan), np.zeros((1, 2)), 2, 1) == (-1.0, 1.0)  # nothing to scale


def _sent(monkeypatch):
    """Run play_heatmaps with the Streamlit component replaced by a recorder; return its data."""
    import rnnviz_app.views.play as play
    got = {}
    monkeypatch.setattr(play, "_component", lambda: (lambda key, data, height: got.update(data)))
    return play, got


def _grid(p):
    import base64
    return np.frombuffer(base64.b64decode(p["values"]), dtype="<f4").reshape(p["rows"], p["steps"])


def test_long_wide_sequences_are_sent_binned_and_cut_to_the_most_active_units(monkeypatch):
    play, got = _sent(monkeypatch)
    rng = np.random.default_rng(0)
    T, U = 10_000, 1024
    a = (rng.normal(size=(T, U)) * 0.01).astype(np.float32)
    b = (rng.normal(size=(T, U)) * 0.01).astype(np.float32)
    loud = [3, 500, 1000]
    a[:, loud] = rng.normal(size=(T, 3))
    cap = play.play_heatmaps(a, b, steps_a=T, steps_b=T - 100, colour_domain=(-1, 1), key="k",
                             labels=[f"unit {u}" for u in range(U)])
    pa, pb = got["panels"]
    k = got["k"]
    assert pa["steps"] <= play.MAX_PLAY_COLUMNS and pa["rows"] == play.MAX_PLAY_ROWS
    assert pa["steps"] == -(-T // k) and pb["steps"] == -(-(T - 100) // k)
    assert all(f"unit {u}" in pa["labels"] for u in loud)
    r = pa["labels"].index("unit 500")
    want = [a[i: i + k, 500].astype(np.float64).mean() for i in range(0, T, k)]   # the last column is shorter
    np.testing.assert_allclose(_grid(pa)[r], want, atol=1e-6)
    assert sum(len(p["values"]) for p in got["panels"]) < 2_000_000          # base64 bytes to the browser
    assert f"each column {k} steps (the value shown is the mean over them)" in cap
    assert f"Only the {play.MAX_PLAY_ROWS} most active of the 1,024 units are drawn" in cap
    assert got["last_step"] == T - 1


def test_short_sequences_are_sent_as_they_are(monkeypatch):
    play, got = _sent(monkeypatch)
    a = np.arange(30 * 4, dtype=float).reshape(30, 4) / 200
    cap = play.play_heatmaps(a, a, steps_a=30, steps_b=20, colour_domain=(0, 1), key="k")
    assert got["k"] == 1 and got["panels"][0]["steps"] == 30 and got["panels"][1]["steps"] == 20
    np.testing.assert_allclose(_grid(got["panels"][0]), a.T, atol=1e-6)
    assert "each column one step" in cap and "Only" not in cap


def test_binned_token_strip_lists_each_columns_words(monkeypatch):
    play, got = _sent(monkeypatch)
    words = [f"w{i}" for i in range(2000)]
    strip = play.token_panel(words, title="A: words")
    a = np.zeros((2000, 2))
    play.play_heatmaps(a, a, steps_a=2000, steps_b=2000, colour_domain=(-1, 1), key="k", strips=(strip, None))
    k = got["k"]
    tok = got["panels"][0]
    assert tok["steps"] == -(-2000 // k) and tok["token_tips"][1] == " ".join(words[k:2 * k])
    assert all(t.endswith("…") for t in tok["tokens"])
