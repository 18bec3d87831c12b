"""Attribution by concern (issue 20): which steps drove the output.

:mod:`.problem` (one problem checked once, the baseline, batch sizes), :mod:`.gradients`,
:mod:`.integrated_gradients`, :mod:`.perturbation` (occlusion, prediction_delta), :mod:`.rankings`
(ranked steps, positions, concentration). The verb ``rv.contributions`` and the method registry
(``METHODS``) stay in :mod:`rnnviz_core.contributions`; the mask, Shapley and occlusion methods and
the deletion check (``rnnviz_core.masks``, ``.shapley``, ``.occlusion``, ``.faithfulness``) keep
their paths this release. Nothing is imported here. ``rnnviz_core.rankings`` is
:mod:`.rankings` itself (old path, one release).
"""
