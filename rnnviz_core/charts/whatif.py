"""Charts of the What-if view: an edited sequence beside its original, at any length.

Steps are binned (at most ``max_bins`` columns; a cell is the mean of the steps in its bin) and
only the units the edit moved most are drawn, so a chart stays a few thousand rows at 10,000
steps and 1,024 units. (A local binning: to be unified with the shared binning of the charts
package.)
"""
from __future__ import annotations

from typing import Any, Sequence

import altair as alt
import numpy as np
import pandas as pd

__all__ = ["step_bins", "binned_states", "pick_units", "states_chart", "binned_scores", "scores_chart",
           "MAX_BINS", "MAX_UNITS"]

MAX_BINS = 100
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


def states_chart(frame: pd.DataFrame, *, parting: int | None = None, domain: tuple[float, float] = (-1.0, 1.0),
                 width: int = 480, title: str = "", units_why: str = "", per_bin: int = 1,
                 n_steps: int | None = None) -> alt.LayerChart | alt.Chart:
    """Units x steps heatmap of one version (binned); a rule at the parting step when given."""
    n_units = frame["unit"].nunique()
    own = int(frame["end"].max())                         # this version's steps
    steps = own if n_steps is None else int(n_steps)       # the shared step scale
    base = alt.Chart(frame).mark_rect().encode(
        x=alt.X("start:Q", title="step", scale=alt.Scale(domain=[0, max(1, steps)]),
                axis=alt.Axis(tickMinStep=1, format="d")),
        x2="end:Q",
        y=alt.Y("unit:N", title="unit", sort=sorted(frame["unit"].unique(), key=int)),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", domain=list(domain), reverse=True),
                        title="state value"),
        tooltip=[alt.Tooltip("unit:N"), alt.Tooltip("start:Q", title="from step"),
                 alt.Tooltip("end:Q", title="to step (excl.)"), alt.Tooltip("value:Q", format=".3f")],
    ).properties(width=width, height=max(60, min(260, 9 * n_units)), title=title)
    chart: Any = base
    words = (f"{title}: {units_why}, steps 0 to {own - 1}; a cell is {_bin_words(per_bin)}, "
             f"coloured from {domain[0]:g} (blue) to {domain[1]:g} (red).")
    if parting is not None and parting >= 0:
        rule = alt.Chart(pd.DataFrame({"step": [parting]})).mark_rule(color="black", strokeDash=[4, 3]).encode(
            x="step:Q")
        chart = alt.layer(base, rule)
        words += f" The dashed line marks step {parting}, where the edited states part from the original."
    return chart.properties(description=words)


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
                 per_bin: int = 1) -> alt.LayerChart | alt.Chart:
    """The contributions of the original and the edited sequence per step (binned), as two lines."""
    line = alt.Chart(frame).mark_line(point=per_bin == 1 and len(frame) <= 400, interpolate="step-after").encode(
        x=alt.X("start:Q", title="step", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("score:Q", title=f"{method} score"),
        color=alt.Color("version:N", title=None, scale=alt.Scale(domain=["original", "edited"],
                                                                 range=["#7f7f7f", "#d62728"])),
        tooltip=[alt.Tooltip("version:N"), alt.Tooltip("start:Q", title="from step"),
                 alt.Tooltip("score:Q", format=".4g")],
    ).properties(width=width, height=160, title="Contributions: original and edited")
    chart: Any = line
    n_steps = {v: int(g["end"].max()) for v, g in frame.groupby("version")}
    words = (f"{method} score of each step of the original ({n_steps.get('original', 0)} steps, grey) and the "
             f"edited sequence ({n_steps.get('edited', 0)} steps, red); a point is {_bin_words(per_bin)}.")
    if parting is not None and parting >= 0:
        rule = alt.Chart(pd.DataFrame({"step": [parting]})).mark_rule(color="black", strokeDash=[4, 3]).encode(
            x="step:Q")
        chart = alt.layer(line, rule)
        words += f" The dashed line marks the parting step {parting}."
    return chart.properties(description=words)
