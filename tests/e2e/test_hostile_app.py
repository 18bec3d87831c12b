"""Issue 13 in a real browser: text from uploaded files is shown as text, never as Markdown or
HTML (no link a stranger planted in a class name, a group value, an id or a file name becomes
clickable), and bad values in a link fall back to defaults with a note instead of an exception."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ARTIFACTS, CHART, EXCEPTION, assert_clean, open_app, wait_idle  # noqa: E402

pytestmark = pytest.mark.browser

LINK = "https://evil.example/login"
INJ_CLASS = [f"[Your session expired - sign in again]({LINK})", "<b>won</b> **big**"]
INJ_GROUP = [f"[free money]({LINK})", ":red[alert] $x^2$"]
INJ_FILE = f"[open me]({LINK.replace('/', '_')}).npz"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    import torch
    from rnnviz_core.models import ModelConfig, build_model, save_model
    d = tmp_path_factory.mktemp("hostile")
    torch.manual_seed(0)
    model = build_model(ModelConfig(cell="GRU", input_size=3, hidden_size=8, num_outputs=2),
                        class_names=INJ_CLASS, feature_names=["a", "b", "c"])
    mpath = save_model(model, d / "model.safetensors")
    rng = np.random.default_rng(0)
    n = 40
    X = rng.normal(size=(n, 10, 3)).astype(np.float32)
    ids = np.array([f"=HYPERLINK(\"{LINK}\",\"{i}\")" if i % 2 else f"[id {i}]({LINK})" for i in range(n)])
    dpath = d / INJ_FILE
    np.savez(dpath, X=X, y=rng.integers(0, 2, n), class_names=np.array(INJ_CLASS), ids=ids,
             feature_names=np.array(["a", "b", "c"]), team=np.array([INJ_GROUP[i % 2] for i in range(n)]))
    return mpath, dpath


def _upload(pg, label: str, path: Path) -> None:
    side = pg.locator('[data-testid="stSidebar"]')
    exp = side.locator('[data-testid="stExpander"]').filter(has_text="Use my own files")
    if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
        exp.locator("summary").click()
    exp.locator('[data-testid="stFileUploader"]').filter(has_text=label).locator('input[type="file"]') \
        .set_input_files(str(path))
    wait_idle(pg)


def _no_planted_link(pg, where: str) -> None:
    links = pg.locator('a[href*="evil"]')
    assert links.count() == 0, f"{where}: a link from a file became clickable: {links.first.get_attribute('href')}"
    assert pg.locator("b:text('won')").count() == 0, f"{where}: HTML from a file was rendered"
    assert_clean(pg)


def test_injected_markdown_in_names_stays_text_on_start_page_and_sidebar(page, app_url, hostile):
    mpath, dpath = hostile
    open_app(page, app_url)
    _upload(page, "Model file", mpath)
    _upload(page, "Data file", dpath)
    page.locator('[data-testid="stMetricValue"]').first.wait_for()
    _no_planted_link(page, "start page")
    side = page.locator('[data-testid="stSidebar"]').inner_text().replace("\u2060", "")
    assert INJ_FILE in side                                   # the file name, literally
    main = page.locator('[data-testid="stMain"]').inner_text().replace("\u2060", "")  # (invisible joiners)
    assert INJ_CLASS[0] in main and INJ_CLASS[1] in main      # class names, literally
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "hostile_start.png"), full_page=True)


def test_injected_markdown_stays_text_on_every_page(page, app_url, hostile):
    """Sequence ids, class names and group values planted with links: every page, including the
    Saturation page grouped by the file's own (hostile) group column."""
    from harness import select_option
    mpath, dpath = hostile
    open_app(page, app_url)
    _upload(page, "Model file", mpath)
    _upload(page, "Data file", dpath)
    for title in ("Trajectories", "Saturation", "Contributions"):
        page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
        wait_idle(page, 300)
        page.wait_for_function("(sel) => document.querySelectorAll(sel).length >= 1", arg=CHART, timeout=300_000)
        if title == "Saturation":
            select_option(page, "Group the sequences by", "Data column: team")
            page.wait_for_function("(sel) => document.querySelectorAll(sel).length >= 1", arg=CHART, timeout=300_000)
            text = page.locator('[data-testid="stMain"]').inner_text().replace("\u2060", "")
            assert INJ_GROUP[0] in text                      # the group value, literally
        page.screenshot(path=str(ARTIFACTS / f"hostile_{title.lower()}.png"), full_page=True)
        _no_planted_link(page, title)


@pytest.mark.parametrize("query", ["demo=nan&target=inf", "demo=" + "9" * 5000 + "&target=" + "1" * 5000,
                                   "demo=%5Bx%5D(https://evil.example)&readout=nan&order=inf"])
def test_bad_link_values_open_with_defaults_and_a_note(page, app_url, query):
    open_app(page, f"{app_url}/?{query}")
    page.locator('[data-testid="stMetricValue"]').first.wait_for()
    assert page.locator(EXCEPTION).count() == 0
    side = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "not valid here" in side and "Greyhound race form" in side   # the default demo
    _no_planted_link(page, "start page")


def test_bad_threshold_in_a_link_opens_saturation_with_defaults(page, app_url):
    open_app(page, f"{app_url}/saturation?demo=race&thr=nan&shut=inf&open=" + "9" * 5000)
    page.wait_for_function("(sel) => document.querySelectorAll(sel).length >= 2", arg=CHART, timeout=90_000)
    assert page.locator(EXCEPTION).count() == 0
    assert "not valid here" in page.locator('[data-testid="stSidebar"]').inner_text()
