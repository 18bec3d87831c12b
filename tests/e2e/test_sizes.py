"""Issue 18 in a real browser: every page at real sizes, with files made the way tutorials make them.

For each case of ``sizes_files.MATRIX`` (2,000 steps x 32 units from an ``.npz`` with lengths;
300 steps x 512 units, bidirectional, 2 layers from a ``.ts``; 200 features from a long-form
CSV; 2,000-word texts from a CSV with a text column and a ``.json`` vocabulary; a GRU regressor)
a tiny tutorial-style model is trained here in seconds (on short sequences of the same
generator; the wide case only 3 epochs, its accuracy is not the point) and saved with
``torch.save(model.state_dict(), ...)``; model, data (and vocabulary) are uploaded through the
real app, and then the start page and every page are visited. Each page must finish with no
exception box and no error alert, draw every chart, and every number in a chart's caption must
be one the page draws (read from the Vega-Lite specs Streamlit sent, see ``page_specs``). The
start page's figure must equal what the training "script" printed. Screenshots (tall window):
``test-artifacts/e2e/sizes_<case>_<page>.png``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import page_specs as ps  # noqa: E402
from harness import ARTIFACTS, CHART, EXCEPTION, new_page, open_app, start_server, stop_server, wait_idle  # noqa: E402
from sizes_files import MATRIX, make_case  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ERROR = '[data-testid="stAlertContentError"]'
PAGES = ("Start", "Trajectories", "Saturation", "Contributions")
PAGE_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def sized_app(app_url, tmp_path_factory):
    """A server of its own (its log names the exception behind each redacted error box)."""
    proc, url, log = start_server(tmp_path_factory.mktemp("sizes"))
    yield url, log
    stop_server(proc)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "sizes_streamlit.log").write_text(log.read_text(errors="replace"))


class ServerLog:
    """New lines of the server log since the last call: the exceptions it recorded."""

    def __init__(self, path: Path):
        self.path, self.offset = path, path.stat().st_size

    def new_errors(self) -> list[str]:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            text = f.read().decode(errors="replace")
            self.offset = f.tell()
        # the line after a traceback that names the exception, e.g. "altair.utils.data.MaxRowsError: ..."
        return [line.strip()[:300] for line in text.splitlines()
                if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Warning)\b.*:", line.strip())]


def sidebar(pg):
    return pg.locator('[data-testid="stSidebar"]')


def upload(pg, label: str, path: Path) -> None:
    exp = sidebar(pg).locator('[data-testid="stExpander"]').filter(has_text="Use my own files")
    if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
        exp.locator("summary").click()
    box = sidebar(pg).locator('[data-testid="stFileUploader"]').filter(has_text=label)
    box.first.wait_for(timeout=PAGE_TIMEOUT_S * 1000)
    box.first.locator('input[type="file"]').set_input_files(str(path))
    wait_idle(pg, PAGE_TIMEOUT_S)


def choose_if_offered(pg, label: str, option: str) -> None:
    """Pick a column where the app asks for one (it may also have guessed it)."""
    from harness import select_option
    box = sidebar(pg).get_by_role("combobox", name=label, exact=True)
    if box.count() and box.first.is_visible() and box.first.input_value().strip() != option:
        select_option(pg, label, option)


def wait_drawn(pg) -> None:
    """Every chart on the page has its canvas or svg."""
    pg.wait_for_function(
        """(sel) => [...document.querySelectorAll(sel)].every(e => e.querySelector('canvas, svg'))""",
        arg=CHART, timeout=PAGE_TIMEOUT_S * 1000)


def page_problems(pg, case_key: str, title: str, log: ServerLog, known=()) -> list[str]:
    """What is wrong with the page as drawn: exception boxes (with the exception the server log
    recorded), error alerts, caption numbers."""
    out = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"sizes_{case_key}_{title.lower()}.png"
    pg.screenshot(path=str(shot), full_page=True)
    where = f"{case_key} / {title} ({shot.relative_to(ARTIFACTS.parents[1])})"
    boxes = pg.locator(EXCEPTION).count()
    logged = log.new_errors()
    if boxes or logged:
        out.append(f"{where}: {boxes} exception box(es); server log: {' | '.join(logged) or 'nothing'}")
    alerts = pg.locator(f'{ERROR}:not({EXCEPTION} {ERROR})')
    for i in range(alerts.count()):
        out.append(f"{where}: error alert: {alerts.nth(i).inner_text()[:300]}")
    charts = ps.drawn_charts(pg)
    for c in charts:
        for p in ps.caption_problems(c, charts, known):
            out.append(f"{where}: chart {c['path']}: caption number not drawn: {p}")
    return out


def start_figure(pg) -> float | None:
    """The start page's first metric as a number (a percentage as a share), or None."""
    vals = pg.locator('[data-testid="stMetricValue"]')
    if not vals.count():
        return None
    text = vals.first.inner_text().strip()
    m = re.search(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    if not m:
        return None
    v = float(m.group(0))
    return v / 100 if text.endswith("%") else v


def _decimals(pg) -> int:
    text = pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip().rstrip("%")
    return len(text.split(".")[1]) if "." in text else 0


def _shows(text: str, value: float) -> bool:
    """Whether a metric's text is ``value`` as rounded to the digits it shows."""
    m = re.fullmatch(r"\s*(-?\d+(?:\.(\d+))?)\s*", text.replace(",", ""))
    return bool(m) and abs(float(m.group(1)) - value) <= 0.5 * 10 ** -len(m.group(2) or "") + 1e-9


@pytest.mark.parametrize("case", MATRIX, ids=lambda c: c.key)
def test_every_page_draws_at_this_size(browser, sized_app, case, tmp_path):
    app_url, log_path = sized_app
    log = ServerLog(log_path)
    files = make_case(case, tmp_path)
    pg = new_page(browser, 1400, 2400)
    pg.set_default_timeout(PAGE_TIMEOUT_S * 1000)
    ps.record(pg)
    problems: list[str] = []
    try:
        open_app(pg, app_url)
        upload(pg, "Model file", files["model"])
        upload(pg, "Data file", files["data"])
        if files["vocab"] is not None:
            upload(pg, "Vocabulary file", files["vocab"])
        if case.fmt == "csv_long":
            choose_if_offered(pg, "Sequence id column", "sequence_id")
            choose_if_offered(pg, "Label column", "label")
        if case.fmt == "text_csv":
            choose_if_offered(pg, "Label column", "sentiment")
        # the start page shows what the training script printed
        got = start_figure(pg)
        if got is None:
            problems.append(f"{case.key} / Start: no figure on the start page (the script printed {files['score']:.4g})")
        else:
            scale = 100 if case.task == "classification" else 1
            tol = 0.5 * 10 ** -_decimals(pg) / scale + 1e-9
            if abs(got - files["score"]) > tol:
                problems.append(f"{case.key} / Start: shows {got:.4g}, the script printed {files['score']:.4g}")
        if files["baseline"] is not None and not any(
                _shows(v, files["baseline"]) for v in pg.locator('[data-testid="stMetricValue"]').all_inner_texts()):
            problems.append(f"{case.key} / Start: no figure equals always predicting the mean "
                            f"(RMSE {files['baseline']:.4g}, by hand)")
        wait_drawn(pg)
        problems += page_problems(pg, case.key, "Start", log, files["facts"].values())
        for title in PAGES[1:]:
            ps.reset(pg)
            sidebar(pg).locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
            wait_idle(pg, PAGE_TIMEOUT_S)
            wait_drawn(pg)
            if not ps.drawn_charts(pg) and not pg.locator('[data-testid="stImage"]').count():
                problems.append(f"{case.key} / {title}: no chart drawn")
            # the PCA basis is fitted on at most StatePCA's max_points states (the caption says how many)
            from rnnviz_core.trajectories import StatePCA
            known = [*files["facts"].values(), min(int(files["facts"]["states"]), StatePCA().max_points)]
            problems += page_problems(pg, case.key, title, log, known)
    finally:
        pg.context.close()
    assert not problems, f"{case.label}:\n" + "\n".join(problems)


def test_the_caption_check_catches_a_number_the_chart_does_not_draw():
    """The check itself (no browser needed): a caption number must be drawn, as the caption rounds it."""
    chart = {"spec": {"mark": "rect", "title": "Units"}, "caption": "",
             "datasets": {"d": [{"step": s, "unit": u, "value": 0.25 * u} for s in range(0, 400, 8) for u in range(4)]}}
    ok = "Each column is 8 steps (steps 0\\-399); 4 units; the largest value is 0\\.75, 75% of 1\\. Sequence 's0012'."
    bad = ["Each column is 6 steps.", "The largest value is 0.9.", "It holds 5 units.", "Step 950 stands out."]
    assert ps.caption_problems({**chart, "caption": ok}) == []
    for text in bad:
        assert ps.caption_problems({**chart, "caption": text}), text
