"""Tables people read, and the one formatter of p-values and effect sizes that every table and
finding uses (:func:`format_p`, :func:`effect_words`, :func:`format_effect`). Every p-value shown
is the corrected one (``p_adjusted``) where the frame has it."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..errors import InputError


# ----------------------------------------------------------------------------- tables for people
#: plain names of the per-sequence measures (resilience columns "change: <condition>" are named
#: "output change under <condition>")
METRIC_NAMES = {
    "correct": "accuracy (share correct)", "loss": "loss", "abs_error": "error (distance from the true value)",
    "confidence": "confidence",
    "frac_saturated": "share of unit-steps saturated", "frac_saturated_final": "share of units saturated at the last step",
    "output_change": "change of the answer under damage", "flipped": "share of answers that flip",
}
_PERCENT_METRICS = {"correct", "confidence", "frac_saturated", "frac_saturated_final", "flipped"}
_EFFECT_CUTS = {"rank-biserial r": (0.1, 0.3, 0.5), "Cohen's d": (0.2, 0.5, 0.8), "Cohen's h": (0.2, 0.5, 0.8)}


def _metric_name(m: str) -> str:
    m = str(m)
    if m.startswith("change: "):
        return "output change under " + m[len("change: "):]
    if m.endswith("_left"):
        return f"share of steps gate {m[:-5]} is nearly shut"
    if m.endswith("_right"):
        return f"share of steps gate {m[:-6]} is nearly open"
    return METRIC_NAMES.get(m, m.replace("_", " "))


def _is_percent(m: str) -> bool:
    return str(m) in _PERCENT_METRICS or str(m).endswith(("_left", "_right"))


def p_column(frame: pd.DataFrame) -> str:
    """The p-value a page shows from a frame of tests: the corrected ``p_adjusted`` where the frame
    has it (:func:`rnnviz_core.analyses.compare.compare_groups` adds it), else ``p_value``."""
    return "p_adjusted" if "p_adjusted" in frame.columns else "p_value"


def format_p(p: float) -> str:
    """A p-value for people: "p < 0.001", "p = 0.004", "p = 0.32"; "" when there is none."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(p):
        return ""
    if p < 0.001:
        return "p < 0.001"
    if p < 0.01:
        return f"p = {p:.3f}"
    return f"p = {min(p, 1.0):.2f}"


def effect_words(effect: float, name: str) -> str:
    """An effect size in a word: "negligible", "small", "medium" or "large" (rank-biserial r:
    0.1 / 0.3 / 0.5; Cohen's d and h: 0.2 / 0.5 / 0.8); "" when there is none."""
    try:
        e = abs(float(effect))
    except (TypeError, ValueError):
        return ""
    cuts = _EFFECT_CUTS.get(str(name))
    if cuts is None or np.isnan(e):
        return ""
    if e < cuts[0]:
        return "negligible"
    if e < cuts[1]:
        return "small"
    if e < cuts[2]:
        return "medium"
    return "large"


def format_effect(effect: float, name: str) -> str:
    """An effect size in a word with its value: "small (rank-biserial r 0.24)"; "" when there is none."""
    word = effect_words(effect, name)
    return f"{word} ({name} {float(effect):.2f})" if word else ""


def _fmt(v: float, percent: bool) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return ""
    if not np.isfinite(v):
        return ""
    return f"{v:.1%}" if percent else f"{v:.3g}"


def _with_interval(v: float, lo: float, hi: float, percent: bool) -> str:
    text = _fmt(v, percent)
    if text and np.isfinite(lo) and np.isfinite(hi) and lo != hi:
        text += f" ({_fmt(lo, percent)} to {_fmt(hi, percent)})"
    return text


def _effect_text(row: Mapping[str, Any]) -> str:
    word = effect_words(row.get("effect_size"), row.get("effect_name"))
    if not word:
        return ""
    e = float(row["effect_size"])
    name = row.get("effect_name")
    if name == "rank-biserial r":
        return f"{word}: A higher in {(e + 1) / 2:.0%} of pairs"
    if name == "Cohen's h":
        return f"{word}: {100 * (row['mean_a'] - row['mean_b']):+.1f} points"
    if name == "Cohen's d":
        return f"{word}: {e:+.2f} standard deviations"
    return word


def comparison_table(cmp: pd.DataFrame) -> pd.DataFrame:
    """The frame of :func:`compare_groups` as a table people read: one row per measure, plain
    column names, each group's mean with its 95% interval, the difference, whether it could be
    chance (false-discovery-corrected p formatted as "p < 0.001") and how big it is in words.
    Empty cells where a figure cannot be computed (never "None")."""
    need = ["metric", "group_a", "group_b", "n_a", "n_b", "mean_a", "mean_b", "p_value", "effect_size", "effect_name"]
    missing = [c for c in need if c not in cmp.columns]
    if missing:
        raise InputError(f"comparison_table needs the frame of compare_groups (missing {', '.join(missing)}).")
    if cmp.empty:
        return pd.DataFrame(columns=["Measure", "Group A", "Group B", "Difference (A − B)", "Could it be chance?",
                                     "How big", "Sequences (A / B)"])
    ga, gb = str(cmp["group_a"].iloc[0]), str(cmp["group_b"].iloc[0])
    rows = []
    pcol = p_column(cmp)
    for _, r in cmp.iterrows():
        pct = _is_percent(r["metric"])
        rows.append({
            "Measure": _metric_name(r["metric"]),
            f"A: {ga}": _with_interval(r["mean_a"], r.get("ci_a_low", np.nan), r.get("ci_a_high", np.nan), pct),
            f"B: {gb}": _with_interval(r["mean_b"], r.get("ci_b_low", np.nan), r.get("ci_b_high", np.nan), pct),
            "Difference (A − B)": (f"{100 * (r['mean_a'] - r['mean_b']):+.1f} points" if pct and
                                   np.isfinite(r["mean_a"] - r["mean_b"]) else
                                   (f"{r['mean_a'] - r['mean_b']:+.3g}" if np.isfinite(r["mean_a"] - r["mean_b"]) else "")),
            "Could it be chance?": format_p(r[pcol]),
            "How big": _effect_text(r),
            "Sequences (A / B)": f"{int(r['n_a'])} / {int(r['n_b'])}",
        })
    out = pd.DataFrame(rows)
    out.attrs["caption"] = (
        "One row per measure: each group's average with its 95% interval in brackets, their difference, how likely "
        f"a difference this large is by chance alone (corrected for testing {len(out)} measures at once; below "
        "0.05 is unlikely to be chance) and how big the difference is in words, which matters more with many "
        "sequences.")
    return out


_SUMMARY_NAMES = {
    "accuracy": ("Accuracy", True), "mean_abs_error": ("Average error", False), "mean_loss": ("Average loss", False), "mean_confidence": ("Average confidence", True),
    "sat_mean": ("Saturated share of unit-steps", True), "sat_median": ("Median saturated share", True),
    "sat_final_mean": ("Units saturated at the last step", True),
    "share_fully_saturated": ("Fully saturated sequences", True),
    "mean_output_change": ("Change of the answer under damage", False), "flip_rate": ("Answers that flip", True),
}


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The frame of :func:`group_summary` as a table people read: plain column names, shares in
    %, each figure with its 95% interval in brackets, empty cells where a figure is missing."""
    if "group" not in summary.columns or "size" not in summary.columns:
        raise InputError("summary_table needs the frame of group_summary.")
    out = pd.DataFrame({"Group": summary["group"].astype(str).to_numpy(),
                        "Sequences": summary["size"].astype(int).to_numpy()})
    if "share" in summary:
        out["Share of all"] = [_fmt(v, True) for v in summary["share"]]
    for col, (name, pct) in _SUMMARY_NAMES.items():
        if col not in summary:
            continue
        lo = summary.get(f"{col}_low", pd.Series(np.nan, index=summary.index))
        hi = summary.get(f"{col}_high", pd.Series(np.nan, index=summary.index))
        out[name] = [_with_interval(v, a, b, pct) for v, a, b in zip(summary[col], lo, hi)]
    out.attrs["caption"] = "One row per group; brackets hold the 95% interval of each figure (narrow = reliable)."
    return out


def reproducibility_table(rep: pd.DataFrame) -> pd.DataFrame:
    """The frame of :func:`reproducibility` as a table people read (plain names, no
    ``sat_corr_sequences``), with 95% intervals where they are computed; empty cells where a
    figure cannot be computed."""
    if "group" not in rep.columns:
        raise InputError("reproducibility_table needs the frame of reproducibility.")

    def col(name: str, pct: bool) -> list[str]:
        lo = rep.get(f"{name}_low", pd.Series(np.nan, index=rep.index))
        hi = rep.get(f"{name}_high", pd.Series(np.nan, index=rep.index))
        return [_with_interval(v, a, b, pct) for v, a, b in zip(rep[name], lo, hi)]

    out = pd.DataFrame({"Group": rep["group"].astype(str).to_numpy(), "Sequences": rep["size"].astype(int).to_numpy(),
                        "Same answer from both models": col("agreement", True),
                        "Do the same sequences saturate? (correlation)": col("sat_corr_sequences", False),
                        "Does saturation rise at the same steps? (correlation)": col("sat_corr_time", False),
                        "Saturated share, loaded model": [_fmt(v, True) for v in rep["sat_mean_a"]],
                        "Saturated share, second model": [_fmt(v, True) for v in rep["sat_mean_b"]]})
    out.attrs["caption"] = (
        "One row per group: how often the two models give the same answer, and whether saturation picks the same "
        "sequences and the same steps in both (correlation 1 = exactly, 0 = unrelated); empty cells could not be "
        "computed (too few sequences, or a side that never changes); brackets hold 95% intervals.")
    return out


def resilience_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The frame of :func:`resilience_summary` with plain column names and 95% intervals."""
    if not {"condition", "group", "size"} <= set(summary.columns):
        raise InputError("resilience_table needs the frame of resilience_summary.")
    out = pd.DataFrame({"Damage": summary["condition"].astype(str).to_numpy(),
                        "Group": summary["group"].astype(str).to_numpy(),
                        "Sequences": summary["size"].astype(int).to_numpy()})
    for col, (name, pct) in (("mean_output_change", ("Average change of the answer", False)),
                             ("median_output_change", ("Median change of the answer", False)),
                             ("flip_rate", ("Answers that flip", True))):
        if col in summary:
            lo = summary.get(f"{col}_low", pd.Series(np.nan, index=summary.index))
            hi = summary.get(f"{col}_high", pd.Series(np.nan, index=summary.index))
            out[name] = [_with_interval(v, a, b, pct) for v, a, b in zip(summary[col], lo, hi)]
    return out
