"""Page glue without a browser: the Saturation comparison table in plain words (issue 10)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from rnnviz_app.page_saturation import comparison_view, effect_words, format_p


def test_p_values_and_effect_sizes_for_people():
    assert format_p(2.98e-219) == "less than 0.001" and format_p(0.0123) == "0.012" and format_p(np.nan) == ""
    assert effect_words(0.05, "rank-biserial r").startswith("negligible")
    assert effect_words(-0.35, "rank-biserial r").startswith("medium")
    assert effect_words(0.9, "Cohen's d").startswith("large") and effect_words(None, "Cohen's d") == ""


def test_comparison_table_has_plain_columns_and_no_none_cells():
    cmp = pd.DataFrame({"metric": ["frac_saturated", "change: noise 0.1 x std"], "mean_a": [0.02, np.nan],
                        "mean_b": [0.01, 0.3], "p_value": [2.98e-219, None], "effect_size": [0.24, np.nan],
                        "test": ["Mann-Whitney U", "Welch's t"], "effect_name": ["rank-biserial r", "Cohen's d"],
                        "n_a": [10, 10], "n_b": [12, 12]})
    view = comparison_view(cmp)
    text = view.to_string()
    for bad in ("None", "nan", "e-219", "Mann-Whitney U (", "frac_saturated"):
        assert bad not in text, bad
    assert list(view["Measure"]) == ["share of unit-steps saturated", "output change under noise 0.1 x std"]
    assert view.loc[0, "Chance of a difference this large by luck (p)"] == "less than 0.001"
    assert view.loc[0, "How big the difference is"] == "small (rank-biserial r 0.24)"
    assert view.loc[1, "Group A (mean)"] == "" and view.loc[1, "Difference A − B"] == ""
