"""Issue 9 in a real browser: a user's own model and data, made here the way tutorials make them.

Each model is a tutorial-style class (``self.gru``/``self.fc`` reading ``out[:, -1]``;
``self.lstm``/``self.linear`` reading ``h[-1]``; a bidirectional GRU with a mean-pooling head),
trained a little on a toy task and saved with ``torch.save(model.state_dict(), path)``. The data
is a UCR/UEA ``.ts`` file whose ``@classLabel`` line declares string class names in an order
that is not sorted (the order the training script used), or a long-form CSV whose columns
rnnviz cannot guess. The accuracy the "script" prints is the reference the start page must show.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tutorial_files import make_files  # noqa: E402
from harness import ARTIFACTS, CHART, EXCEPTION, assert_clean, open_app, select_option, selected, wait_idle  # noqa: E402

pytestmark = pytest.mark.browser

ERROR = '[data-testid="stAlertContentError"]'


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("own"))


# ----------------------------------------------------------------------------- browser helpers
def sidebar(pg):
    return pg.locator('[data-testid="stSidebar"]')


def main(pg):
    return pg.locator('[data-testid="stMain"]')


def upload(pg, label: str, path: Path) -> None:
    exp = sidebar(pg).locator('[data-testid="stExpander"]').filter(has_text="Use my own files")
    if not exp.locator('[data-testid="stFileUploader"]').first.is_visible():
        exp.locator("summary").click()
    box = exp.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    box.locator('input[type="file"]').set_input_files(str(path))
    wait_idle(pg)


def metric(pg) -> str:
    pg.locator('[data-testid="stMetricValue"]').first.wait_for()
    return pg.locator('[data-testid="stMetricValue"]').first.inner_text().strip()


def no_error_box(pg) -> None:
    assert pg.locator(ERROR).count() == 0, pg.locator(ERROR).first.inner_text()
    assert_clean(pg)


def every_page_draws(pg) -> None:
    """Visit each page through the navigation (same session): charts, no exception box."""
    for title, n in (("Trajectories", 2), ("Saturation", 2), ("Contributions", 2)):
        sidebar(pg).locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
        wait_idle(pg, 300)
        pg.wait_for_function(
            """([sel, n]) => { const c = [...document.querySelectorAll(sel)];
                   return c.length >= n && c.every(e => e.querySelector('canvas, svg')); }""",
            arg=[CHART, n], timeout=300_000)
        assert pg.locator(EXCEPTION).count() == 0, f"{title}: {pg.locator(EXCEPTION).first.inner_text()}"
        assert pg.locator(ERROR).count() == 0, f"{title}: {pg.locator(ERROR).first.inner_text()}"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"own_files_{title.lower()}.png"), full_page=True)


# ----------------------------------------------------------------------------- tests
def test_model_then_data_while_another_demo_is_selected(page, app_url, files):
    path, script_acc = files["gru"]
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", path)
    text = main(page).inner_text()
    assert "6 features per step" in text and "Data file" in text    # which file, what it must look like
    no_error_box(page)
    page.screenshot(path=str(ARTIFACTS / "own_files_waiting_for_data.png"), full_page=True)
    side = sidebar(page).inner_text()
    assert selected(page, "Demo") == "My own files" and f"Model: {path.name}" in side
    upload(page, "Data file", files["ts"])
    assert metric(page) == script_acc
    side = sidebar(page).inner_text()
    assert f"Model: {path.name}" in side and f"Data: {files['ts'].name}" in side
    assert "shipped" not in side
    assert re.search(r"demo=own", page.url) and re.search(r"model=[0-9a-f]{64}", page.url)
    text = main(page).inner_text()
    assert "assumed" in text.lower() and "Class order" in text       # assumptions and where to change them
    no_error_box(page)
    every_page_draws(page)


def test_data_then_model_lstm_reading_h_last(page, app_url, files):
    path, script_acc = files["lstm"]
    open_app(page, f"{app_url}/?demo=vowels")
    upload(page, "Data file", files["ts"])
    text = main(page).inner_text()
    assert "Model file" in text and "6 features per step" in text
    no_error_box(page)
    upload(page, "Model file", path)
    assert metric(page) == script_acc
    no_error_box(page)
    # the link reproduces the pair in a new session
    link = page.url
    page.goto("about:blank")
    open_app(page, link)
    assert metric(page) == script_acc


def test_bidirectional_mean_pooling_needs_mean_reading(page, app_url, files):
    path, script_acc = files["bigru_mean"]
    open_app(page, app_url)
    upload(page, "Model file", path)
    upload(page, "Data file", files["ts"])
    options = sidebar(page).get_by_role("combobox", name="How the model reads the sequence", exact=True)
    assert options.count() == 1
    default_acc = metric(page)
    choice = select_option(page, "How the model reads the sequence", index=2)   # last, h_n, mean, max
    assert "mean" in choice.lower() and script_acc in choice                    # the option shows its accuracy
    assert metric(page) == script_acc
    assert default_acc != script_acc                                            # the default was not this model's reading
    assert "readout=mean" in page.url
    no_error_box(page)
    every_page_draws(page)


def test_shipped_vowels_files_load_while_race_is_selected(page, app_url):
    from rnnviz_core.demos import list_demos
    info = next(d for d in list_demos() if d.key == "vowels")
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", Path(info.model_path))
    upload(page, "Data file", Path(info.data_path))
    open_app(page, f"{app_url}/?demo=vowels")
    # the same accuracy as the vowels demo itself
    demo_acc = metric(page)
    page.go_back()
    wait_idle(page)
    assert metric(page) == demo_acc
    no_error_box(page)


def test_long_form_csv_whose_columns_need_choosing(page, app_url, files):
    path, script_acc = files["gru_csv"]
    open_app(page, app_url)
    upload(page, "Model file", path)
    upload(page, "Data file", files["csv"])
    side = sidebar(page)
    assert side.get_by_role("combobox", name="Sequence id column", exact=True).is_visible()   # opened for the user
    assert "Traceback" not in page.locator("body").inner_text()
    select_option(page, "Sequence id column", "patient")
    select_option(page, "Label column", "diagnosis")
    assert metric(page) == script_acc
    assert "idc=patient" in page.url and "labc=diagnosis" in page.url
    no_error_box(page)


def test_back_to_the_demo_is_one_click_and_files_stay(page, app_url, files):
    path, script_acc = files["gru"]
    open_app(page, f"{app_url}/?demo=digits")
    upload(page, "Model file", path)
    upload(page, "Data file", files["ts"])
    assert metric(page) == script_acc
    sidebar(page).get_by_role("button", name="Back to the demo").click()
    wait_idle(page)
    assert "Handwritten digits" in sidebar(page).inner_text() and "shipped" in sidebar(page).inner_text()
    assert "model=" not in page.url
    # the files are still in their uploaders: choosing own files again brings the pair back
    select_option(page, "Demo", "My own files")
    assert metric(page) == script_acc


def _text_demo():
    from rnnviz_core.demos import list_demos, load_demo
    for d in list_demos():
        model, _ = load_demo(d.key)
        if getattr(getattr(model, "config", None), "encoder", None) == "embedding":
            return d
    return None


def test_text_csv_with_the_text_demos_model(page, app_url):
    info = _text_demo()
    if info is None:
        pytest.skip("no text demo is shipped yet (models helper)")
    open_app(page, f"{app_url}/?demo={info.key}")
    demo_acc = metric(page)
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", Path(info.model_path))
    upload(page, "Data file", Path(info.data_path))
    assert metric(page) == demo_acc          # the vocabulary travels in the model file
    no_error_box(page)
    every_page_draws(page)


@pytest.fixture(scope="module")
def small_budget_url(app_url, files, tmp_path_factory):
    """A second server whose trace budget holds 30 of the toy pair's sequences."""
    from harness import start_server, stop_server
    from rnnviz_core import budget
    from rnnviz_core.data import load_data
    from rnnviz_core.models import load_model
    model, ds = load_model(files["gru"][0]), load_data(files["ts"])
    units, arrays = budget.traced_size(model)
    per_seq = int(ds.max_len) * units * arrays * 4
    proc, url, _ = start_server(tmp_path_factory.mktemp("budget"),
                                {"RNNVIZ_TRACE_BUDGET_BYTES": str(per_seq * 30)})
    yield url, len(ds)
    stop_server(proc)


def test_text_data_first_is_a_note_and_a_pair_over_the_budget_says_it_is_sampled(page, small_budget_url, files,
                                                                                   tmp_path):
    url, n = small_budget_url
    text = tmp_path / "reviews.csv"
    text.write_text("id,text,label\n1,the cat sat,pos\n2,a dog ran far,neg\n")
    open_app(page, f"{url}/?demo=race")
    upload(page, "Data file", text)
    no_error_box(page)                                        # QA: was a red vocabulary error
    assert "'Model file'" in main(page).inner_text()
    open_app(page, f"{url}/?demo=race")
    upload(page, "Model file", files["gru"][0])
    upload(page, "Data file", files["ts"])
    note = sidebar(page).locator('[data-testid="stAlert"]').filter(has_text="Showing a sample")
    note.first.wait_for(timeout=120_000)
    assert f"30 of the {n:,} sequences" in note.first.inner_text()
    no_error_box(page)
