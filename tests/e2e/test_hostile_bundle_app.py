"""Hostile analysis bundles uploaded in the real app, in Debian's chromium (issue 19).

Before the open check, a bundle with ``length`` stored as text put exception boxes on all three
bundle pages, a sampled row out of range on Trajectories and Contributions, a grouping the table
lacks on Saturation, and 2,000,000 sample rows kept Trajectories and Contributions busy for
minutes. Each is now refused at upload: a sentence in the sidebar naming what is wrong, no
exception box, no bundle shown, within seconds. A bundle whose manifest names a file
``[Sign in](http://evil.example/login)<img ...>`` is refused with that name shown as text: the
error box holds no link and no image (read from the browser's DOM).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_bundles as hb  # noqa: E402
from harness import ARTIFACTS, assert_clean, new_page, open_app, wait_idle  # noqa: E402

pytestmark = pytest.mark.browser

CASES = {  # case -> what the sidebar sentence says
    "length_text": "column 'length' as text",
    "sample_row_1e9": "names sequences outside rows 0..59",
    "grouping_missing": "data:owner",
    "sample_2m_rows": "'analysis.sample.size' must be a whole number from 0 to 60; it is 2000000",
    "link_name": "Sign in",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile_app")
    base = hb.build_base(d)
    out = {}
    for case in CASES:
        if case == "link_name":
            folder = hb._manifest(hb._copy(base, d, case), lambda m: m["files"].update(
                {hb.LINK + hb.IMG: {"bytes": 1, "sha256": "0" * 64}}))
        else:
            folder = hb.CASES[case](base, d)
        out[case] = hb._zip(folder, d / f"{case}.rnnviz")
    return out


def _upload(pg, path: Path) -> float:
    side = pg.locator('[data-testid="stSidebar"]')
    exp = side.locator('[data-testid="stExpander"]').filter(has_text="Open an analysis bundle")
    if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
        exp.locator("summary").click()
    t0 = time.perf_counter()
    exp.locator('input[type="file"]').set_input_files(str(path))
    wait_idle(pg)
    return time.perf_counter() - t0


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_upload_is_refused_with_a_sentence_and_no_exception_box(browser, app_url, files, case):
    pg = new_page(browser, 1400, 1600)
    pg.set_default_timeout(90_000)
    try:
        open_app(pg, f"{app_url}/?demo=race")
        secs = _upload(pg, files[case])
        side = pg.locator('[data-testid="stSidebar"]')
        exp = side.locator('[data-testid="stExpander"]').filter(has_text="Open an analysis bundle")
        alert = exp.locator('[data-testid="stAlert"]')
        alert.first.wait_for()
        text = alert.first.inner_text()
        assert CASES[case] in text, text
        assert "Traceback" not in text
        assert secs < 20, secs     # a loaded 2-core machine; refused at open, not after minutes
        assert_clean(pg)
        assert "Showing an analysis bundle" not in side.inner_text()
        if case == "link_name":    # the name is text: no link, no image anywhere in the error box
            assert alert.first.locator("a").count() == 0
            assert alert.first.locator("img").count() == 0
            assert "[Sign in](http" in text.replace("\u2060", "")
        for name in ("Trajectories", "Saturation", "Contributions"):   # the live pages still draw
            pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=name).first.click()
            wait_idle(pg)
            assert_clean(pg)
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"hostile_bundle_{case}.png"), full_page=True)
        pg.context.close()
