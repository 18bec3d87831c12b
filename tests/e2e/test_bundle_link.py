"""A shared bundle link reopens the same view (issue 20), in Debian's chromium.

A bundle of the race demo is served as the host's bundle (``$RNNVIZ_BUNDLE``). On each bundle
page the test changes A, B and the page's options with the mouse, takes the address bar as a
colleague would receive it, opens it in a fresh browser context, and reads the same choices back
from the widgets. A link with values the bundle does not have falls back to the defaults and says
so in the sidebar. Screenshots: test-artifacts/e2e/bundle_link_*.png.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (ARTIFACTS, assert_clean, combobox, new_page, open_app, select_option, selected,  # noqa: E402
                     start_server, stop_server, wait_idle)

pytestmark = pytest.mark.browser

NOTE = "Some settings in this link were not valid here and start from their defaults"


@pytest.fixture(scope="module")
def bundle_server(tmp_path_factory, browser):
    from rnnviz_core import bundle as rvb
    from rnnviz_core.demos import load_demo

    model, ds = load_demo("race")[:2]
    tmp = tmp_path_factory.mktemp("bundle_link")
    path = rvb.build(model, ds.subset(np.arange(200)), tmp / "race.rnnviz", methods=("grad_norm", "input_x_grad"),
                     sample=12)
    proc, url, _ = start_server(tmp, extra_env={"RNNVIZ_BUNDLE": str(path)})
    warm = new_page(browser)
    open_app(warm, url)
    warm.context.close()
    yield url
    stop_server(proc)


def _page(browser, url: str):
    pg = new_page(browser, 1400, 2200)
    pg.set_default_timeout(90_000)
    open_app(pg, url)
    return pg


def _shot(pg, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"bundle_link_{name}.png"), full_page=True)
    except Exception:  # noqa: BLE001
        pass


def _reopen(browser, pg, labels: list[str]) -> dict:
    """The address bar of ``pg`` opened in a fresh context: the selectboxes' shown values."""
    link = pg.url
    fresh = _page(browser, link)
    try:
        assert_clean(fresh)
        assert NOTE not in fresh.locator('[data-testid="stSidebar"]').inner_text()
        return {label: selected(fresh, label) for label in labels}
    finally:
        _shot(fresh, "reopened")
        fresh.context.close()


def test_contributions_link_keeps_method_a_and_b(browser, bundle_server):
    pg = _page(browser, f"{bundle_server}/Contributions")
    try:
        labels = ["Method", "Sequence A", "Sequence B"]
        before = {label: selected(pg, label) for label in labels}
        chosen = {"Method": select_option(pg, "Method", index=1),
                  "Sequence A": select_option(pg, "Sequence A", index=3),
                  "Sequence B": select_option(pg, "Sequence B", index=5)}
        assert chosen != before and len(set(chosen.values())) == 3
        assert "method=input_x_grad" in pg.url and "a=" in pg.url and "b=" in pg.url
        assert {label: selected(pg, label) for label in labels} == chosen
        assert _reopen(browser, pg, labels) == chosen
    finally:
        _shot(pg, "contributions")
        pg.context.close()


def test_saturation_link_keeps_grouping_and_groups(browser, bundle_server):
    pg = _page(browser, f"{bundle_server}/Saturation")
    try:
        labels = ["Group the sequences by", "Group A", "Group B"]
        chosen = {"Group the sequences by": select_option(pg, "Group the sequences by", "True class")}
        chosen["Group A"] = select_option(pg, "Group A", index=2)
        chosen["Group B"] = select_option(pg, "Group B", index=1)
        assert "by=true_class" in pg.url
        assert _reopen(browser, pg, labels) == chosen
    finally:
        _shot(pg, "saturation")
        pg.context.close()


def test_trajectories_link_keeps_a_b_and_the_alignment(browser, bundle_server):
    pg = _page(browser, f"{bundle_server}/Trajectories")
    try:
        chosen = {"Sequence A": select_option(pg, "Sequence A", index=4),
                  # the same page as live (issue 20): the play control's options travel in the link too
                  "Order the units by": select_option(pg, "Order the units by", index=1)}
        pg.get_by_text("end", exact=True).click()
        wait_idle(pg)
        assert "align=end" in pg.url and "order=" in pg.url
        fresh = _page(browser, pg.url)
        try:
            assert {label: selected(fresh, label) for label in chosen} == chosen
            assert fresh.get_by_role("radio", name="end").is_checked()
        finally:
            fresh.context.close()
    finally:
        _shot(pg, "trajectories")
        pg.context.close()


def test_bad_link_values_fall_back_with_a_note(browser, bundle_server):
    pg = _page(browser, f"{bundle_server}/Contributions?method=no_such_method&a=no-such-sequence")
    try:
        assert_clean(pg)
        assert selected(pg, "Method") == "gradient size"
        assert combobox(pg, "Sequence A").is_visible()
        side = pg.locator('[data-testid="stSidebar"]').inner_text()
        assert NOTE in side and "method" in side and "a" in side
    finally:
        _shot(pg, "bad")
        pg.context.close()


def test_long_sequences_in_a_bundle_draw_in_step_columns_with_a_window(browser, tmp_path):
    """900 steps (more than a chart's columns): the bundle's Contributions page draws A and B in
    columns of several steps, as the live page does, and offers the step window."""
    import torch

    from rnnviz_core import bundle as rvb
    from rnnviz_core.data import from_arrays
    from rnnviz_core.display import MAX_COLUMNS
    from rnnviz_core.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=2, hidden_size=8, num_outputs=2), class_names=["a", "b"]).eval()
    X = np.random.default_rng(0).normal(size=(10, 900, 2)).astype(np.float32)
    assert X.shape[1] > MAX_COLUMNS
    ds = from_arrays(X, np.full(10, 900), y=(X[:, :, 0].sum(1) > 0).astype(int), class_names=["a", "b"])
    path = rvb.build(model, ds, tmp_path / "long.rnnviz", methods=("grad_norm",), sample=4)
    proc, url, _ = start_server(tmp_path, extra_env={"RNNVIZ_BUNDLE": str(path)})
    try:
        pg = _page(browser, url)
        pg.context.close()
        pg = _page(browser, f"{url}/Contributions")
        try:
            assert_clean(pg)
            pg.get_by_text("Steps to draw (first and last)").first.wait_for()
            captions = "\n".join(pg.locator('[data-testid="stCaptionContainer"]').all_inner_texts())
            assert "each column" in captions and "steps of the sequence" in captions, captions[:2000]
        finally:
            _shot(pg, "long")
            pg.context.close()
    finally:
        stop_server(proc)
