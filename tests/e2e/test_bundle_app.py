"""An analysis bundle in the real app, in Debian's chromium (issue 11).

A bundle built here from the race demo's model and data (all its 1000 sequences, so the figures
can be compared) is uploaded through the sidebar; every page then shows it with no exception box
and with charts drawn, and the figures both a bundle page and the live page show (accuracy on
Start, the share of variance in the Trajectories paths caption, the group sizes on Saturation)
are equal. Views that need the model say so. A link naming the bundle by its hash opens it in a
fresh session. Screenshots: test-artifacts/e2e/bundle_*.png.
"""
from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ARTIFACTS, CHART, assert_clean, charts_past_their_column, new_page, open_app, wait_idle  # noqa: E402

pytestmark = pytest.mark.browser

PAGES = ("Trajectories", "Saturation", "Contributions")
NOT_INCLUDED = {  # the sentences a reader sees (checked as text, not imported from the app)
    "Start": "re-runs the model, and this analysis bundle does not include the model",
    "Saturation": "Resilience to noise and missing steps re-runs the model",
    "Contributions": "The deletion check re-runs the model",
}


@pytest.fixture(scope="module")
def bundle_file(tmp_path_factory):
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    path = tmp_path_factory.mktemp("bundle") / "race.rnnviz"
    rvb.build(model, ds, path, methods=("grad_norm", "input_x_grad"), sample=32)
    return path


def _sidebar(pg):
    return pg.locator('[data-testid="stSidebar"]')


def _go(pg, name: str) -> None:
    pg.locator('[data-testid="stSidebarNav"] a').filter(has_text=name).first.click()
    wait_idle(pg)


def _metric(pg) -> str:
    pg.locator('[data-testid="stMetricValue"]').first.wait_for()
    return pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip()


def _caption_number(pg, pattern: str) -> str:
    """The first match of ``pattern`` (one group) in the page's captions."""
    text = "\n".join(pg.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
    m = re.search(pattern, text)
    assert m, f"no caption matches {pattern!r}:\n{text[:2000]}"
    return m.group(1)


def _charts_drawn(pg) -> None:
    pg.locator(f"{CHART} >> visible=true").first.wait_for()
    # vega-embed has drawn its canvas/svg inside the chart element
    pg.locator(f"{CHART} canvas, {CHART} svg.marks").filter(visible=True).first.wait_for()


def wait_idle_if_running(pg) -> None:
    pg.wait_for_timeout(300)
    pg.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')


def _shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"bundle_{name}.png"), full_page=True)


PCA_SHARE = r"together (\d+(?:\.\d+)?)% of how the states vary"
GROUPS = r"Group A: (correct \(\d+ sequences\)) · Group B: (?:wrong \(\d+ sequences\))"
GROUP_B = r"Group B: (wrong \(\d+ sequences\))"


def test_bundle_pages_show_the_live_figures(browser, app_url, bundle_file):
    # the live model first: the figures the same pages show without a bundle
    live = new_page(browser, 1400, 2200)
    live.set_default_timeout(90_000)
    open_app(live, f"{app_url}/?demo=race")
    want = {"accuracy": _metric(live)}
    _go(live, "Trajectories")
    _charts_drawn(live)
    want["pca"] = _caption_number(live, PCA_SHARE)
    _go(live, "Saturation")
    _charts_drawn(live)
    want["group_a"], want["group_b"] = _caption_number(live, GROUPS), _caption_number(live, GROUP_B)
    live.context.close()

    pg = new_page(browser, 1400, 2200)
    pg.set_default_timeout(90_000)
    open_app(pg, f"{app_url}/?demo=race")
    exp = _sidebar(pg).locator('[data-testid="stExpander"]').filter(has_text="Open an analysis bundle")
    exp.locator("summary").click()
    box = exp.locator('[data-testid="stFileUploader"]').filter(has_text="bundle")
    box.locator('input[type="file"]').set_input_files(str(bundle_file))
    wait_idle(pg)
    pg.get_by_text("Showing an analysis bundle: 1,000 sequences").first.wait_for()
    assert_clean(pg)
    # Start: the accuracy over the bundle's sequence table, the hashes, the not-included views
    assert _metric(pg) == want["accuracy"]
    digest = hashlib.sha256(bundle_file.read_bytes()).hexdigest()
    assert digest in pg.locator('[data-testid="stCode"]').first.inner_text()
    assert NOT_INCLUDED["Start"] in pg.locator('[data-testid="stMain"]').inner_text()
    assert "bundle=" + digest in pg.url
    _shot(pg, "start")

    for name in PAGES:
        _go(pg, name)
        assert_clean(pg)
        assert pg.get_by_role("heading", name=name, exact=True).count() == 1
        _charts_drawn(pg)
        main = pg.locator('[data-testid="stMain"]').inner_text()
        if name in NOT_INCLUDED:
            assert NOT_INCLUDED[name] in main
        # findings in words at the top, as on the live pages
        which = {"Trajectories": "trajectory", "Saturation": "saturation", "Contributions": "contribution"}[name]
        finding = pg.locator(f".st-key-findings_{which}_findings")
        assert finding.count() == 1 and "What this page finds" in finding.inner_text(), name
        if name == "Trajectories":
            assert _caption_number(pg, PCA_SHARE) == want["pca"]
            assert "Sequence A and B are picked among those" in main
            assert pg.locator(".rnnviz-play").count() == 1  # the play control, as on the live page
        if name == "Saturation":
            assert _caption_number(pg, GROUPS) == want["group_a"]
            assert _caption_number(pg, GROUP_B) == want["group_b"]
        _shot(pg, name.lower())
        # in a 1,100 px window every chart still fits its column (charts have fixed widths: no rerun)
        pg.set_viewport_size({"width": 1100, "height": 2200})
        pg.wait_for_timeout(200)
        over, measured = charts_past_their_column(pg)
        assert measured >= 1 and not over, (name, over, measured)
        pg.set_viewport_size({"width": 1400, "height": 2200})

    # A/B pickers offer the sampled sequences only (the list is virtual: read what it shows, then
    # type an id that is not in the sample)
    from rnnviz_core import bundle as rvb
    opened = rvb.open(bundle_file)
    ids = [str(i) for i in opened.ids]
    sampled = {ids[r] for r in opened.sample_rows.tolist()}
    other = next(i for i in ids if i not in sampled)
    _go(pg, "Trajectories")
    combo = pg.get_by_role("combobox", name="Sequence A", exact=True).first
    combo.click()
    opts = pg.locator('[role="option"]')
    opts.first.wait_for()
    shown = [t.split(" · ")[0].strip() for t in opts.all_inner_texts()]
    assert shown and set(shown) <= sampled
    combo.fill(other)
    pg.wait_for_timeout(500)
    assert not [t for t in opts.all_inner_texts() if t.split(" · ")[0].strip() == other]
    pg.keyboard.press("Escape")
    wait_idle_if_running(pg)

    # closing gives back the live pages
    pg.get_by_role("button", name="Close the bundle").click()
    wait_idle(pg)
    assert "bundle=" not in pg.url
    assert pg.locator('[data-testid="stSidebar"]').get_by_text("Showing an analysis bundle").count() == 0
    pg.context.close()

    # a link naming the bundle by its hash opens it in a fresh session, on the linked page
    fresh = new_page(browser, 1400, 2200)
    fresh.set_default_timeout(90_000)
    open_app(fresh, f"{app_url}/Contributions?bundle={digest}")
    _charts_drawn(fresh)
    assert_clean(fresh)
    assert NOT_INCLUDED["Contributions"] in fresh.locator('[data-testid="stMain"]').inner_text()
    _shot(fresh, "link")
    fresh.context.close()


def test_host_bundle_opens_first_on_a_fresh_server_and_a_bad_link_is_refused(browser, bundle_file, tmp_path):
    """``$RNNVIZ_BUNDLE``: the first visitor of a fresh server opens a deep link straight into the
    bundle's page (the v1 pages/ phase included); a link naming no bundle says so in the sidebar."""
    from harness import start_server, stop_server

    proc, url, _ = start_server(tmp_path, extra_env={"RNNVIZ_BUNDLE": str(bundle_file)})
    try:
        pg = new_page(browser, 1400, 2200)
        pg.set_default_timeout(90_000)
        open_app(pg, f"{url}/Saturation")
        pg.get_by_role("heading", name="Saturation", exact=True).wait_for()
        _charts_drawn(pg)
        assert_clean(pg)
        main = pg.locator('[data-testid="stMain"]').inner_text()
        assert NOT_INCLUDED["Saturation"] in main and "This analysis bundle was computed with" in main
        assert pg.locator('[role="dialog"]').count() == 0
        _shot(pg, "host")
        pg.context.close()

        bad = new_page(browser, 1400, 2200)
        bad.set_default_timeout(90_000)
        open_app(bad, f"{url}/?bundle={'0' * 64}")
        side = _sidebar(bad).inner_text()
        assert "no longer has the analysis bundle this link names" in side
        assert_clean(bad)
        # a file that is not a bundle: a sentence in the sidebar, the live pages stay
        junk = tmp_path / "notes.rnnviz"
        junk.write_bytes(b"PK\x03\x04 this is not a bundle" * 10)
        exp = _sidebar(bad).locator('[data-testid="stExpander"]').filter(has_text="Open an analysis bundle")
        if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
            exp.locator("summary").click()
        exp.locator('input[type="file"]').set_input_files(str(junk))
        wait_idle(bad)
        # the run has finished; the alert's text can still be on its way to the page (seen empty)
        alert = exp.locator('[data-testid="stAlert"]').filter(has_text="bundle")
        alert.wait_for(timeout=10_000)
        err = alert.inner_text()
        assert "not an rnnviz bundle" in err and "Traceback" not in err
        assert_clean(bad)
        assert "Showing an analysis bundle" not in _sidebar(bad).inner_text()
        _shot(bad, "refused")
        bad.context.close()
    finally:
        stop_server(proc)
