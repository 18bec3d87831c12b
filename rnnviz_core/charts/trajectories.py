"""Charts for the trajectory page, from the tidy frames of :mod:`rnnviz_core.trajectories`.

Every chart function returns an Altair chart whose ``description`` holds its caption: one
plain sentence that says what the chart shows and how to read it, for people who do not
program. :func:`caption` reads it back (``st.caption(caption(chart))``). Charts with a time axis
carry a step slider (an Altair param bound to ``alt.binding_range``), so moving through the
steps happens in the browser without a round trip to the server.

Charts embed their data; keep frames to a few thousand rows (Altair's default limit is 5,000)
by choosing the sequences to draw — the functions sample large clouds themselves.

The charts live by concern (issue 20): :mod:`.axes` (caption, step slider, axes, stacking),
:mod:`.heatmaps`, :mod:`.paths` (PCA paths, |h| over time) and :mod:`.distance` (two sequences);
this module re-exports them (kept for one release), so
``rnnviz_core.charts.trajectories.heatmap_chart`` keeps working.
"""
from __future__ import annotations

from .axes import STEP_PARAM, Y_EXTENT, caption, int_axis, num, on_one_step_axis, require, step_axis, step_slider
from .axes import tick_every, unit_axis
from .axes import int_axis as _int_axis, require as _require, unit_axis as _unit_axis  # noqa: F401  (old names)
from .distance import distance_caption, distance_chart
from .heatmaps import heatmap_caption, heatmap_chart, pair_heatmaps_chart
from .paths import CLOUD_MAX, DASHES, SHAPES, norms_caption, norms_chart, pca_caption, pca_paths_chart

__all__ = [
    "caption", "step_slider", "heatmap_chart", "pair_heatmaps_chart", "pca_paths_chart",
    "norms_chart", "distance_chart", "distance_caption", "norms_caption", "heatmap_caption", "on_one_step_axis",
]

__all__ += ["STEP_PARAM", "CLOUD_MAX", "DASHES", "SHAPES", "Y_EXTENT", "pca_caption", "int_axis", "unit_axis",
            "require", "tick_every", "num", "step_axis"]
