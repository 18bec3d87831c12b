"""The Saturation page's resilience on a bounded number of sequences: which rows, that their
results are the core sweep's on exactly those rows, and the sentence that says so."""
import numpy as np
import torch

import rnnviz_app.views.page_saturation as ps
from rnnviz_core.groups import resilience_sweep
from rnnviz_core.models import ModelConfig, build_model


def test_every_row_when_the_work_fits_and_evenly_spaced_rows_beyond(monkeypatch):
    model = build_model(ModelConfig(input_size=2, hidden_size=4))
    lengths = np.full(50, 30)
    assert np.array_equal(ps.resilience_rows(model, lengths), np.arange(50))
    per_step = 4 + 4 * 4                        # outputs + gates' workspace, one direction
    monkeypatch.setattr(ps, "RESILIENCE_WORK", 25 * 30 * per_step)
    rows = ps.resilience_rows(model, lengths)
    assert len(rows) == 25 and rows[0] == 0 and rows[-1] == 49
    assert np.all(np.diff(rows) >= 1) and np.diff(rows).max() - np.diff(rows).min() <= 1


def test_sampled_results_are_the_sweep_on_those_rows_with_their_own_ids():
    torch.manual_seed(0)
    model = build_model(ModelConfig(input_size=2, hidden_size=4)).eval()
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 9, 2)).astype(np.float32)
    L = rng.integers(5, 10, 12)
    rows = np.array([0, 4, 7, 11])
    got = ps._resilience(model, X, L, "cpu", rows=rows)
    ref = resilience_sweep(model, X[rows], L[rows], device="cpu")
    assert sorted(set(got["seq"])) == rows.tolist()
    for cond in ref["condition"].unique():
        g = got[got["condition"] == cond].sort_values("seq")["output_change"].to_numpy()
        r = ref[ref["condition"] == cond].sort_values("seq")["output_change"].to_numpy()
        assert np.allclose(g, r, atol=1e-6)


def test_the_note_names_how_many_sequences():
    import pandas as pd
    res = pd.DataFrame({"seq": [0]})
    res.attrs["rows"] = 36
    assert ps.resilience_note(res, 100).startswith("Output change under damage is measured on 36 evenly spaced "
                                                   "sequences of the 100 loaded")
    res.attrs["rows"] = 100
    assert ps.resilience_note(res, 100) is None
