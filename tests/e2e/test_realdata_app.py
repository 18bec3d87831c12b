"""Issue 18 in a real browser: a tutorial GRU regressor saved as a state dict with a long-form CSV,
a text model with a `sentiment` column and an uploaded vocabulary, and choices whose figures must
follow each other. References: scikit-learn's metrics on the predictions the "script" made; the
option list's own current text."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tutorial_files import make_files, make_regression_files  # noqa: E402
from harness import ARTIFACTS, assert_clean, open_app, open_options, select_option, selected, wait_idle  # noqa: E402
from test_own_files import ERROR, main, sidebar, upload  # noqa: E402

pytestmark = pytest.mark.browser
#: words of a classifier; "corrected" (a p-value corrected for several tests) is not one of them
NO_CLASS_WORDS = re.compile(r"\bclass|accura|correct(?!ed)", re.I)


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    return make_regression_files(tmp_path_factory.mktemp("reg"))


@pytest.fixture(scope="module")
def cls_files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("own"))


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from test_app_realdata import make_text_files
    return make_text_files(tmp_path_factory.mktemp("text"))


def metrics(pg) -> dict:
    pg.locator('[data-testid="stMetricValue"]').first.wait_for()
    labels = [t.strip() for t in pg.locator('[data-testid="stMetricLabel"]').all_inner_texts()]
    values = [t.strip() for t in pg.locator('[data-testid="stMetricValue"]').all_inner_texts()]
    return dict(zip(labels, values))


def fits(pg, label: str) -> bool:
    """Whether a selectbox shows its chosen text whole (its text box does not clip it)."""
    return pg.evaluate("""(label) => {
        const el = document.querySelector(`input[aria-label="${label}"]`);
        return !!el && el.value.length > 0 && el.scrollWidth <= el.clientWidth + 1;
    }""", label)


def no_error_box(pg) -> None:
    assert pg.locator(ERROR).count() == 0, pg.locator(ERROR).first.inner_text()
    assert_clean(pg)


def test_regression_state_dict_shows_its_error_beside_the_mean_and_no_class_words(page, app_url, reg):
    from sklearn.metrics import mean_squared_error
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", reg["model"])
    upload(page, "Data file", reg["csv"])
    from test_app_realdata import assert_figures
    y, pred = reg["y"], reg["pred"]
    assert_figures(metrics(page), y, pred)
    body = main(page).inner_text()
    assert "always predicting the mean" in body
    assert not NO_CLASS_WORDS.search(body), NO_CLASS_WORDS.search(body)
    choice = selected(page, "How the model reads the sequence")
    assert choice.startswith("Last real step (RMSE ") and choice.endswith(")")
    assert float(choice.split("RMSE ")[1][:-1]) == pytest.approx(float(f"{np.sqrt(mean_squared_error(y, pred)):.3g}"))
    assert fits(page, "How the model reads the sequence"), choice          # shown whole, not clipped
    no_error_box(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "realdata_regression_start.png"), full_page=True)


def test_text_model_with_a_sentiment_column_and_its_vocabulary(page, app_url, text):
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", text["model"])
    upload(page, "Data file", text["csv"])
    no_error_box(page)                                           # the vocabulary is the next step, not an error
    assert "'Vocabulary file'" in main(page).inner_text()
    box = sidebar(page).locator('[data-testid="stFileUploader"]').filter(has_text="Vocabulary file")
    box.locator('input[type="file"]').set_input_files(str(text["vocab"]))
    wait_idle(page)
    value = next(iter(metrics(page).values()))
    assert value.endswith("%")                                    # `sentiment` read as the labels: an accuracy
    body = main(page).inner_text()
    assert "vocab.json (10 words)" in body and "holds no vocabulary … Now: none" not in body
    choice = selected(page, "How the model reads the sequence")
    assert re.search(r"\(\d+(\.\d+)?%\)$", choice), choice        # the head reading shows its figure
    no_error_box(page)


def test_the_other_choices_figures_follow_a_changed_choice(page, app_url, cls_files):
    path, _ = cls_files["bigru_mean"]
    open_app(page, app_url)
    upload(page, "Model file", path)
    upload(page, "Data file", cls_files["ts"])
    before = selected(page, "How the model reads the sequence")
    assert fits(page, "Class order") and fits(page, "How the model reads the sequence")
    select_option(page, "Class order", index=1)                  # another order: other readout figures
    shown = selected(page, "How the model reads the sequence")
    opts = open_options(page, "How the model reads the sequence")
    listed = [t.strip() for t in opts.all_inner_texts()]
    page.keyboard.press("Escape")
    current = next(t for t in listed if t.startswith(shown.split(" (")[0]))
    assert shown == current, (before, shown, listed)              # the box shows the current figure
    assert shown != before                                        # ... which changed with the class order
    no_error_box(page)


def test_regression_pages_draw_with_regression_groupings_and_no_class_words(page, app_url, reg):
    from harness import CHART, EXCEPTION
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", reg["model"])
    upload(page, "Data file", reg["csv"])
    metrics(page)
    found = {}
    for title in ("Trajectories", "Saturation", "Contributions"):
        sidebar(page).locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
        wait_idle(page, 300)
        page.wait_for_function(
            """(sel) => { const c = [...document.querySelectorAll(sel)];
                   return c.length >= 2 && c.every(e => e.querySelector('canvas, svg')); }""",
            arg=CHART, timeout=300_000)
        assert page.locator(EXCEPTION).count() == 0, f"{title}: {page.locator(EXCEPTION).first.inner_text()}"
        body = main(page).inner_text()
        hit = NO_CLASS_WORDS.search(body)
        found[title] = body[max(0, hit.start() - 80): hit.end() + 80] if hit else None
        if title == "Saturation":
            assert selected(page, "Group the sequences by") == "Error size (quarters)"
        if title in ("Trajectories", "Contributions"):
            assert "By class" not in body
            assert re.search(r"true -?\d[\d.e+-]* · predicted -?\d", selected(page, "Sequence A"))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"realdata_regression_{title.lower()}.png"), full_page=True)
    assert not any(found.values()), found


def test_text_models_contributions_findings_name_the_word(page, app_url, text):
    """The findings name the word the answer reacts to most, checked against grad_norm computed here
    with the core API on the same files (the vocabulary maps ids to words)."""
    import json

    import rnnviz_core as rv
    from harness import CHART
    open_app(page, f"{app_url}/?demo=race")
    upload(page, "Model file", text["model"])
    upload(page, "Data file", text["csv"])
    box = sidebar(page).locator('[data-testid="stFileUploader"]').filter(has_text="Vocabulary file")
    box.locator('input[type="file"]').set_input_files(str(text["vocab"]))
    wait_idle(page)
    metrics(page)
    sidebar(page).locator('[data-testid="stSidebarNav"] a').filter(has_text="Contributions").first.click()
    wait_idle(page, 300)
    page.locator(CHART).first.wait_for(timeout=300_000)
    ia, ib = (selected(page, f"Sequence {s}").split(" · ")[0] for s in "AB")
    words = json.loads(text["vocab"].read_text())
    model, ds = rv.load_model(text["model"]), rv.load_data(text["csv"], vocabulary=words)
    ids = [str(i) for i in ds.ids]
    rows = [ids.index(ia), ids.index(ib)]
    scores = rv.contributions(model, ds.X[rows], "grad_norm", ds.lengths[rows], device="cpu")
    parts = []
    for i, (r, name) in enumerate(zip(rows, "AB")):
        step = int(np.nanargmax(np.asarray(scores[i], dtype=float)[: int(ds.lengths[r])]))
        parts.append(f"'{words[int(ds.X[r, step])]}' (word {step} of {name})")
    found = page.locator(".st-key-findings_contribution_findings").inner_text()
    assert f"the answer reacts most to {parts[0]} and {parts[1]}" in found, (parts, found)
    no_error_box(page)
