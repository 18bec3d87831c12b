"""Findings in words about when the model makes up its mind and how far back it looks.

Sentences for the findings box of the Contributions page, from the frame of
:func:`rnnviz_core.horizons.horizon` (per sequence) and of
:func:`rnnviz_core.horizons.compare_horizons` (per group, the statistics of the Saturation page).

* :func:`horizon_pair_findings` — per sequence A / B: "A is decided at step 12 of 30 and stays;
  90% of its contribution mass lies in its last 6 steps".
* :func:`horizon_group_findings` — per group: "wrong sequences are decided 6.0 steps later than
  correct ones", only when the false-discovery-adjusted p-value is below :data:`ALPHA`;
  otherwise "does not clearly differ".

Regression has no class to settle on. Here "decided" means: the output of every prefix from
that step on lies within ``tol`` of the final output; :func:`regression_tolerance` gives the
default, 5% of the spread (standard deviation) of the final outputs over the sequences given —
the rule :func:`rnnviz_core.horizons.decision_steps` applies when no ``tol`` is passed. The
sentences name the tolerance.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .groups import effect_words, format_p

__all__ = ["horizon_pair_findings", "horizon_group_findings", "regression_tolerance", "ALPHA", "REGRESSION_SHARE"]

#: a (corrected) p-value below this is reported as a difference
ALPHA = 0.05
#: regression: "decided" = within this share of the final outputs' standard deviation
REGRESSION_SHARE = 0.05


def regression_tolerance(final: Any) -> float:
    """How close to its final output a regression prefix must stay to count as decided:
    ``REGRESSION_SHARE`` of the standard deviation of ``final`` (the final outputs, [N]); when
    they do not vary, that share of their largest absolute value (as ``decision_steps``)."""
    f = np.asarray(final, dtype=np.float64).reshape(-1)
    f = f[np.isfinite(f)]
    if f.size == 0:
        return float("nan")
    spread = float(np.std(f)) if f.size > 1 else 0.0
    return REGRESSION_SHARE * spread if spread > 0 else REGRESSION_SHARE * max(float(np.abs(f).max()), 1e-12)


def _num(v: float) -> str:
    return f"{v:.3g}"


def _steps(k: float) -> str:
    k = int(k)
    return "its last step" if k == 1 else f"its last {k} steps"


def horizon_pair_findings(frame: pd.DataFrame | None, seqs: Sequence[Any], names: Sequence[str] = ("A", "B"), *,
                          method_label: str | None = None, regression: bool = False, tol: float | None = None,
                          words: Sequence[Sequence[str] | None] | None = None) -> list[str]:
    """One sentence per sequence of ``seqs`` (ids in ``frame["seq"]``), named by ``names``.

    Parameters
    ----------
    frame : :func:`rnnviz_core.horizons.horizon` output (``seq``, ``length``, ``decision_step``,
        ``horizon_90``).
    method_label : the contribution method the horizons come from, in words.
    regression : the decision is "within ``tol`` of the final output" (see the module docstring).
    words : a text model's words per sequence: the decision step is followed by its word.

    Steps count from 0, as the page's step axis does: "step 12 of 30" is the 13th of 30 steps.
    """
    out: list[str] = []
    if frame is None or not len(frame):
        return out
    wlist = list(words) if words is not None else [None] * len(seqs)
    by = f" by {method_label}" if method_label else ""
    for s, nm, ws in zip(seqs, names, wlist):
        rows = frame[frame["seq"] == s]
        if not len(rows):
            continue
        r = rows.iloc[0]
        L, d, h90 = int(r["length"]), int(r["decision_step"]), float(r["horizon_90"])
        word = f" ('{ws[d]}')" if ws is not None and 0 <= d < len(ws) and ws[d] else ""
        if regression:
            near = f"within {_num(tol)} of its final value" if tol is not None and np.isfinite(tol) else \
                "near its final value"
            if d == 0:
                head = f"{nm}'s output is {near} from the first step on"
            elif d >= L - 1:
                head = f"{nm}'s output comes {near} only at its last step ({d} of {L})"
            else:
                head = f"{nm}'s output comes {near} at step {d}{word} of {L} and stays there"
        else:
            if d == 0:
                head = f"{nm}'s answer is the same from the first step on"
            elif d >= L - 1:
                head = f"{nm} is decided only at its last step ({d} of {L})"
            else:
                head = f"{nm} is decided at step {d}{word} of {L} and stays"
        if np.isfinite(h90):
            tail = f"; 90% of the contribution mass{by} lies in {_steps(h90)}"
            tail += " (all of them)" if int(h90) >= L and L > 1 else ""
        else:
            tail = f"; it has no contribution mass{by}, so no horizon"
        out.append(head + tail + ".")
    return out


def _cap(text: str) -> str:
    text = str(text)
    return text[:1].upper() + text[1:]


def _who(group: str, first: bool) -> str:
    """A group as the subject or object of a sentence: "wrong sequences" / "wrong ones", or for a
    range group ("error 0.01 to 0.05") "sequences with error 0.01 to 0.05" / "those with ..."."""
    if any(group.startswith(w + " ") for w in ("error", "true value", "prediction")):
        return f"{'Sequences' if first else 'those'} with {group}"
    return f"{_cap(group)} sequences" if first else f"{group} ones"


def _pair_words(ga: str, gb: str) -> str:
    if _who(ga, True).startswith("Sequences with"):
        return f"sequences with {ga} and with {gb}"
    return f"{ga} and {gb} sequences"


def horizon_group_findings(cmp: pd.DataFrame | None, *, method_label: str | None = None) -> list[str]:
    """Sentences comparing groups A and B from :func:`rnnviz_core.horizons.compare_horizons`.

    Reads the ``decision_step`` and ``horizon_90`` rows; a difference is claimed only when
    ``p_adjusted`` (``p_value`` when absent) is below :data:`ALPHA` and both groups hold at least 2
    sequences; the effect size follows in words. Otherwise the sentence says there is no clear
    difference.
    """
    out: list[str] = []
    if cmp is None or not len(cmp):
        return out
    rows = cmp.set_index("metric")
    pcol = "p_adjusted" if "p_adjusted" in cmp.columns else "p_value"
    by = f" by {method_label}" if method_label else ""
    for metric in ("decision_step", "horizon_90"):
        if metric not in rows.index:
            continue
        r = rows.loc[metric]
        ga, gb = str(r["group_a"]), str(r["group_b"])
        ma, mb, p = float(r["mean_a"]), float(r["mean_b"]), float(r[pcol])
        if not (r["n_a"] >= 2 and r["n_b"] >= 2 and np.isfinite([ma, mb, p]).all()):
            continue
        word = effect_words(r["effect_size"], r["effect_name"]) if "effect_size" in r else ""
        size = f", a {word} difference" if word and word != "negligible" else \
            (", though the difference is negligible in size" if word == "negligible" else "")
        if p < ALPHA and ma != mb:
            hi, lo, mhi, mlo = (ga, gb, ma, mb) if ma > mb else (gb, ga, mb, ma)
            if metric == "decision_step":
                out.append(f"{_who(hi, True)} are decided {mhi - mlo:.1f} steps later than {_who(lo, False)} on average "
                           f"(step {mhi:.1f} vs {mlo:.1f}, {format_p(p)}{size}).")
            else:
                out.append(f"{_who(hi, True)} look further back than {_who(lo, False)}: 90% of their contribution "
                           f"mass{by} lies in their last {mhi:.1f} steps on average vs {mlo:.1f} "
                           f"({format_p(p)}{size}).")
        elif metric == "decision_step":
            out.append(f"The decision step does not clearly differ between {_pair_words(ga, gb)} (step {ma:.1f} vs "
                       f"{mb:.1f} on average, {format_p(p)}).")
    return out
