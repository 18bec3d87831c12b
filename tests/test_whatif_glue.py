"""The What-if page's edits in the link: written and read back, malformed values refused."""
from __future__ import annotations

import pytest

from rnnviz_app.views import page_whatif as pw


def test_edits_round_trip_through_the_link_text():
    edits = [(0, 3, 1, 2.5), (0, 0, "delete", None), (0, 7, "insert", [1.0, -0.25, 3.0]), (0, 2, 0, 4.0)]
    text = pw.encode_edits(edits)
    assert text == "s,3,1,2.5;d,0;i,7,1|-0.25|3;s,2,0,4"
    back = pw.decode_edits(text)
    assert back[:2] == edits[:2] and back[2][2] == "insert" and back[2][3] == [1.0, -0.25, 3.0]
    assert back[3] == (0, 2, 0, 4.0)
    tok = pw.decode_edits("s,1,0,17;i,0,5", tokens=True)
    assert tok == [(0, 1, 0, 17), (0, 0, "insert", 5)]


@pytest.mark.parametrize("bad", ["x,1", "s,1,0", "s,a,0,1", "s,1,0,nan", "i,1,inf", "d", ";".join(["d,0"] * 51)])
def test_malformed_link_text_is_refused(bad):
    with pytest.raises(ValueError):
        pw.decode_edits(bad)


def test_moved_units_names_the_units_the_edit_moved_most_by_hand():
    from types import SimpleNamespace

    import numpy as np

    import rnnviz_core as rv

    ctx = SimpleNamespace(model=rv.build_model(rv.ModelConfig(cell="GRU", input_size=1, hidden_size=6, num_outputs=2)))
    h0 = np.zeros((5, 6))
    h1 = h0.copy()
    h1[2, 4] = -0.5          # unit 4 moved by 0.5
    h1[3, 1] = 0.2           # unit 1 by 0.2
    h1 = np.concatenate([h1, np.full((2, 6), 9.0)])   # steps past the original's end are not compared
    text = pw.moved_units(ctx, h0, h1, shown=[1, 2], k=5)
    assert text.endswith("h 4 (by 0.5, not drawn above), h 1 (by 0.2).")
    assert "h 2" not in text and "h 0" not in text
    assert pw.moved_units(ctx, h0, h0, shown=[0]) == ""
