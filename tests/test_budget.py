"""rnnviz_core.budget: sequences x steps x units x arrays x 4 bytes, sampled or refused before tracing."""
from __future__ import annotations

import numpy as np
import pytest

from rnnviz_core import budget
from rnnviz_core.errors import DataError


def test_within_budget_keeps_everything():
    p = budget.plan(100, 50, 32, 6, max_bytes=100 * 50 * 32 * 6 * 4)       # exactly the budget
    assert (p.keep_n, p.sampled, p.message) == (100, False, "")
    assert p.bytes_all == p.bytes_kept == 3_840_000


def test_issue_13_npz_is_sampled_with_a_sentence():
    """200,000 sequences x 166 steps, 64 units, 6 arrays: 51 GB; 1 GiB fits 4,211 of them."""
    p = budget.plan(200_000, 166, 64, 6, max_bytes=2**30)
    assert p.bytes_all == 200_000 * 166 * 64 * 6 * 4 == 50_995_200_000
    assert p.sampled and p.keep_n == 4_211                      # 1,073,741,824 // 254,976 = 4,211.1
    assert p.bytes_kept == 4_211 * 254_976 <= 2**30
    assert p.message == ("Showing a sample of 4,211 of the 200,000 sequences: tracing all of them would need "
                         "47.5 GB, more than the 1.0 GB allowed.")


def test_a_single_sequence_too_big_is_refused():
    with pytest.raises(DataError) as e:
        budget.plan(10, 10_000, 1024, 10, max_bytes=100 * 2**20)      # 390.6 MB per sequence
    assert e.value.code == "too_big_to_trace"
    assert str(e.value).startswith("One sequence of 10,000 steps would need 391 MB")
    with pytest.raises(DataError, match="50 sequences of 10 steps"):
        budget.plan(100, 10, 10, 1, max_bytes=400 * 49, min_keep=50)


@pytest.mark.parametrize("args", [(-1, 2, 3, 4), (1, 0, 3, 4), (1, 2, 3.5, 4), (1, 2, 3, True)])
def test_bad_sizes_are_refused(args):
    with pytest.raises(DataError, match="must be a whole number"):
        budget.plan(*args, max_bytes=10)


def test_sample_is_stable_sorted_and_keeps_class_shares():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    idx = budget.sample(1000, 100, labels=labels)
    assert len(idx) == 100 and len(set(idx.tolist())) == 100 and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx]).tolist() == [90, 9, 1]           # the rare class is kept
    assert np.array_equal(idx, budget.sample(1000, 100, labels=labels))
    plain = budget.sample(1000, 10)
    assert len(plain) == 10 and plain.max() < 1000
    assert budget.sample(5, 9).tolist() == [0, 1, 2, 3, 4]


def test_format_bytes():
    assert [budget.format_bytes(b) for b in (12, 2048, 512 * 2**20, 25.3 * 2**30)] == \
        ["12 bytes", "2.0 KB", "512 MB", "25.3 GB"]


# ------------------------------------------------------------------ budget.fit: model + dataset
def _tutorial_models():
    import torch
    from torch import nn

    class GRUNet(nn.Module):                       # the PyTorch-tutorial shape: gru -> fc on out[:, -1]
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(3, 16, batch_first=True)
            self.fc = nn.Linear(16, 2)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.fc(out[:, -1])

    class BiLSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(3, 8, num_layers=2, bidirectional=True, batch_first=True)
            self.fc = nn.Linear(16, 2)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.fc(out[:, -1])

    torch.manual_seed(0)
    return [GRUNet().eval(), BiLSTMNet().eval()]


def _dataset(n=40, t=12):
    from rnnviz_core.data import from_arrays
    rng = np.random.default_rng(0)
    y = np.array(["a"] * (n * 3 // 4) + ["b"] * (n - n * 3 // 4))
    return from_arrays(rng.standard_normal((n, t, 3)).astype(np.float32), lengths=rng.integers(3, t + 1, n), y=y)


def _traced_bytes(model, ds) -> int:
    """Bytes of every per-step array a full trace really holds (the reference for the estimate)."""
    from rnnviz_core.trace import trace
    tr = trace(model, ds.X, ds.lengths, gates=True, device="cpu")
    total = tr.hidden.nbytes
    for m, info in enumerate(tr.modules):
        for layer in range(info.num_layers):
            for d in ["fwd", "bwd"][: info.num_directions]:
                total += sum(tr.get(k, layer=layer, direction=d, module=m).nbytes for k in info.kinds)
    return total


@pytest.mark.parametrize("which", [0, 1])
def test_traced_size_bounds_what_a_real_trace_holds(which):
    model, ds = _tutorial_models()[which], _dataset()
    units, arrays = budget.traced_size(model)
    estimate = len(ds) * ds.max_len * units * arrays * budget.BYTES_PER_VALUE
    real = _traced_bytes(model, ds)
    assert real <= estimate <= 2 * real, (real, estimate)


def test_fit_keeps_everything_within_budget():
    model, ds = _tutorial_models()[0], _dataset()
    out, p = budget.fit(ds, model, max_bytes=10**9)
    assert out is ds and not p.sampled and p.message == ""


def test_fit_samples_before_tracing_and_the_sample_fits():
    model, ds = _tutorial_models()[1], _dataset()
    units, arrays = budget.traced_size(model)
    per_seq = ds.max_len * units * arrays * 4
    out, p = budget.fit(ds, model, max_bytes=10 * per_seq)
    assert p.sampled and p.keep_n == len(out) == 10 and p.message.startswith("Showing a sample of 10 of the 40")
    assert _traced_bytes(model, out) <= 10 * per_seq
    assert sorted(out.labels).count("b") == round(10 * 10 / 40)          # the rare class keeps its share
    assert set(out.ids) <= set(ds.ids) and list(out.ids) == sorted(out.ids, key=list(ds.ids).index)


def test_fit_refuses_when_not_one_sequence_fits():
    model, ds = _tutorial_models()[0], _dataset()
    with pytest.raises(DataError) as e:
        budget.fit(ds, model, max_bytes=100)
    assert e.value.code == "too_big_to_trace"
