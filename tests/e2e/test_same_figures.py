"""One model and data, rendered live and from its analysis bundle, show the same figures (issue 20).

The race demo's model and all its sequences are built into a bundle, served by a second server as
the host's bundle (``$RNNVIZ_BUNDLE``); the session's server shows the same demo live. The same
pages (one implementation for both sources) are opened on both with the same link options (A and
B among the bundle's sampled sequences, the bundle's thresholds, grouping "correct"), and the
figures are read from the rendered page text of each: the accuracy on Start, the PCA share in the
Trajectories caption, the group sizes and the Saturation comparison table (corrected p-values, how
big, the means), the ranked top steps of A and B with their places in the sequence, the A and B
pickers' words. Nothing is compared with the app's own code: both sides are what a reader sees.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (  # noqa: E402
    ARTIFACTS,
    CHART,
    assert_clean,
    new_page,
    open_app,
    selected,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.browser

PCA_SHARE = r"together (\d+(?:\.\d+)?)% of how the states vary"
GROUPS = r"Group A: [^\n]*?\(([\d,]+) sequences\) · Group B: [^\n]*?\(([\d,]+) sequences\)"


@pytest.fixture(scope="module")
def served(tmp_path_factory, browser):
    """(bundle server's url, the opened bundle) for the race demo's model and every sequence."""
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    tmp = tmp_path_factory.mktemp("same_figures")
    path = rvb.build(model, ds, tmp / "race.rnnviz", methods=("grad_norm", "input_x_grad"), sample=16)
    proc, url, _ = start_server(tmp, extra_env={"RNNVIZ_BUNDLE": str(path)})
    try:
        yield url, rvb.open(path)
    finally:
        stop_server(proc)


def _page(browser, url: str):
    pg = new_page(browser, 1400, 2200)
    pg.set_default_timeout(120_000)
    open_app(pg, url)
    assert_clean(pg)
    return pg


def _captions(pg) -> str:
    return "\n".join(pg.locator('[data-testid="stCaptionContainer"]').all_inner_texts())


def _table(pg, nth: int = 0) -> list[list[str]]:
    """The rows (header first) of the ``nth`` table on the page, from the grid's accessible table."""
    grid = pg.locator('[data-testid="stDataFrame"]').nth(nth)
    grid.locator("table").first.wait_for(state="attached")
    return grid.locator("table").first.evaluate(
        "t => Array.from(t.querySelectorAll('tr')).map(r => Array.from(r.querySelectorAll('th,td'))"
        ".map(c => c.innerText.trim()))")


def _figures(browser, base: str, query: str, tag: str) -> dict:
    """Every figure compared, read from the pages of one server (``query``: the shared link options)."""
    out = {}
    pg = _page(browser, f"{base}/?{query}")
    try:
        pg.locator('[data-testid="stMetricValue"]').first.wait_for()
        out["accuracy"] = pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip()

        open_app(pg, f"{base}/Trajectories?{query}")
        pg.locator(f"{CHART} >> visible=true").first.wait_for()
        assert_clean(pg)
        m = re.search(PCA_SHARE, _captions(pg))
        assert m, _captions(pg)[:2000]
        out["pca"] = m.group(1)

        open_app(pg, f"{base}/Saturation?{query}&by=correct&ga=correct&gb=wrong")
        pg.locator('[data-testid="stDataFrame"]').first.wait_for()
        assert_clean(pg)
        m = re.search(GROUPS, _captions(pg))
        assert m, _captions(pg)[:2000]
        out["groups"] = m.groups()
        out["comparison"] = _table(pg, 0)
        out["findings"] = pg.locator(".st-key-findings_saturation_findings").inner_text()
        # two close groups, whose p-values are not all below 0.001
        open_app(pg, f"{base}/Saturation?{query}&by=true_class&ga={quote('place (2-3)')}&gb=unplaced")
        pg.locator('[data-testid="stDataFrame"]').first.wait_for()
        assert_clean(pg)
        out["close"] = _table(pg, 0)

        open_app(pg, f"{base}/Contributions?{query}")
        pg.locator('[data-testid="stDataFrame"]').first.wait_for()
        assert_clean(pg)
        out["top"] = _table(pg, 0)
        out["pickers"] = [selected(pg, f"Sequence {side}") for side in "AB"]
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"same_figures_{tag}.png"), full_page=True)
        pg.context.close()
    return out


def _p_values(text: str) -> list[str]:
    return re.findall(r"p (?:<|=) [0-9.]+", text)


def test_live_and_bundle_show_the_same_figures(browser, app_url, served):
    url, b = served
    ids = [str(i) for i in b.ids]
    a_id, b_id = (ids[int(r)] for r in b.sample_rows[:2])
    an = b.manifest["analysis"]
    query = (f"a={a_id}&b={b_id}&method=grad_norm"
             f"&thr={an['threshold']}&shut={an['gate_low']}&open={an['gate_high']}")
    live = _figures(browser, app_url, "demo=race&" + query, "live")
    bundle = _figures(browser, url, query, "bundle")

    assert live["accuracy"] == bundle["accuracy"] and live["accuracy"].endswith("%")
    assert live["pca"] == bundle["pca"]
    assert live["groups"] == bundle["groups"] and sum(map(int, live["groups"])) == len(ids)

    # the comparison table: the same measures, means, corrected p-values and sizes in words
    head = live["comparison"][0]
    assert head == bundle["comparison"][0] and "Could it be chance?" in head, head
    assert len(live["comparison"]) == len(bundle["comparison"]) >= 4
    p = head.index("Could it be chance?")
    for lr, br in zip(live["comparison"][1:], bundle["comparison"][1:]):
        assert lr[0] == br[0], (lr, br)                       # the measure
        assert lr[p] == br[p] and re.fullmatch(r"p (<|=) [0-9.]+", lr[p]), (lr, br)
        assert lr == br, (lr, br)
    assert live["close"] == bundle["close"]
    close = [r[p] for r in live["close"][1:]]
    assert live["close"][0][1:3] == ["A: place (2-3)", "B: unplaced"] and len(close) >= 4
    assert any(re.fullmatch(r"p = [0-9.]+", x) for x in close), close   # not all "p < 0.001"
    # the findings above the table read the same corrected p-values
    assert _p_values(live["findings"]) == _p_values(bundle["findings"])
    assert set(_p_values(live["findings"])) <= {r[p] for r in live["comparison"][1:]}

    # the top steps of A and B, ranked, with where in the sequence they lie
    head = live["top"][0]
    assert head == bundle["top"][0], head
    assert len(live["top"]) == len(bundle["top"]) == 11                  # 5 steps of A and 5 of B
    c = head.index("Contribution")
    for lr, br in zip(live["top"][1:], bundle["top"][1:]):
        assert [x for i, x in enumerate(lr) if i != c] == [x for i, x in enumerate(br) if i != c], (lr, br)
        assert abs(float(lr[c]) - float(br[c])) <= 1e-3 * max(1.0, abs(float(lr[c]))), (lr, br)
    assert {r[head.index("Sequence")] for r in live["top"][1:]} == {a_id, b_id}
    # the pickers say the same words: "id · true <class> · predicted <class>"
    assert live["pickers"] == bundle["pickers"] and live["pickers"][0].startswith(f"{a_id} · true ")
