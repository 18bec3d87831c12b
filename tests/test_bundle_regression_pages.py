"""A bundle of a one-output (regression) model with true values opens and every bundle page runs
without an error (before this round, opening it was refused: its 'correct' column was stored as
numbers), the horizons section included."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # rnnviz_app beside streamlit_app.py

#: the unified pages (the same files render a live model and a bundle)
PAGE_FILES = {"trajectories": "pages/1_Trajectories.py", "saturation": "pages/2_Saturation.py",
              "contributions": "pages/3_Contributions.py"}
ENTRY = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def test_a_regression_demo_bundle_draws_every_page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import rnnviz_core as rv
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("window_sum")[:2]
    assert ds.y is not None
    sub = ds.subset(np.arange(120))
    path = rvb.build(model, sub, tmp_path / "ws", batch_size=50, methods=("grad_norm",), sample=8)
    b = rvb.open(path)
    pred = rv.predict(model, sub.X, sub.lengths).reshape(-1)
    t = b.sequences
    np.testing.assert_allclose(t["abs_error"].to_numpy(), np.abs(pred - np.asarray(sub.y, dtype=np.float64)),
                               rtol=1e-4, atol=1e-5)
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("RNNVIZ_BUNDLE", str(path))
    at = AppTest.from_file(ENTRY, default_timeout=180)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    for page in ("trajectories", "saturation", "contributions"):
        at.switch_page(PAGE_FILES[page])
        at.run()
        assert not at.exception, (page, [e.message for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        charts = at.get("arrow_vega_lite_chart") + at.get("vega_lite_chart")
        if page == "saturation":
            # a regression bundle holds no range groupings yet (left for later): the page says so
            # calmly, naming the control, instead of drawing
            assert charts or any("Group the sequences by" in w.value for w in at.warning)
        else:
            assert charts, page
        words = " ".join(str(x.value) for x in list(at.markdown) + list(at.caption) + list(at.info))
        assert "accuracy" not in words.lower(), page      # no class wording for a number model
