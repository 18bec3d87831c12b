"""Two trained models on the same sequences: do they agree, and do they saturate alike?"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..arrays import as_states, valid_mask
from ..errors import InputError
from ..saturation import DEFAULT_THRESHOLD, check_threshold, group_time_mean, per_step_fraction
from .intervals import corr_ci, share_ci
from .outcomes import logits_array, class_probabilities, resolve_task


# ----------------------------------------------------------------------------- reproducibility
def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def reproducibility(
    states_a: Any,
    states_b: Any,
    *,
    logits_a: Any = None,
    logits_b: Any = None,
    lengths: Any = None,
    groups: Any = None,
    task: str = "auto",
    threshold: float = DEFAULT_THRESHOLD,
) -> pd.DataFrame:
    """Do two models of the same task (two seeds, two checkpoints) agree, per group?

    ``states_a``/``states_b`` are the two models' states [N, T, H] on the same sequences (or
    their Traces, which also supply the logits). Units of two trained models do not
    correspond one to one, so saturation is compared through quantities that do not depend on
    unit order:

    * ``agreement``: share of the group's sequences where both predict the same class
      (regression: NaN);
    * ``sat_corr_sequences``: Pearson correlation, over the group's sequences, between the
      two models' per-sequence saturated shares (do the same sequences saturate in both?);
    * ``sat_corr_time``: Pearson correlation between the two models' mean saturated share per
      step (does saturation rise and fall at the same steps?);
    * ``sat_mean_a``, ``sat_mean_b``: the two models' mean saturated share.

    ``groups``: one label per sequence (None: a single group "all"). An ``"all"`` row over every
    sequence is appended when there are several groups. Correlations are NaN when a side is
    constant or has fewer than 2 values.
    """
    la = lengths if lengths is not None or not hasattr(states_a, "lengths") else states_a.lengths
    if logits_a is None and hasattr(states_a, "logits"):
        logits_a = states_a.logits
    if logits_b is None and hasattr(states_b, "logits"):
        logits_b = states_b.logits
    arr_a, lens = as_states(states_a, la, name="states_a")
    arr_b, lens_b = as_states(states_b, lens, name="states_b")
    n = arr_a.shape[0]
    if arr_b.shape[:2] != arr_a.shape[:2]:
        raise InputError("The two models' states must cover the same sequences and steps.")
    thr = check_threshold(threshold)
    step_a = per_step_fraction(arr_a, lens, thr)  # (N, T), 0 at padding
    step_b = per_step_fraction(arr_b, lens, thr)
    sat_a = step_a.sum(axis=1) / lens  # share of the sequence's unit-steps saturated
    sat_b = step_b.sum(axis=1) / lens
    mask = valid_mask(lens, arr_a.shape[1])
    agree = np.full(n, np.nan)
    if logits_a is not None and logits_b is not None:
        za, zb = logits_array(logits_a), logits_array(logits_b)
        if za.shape[0] != n or zb.shape[0] != n:
            raise InputError("logits_a and logits_b must hold one output per sequence.")
        ta = resolve_task(za, task)
        pa, pb = class_probabilities(za, ta), class_probabilities(zb, ta)
        if pa is not None and pb is not None and pa.shape == pb.shape:
            agree = (pa.argmax(1) == pb.argmax(1)).astype(float)
    labels = np.full(n, "all", dtype=object) if groups is None else np.asarray(groups, dtype=object)
    if labels.shape != (n,):
        raise InputError(f"groups must hold one label per sequence ({n}).")
    over_a = group_time_mean(step_a, mask, labels)
    over_b = group_time_mean(step_b, mask, labels)
    time = over_a.merge(over_b, on=["group", "step"], suffixes=("_a", "_b"))
    names = list(pd.unique(labels))
    try:
        names = sorted(names)
    except TypeError:
        pass
    rows = []
    for name in names:
        sel = labels == name
        t_g = time[time["group"] == name]
        rows.append(_repro_row(name, agree[sel], sat_a[sel], sat_b[sel], t_g["frac_saturated_a"].to_numpy(),
                               t_g["frac_saturated_b"].to_numpy()))
    if len(names) > 1:
        all_a = group_time_mean(step_a, mask, None)["frac_saturated"].to_numpy()
        all_b = group_time_mean(step_b, mask, None)["frac_saturated"].to_numpy()
        rows.append(_repro_row("all", agree, sat_a, sat_b, all_a, all_b))
    return pd.DataFrame(rows)


def _repro_row(name: Any, agree: np.ndarray, sat_a: np.ndarray, sat_b: np.ndarray, time_a: np.ndarray,
               time_b: np.ndarray) -> dict[str, Any]:
    ok = np.isfinite(agree)
    ag_ci = share_ci(int(agree[ok].sum()), int(ok.sum())) if ok.any() else (np.nan, np.nan)
    cs, ct = corr_ci(sat_a, sat_b), corr_ci(time_a, time_b)
    return {"group": name, "size": int(sat_a.size),
            "agreement": float(np.nanmean(agree)) if ok.any() else np.nan,
            "sat_corr_sequences": _pearson(sat_a, sat_b), "sat_corr_time": _pearson(time_a, time_b),
            "sat_mean_a": float(sat_a.mean()), "sat_mean_b": float(sat_b.mean()),
            "agreement_low": ag_ci[0], "agreement_high": ag_ci[1],
            "sat_corr_sequences_low": cs[0], "sat_corr_sequences_high": cs[1],
            "sat_corr_time_low": ct[0], "sat_corr_time_high": ct[1]}


def compare_models(
    model_a: Any,
    model_b: Any,
    x: Any,
    lengths: Any = None,
    *,
    groups: Any = None,
    task: str = "auto",
    threshold: float = DEFAULT_THRESHOLD,
    device: Any = "auto",
) -> pd.DataFrame:
    """Trace two models of the same task on the same sequences and call :func:`reproducibility`
    (prediction agreement and saturation-profile correlations per group)."""
    from ..trace import trace

    tr_a = trace(model_a, x, lengths, device=device)
    tr_b = trace(model_b, x, lengths, device=device)
    return reproducibility(tr_a, tr_b, groups=groups, task=task, threshold=threshold)
