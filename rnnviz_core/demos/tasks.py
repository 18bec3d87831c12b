"""Synthetic tasks whose answers are known, used by the demos and by tests.

``make_marker_task`` is the known-answer task for per-step contributions: only two steps of
each sequence decide its label, and :func:`make_marker_task` returns which ones.
``make_race_form`` generates greyhound race-form histories for the default demo.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import SequenceDataset

__all__ = ["make_marker_task", "make_race_form", "MARKER_FEATURES", "MARKER_CLASSES",
           "RACE_FEATURES", "RACE_CLASSES"]

MARKER_FEATURES = ["value", "marker", "noise"]
MARKER_CLASSES = ["negative", "positive"]


def make_marker_task(n: int, t_min: int = 20, t_max: int = 50, seed: int = 0) -> tuple[SequenceDataset, np.ndarray]:
    """The marker (adding-problem style) task with a known answer.

    Each sequence has a length drawn uniformly from ``t_min..t_max`` and 3 features per step:
    f0 ``value`` ~ U(-1, 1); f1 ``marker`` = 1 at exactly two distinct random valid steps, else 0;
    f2 ``noise`` ~ N(0, 1), a distractor. The label is 1 ("positive") when the values at the
    two marked steps sum to more than 0, else 0 ("negative").

    Returns
    -------
    ds : SequenceDataset with X float32 [n, t_max, 3] (zero past each length), lengths, y int64 [n],
        ids "m00000"..., class_names ["negative", "positive"], groups with columns
        ``length`` and ``gap`` (steps between the two markers).
    decisive : bool [n, t_max], True exactly at the two marked steps.
    """
    if n < 1 or not 2 <= t_min <= t_max:
        raise ValueError("need n >= 1 and 2 <= t_min <= t_max")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(t_min, t_max + 1, size=n)                     # (N,)
    X = np.zeros((n, t_max, 3), dtype=np.float32)                        # (N, T, 3)
    decisive = np.zeros((n, t_max), dtype=bool)                          # (N, T)
    y = np.zeros(n, dtype=np.int64)
    gaps = np.zeros(n, dtype=np.int64)
    for i, L in enumerate(lengths):
        X[i, :L, 0] = rng.uniform(-1.0, 1.0, size=L)
        X[i, :L, 2] = rng.standard_normal(L)
        a, b = np.sort(rng.choice(L, size=2, replace=False))
        X[i, [a, b], 1] = 1.0
        decisive[i, [a, b]] = True
        y[i] = int(X[i, a, 0] + X[i, b, 0] > 0)
        gaps[i] = b - a
    ds = SequenceDataset(
        X=X, lengths=lengths.astype(np.int64), y=y, ids=np.array([f"m{i:05d}" for i in range(n)]),
        groups=pd.DataFrame({"length": lengths.astype(np.int64), "gap": gaps}),
        feature_names=list(MARKER_FEATURES), class_names=list(MARKER_CLASSES), name="marker")
    return ds, decisive


RACE_FEATURES = ["position", "time", "weight", "box", "days_since"]
RACE_CLASSES = ["win", "place (2-3)", "unplaced"]
