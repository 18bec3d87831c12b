"""The Units page in a real browser: it draws on the race and text demos, a ``unit=`` link opens
that unit's entry (its sentence, as rv.unit_dictionary gives it for the loaded data), the filter
keeps only matching units, and the button under the Contributions heatmaps opens a unit's entry."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import CHART, assert_clean, open_app, selected, wait_idle  # noqa: E402

pytestmark = pytest.mark.browser


def _dictionary(key):
    import rnnviz_core as rv
    from rnnviz_core.demos import load_demo
    model, ds = load_demo(key)
    return rv.unit_dictionary(model, ds.X, ds.lengths, y=ds.y, class_names=ds.class_names,
                              feature_names=ds.feature_names)


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


@pytest.mark.parametrize("demo", ["race", "text"])
def test_units_page_draws_and_a_unit_link_opens_its_entry(page, app_url, demo):
    d = _dictionary(demo)
    n_h = int((d["kind"] == "h").sum())
    unit = f"h {n_h - 1}"
    open_app(page, f"{app_url}/Units?demo={demo}&unit={unit.replace(' ', '+')}")
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    assert_clean(page)
    assert page.get_by_role("heading", name="Units", exact=True).count() == 1
    assert selected(page, "Unit") == unit
    want = d[(d["kind"] == "h") & (d["unit"] == n_h - 1)].iloc[0]["responds_to"]
    text = _main(page)
    assert (want or "it never reaches a limit") in text
    assert f"of {len(d)} shown ({len(d)} in all)" in text
    # the filter keeps only the units that match
    box = page.get_by_label("Filter", exact=True)
    box.fill("no unit has this text")
    box.press("Enter")
    wait_idle(page)
    assert "No unit matches: clear the 'Filter' box" in _main(page)
    assert_clean(page)


def test_the_button_under_the_contributions_heatmaps_opens_the_units_entry(page, app_url):
    open_app(page, f"{app_url}/Contributions?demo=race")
    page.locator(f"{CHART} >> visible=true").first.wait_for()
    # the findings box at the top carries the decision step and horizon of A and B
    page.get_by_text("What this page finds", exact=False).first.wait_for(timeout=180_000)
    main = _main(page)
    assert re.search(r"A(?: is decided at step \d+ of \d+ and stays|'s answer is the same from the first step on); "
                     r"90% of the contribution mass by .+ lies in its last", main), main[:3000]
    box = page.get_by_role("combobox", name="Unit", exact=True).last
    box.click()
    box.fill("h 5")
    box.press("Enter")
    wait_idle(page)
    assert selected(page, "Unit") == "h 5"
    page.get_by_role("button", name="Open this unit in Units").click()
    wait_idle(page)
    page.get_by_role("heading", name="Units", exact=True).wait_for()
    assert selected(page, "Unit") == "h 5"
    assert "unit=h" in page.url
    assert_clean(page)
