"""Analyses of traced sequences, by concern (issue 20).

:mod:`.outcomes` (per-sequence outcomes, the sequence table, groupings, group summaries),
:mod:`.intervals` (95% intervals), :mod:`.compare` (two groups tested, corrected p-values),
:mod:`.resilience` (damaged inputs), :mod:`.reproducibility` (two models), :mod:`.tables` (tables
people read; the one p-value and effect-size formatter), :mod:`.findings` (plain sentences),
:mod:`.regression` (regression scores and range groupings), :mod:`.state_paths` (PCA, |h| over time,
plateaus), :mod:`.pairs` (two sequences: distance, parting, similar pairs), :mod:`.heatmaps`
(heatmap rows, unit order).

Nothing is imported here: ``import rnnviz_core.analyses.compare`` loads only what it needs.
Old paths keep working for one release: ``rnnviz_core.groups`` re-exports the group modules,
``rnnviz_core.findings`` and ``rnnviz_core.regression`` are the moved modules themselves,
``rnnviz_core.trajectories`` re-exports state_paths, pairs and heatmaps.
"""
