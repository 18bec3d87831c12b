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
