"""Paths through state space: PCA, |h| over time, plateaus, two-sequence drift, pairs, heatmaps.

Every function takes plain arrays so that a notebook user can call it on anything:

- ``states``: float array [N, T, H], one row per sequence, padded past each length (padding
  may be NaN, as in ``Trace.hidden``, or anything else: it is never read);
- ``lengths``: ints [N] (1 <= length <= T); ``None`` means "infer from the NaN padding"
  (a step counts as padding when all of its units are NaN), or all T steps when there is none.

A :class:`rnnviz_core.Trace` may be passed wherever ``states`` is expected: its ``hidden`` and
``lengths`` are used. Steps are numbered from 0. Results are tidy pandas DataFrames (one row per
observation) or numpy arrays; padding never appears in a result.

The code lives by concern in :mod:`rnnviz_core.analyses`: :mod:`~rnnviz_core.analyses.state_paths`
(PCA, |h| over time, plateaus), :mod:`~rnnviz_core.analyses.pairs` (two-sequence distance,
parting, similar pairs) and :mod:`~rnnviz_core.analyses.heatmaps` (heatmap rows, unit order). This
module re-exports all of them (issue 20; this path is kept for one release):
``rnnviz_core.trajectories.StatePCA`` and the rest keep working.

Rules, stated once here and again in the module that applies each:

* **Plateau** (:func:`plateau_steps`): the plateau step of a curve (default: the sum of |h| over
  units) is the first step ``p`` such that for every step ``t >= p`` of the sequence,
  ``|curve[t] - final| <= max(rel_tol * |final|, abs_tol)``, where ``final`` is the mean of the
  curve over its last ``final_window`` steps. If fewer than ``min_steps`` steps lie in that
  final band, or if the least-squares line through them drifts by more than the band
  half-width (a slow ramp), the curve has not settled and the plateau step is -1. Defaults: ``rel_tol=0.1``,
  ``abs_tol=1e-6``, ``final_window=3``, ``min_steps=3``.
* **Parting** (:func:`parting_step`): two sequences part at the first aligned step where the
  distance between their states exceeds ``rel_threshold * scale`` and stays above it for ``k``
  consecutive steps (or until the shorter sequence ends, if that comes first). ``scale`` is the
  typical state size: the mean Euclidean norm ||h_t|| over both sequences' valid steps, unless
  given (:func:`typical_state_norm` gives a dataset-wide one). -1 when they never part.
  Defaults: ``rel_threshold=0.25``, ``k=3``. :func:`parting_summary` tells the whole story in
  one of three cases: never parted; parted and rejoined (the distance drops back below the
  threshold and no later run above it lasts ``k`` steps); parted for good (the last run above
  the threshold reaches the last compared step) — "apart from the start" when that run begins
  at the first compared step.
"""
from __future__ import annotations

from .analyses.heatmaps import HeatmapData, heatmap_data, unit_order
from .analyses.pairs import (Parting, pair_distance, parting_step, parting_summary, similar_pairs, step_words,
                             typical_state_norm)
from .analyses.state_paths import StatePCA, norm_arrays, pca_paths, plateau_steps, state_norms
from .arrays import as_states as _as_states, blocks as _blocks, check_lengths as _check_lengths  # noqa: F401  (tests)
from .arrays import infer_lengths as _infer_lengths, seq_ids as _seq_ids, to_numpy as _to_numpy  # noqa: F401
from .arrays import valid_mask  # noqa: F401  (re-exported: rv.trajectories.valid_mask)

__all__ = [
    "StatePCA",
    "pca_paths",
    "state_norms",
    "plateau_steps",
    "pair_distance",
    "parting_step",
    "Parting",
    "parting_summary",
    "similar_pairs",
    "HeatmapData",
    "heatmap_data",
    "unit_order",
    "valid_mask",
    "typical_state_norm",
]


# names other modules and notebooks used from here before the split
__all__ += ["norm_arrays", "step_words"]
