"""One rule for "rows that fit a work budget" (issue 20): ``rnnviz_core.arrays.budget_rows``, used by
the resilience sweep (``sweep_rows``) and the Contributions page's group findings (``group_rows``)."""
from __future__ import annotations

import numpy as np

from rnnviz_core.arrays import budget_rows


def test_every_row_when_the_cost_fits():
    assert budget_rows([3, 4, 5], 12).tolist() == [0, 1, 2]
    assert budget_rows([], 1).tolist() == []


def test_evenly_spaced_rows_by_hand():
    # 10 rows of cost 10 = 100 > 45: 45 // 10 = 4 rows, at 0, 3, 6, 9 (linspace 0..9 in 4)
    assert budget_rows(np.full(10, 10.0), 45).tolist() == [0, 3, 6, 9]
    # the minimum wins over the budget: 6 rows of 0..9 -> 0, 1.8, 3.6, 5.4, 7.2, 9 rounded
    assert budget_rows(np.full(10, 10.0), 45, minimum=6).tolist() == [0, 2, 4, 5, 7, 9]
    # never more rows than there are
    assert budget_rows(np.full(3, 10.0), 25, minimum=8).tolist() == [0, 1, 2]


def test_group_rows_is_the_rule_on_squared_lengths():
    from rnnviz_app.views.page_horizons import GROUP_COST, group_rows
    L = np.array([100, 300, 200, 50] * 200)
    k = max(4, int(GROUP_COST // float((L.astype(float) ** 2).mean())))
    want = np.unique(np.linspace(0, len(L) - 1, k).round().astype(int))
    assert group_rows(L).tolist() == want.tolist()


def test_sweep_rows_is_the_rule_on_length_times_the_step_size():
    from rnnviz_core.analyses.resilience import sweep_rows
    from rnnviz_core.models import ModelConfig, build_model
    model = build_model(ModelConfig(input_size=2, hidden_size=4))
    per_step = 4 + 4 * 4                                    # GRU outputs + gates' workspace, one direction
    L = np.array([10, 30, 20] * 20)
    work = 5_000.0
    k = max(20, int(work // float((L * per_step).mean())))
    want = np.unique(np.linspace(0, len(L) - 1, min(k, len(L))).round().astype(int))
    assert sweep_rows(model, L, work=work).tolist() == want.tolist()
    assert sweep_rows(model, L, work=1e9).tolist() == list(range(len(L)))
