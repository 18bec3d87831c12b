"""Old path of the group analyses (split by concern in issue 20; kept for one release).

Groups of sequences and what saturation costs now live in :mod:`rnnviz_core.analyses`:
:mod:`~rnnviz_core.analyses.outcomes` (outcomes, the sequence table, groupings, summaries),
:mod:`~rnnviz_core.analyses.intervals`, :mod:`~rnnviz_core.analyses.compare`,
:mod:`~rnnviz_core.analyses.resilience`, :mod:`~rnnviz_core.analyses.reproducibility` and
:mod:`~rnnviz_core.analyses.tables`. Every name this module had is re-exported here.
"""
from __future__ import annotations

import numpy as np  # noqa: F401  (names the old module had)
import pandas as pd  # noqa: F401

from .analyses.compare import benjamini_hochberg, compare_groups
from .analyses.intervals import BOOTSTRAP_MAX_N, CONFIDENCE
from .analyses.outcomes import (GROUPINGS, SATURATION_LEVELS, assign_groups, group_summary, metric_columns,
                                saturation_levels, sequence_outcomes, sequence_table)
from .analyses.regression import RANGE_GROUPINGS, is_regression_table
from .analyses.reproducibility import compare_models, reproducibility
from .analyses.resilience import perturb_inputs, resilience, resilience_summary, resilience_sweep
from .errors import InputError  # noqa: F401  (the old module's error, as before)
from .analyses.tables import (METRIC_NAMES, comparison_table, effect_words, format_effect, format_p, p_column,
                              reproducibility_table, resilience_table, summary_table)

__all__ = [
    "SATURATION_LEVELS", "GROUPINGS", "RANGE_GROUPINGS", "is_regression_table",
    "sequence_outcomes", "saturation_levels", "sequence_table", "assign_groups",
    "group_summary", "compare_groups",
    "perturb_inputs", "resilience", "resilience_sweep", "resilience_summary",
    "reproducibility", "compare_models",
    "METRIC_NAMES", "format_p", "effect_words", "format_effect", "p_column", "comparison_table", "summary_table",
    "reproducibility_table", "resilience_table", "metric_columns", "benjamini_hochberg", "CONFIDENCE",
    "BOOTSTRAP_MAX_N",
]
