"""The What-if page in a real browser: it draws on the race and text demos, an edit (from the
link and from the controls) shows the output the model gives on the edited input (computed here
with the model itself, not through the app), an edit reruns only the What-if section and redraws
its heatmap with the edited input's states (from the model's own nn.GRU), "Reset" restores the
original, and the unit pickers under the What-if and Trajectories heatmaps open the Units page."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import CHART, assert_clean, charts_drawn, open_app, select_option, selected, wait_idle  # noqa: E402
import page_specs as ps  # noqa: E402

pytestmark = pytest.mark.browser


def _demo(key):
    from rnnviz_core.demos import load_demo
    return load_demo(key)


def _answer(model, ds, row_x, length):
    with torch.no_grad():
        out = model(torch.as_tensor(row_x[None, :length]), torch.tensor([length]))[0]
    p = torch.softmax(out, -1).numpy()
    k = int(p.argmax())
    return ds.class_names[k], f"{p[k]:.1%}"


def _decision(model, row_x, length) -> int:
    """First step from which the model's class on every longer prefix is its final class."""
    with torch.no_grad():
        cls = [int(model(torch.as_tensor(row_x[None, : t + 1]), torch.tensor([t + 1]))[0].argmax())
               for t in range(length)]
    d = 0
    for t in range(length):
        if cls[t] != cls[-1]:
            d = t + 1
    return d


def _metrics(page) -> dict:
    out = {}
    for m in page.locator('[data-testid="stMetric"]').all():
        label = m.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        out[label] = m.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return out


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


@pytest.mark.parametrize("demo", ["race", "text"])
def test_whatif_page_draws_and_an_edit_in_the_link_gives_the_models_answer(page, app_url, demo):
    model, ds = _demo(demo)
    sid, L = str(ds.ids[0]), int(ds.lengths[0])
    open_app(page, f"{app_url}/What_if?demo={demo}&wi_seq={sid}")
    page.locator(f"{CHART} >> visible=true").first.wait_for()
    assert_clean(page)
    assert page.get_by_role("heading", name="What if", exact=True).count() == 1
    assert charts_drawn(page, 3) >= 3      # two heatmaps and the contributions (waits for the later ones)
    orig = _answer(model, ds, ds.X[0], L)
    assert _metrics(page)["Original: answer"] == orig[0]
    assert f"Confidence {orig[1]}" in _main(page)
    assert f"original {_decision(model, ds.X[0], L)} of {L} steps" in _main(page)
    # an edit given in the link
    x = ds.X[0].copy()
    if demo == "text":
        new = model.vocabulary.index("awful" if orig[0] == "positive" else "wonderful")
        x[L - 1] = new
        edit = f"s,{L - 1},0,{new}"
    else:
        x[L - 1, 0] = 8.0
        edit = f"s,{L - 1},0,8"
    want = _answer(model, ds, x, L)
    open_app(page, f"{app_url}/What_if?demo={demo}&wi_seq={sid}&wi_edits={edit}")
    page.locator(f"{CHART} >> visible=true").first.wait_for()
    # the run count can include the previous session's last message: wait for the edited answer itself
    page.locator('[data-testid="stMetricLabel"]', has_text="Edited: answer").first.wait_for(timeout=60_000)
    assert_clean(page)
    assert _metrics(page)["Edited: answer"] == want[0]
    assert re.search(rf"Confidence {re.escape(want[1])}", _main(page).split("Edited: answer")[1])
    assert "Parting step: " + str(L - 1) in _main(page)
    assert "wi_edits=" in page.url
    # reset: one click back to the original
    page.get_by_role("button", name="Reset").click()
    wait_idle(page)
    assert _metrics(page)["Edited: answer"] == orig[0]
    assert "wi_edits" not in page.url
    assert "Edits: none yet" in _main(page)
    assert_clean(page)


def test_an_edit_made_with_the_controls_is_kept_in_the_link(page, app_url):
    model, ds = _demo("race")
    sid, L = str(ds.ids[1]), int(ds.lengths[1])
    open_app(page, f"{app_url}/What_if?demo=race&wi_seq={sid}")
    page.locator(f"{CHART} >> visible=true").first.wait_for()
    step = page.get_by_label("Step", exact=True)
    step.fill("0")
    step.press("Enter")
    wait_idle(page)
    page.get_by_text("Delete the step", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Add this edit").click()
    wait_idle(page)
    want = _answer(model, ds, ds.X[1, 1:], L - 1)
    assert _metrics(page)["Edited: answer"] == want[0]
    assert "wi_edits=d%2C0" in page.url or "wi_edits=d,0" in page.url
    assert "delete step 0" in _main(page)
    assert_clean(page)


def test_an_edit_that_does_not_fit_says_which_controls_to_use_and_reset_recovers(page, app_url):
    _, ds = _demo("race")
    sid, L = str(ds.ids[0]), int(ds.lengths[0])
    open_app(page, f"{app_url}/What_if?demo=race&wi_seq={sid}&wi_edits=s,{L + 5},0,1")
    alert = page.locator('[data-testid="stAlert"]').first
    alert.wait_for()
    text = alert.inner_text()
    assert f"step {L + 5} is not a step of sequence 0" in text and "'Reset'" in text
    assert_clean(page)
    page.get_by_role("button", name="Reset").click()
    wait_idle(page)
    page.locator(f"{CHART} >> visible=true").first.wait_for()
    assert page.locator('[data-testid="stAlert"]').count() == 0
    assert_clean(page)


def test_an_edit_reruns_only_the_whatif_section_and_redraws_the_edited_states(page, app_url):
    model, ds = _demo("race")
    row = 3
    sid, L = str(ds.ids[row]), int(ds.lengths[row])
    ps.record(page)
    open_app(page, f"{app_url}/What_if?demo=race&wi_seq={sid}")
    page.locator(f"{CHART} >> visible=true").first.wait_for()
    step = page.get_by_label("Step", exact=True)
    step.fill("2")
    step.press("Enter")
    wait_idle(page)
    box = page.get_by_label("Value", exact=True)
    box.fill("9")
    box.press("Enter")
    wait_idle(page)
    n_before = len(page._rv_msgs["frames"])
    page.get_by_role("button", name="Add this edit").click()
    wait_idle(page)
    assert_clean(page)
    assert "step 2: position = 9" in _main(page)
    # the click reran the What-if fragment alone: every element it sent belongs to a fragment run
    new = [m for m in ps._messages(page._rv_msgs["frames"][n_before:]) if m.WhichOneof("type") == "delta"]
    assert new and all(m.delta.fragment_id for m in new)
    # only the edited half is sent again: the original's heatmap (the sequence's units, no parting line)
    # is the chart it was, so the browser keeps it; the charts draw on canvases (no element per mark)
    sent = [json.loads(m.delta.new_element.vega_lite_chart.spec).get("title") for m in new
            if m.delta.WhichOneof("type") == "new_element"
            and m.delta.new_element.WhichOneof("type") == "vega_lite_chart"]
    assert f"Edited ({L} steps)" in sent and f"Original ({L} steps)" not in sent, sent
    n_charts = charts_drawn(page, 4)       # waits until every chart has drawn
    assert n_charts >= 4 and page.locator(f"{CHART} canvas").count() == n_charts
    assert page.locator(f"{CHART} svg rect, {CHART} svg path").count() == 0
    # the edited heatmap now draws the states of the edited input, as the model's own nn.GRU gives them
    # (on the input standardised as its forward does)
    x = ds.X[row, :L].copy()
    x[2, 0] = 9.0
    with torch.no_grad():
        h, _ = model.rnn((torch.as_tensor(x[None]) - model.norm_mean) / model.norm_std)
    h = h[0].numpy()
    charts = {c["spec"].get("title"): c for c in ps.drawn_charts(page)}
    edited = charts[f"Edited ({L} steps)"]
    heat = edited["datasets"][edited["spec"]["layer"][0]["data"]["name"]]
    assert len(heat) > 0
    for r in heat:                                 # 30 steps: one step per cell
        assert abs(r["value"] - h[int(r["start"]), int(r["unit"])]) < 1e-4, r
    # the paths chart is drawn; its caption states where the paths part
    assert "Paths in one PCA picture" in charts
    assert "The paths coincide before step 2" in charts["Paths in one PCA picture"]["caption"]


@pytest.mark.parametrize("where", ["What_if", "Trajectories"])
def test_the_unit_picker_under_a_heatmap_opens_the_units_entry(page, app_url, where):
    open_app(page, f"{app_url}/{where}?demo=race")
    page.locator(f"{CHART} >> visible=true").first.wait_for()
    box = page.get_by_role("combobox", name="Unit", exact=True).last
    box.click()
    opts = page.locator('[role="option"]')
    opts.first.wait_for()
    unit = opts.nth(1).inner_text().strip()
    assert re.fullmatch(r"h \d+", unit)
    opts.nth(1).click()
    wait_idle(page)
    page.get_by_role("button", name="Open this unit in Units").click()
    wait_idle(page)
    page.get_by_role("heading", name="Units", exact=True).wait_for()
    assert selected(page, "Unit") == unit
    assert "unit=h" in page.url
    assert_clean(page)
