"""The host's bundle in the real app is never read whole (issue 21), in Debian's chromium.

A bundle of 400 race sequences is the server's ``$RNNVIZ_BUNDLE``. The server starts with a
``sitecustomize`` on its path that wraps ``Bundle._table`` (the one read of the sequence table
whole) to write a line to a file on every call. Every bundle page is visited and draws its charts
with no exception box; the figures the pages print equal those computed here from the full table
of the same bundle (the accuracy, the share of variance of the PCA picture, the group sizes); the
file stays empty. Screenshots: test-artifacts/e2e/bundle_lazy_*.png.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (ARTIFACTS, ROOT, assert_clean, charts_drawn, new_page, open_app, start_server,  # noqa: E402
                     stop_server, wait_idle)

pytestmark = pytest.mark.browser

SPY = '''
import os
try:
    from rnnviz_core.bundle_read import Bundle
    _real = Bundle._table
    def _spy(self):
        with open(os.environ["RNNVIZ_SPY_LOG"], "a") as f:
            f.write("whole table read\\n")
        return _real(self)
    Bundle._table = _spy
    open(os.environ["RNNVIZ_SPY_LOG"] + ".installed", "w").close()
except Exception as exc:  # the test sees the spy is missing
    open(os.environ["RNNVIZ_SPY_LOG"] + ".failed", "w").write(repr(exc))
'''


def _captions(pg) -> str:
    return "\n".join(pg.locator('[data-testid="stCaptionContainer"]').all_inner_texts())


def test_every_bundle_page_draws_and_the_table_is_never_read_whole(browser, tmp_path):
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    path = rvb.build(model, ds.subset(np.arange(400)), tmp_path / "race.rnnviz", methods=("grad_norm",),
                     sample=16, batch_size=100)
    full = rvb.open(path)
    seq = full.sequences
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(SPY)
    log = tmp_path / "reads.log"
    proc, url, _ = start_server(tmp_path, extra_env={"RNNVIZ_BUNDLE": str(path), "RNNVIZ_SPY_LOG": str(log),
                                                     "PYTHONPATH": f"{spy}:{ROOT}"})
    try:
        pg = new_page(browser, 1400, 2200)
        pg.set_default_timeout(90_000)
        open_app(pg, url)
        pg.locator('[data-testid="stMetricValue"]').first.wait_for()
        assert pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip() == \
            f"{seq['correct'].astype(float).mean():.1%}"
        assert_clean(pg)
        for name in ("Trajectories", "Saturation", "Contributions"):
            pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=name).first.click()
            wait_idle(pg)
            pg.get_by_role("heading", name=name, exact=True).wait_for()
            assert charts_drawn(pg) >= 1, name
            assert_clean(pg)
            text = _captions(pg)
            if name == "Trajectories":
                share = sum(full.pca.explained_variance_ratio_[:2])
                assert f"together {share:.0%} of how the states vary" in text, text[:1500]
                # 400 sequences: the grey cloud is every sequence's states, as on the live page
                assert "states of every sequence" in text or "all other sequences" in text
            if name == "Saturation":
                counts = seq["outcome"].astype(str).value_counts()
                m = re.search(r"Group A: (\w+) \(([\d,]+) sequences\) · Group B: (\w+) \(([\d,]+) sequences\)", text)
                assert m, text[:1500]
                assert int(m.group(2).replace(",", "")) == counts[m.group(1)] and int(m.group(4).replace(",", "")) == counts[m.group(3)]
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(ARTIFACTS / f"bundle_lazy_{name.lower()}.png"), full_page=True)
        pg.context.close()
    finally:
        stop_server(proc)
    assert Path(str(log) + ".installed").exists(), "the spy was not installed in the server"
    assert not log.exists() or log.read_text() == "", log.read_text()
