"""The play control: sequence A's and B's heatmaps on one step scale, a step frame that Play/Stop
and a slider move through both at once, like the blog's animated heatmaps.

Why a custom component (``st.components.v2``, inline JS + canvas, ``play.js`` beside this file)
and not the alternatives, measured in Streamlit 1.67 (``bench/bench_play.py``):

- Vega-Lite 6's timer animation refuses layered and concatenated charts, which both heatmaps with
  a frame are.
- A server loop (``st.fragment(run_every=...)``) redraws the chart through a script run per step:
  a few frames a second at best, server CPU for every frame, and jerky over a slow network.
- Plotly frames would add a dependency for one control.

The canvas draws each heatmap once into a one-pixel-per-cell bitmap; a frame is then a clear and
one rectangle per panel, so playing costs the server nothing and the browser well under a
millisecond per frame. Nothing is fetched from outside at run time.
"""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["play_heatmaps", "play_caption", "panel", "token_panel", "steps_per_second", "shared_domain",
           "MAX_PLAY_COLUMNS", "MAX_PLAY_ROWS"]

#: the most step columns the control draws (the canvas is ~900 px wide): longer sequences are
#: drawn in columns of several steps (their mean), so 10,000 steps x 1,024 units stay smooth
MAX_PLAY_COLUMNS = 800
#: the most unit rows per heatmap (the most active ones beyond that)
MAX_PLAY_ROWS = 128

_HERE = Path(__file__).resolve().parent
_JS = (_HERE / "play.js").read_text(encoding="utf-8")
_CSS = (_HERE / "play.css").read_text(encoding="utf-8")
_COMPONENT = None


def steps_per_second(max_step: int) -> int:
    """The "normal" speed: a full pass in about 12 s, between 4 and 30 steps a second."""
    return int(np.clip(round((max_step + 1) / 12), 4, 30))


def shared_domain(a: Any, b: Any, steps_a: int, steps_b: int) -> tuple[float, float]:
    """(-m, m) with m the largest |value| over A's and B's real steps: one diverging colour range
    for both heatmaps (1 when there is no finite value)."""
    vals = np.concatenate([np.asarray(a, dtype=np.float64)[:steps_a].ravel(),
                           np.asarray(b, dtype=np.float64)[:steps_b].ravel()])
    m = float(np.nanmax(np.abs(vals))) if vals.size and np.isfinite(vals).any() else 1.0
    m = m if np.isfinite(m) and m > 0 else 1.0
    return (-m, m)


def _component():
    global _COMPONENT
    if _COMPONENT is None:
        import streamlit as st
        _COMPONENT = st.components.v2.component("rnnviz_play", js=_JS, css=_CSS)
    return _COMPONENT


def _b64(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def panel(values: Any, steps: int, *, title: str, domain: tuple[float, float], labels: Sequence[str] | None = None,
          marks: Sequence[int] = (), group: str | None = None, cell_h: int | None = None,
          legend: str = "value", strip: bool = False, raw: Any = None) -> dict:
    """One heatmap panel for :func:`play_heatmaps`.

    Parameters
    ----------
    values : array [T, R]
        One row per step (T >= ``steps``), one column per heatmap row (unit, feature); steps from
        ``steps`` on are not drawn.
    steps : the sequence's real length.
    title : shown above the panel, as text.
    domain : (low, high) of the colour scale; a signed scale (low < 0 < high) is diverging
        red/blue, an unsigned one (low >= 0) a neutral grey ramp.
    labels : R row labels (default ``"unit 0"`` ...).
    marks : steps to flag with a small triangle above the panel (e.g. true marked steps).
    group : the sequence the panel belongs to ("A", "B"): named when the frame passes its end.
    cell_h : pixels per row (default: chosen by :func:`play_heatmaps` to fit its height).
    legend : the colour bar's name.
    strip : True for an input strip (drawn above a heatmap; the colour bar shown is the heatmaps').
    raw : array like ``values`` whose numbers the hover text shows (e.g. inputs before scaling).
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"panel values must be [steps, rows]; got shape {arr.shape}.")
    steps = int(steps)
    if not 1 <= steps <= arr.shape[0]:
        raise ValueError(f"steps must be between 1 and {arr.shape[0]}; got {steps}.")
    lo, hi = float(domain[0]), float(domain[1])
    if not lo < hi:
        raise ValueError(f"domain must be (low, high) with low < high; got {domain}.")
    rows = arr.shape[1]
    labels = [str(x) for x in labels] if labels is not None else [f"unit {i}" for i in range(rows)]
    if len(labels) != rows:
        raise ValueError(f"{rows} rows but {len(labels)} labels.")
    grid = arr[:steps].T  # (R, T) row-major: one heatmap row per unit
    tips = None
    if raw is not None:
        r = np.asarray(raw, dtype=np.float64).reshape(arr.shape[0], -1)
        tips = _b64(r[:steps].T)
    from rnnviz_core.display import distinct_labels
    short = distinct_labels(labels, 10)   # fits the 64 px label column; the hover names each row whole
    return {"title": str(title), "rows": rows, "steps": steps, "values": _b64(grid), "lo": lo, "hi": hi,
            "short": short if short != labels else None,
            "signed": bool(lo < 0 < hi), "labels": labels, "marks": sorted({int(m) for m in marks if 0 <= int(m) < steps}),
            "group": group, "cell_h": cell_h, "legend": str(legend), "strip": bool(strip), "raw": tips, "_extent": (float(np.nanmin(grid)) if np.isfinite(grid).any() else None,
                                                          float(np.nanmax(grid)) if np.isfinite(grid).any() else None)}


def token_panel(tokens: Sequence[str], *, title: str, group: str | None = None) -> dict:
    """A strip of words, one per step (a text model's input), for :func:`play_heatmaps` ``strips``.
    The words are drawn as text (never markup), cut to the column's width; the hover shows each whole."""
    words = [str(t) for t in tokens]
    if not words:
        raise ValueError("a token strip needs at least one token.")
    return {"title": str(title), "rows": 1, "steps": len(words), "values": "", "lo": 0.0, "hi": 1.0, "signed": False,
            "labels": ["word"], "marks": [], "group": group, "cell_h": 18, "legend": "", "strip": True, "raw": None,
            "tokens": words, "_extent": (None, None)}


def _decode(b64: str, rows: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<f4").astype(np.float64).reshape(rows, -1)


def _bin_panel(p: dict, k: int) -> dict:
    """A panel of :func:`panel` or :func:`token_panel` with its steps in columns of ``k`` (mean;
    a column of words shows its first word, the hover lists them)."""
    from rnnviz_core import display as dp
    q = dict(p)
    bins = dp.StepBins(0, int(p["steps"]), int(k))
    q["steps"] = bins.n_cols
    q["marks"] = sorted({int(m) // k for m in p.get("marks", ())})
    if p.get("tokens") is not None:
        words = list(p["tokens"])
        q["tokens"] = [dp.short_label(words[s], 12) + ("…" if k > 1 and not words[s].endswith("…") else "")
                       for s in bins.starts()]
        q["token_tips"] = dp.bin_words(words, bins, max_chars=80)
        return q
    grid = _decode(p["values"], int(p["rows"]))
    q["values"] = _b64(dp.bin_steps(grid.T, bins, "mean").T)
    if p.get("raw"):
        q["raw"] = _b64(dp.bin_steps(_decode(p["raw"], int(p["rows"])).T, bins, "mean").T)
    return q


def play_caption(steps_a: int, steps_b: int, colour_domain: tuple[float, float],
                 extent: tuple[float | None, float | None], *, rows: str = "hidden unit", k: int = 1,
                 start: int = 0, units: tuple[int, int] | None = None) -> str:
    """The control's caption, computed from what it draws (lengths, colour range, data extremes,
    the steps per column ``k``, the first step drawn ``start`` and (units drawn, units) when only
    some are drawn)."""
    lo, hi = (float(x) for x in colour_domain)
    dmin, dmax = extent
    same = steps_a == steps_b
    length = (f"both sequences have {steps_a} steps" if same else
              f"A has {steps_a} steps and B {steps_b}, drawn on one step scale so a column is the same step in both "
              f"and the shorter heatmap is narrower")
    if lo < 0 < hi:
        colours = f"red is high and blue low on a colour bar from {lo:.2g} to {hi:.2g}, white near zero"
    else:
        colours = f"darker is larger on a grey scale from {lo:.2g} to {hi:.2g}"
    seen = "" if dmin is None else f"; the values shown run from {dmin:.2g} to {dmax:.2g}"
    column = "one step" if k <= 1 else f"{k} steps (the value shown is the mean over them)"
    window = "" if start <= 0 else f" Steps from {start} on are drawn."
    few = "" if units is None or units[0] >= units[1] else \
        f" Only the {units[0]} most active of the {units[1]:,} units are drawn."
    return (f"Each row is one {rows} and each column {column}; {length}. The colour is the value: {colours}{seen}."
            f"{window}{few} Press Play to move the black frame through both sequences at once, Stop to hold it, or "
            "drag the slider.")


def play_heatmaps(a: Any, b: Any, *, steps_a: int, steps_b: int, colour_domain: tuple[float, float],
                  key: str, titles: Sequence[str] = ("A", "B"), labels: Sequence[str] | None = None,
                  strips: Sequence[dict | None] = (None, None), marks: Sequence[Sequence[int]] = ((), ()),
                  width: int = 900, max_height: int = 560, start: int | None = None, rows: str = "hidden unit",
                  legend: str = "state value", marks_legend: str = "marked step", step0: int = 0,
                  max_columns: int = MAX_PLAY_COLUMNS, max_rows: int = MAX_PLAY_ROWS,
                  n_units_total: int | None = None) -> str:
    """Draw A's and B's heatmaps stacked on one step scale with Play/Stop, a step slider and speed.

    Parameters
    ----------
    a, b : arrays [T, U]
        Each sequence's states (or any per-step rows), one row per step.
    steps_a, steps_b : the sequences' real lengths (steps from there on are not drawn).
    colour_domain : (low, high), shared by both heatmaps.
    key : the Streamlit element key (unique on the page).
    titles : the two panels' titles (shown as text).
    labels : U row labels (default ``"unit i"``).
    strips : optional input-strip panels (from :func:`panel`) drawn above A's and B's heatmaps on
        the same step scale.
    marks : steps to flag above each heatmap (the marker demo's true steps).
    width : fallback pixels for the step axis (the control fits the width it is given).
    max_height : pixels for all panels together.
    start : the step the frame starts on (default the last step).
    rows : what one heatmap row is, for the caption.
    legend, marks_legend : the colour bar's name; what a triangle above a heatmap means.
    step0 : the step the arrays' first row is (a window into longer sequences): labels count from it.
    max_columns, max_rows : longer sequences are drawn in columns of several steps (their mean) and
        more units are cut to the most active ``max_rows`` (by variance over A and B), so the data
        sent to the browser stays small whatever the sizes; the caption says both.
    n_units_total : the units the rows were chosen from (when the caller passes only the most active
        ones), for the caption.

    Returns
    -------
    str
        The caption, computed from the lengths, colour range and values drawn.
    """
    from rnnviz_core import display as dp
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b.reshape(-1, 1)
    steps_a, steps_b = int(steps_a), int(steps_b)
    n_units = a.shape[1]
    if n_units > max_rows:
        keep = dp.top_rows(np.concatenate([a[:steps_a], b[:steps_b]]), max_rows)
        a, b = a[:, keep], b[:, keep]
        labels = [(list(labels) if labels is not None else [f"unit {i}" for i in range(n_units)])[i] for i in keep]
    k = dp.step_bins(max(steps_a, steps_b), max_columns=max_columns).k
    true_a, true_b = steps_a, steps_b
    if k > 1:
        a = dp.bin_steps(a[:steps_a], dp.StepBins(0, steps_a, k))
        b = dp.bin_steps(b[:steps_b], dp.StepBins(0, steps_b, k))
        steps_a, steps_b = a.shape[0], b.shape[0]
        strips = [None if p is None else _bin_panel(p, k) for p in strips]
        marks = [sorted({int(m) // k for m in mk}) for mk in marks]
        start = None if start is None else int(start) // k
    max_step = max(steps_a, steps_b) - 1
    n_strip = sum(s is not None for s in strips)
    units = a.shape[1] if a.ndim == 2 else 1
    strip_rows = sum(s["rows"] * (s.get("cell_h") or 6) for s in strips if s is not None)
    cell_h = int(np.clip((max_height - strip_rows - 60 * (2 + n_strip)) // max(2 * units, 1), 2, 14))
    panels = []
    for side, arr, steps, title, strip, mk in zip("AB", (a, b), (steps_a, steps_b), titles, strips, marks):
        if strip is not None:
            panels.append(dict(strip, group=side, strip=True))
        panels.append(panel(arr, steps, title=title, domain=colour_domain, labels=labels, marks=mk, group=side,
                            legend=legend))
    ext = [p["_extent"] for p in panels if not p["strip"]]
    lo = [e[0] for e in ext if e[0] is not None]
    hi = [e[1] for e in ext if e[1] is not None]
    for p in panels:
        p.pop("_extent", None)
    data = {"panels": panels, "max_step": max_step, "width": int(width), "cell_h": cell_h, "fps": steps_per_second(max_step),
            "marks_legend": marks_legend, "k": int(k), "step0": int(step0),
            "last_step": int(step0) + max(true_a, true_b) - 1,
            "start": max_step if start is None else int(start)}
    data["sig"] = hashlib.blake2b(repr(data).encode(), digest_size=12).hexdigest()
    _component()(key=key, data=data, height="content")
    return play_caption(true_a, true_b, colour_domain, (min(lo) if lo else None, max(hi) if hi else None), rows=rows,
                        k=k, start=step0, units=(a.shape[1], max(n_units, int(n_units_total or 0))))
