"""The host's bundle behind an http:// URL in the real app (issue 21), in Debian's chromium.

A bundle folder of 400 race sequences is served by a local HTTP server that answers byte ranges
and counts what it sends; the app's server gets its URL as ``$RNNVIZ_BUNDLE``. Every bundle page
draws its charts with no exception box; the Start page's accuracy and the Saturation page's group
sizes equal those of the same bundle's full table read here from disk; the Saturation page's
comparison table draws; over the three pages' visits the app fetched no more than the bundle's
size (the opened bundle and the pages' reads are cached, so pages do not fetch the bundle again
and again; at 400 sequences the pages' clouds and the 16 full traces are most of the
bundle, see bench_bundle --remote for a large one). Screenshot: test-artifacts/e2e/bundle_remote_saturation.png.
"""
from __future__ import annotations

import http.server
import re
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import (ARTIFACTS, assert_clean, charts_drawn, new_page, open_app, start_server,  # noqa: E402
                     stop_server, wait_idle)
from test_bundle_remote import _handler  # noqa: E402

pytestmark = pytest.mark.browser


def test_every_bundle_page_draws_from_a_bundle_behind_a_url(browser, tmp_path):
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    path = rvb.build(model, ds.subset(np.arange(400)), tmp_path / "race", methods=("grad_norm",),
                     sample=16, batch_size=100)
    seq = rvb.open(path).sequences
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    log = {"bytes": 0, "requests": 0}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(path, log))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    bundle_url = f"http://127.0.0.1:{srv.server_address[1]}/"
    proc, url, _ = start_server(tmp_path, extra_env={"RNNVIZ_BUNDLE": bundle_url})
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
            if name == "Saturation":
                text = "\n".join(pg.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
                counts = seq["outcome"].astype(str).value_counts()
                m = re.search(r"Group A: (\w+) \(([\d,]+) sequences\) · Group B: (\w+) \(([\d,]+) sequences\)", text)
                assert m, text[:1500]
                assert int(m.group(2).replace(",", "")) == counts[m.group(1)] and int(m.group(4).replace(",", "")) == counts[m.group(3)]
                table = pg.locator('[data-testid="stDataFrame"]').first
                table.wait_for()
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                pg.screenshot(path=str(ARTIFACTS / "bundle_remote_saturation.png"), full_page=True)
        pg.context.close()
    finally:
        stop_server(proc)
        srv.shutdown()
        srv.server_close()
    assert log["requests"] > 0 and 0 < log["bytes"] <= total, (log["bytes"], total)
