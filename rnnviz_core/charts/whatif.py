"""Charts of the What-if view: an edited sequence beside its original, at any length.

Steps are binned (at most ``max_bins`` columns; a cell is the mean of the steps in its bin) and
only the units the edit moved most are drawn, so a chart stays a few thousand rows at 10,000
steps and 1,024 units. (A local binning: to be unified with the shared binning of the charts
package.)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

__all__ = ["step_bins", "binned_states", "pick_units", "states_chart", "binned_scores", "scores_chart",
           "paths_chart", "VegaLite", "MAX_BINS", "MAX_UNITS"]

#: step columns of a heatmap: 60 keeps a cell >= 8 px wide at the page's 480 px and the edited
#: heatmap at most 60 x 24 = 1,440 rows, which the browser redraws after each edit (100 bins took
#: 2,400 rows per heatmap; bench/bench_whatif.py --only browser)
MAX_BINS = 60
MAX_UNITS = 24


def step_bins(n_steps: int, max_bins: int = MAX_BINS) -> int:
    """Steps per bin so that ``n_steps`` steps fit in at most ``max_bins`` columns."""
    return max(1, int(np.ceil(max(1, n_steps) / max_bins)))


def pick_units(orig: np.ndarray, edited: np.ndarray, max_units: int = MAX_UNITS) -> tuple[list[int], str]:
    """The units to draw: those whose states the edit moved most (largest max |edited - original|
    over the common steps), else the most variable ones; returns (units in index order, why)."""
    m = min(orig.shape[0], edited.shape[0])
    H = orig.shape[1]
    if H <= max_units:
        return list(range(H)), f"all {H} units"
    with np.errstate(invalid="ignore"):
        moved = np.nanmax(np.abs(edited[:m] - orig[:m]), axis=0) if m else np.zeros(H)
    moved = np.nan_to_num(moved)
    if (moved > 0).any():
        order = np.argsort(-moved, kind="stable")[:max_units]
        return sorted(int(u) for u in order), f"the {max_units} of {H} units the edit moved most"
    var = np.nan_to_num(np.nanvar(orig, axis=0))
    order = np.argsort(-var, kind="stable")[:max_units]
    return sorted(int(u) for u in order), f"the {max_units} of {H} units that vary most"


def binned_states(h: np.ndarray, units: Sequence[int], per_bin: int, label: str) -> pd.DataFrame:
    """Tidy rows ``version, start, end, unit, value`` of states h [L, H] (real steps only)."""
    L = h.shape[0]
    nb = int(np.ceil(L / per_bin))
    pad = nb * per_bin - L
    sub = h[:, list(units)].astype(np.float64)
    if pad:
        sub = np.concatenate([sub, np.full((pad, sub.shape[1]), np.nan)], 0)
    with np.errstate(invalid="ignore"):
        means = np.nanmean(sub.reshape(nb, per_bin, -1), axis=1)          # (nb, U)
    starts = np.arange(nb) * per_bin
    return pd.DataFrame({
        "version": label,
        "start": np.repeat(starts, len(units)),
        "end": np.repeat(np.minimum(starts + per_bin, L), len(units)),
        "unit": np.tile(np.asarray(units), nb).astype(str),
        "value": means.reshape(-1),
    })


def _bin_words(per_bin: int) -> str:
    return "one step" if per_bin == 1 else f"the mean of {per_bin} steps"


class VegaLite(dict):
    """A finished Vega-Lite spec (a dict) with the caption in ``description``: built directly rather
    than through Altair, whose schema validation of every data row cost ~0.1-0.3 s per redraw
    here; ``to_dict()`` returns it, as an Altair chart's does. The rows are named ``datasets``, so
    after an edit only they change and the browser updates the drawn chart in place."""

    description: str = ""

    def to_dict(self, **_: Any) -> dict:
        return dict(self)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain Python values, NaN/inf as None (column-wise: ~8x faster than
    ``to_dict("records")`` with a per-value check at a few thousand rows)."""
    cols = []
    for c in frame.columns:
        v = frame[c].to_numpy()
        if v.dtype.kind == "f":
            bad = ~np.isfinite(v)
            vals = v.tolist()
            if bad.any():
                for i in np.flatnonzero(bad):
                    vals[i] = None
        else:
            vals = v.tolist()
        cols.append(vals)
    keys = list(frame.columns)
    return [dict(zip(keys, row)) for row in zip(*cols)]


# every What-if chart is drawn on a canvas: Streamlit's default SVG renderer makes one DOM element
# per mark (2,400 rects a heatmap at 1,000 steps), and laying them out after each edit was most of
# the browser's redraw (a profile of the page's main thread: native layout and style work, then
# createElementNS / setAttribute); Streamlit itself switches to canvas only above 2,000 rows
def _canvas() -> dict:
    return {"embedOptions": {"renderer": "canvas"}}


def _rule(step: int, datasets: dict) -> dict:
    datasets["parting"] = [{"step": int(step)}]
    return {"data": {"name": "parting"}, "mark": {"type": "rule", "color": "black",
                                                                 "strokeDash": [4, 3]},
            "encoding": {"x": {"field": "step", "type": "quantitative"}}}


def states_chart(frame: pd.DataFrame, *, parting: int | None = None, domain: tuple[float, float] = (-1.0, 1.0),
                 width: int = 480, title: str = "", units_why: str = "", per_bin: int = 1,
                 n_steps: int | None = None) -> VegaLite:
    """Units x steps heatmap of one version (binned); a rule at the parting step when given."""
    n_units = frame["unit"].nunique()
    own = int(frame["end"].max())                         # this version's steps
    steps = own if n_steps is None else int(n_steps)       # the shared step scale
    heat = {
        "data": {"name": "heat"},
        "mark": {"type": "rect"},
        "encoding": {
            "x": {"field": "start", "type": "quantitative", "title": "step",
                  "scale": {"domain": [0, max(1, steps)]}, "axis": {"tickMinStep": 1, "format": "d"}},
            "x2": {"field": "end"},
            "y": {"field": "unit", "type": "nominal", "title": "unit", "sort": sorted(frame["unit"].unique(), key=int)},
            "color": {"field": "value", "type": "quantitative", "title": "state value",
                      "scale": {"scheme": "redblue", "domain": list(domain), "reverse": True}},
            "tooltip": [{"field": "unit", "type": "nominal"},
                        {"field": "start", "type": "quantitative", "title": "from step"},
                        {"field": "end", "type": "quantitative", "title": "to step (excl.)"},
                        {"field": "value", "type": "quantitative", "format": ".3f"}],
        },
    }
    words = (f"{title}: {units_why}, steps 0 to {own - 1}; a cell is {_bin_words(per_bin)}, "
             f"coloured from {domain[0]:g} (blue) to {domain[1]:g} (red).")
    layers = [heat]
    datasets = {"heat": _records(frame[["start", "end", "unit", "value"]])}
    if parting is not None and parting >= 0:
        layers.append(_rule(parting, datasets))
        words += f" The dashed line marks step {parting}, where the edited states part from the original."
    spec = VegaLite({"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "usermeta": _canvas(),
                     "title": title, "width": width,
                     "height": max(60, min(260, 9 * n_units)), "layer": layers, "datasets": datasets})
    spec.description = words
    return spec


def binned_scores(scores: np.ndarray, per_bin: int, label: str) -> pd.DataFrame:
    """Rows ``version, start, end, score``: the mean score of each bin of real steps."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)] if s.ndim == 1 else s
    L = s.shape[0]
    nb = int(np.ceil(L / per_bin))
    pad = np.full(nb * per_bin - L, np.nan)
    with np.errstate(invalid="ignore"):
        means = np.nanmean(np.concatenate([s, pad]).reshape(nb, per_bin), axis=1)
    starts = np.arange(nb) * per_bin
    return pd.DataFrame({"version": label, "start": starts, "end": np.minimum(starts + per_bin, L), "score": means})


def scores_chart(frame: pd.DataFrame, *, method: str, parting: int | None = None, width: int = 480,
                 per_bin: int = 1) -> VegaLite:
    """The contributions of the original and the edited sequence per step (binned), as two lines."""
    line = {
        "data": {"name": "scores"},
        "mark": {"type": "line", "interpolate": "step-after", "point": bool(per_bin == 1 and len(frame) <= 400)},
        "encoding": {
            "x": {"field": "start", "type": "quantitative", "title": "step", "axis": {"tickMinStep": 1, "format": "d"}},
            "y": {"field": "score", "type": "quantitative", "title": f"{method} score"},
            "color": {"field": "version", "type": "nominal", "title": None,
                      "scale": {"domain": ["original", "edited"], "range": ["#7f7f7f", "#d62728"]}},
            "tooltip": [{"field": "version", "type": "nominal"},
                        {"field": "start", "type": "quantitative", "title": "from step"},
                        {"field": "score", "type": "quantitative", "format": ".4g"}],
        },
    }
    n_steps = {v: int(g["end"].max()) for v, g in frame.groupby("version")}
    words = (f"{method} score of each step of the original ({n_steps.get('original', 0)} steps, grey) and the "
             f"edited sequence ({n_steps.get('edited', 0)} steps, red); a point is {_bin_words(per_bin)}.")
    layers = [line]
    datasets = {"scores": _records(frame[["version", "start", "end", "score"]])}
    if parting is not None and parting >= 0:
        layers.append(_rule(parting, datasets))
        words += f" The dashed line marks the parting step {parting}."
    spec = VegaLite({"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "usermeta": _canvas(),
                     "title": "Contributions: original and edited", "width": width, "height": 160, "layer": layers,
                     "datasets": datasets})
    spec.description = words
    return spec


def paths_chart(paths: pd.DataFrame, *, per_bin: int = 1, parting: int | None = None, width: int = 420,
                height: int = 340) -> VegaLite:
    """The original's and the edited sequence's paths through one PCA picture (the frame of
    :func:`rnnviz_core.whatif.edited_paths`), each point the mean of ``per_bin`` consecutive steps;
    a ring marks each path's first point."""
    pcs = [c for c in ("pc1", "pc2") if c in paths]
    binned = []
    for name in ("original", "edited"):
        g = paths[paths["version"] == name].sort_values("step")
        if not len(g):
            continue
        step = g["step"].to_numpy()
        b = step // per_bin
        _, first, counts = np.unique(b, return_index=True, return_counts=True)   # bins in step order
        cols = {"version": name, "start": step[first], "end": step[first + counts - 1] + 1}
        for c in pcs:
            cols[c] = np.add.reduceat(g[c].to_numpy(dtype=np.float64), first) / counts   # bin means
        binned.append(pd.DataFrame(cols))
    fr = pd.concat(binned, ignore_index=True)
    evr = paths.attrs.get("explained_variance_ratio") or []
    xt = f"PC1 ({evr[0]:.0%} of the original's variance)" if len(evr) > 0 else "PC1"
    yt = f"PC2 ({evr[1]:.0%})" if len(evr) > 1 else "PC2"
    colour = {"field": "version", "type": "nominal", "title": None,
              "scale": {"domain": ["original", "edited"], "range": ["#7f7f7f", "#d62728"]}}
    enc = {"x": {"field": "pc1", "type": "quantitative", "title": xt, "scale": {"zero": False}},
           "y": {"field": "pc2" if "pc2" in fr else "pc1", "type": "quantitative", "title": yt,
                 "scale": {"zero": False}},
           "color": colour}
    line = {"data": {"name": "paths"},
            "mark": {"type": "line", "point": {"size": 18}, "strokeWidth": 1.5},
            "encoding": dict(enc, order={"field": "start", "type": "quantitative"},
                             strokeDash={"field": "version", "type": "nominal", "legend": None,
                                         "scale": {"domain": ["original", "edited"], "range": [[1, 0], [5, 3]]}},
                             tooltip=[{"field": "version", "type": "nominal"},
                                      {"field": "start", "type": "quantitative", "title": "from step"},
                                      {"field": "end", "type": "quantitative", "title": "to step (excl.)"}])}
    first = fr.groupby("version", sort=False).head(1)
    ring = {"data": {"name": "first"},
            "mark": {"type": "point", "size": 120, "strokeWidth": 2, "filled": False}, "encoding": enc}
    n = {v: int(g["step"].max()) + 1 for v, g in paths.groupby("version")}
    words = (f"Paths of the original ({n.get('original', 0)} steps, grey, solid) and the edited sequence "
             f"({n.get('edited', 0)} steps, red, dashed) in one PCA basis fitted on the original's states; a point "
             f"is {_bin_words(per_bin)}, a ring marks each path's first point.")
    if parting is not None and parting >= 0:
        words += f" The paths coincide before step {parting}, where the edited states part from the original."
    spec = VegaLite({"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "usermeta": _canvas(),
                     "title": "Paths in one PCA picture", "width": width, "height": height,
                     "layer": [line, ring],
                     "datasets": {"paths": _records(fr[["version", "start", "end", *pcs]]),
                                  "first": _records(first[["version", *pcs]])}})
    spec.description = words
    return spec
