"""Page glue without a browser: the Saturation comparison table in plain words (issue 10); the page
shows the core's table (``rnnviz_core.analyses.tables.comparison_table``, issue 20)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rnnviz_core.analyses.tables import comparison_table, format_effect

P_COL = "Could it be chance?"


def test_effect_sizes_for_people():
    assert format_effect(0.05, "rank-biserial r").startswith("negligible")
    assert format_effect(-0.35, "rank-biserial r") == "medium (rank-biserial r -0.35)"
    assert format_effect(0.9, "Cohen's d").startswith("large") and format_effect(None, "Cohen's d") == ""


def test_the_page_table_shows_the_corrected_p_that_the_findings_read():
    """Issue 20: the table printed raw p_value while the findings above it used p_adjusted."""
    from rnnviz_core.findings import saturation_findings
    cmp = pd.DataFrame({"metric": ["frac_saturated", "correct"], "group_a": ["x", "x"], "group_b": ["y", "y"],
                        "mean_a": [0.6, 0.9], "mean_b": [0.1, 0.5], "p_value": [0.004, 0.02],
                        "p_adjusted": [0.03, 0.04], "effect_size": [0.5, 0.4], "test": ["Mann-Whitney U"] * 2,
                        "effect_name": ["rank-biserial r"] * 2, "n_a": [20, 20], "n_b": [20, 20]})
    view = comparison_table(cmp)
    assert list(view[P_COL]) == ["p = 0.03", "p = 0.04"]          # Benjamini-Hochberg, not the raw 0.004
    said = " ".join(saturation_findings(cmp))
    assert "p = 0.03" in said and "0.004" not in said


def test_comparison_table_has_plain_columns_and_no_none_cells():
    cmp = pd.DataFrame({"metric": ["frac_saturated", "change: noise 0.1 x std"], "group_a": ["x", "x"],
                        "group_b": ["y", "y"], "mean_a": [0.02, np.nan],
                        "mean_b": [0.01, 0.3], "p_value": [2.98e-219, None], "effect_size": [0.24, np.nan],
                        "test": ["Mann-Whitney U", "Welch's t"], "effect_name": ["rank-biserial r", "Cohen's d"],
                        "n_a": [10, 10], "n_b": [12, 12]})
    view = comparison_table(cmp)
    text = view.to_string()
    for bad in ("None", "nan", "e-219", "frac_saturated"):
        assert bad not in text, bad
    assert list(view["Measure"]) == ["share of unit-steps saturated", "output change under noise 0.1 x std"]
    assert view.loc[0, P_COL] == "p < 0.001"
    assert view.loc[0, "How big"] == "small: A higher in 62% of pairs"      # (0.24 + 1) / 2
    assert view.loc[1, "A: x"] == "" and view.loc[1, "Difference (A − B)"] == ""


# ----------------------------------------------------------------- polish: start card, links, labels
def _clean_session():
    import streamlit as st
    for k in list(st.session_state.keys()):
        del st.session_state[k]
    return st


def test_model_card_of_token_data_counts_words_not_features():
    """The text demo's X is int64 ids [N, T]: reading X.shape[2] raised IndexError on the start page."""
    from types import SimpleNamespace

    from rnnviz_app.views.summary import data_size
    ds = SimpleNamespace(X=np.zeros((3, 7), dtype=np.int64), is_tokens=True, n_features=1)
    assert data_size(ds) == "3 sequences, up to 7 words each (token ids)"


def test_model_card_counts_features_in_proper_singular_and_plural():
    from types import SimpleNamespace

    from rnnviz_app.views.summary import data_size
    one = SimpleNamespace(X=np.zeros((1, 5, 1), dtype=np.float32), is_tokens=False, n_features=1)
    four = SimpleNamespace(X=np.zeros((412, 20, 4), dtype=np.float32), is_tokens=False, n_features=4)
    assert data_size(one) == "1 sequence, up to 5 steps, 1 feature"
    assert data_size(four) == "412 sequences, up to 20 steps, 4 features"


def test_model_card_names_a_demo_once_and_own_files_by_their_names():
    from rnnviz_app.sources.context import Loaded
    from rnnviz_app.sources.loading import demo_infos
    from rnnviz_app.views.summary import is_demo
    from rnnviz_core.demos import load_demo
    key = next(iter(demo_infos()))
    model, ds = load_demo(key)[:2]
    ctx = Loaded(model=model, data=ds, model_key="m", data_key="d", model_name="x: shipped model",
                 data_name="x: shipped test data", demo=key)
    assert is_demo(ctx)
    own = Loaded(model=model, data=ds, model_key="m", data_key="d", model_name="mine.pt", data_name="mine.csv", demo=None)
    own.extra.update(own=True)
    assert not is_demo(own)


def test_findings_text_keeps_addresses_and_colour_directives_as_text():
    """A group value like ':red[LOSE] see https://evil.example' must not colour or link."""
    from rnnviz_app.views.page_findings import plain
    s = plain(":red[LOSE] see https://evil.example or www.evil.example, mail a@evil.example")
    assert ":red[" not in s and "https://" not in s and "www." not in s and "a@evil" not in s
    assert s.replace("\\", "").replace("\u2060", "") == (":red[LOSE] see https://evil.example or www.evil.example, "
                                                         "mail a@evil.example")


@pytest.mark.parametrize("raw", ["inf", "nan", "-inf", "7.5", "9" * 5000])
def test_slider_link_values_that_are_not_finite_or_in_range_give_the_default(raw):
    """`/saturation?shut=inf` reached st.slider and raised Streamlit's value error."""
    st = _clean_session()
    from rnnviz_app.state.state_url import checked_link_value
    st.session_state["_view"] = {"shut": raw}
    assert checked_link_value("shut", 0.1, cast=float, bounds=(0.0, 0.49)) == 0.1
    assert "shut" not in st.session_state["_view"] and "shut" in st.session_state["_link_notes"]


def test_slider_link_value_in_range_is_used():
    st = _clean_session()
    from rnnviz_app.state.state_url import checked_link_value
    st.session_state["_view"] = {"shut": "0.2", "dir": "bwd"}
    assert checked_link_value("shut", 0.1, cast=float, bounds=(0.0, 0.49)) == 0.2
    assert checked_link_value("dir", "fwd", ["fwd", "bwd"]) == "bwd"


def test_scoring_message_names_the_method_as_the_page_does():
    from rnnviz_app.views.page_contributions import scoring_message
    msg = scoring_message(1000, "grad_norm")
    assert "grad_norm" not in msg and msg.startswith("Scoring every step of 1000 sequences with ")
    assert "integrated_gradients" not in scoring_message(2, "integrated_gradients", per_feature=True)


def test_unit_heatmaps_share_a_scale_ending_at_the_highest_share():
    from rnnviz_app.views.page_saturation import shared_top
    a = pd.DataFrame({"unit": [0, 1], "step": [0, 0], "frac_saturated": [0.01, 0.25]})
    b = pd.DataFrame({"unit": [0, 1], "step": [0, 0], "frac_saturated": [0.12, np.nan]})
    assert shared_top(a, b) == 0.25
    assert shared_top(a.assign(frac_saturated=0.0), b.assign(frac_saturated=0.0)) is None


def test_known_step_glue_gives_the_overlap_the_findings_word():
    """Contributions page: the known-steps finding is the share of top-k steps inside the known
    steps (hand count), not the exact match that a long window almost never meets."""
    from types import SimpleNamespace

    from rnnviz_app.views.page_contributions import known_step_hits
    from rnnviz_core.findings import contribution_findings
    sc = np.array([[0.0, 3.0, 2.0, 1.0, 2.5], [4.0, 0.0, 1.0, 0.5, 0.0]])
    known = np.array([[0, 1, 1, 1, 0], [0, 0, 1, 1, 0]], dtype=bool)
    ctx = SimpleNamespace(data=SimpleNamespace(lengths=np.array([5, 4])))
    got = known_step_hits(ctx, sc, "grad_norm", known)
    # seq 0: top 3 = steps 1, 4, 2 -> 2 of 3; seq 1 (length 4): top 2 = steps 0, 2 -> 1 of 2
    assert set(got) == {"grad_norm"} and got["grad_norm"]["precision"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert got["grad_norm"]["k"] is None and got["grad_norm"]["top1"] == 0.5
    assert "58% on average are known ones" in contribution_findings(None, hits=got)[0]
    assert known_step_hits(ctx, sc, "grad_norm", None) is None
