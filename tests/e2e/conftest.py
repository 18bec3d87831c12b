"""Browser tests: Playwright drives Debian's chromium against ``streamlit run`` on loopback.

Needs ``apt-get install chromium`` (Playwright's own browser download is not used). Every test
here is marked ``browser``; they are skipped when chromium or playwright is missing.
Screenshots go to ``test-artifacts/e2e/`` (git-ignored).
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ARTIFACTS, launch_browser, new_page, start_server, stop_server, warm_up  # noqa: E402


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    missing = None
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        missing = "Debian's chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install -e '.[test]')"
    if missing:
        if os.environ.get("RNNVIZ_REQUIRE_BROWSER"):
            pytest.fail(f"browser tests required (RNNVIZ_REQUIRE_BROWSER is set) but {missing}")
        pytest.skip(missing)
    proc, url, log_path = start_server(tmp_path_factory.mktemp("server"))
    yield url
    stop_server(proc)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(log_path, ARTIFACTS / "streamlit.log")


@pytest.fixture(scope="session")
def browser(app_url):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = launch_browser(pw)
        warm_up(b, app_url)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    pg = new_page(browser, 1400, 2200)  # tall, so the screenshot shows most of the page
    ctx = pg.context
    pg.set_default_timeout(90_000)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    except Exception:  # noqa: BLE001 - a screenshot must never hide the test's own result
        pass
    ctx.close()


