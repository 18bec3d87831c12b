"""How far back does the model remember, and when does it make up its mind?

Per sequence (:func:`horizon`):

* ``decision_step``: the first step from which the model's answer on the prefix ``x[:t+1]``
  equals its final answer and stays equal up to the last real step. Classification: the
  predicted class (a single-logit model: the sign of the logit, as ``task="binary"`` in
  :mod:`rnnviz_core.groups`); regression: the output within ``tol`` of the final output
  (default: 5% of the final outputs' standard deviation over the sequences given).
* ``horizon_50`` / ``horizon_90``: how many steps back from the last real step (counting it)
  hold 50% / 90% of the sequence's absolute contribution mass ``sum_t |score_t|``. A model that
  uses only the last k steps has ``horizon_90 <= k``.

Which contributions: ``method="integrated_gradients"`` by default — its scores add up to the
change of the output from the baseline to the input (completeness), so "the share of the mass"
is a share of something the model really did; ``grad_x_state`` and ``grad_norm`` score the
*state* at a step, which carries everything before it, so they push the horizon to the end of
the sequence. Any method of :data:`rnnviz_core.METHODS` can be named, or precomputed ``scores``.

Per group, :func:`horizon_summary` gives the distributions and :func:`compare_horizons`
compares two groups with :func:`rnnviz_core.groups.compare_groups` (the tests the Saturation
page uses). :func:`damage_by_distance` answers "how resilient is the model to one damaged step,
as a function of how far before the end it is".
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .arrays import valid_mask
from .contributions import METHODS, contributions
from .engine import default_baseline_token, prepare, unwrap_model
from .errors import InputError
from .groups import assign_groups, compare_groups, resilience_summary, sequence_outcomes
from .restart import prepared_prefix_outputs

__all__ = ["horizon", "decision_steps", "horizons_from_scores", "horizon_summary", "compare_horizons",
           "damage_by_distance", "damage_summary", "HORIZON_METRICS", "DEFAULT_HORIZON_METHOD"]

DEFAULT_HORIZON_METHOD = "integrated_gradients"
#: the per-sequence columns that group comparisons test
HORIZON_METRICS = ("decision_step", "steps_after_decision", "horizon_50", "horizon_90")


def _answers(out: np.ndarray, task: str) -> tuple[np.ndarray, bool]:
    """Per row the answer to compare (class index or the output) and whether it is a class: the
    ``pred`` of :func:`~rnnviz_core.groups.sequence_outcomes` (the class of highest probability,
    or the output of a one-output regression), computed as it computes it, without its table (a
    bundle block asks this of every prefix of every sequence)."""
    from .analyses.outcomes import class_probabilities, logits_array, resolve_task

    arr = logits_array(out)
    probs = class_probabilities(arr, resolve_task(arr, task))
    if probs is None:
        flat = arr.reshape(arr.shape[0], -1)
        return (flat[:, 0] if flat.shape[1] == 1 else np.full(arr.shape[0], np.nan)), False
    return probs.argmax(axis=1), not bool(np.isnan(probs.max(axis=1)).any())


def decision_steps(prefix: np.ndarray, lengths: Any = None, *, task: str = "auto",
                   tol: float | None = None) -> np.ndarray:
    """``decision_step`` per sequence from prefix outputs ``prefix`` [N, T, K] (NaN past lengths).

    Returns int64 [N]: the first step t from which the prefix answer equals the final one at
    every step up to the last real step (see the module docstring for the answer compared).
    """
    given = np.asarray(prefix)
    arr = given.astype(np.float64)
    if arr.ndim == 2:
        arr = arr[..., None]
    n, T, k = arr.shape
    L = np.full(n, T, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
    flat = np.nan_to_num(arr.reshape(n * T, k))
    if task == "auto" and k == 1:
        task = "regression"
    if k > 1 and task in ("auto", "classification") and given.dtype.kind == "f" and given.dtype.itemsize <= 4:
        # the class of highest probability is the class of the largest logit, 10x sooner than the
        # probabilities of every prefix: softmax is monotone, equal logits tie to the first class
        # either way, and two float32 logits that differ keep different probabilities in float64
        # (the probabilities are computed in float64, where a float32 gap is far above rounding)
        ans, classes = flat.argmax(axis=1), True
    else:
        ans, classes = _answers(flat if k > 1 else flat[:, 0], task)
    ans = ans.astype(np.float64).reshape(n, T)
    rows = np.arange(n)
    final = ans[rows, L - 1]
    if classes:
        same = ans == final[:, None]
    else:
        if tol is None:
            spread = float(np.std(final)) if n > 1 else 0.0
            tol = 0.05 * spread if spread > 0 else 0.05 * max(float(np.abs(final).max()), 1e-12)
        same = np.abs(ans - final[:, None]) <= tol
    valid = valid_mask(L, T)
    differs = ~same & valid
    # the last step that differs, + 1 (0 when none differs)
    last_diff = np.where(differs.any(1), T - 1 - np.argmax(differs[:, ::-1], axis=1), -1)
    return (last_diff + 1).astype(np.int64)


def horizons_from_scores(scores: Any, lengths: Any = None, shares: Sequence[float] = (0.5, 0.9)) -> np.ndarray:
    """Steps back from the last real step holding each share of ``sum |score|``.

    ``scores`` [N, T] (NaN past lengths allowed); returns float64 [N, len(shares)]: for share q
    the smallest k such that the last k real steps hold at least q of the mass (NaN when a
    sequence's mass is 0).
    """
    s = np.abs(np.asarray(scores, dtype=np.float64))
    if s.ndim != 2:
        raise InputError(f"scores must be shaped [N, T]; got {s.shape}.", field="scores")
    n, T = s.shape
    L = np.full(n, T, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
    valid = valid_mask(L, T)
    s = np.where(valid & np.isfinite(s), s, 0.0)
    # reverse each sequence within its length: back[i, j] = s[i, L_i - 1 - j]
    if n and bool((L == T).all()):   # every sequence T steps long: each row reversed
        back = s[:, ::-1]
    else:
        idx = L[:, None] - 1 - np.arange(T)[None, :]
        back = np.where(idx >= 0, np.take_along_axis(s, np.clip(idx, 0, T - 1), 1), 0.0)
    cum = np.cumsum(back, 1)
    total = cum[:, -1]
    out = np.full((n, len(shares)), np.nan)
    for j, q in enumerate(shares):
        if not 0 < q <= 1:
            raise InputError(f"shares must lie in (0, 1]; got {q}.", field="shares")
        reach = cum >= q * total[:, None] * (1 - 1e-9)
        out[:, j] = np.where(total > 0, np.argmax(reach, axis=1) + 1, np.nan)
    return out


def horizon(
    model: nn.Module,
    x: Any,
    lengths: Any = None,
    method: str = DEFAULT_HORIZON_METHOD,
    *,
    scores: Any = None,
    task: str = "auto",
    tol: float | None = None,
    ids: Any = None,
    device: str | torch.device | None = "auto",
    batch_size: int | None = None,
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
    states: Any = None,
    **options,
) -> pd.DataFrame:
    """Decision step and memory horizon of every sequence.

    Parameters
    ----------
    model, x, lengths : as in :func:`rnnviz_core.trace` (x [N, T, F] or token ids [N, T]).
    method : contribution method for the horizons (default ``"integrated_gradients"``, see the
        module docstring); ignored when ``scores`` is given.
    scores : precomputed contributions [N, T] (e.g. from the Contributions page).
    task : "auto", "classification", "binary" or "regression" (as in :mod:`rnnviz_core.groups`).
    tol : regression only: how close to the final output counts as decided.
    ids : sequence ids for the ``seq`` column (default 0..N-1).
    states : [N, >= T, H] the last recurrent layer's outputs on ``x`` (a trace's ``h``): a
        forward-reading model of the built-in family then computes its prefix outputs from them
        with no second run (see :func:`rnnviz_core.restart.prefix_outputs`); ignored otherwise.
    **options : passed to :func:`rnnviz_core.contributions` (e.g. ``steps=32``, ``baseline=``).

    Returns
    -------
    DataFrame, one row per sequence: ``seq``, ``length``, ``final`` (the final answer),
    ``decision_step`` (int), ``steps_after_decision`` (``length - 1 - decision_step``: how many
    steps the answer held before the end), ``horizon_50``, ``horizon_90`` (float, NaN where a
    sequence has no contribution mass) and ``method``.
    """
    cols = horizon_arrays(model, x, lengths, method, scores=scores, task=task, tol=tol, device=device,
                          batch_size=batch_size, lengths_arg=lengths_arg, output=output, states=states, **options)
    n = len(cols["length"])
    return pd.DataFrame({"seq": np.arange(n) if ids is None else np.asarray(ids), **cols})


def horizon_arrays(model: nn.Module, x: Any, lengths: Any = None, method: str = DEFAULT_HORIZON_METHOD, *,
                   scores: Any = None, task: str = "auto", tol: float | None = None,
                   device: str | torch.device | None = "auto", batch_size: int | None = None,
                   lengths_arg: str | None = None, output: int | str | Callable | None = None, states: Any = None,
                   **options) -> dict:
    """The columns of :func:`horizon` but ``seq``, as arrays (the bundle build writes them to its
    parts without a table)."""
    model = unwrap_model(model)
    xt, lt = prepare(model, x, lengths, torch.device("cpu"))
    n, T = xt.shape[:2]
    L = np.full(n, T, dtype=np.int64) if lt is None else lt.numpy().astype(np.int64)
    po = prepared_prefix_outputs(model, xt, lt, device=device, batch_size=batch_size, lengths_arg=lengths_arg,
                                 output=output, states=states)
    if task == "auto" and po.shape[2] == 1:
        task = "regression"
    dec = decision_steps(po, L, task=task, tol=tol)
    final_out = po[np.arange(n), L - 1]
    final, _ = _answers(final_out if final_out.shape[1] > 1 else final_out[:, 0], task)
    if scores is None:
        if method not in METHODS:
            raise InputError(f"Unknown contribution method {method!r}. Choose one of: {', '.join(METHODS)}.",
                             field="method")
        scores = contributions(model, xt, method, lt, device=device, batch_size=batch_size,
                               lengths_arg=lengths_arg, output=output, **options)
        used = method
    else:
        used = "given scores"
    sc = np.asarray(scores, dtype=np.float64)
    if sc.shape != (n, T):
        raise InputError(f"scores must be shaped [N, T] = {(n, T)}; got {sc.shape}.", field="scores")
    hz = horizons_from_scores(sc, L)
    return {"length": L, "final": final, "decision_step": dec, "steps_after_decision": L - 1 - dec,
            "horizon_50": hz[:, 0], "horizon_90": hz[:, 1], "method": np.full(n, used, dtype=object)}


# ----------------------------------------------------------------------------- groups
def _joined(frame: pd.DataFrame, table: pd.DataFrame | None) -> pd.DataFrame:
    if table is None:
        return frame
    cols = [c for c in table.columns if c not in frame.columns or c == "seq"]
    if len(table) == len(frame) and table["seq"].is_unique \
            and np.array_equal(table["seq"].to_numpy(), frame["seq"].to_numpy()):
        # the same sequences in the same order (the bundle build's tables): the columns side by side
        # are what the merge gives, without its hashing
        joined = frame.reset_index(drop=True).copy()
        for c in cols:
            if c != "seq":
                joined[c] = table[c].array
        return joined
    joined = frame.merge(table[cols], on="seq", how="left")
    if len(joined) != len(frame):
        raise InputError("The horizon frame and the table match on 'seq' more than once; pass one row per sequence.")
    return joined


def horizon_summary(frame: pd.DataFrame, table: pd.DataFrame | None = None,
                    by: str | Sequence[Any] | pd.Series = "predicted_class", *, bins: int | None = None) -> pd.DataFrame:
    """Per group the distribution of every horizon metric: ``group``, ``size``, and per metric
    ``{m}_mean``, ``{m}_q25``, ``{m}_median``, ``{m}_q75``.

    ``table`` (from :func:`rnnviz_core.groups.sequence_table`, matched on ``seq``) supplies the
    groupings ("true_class", "correct", "saturation", dataset columns); ``by`` as in
    :func:`rnnviz_core.groups.assign_groups`.
    """
    df = _joined(frame, table)
    g = assign_groups(df, by, bins=bins)
    grouped = df.assign(_g=g.values).groupby("_g", observed=True, sort=True, dropna=False)
    out = pd.DataFrame({"size": grouped.size()})
    # each group's rows once (its number in the order of ``out``), then numpy's statistics of each
    # metric's values there, missing values left out (what the grouped mean, quantiles and median
    # give, without one grouped pass per statistic)
    number = grouped.ngroup().to_numpy()
    order = np.argsort(number, kind="stable")
    bounds = np.searchsorted(number[order], np.arange(len(out) + 1))
    columns = {}
    for m in HORIZON_METRICS:
        vals = pd.to_numeric(df[m], errors="coerce").to_numpy(dtype=np.float64)[order]
        stats = np.full((len(out), 4), np.nan)
        for k in range(len(out)):
            v = vals[bounds[k]:bounds[k + 1]]
            v = v[~np.isnan(v)]
            if v.size:
                stats[k, 0] = v.mean()
                stats[k, 1:] = np.quantile(v, [0.25, 0.5, 0.75])
        for j, name in enumerate(("mean", "q25", "median", "q75")):
            columns[f"{m}_{name}"] = stats[:, j]
    out = pd.concat([out, pd.DataFrame(columns, index=out.index)], axis=1)
    out.index.name = "group"
    return out.reset_index()


def compare_horizons(frame: pd.DataFrame, table: pd.DataFrame | None, by: str | Sequence[Any] | pd.Series,
                     a: Any, b: Any, **kwargs) -> pd.DataFrame:
    """Do groups ``a`` and ``b`` decide at different steps or remember over different spans?

    :func:`rnnviz_core.groups.compare_groups` on the metrics of :data:`HORIZON_METRICS` (Mann-Whitney U,
    rank-biserial effect, 95% intervals, false-discovery-rate adjusted p-values); ``kwargs`` go to it.
    """
    df = _joined(frame, table)
    return compare_groups(df, by, a, b, metrics=list(HORIZON_METRICS), **kwargs)


# ----------------------------------------------------------------------------- damage by distance
def damage_by_distance(
    model: nn.Module,
    x: Any,
    lengths: Any = None,
    distances: Sequence[int] | None = None,
    *,
    baseline: Any = "mean",
    task: str = "auto",
    ids: Any = None,
    device: str | torch.device | None = "auto",
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
) -> pd.DataFrame:
    """How much the output moves when one step, ``d`` steps before the last real step, is damaged.

    For each distance ``d`` (0 = the last real step; default 0 to 29, at most the longest
    sequence) every sequence at least ``d + 1`` steps long gets step ``L - 1 - d`` replaced by
    ``baseline`` (``"mean"``: each feature's mean over real steps, ``"zeros"``, or F numbers;
    token models: a token id, default the padding token), and the model runs once on the batch.

    Returns the per-sequence frame :func:`rnnviz_core.groups.resilience_summary` reads: ``seq``,
    ``distance``, ``output_change`` (L1 change of the class probabilities, or the mean absolute
    change of a regression output), ``flipped`` (the predicted class changed; NaN for regression),
    and ``condition`` ("step d before the end"). Summarise per distance and group with
    ``resilience_summary(frame, sequence_table(...), by=...)``.
    """
    from .trace import predict

    model = unwrap_model(model)
    xt, lt = prepare(model, x, lengths, torch.device("cpu"))
    n, T = xt.shape[:2]
    L = np.full(n, T, dtype=np.int64) if lt is None else lt.numpy().astype(np.int64)
    tokens = xt.dim() == 2
    valid = valid_mask(L, T, device="cpu")
    if tokens:
        fill = torch.tensor(default_baseline_token(model) if isinstance(baseline, str) else int(baseline))
    elif isinstance(baseline, str):
        if baseline == "mean":
            fill = xt[valid].mean(0)
        elif baseline == "zeros":
            fill = torch.zeros(xt.shape[2], dtype=xt.dtype)
        else:
            raise InputError(f"baseline must be 'mean', 'zeros' or one value per feature; got {baseline!r}.",
                             field="baseline")
    else:
        fill = torch.as_tensor(np.asarray(baseline, dtype=np.float64).reshape(-1), dtype=xt.dtype)
        if fill.shape != (xt.shape[2],):
            raise InputError(f"baseline must hold one value per feature ({xt.shape[2]}).", field="baseline")
    if distances is None:
        distances = range(min(int(L.max()), 30))
    kw = dict(device=device, lengths_arg=lengths_arg, output=output)
    base = predict(model, xt, lt, **kw)
    frame0 = sequence_outcomes(base, task=task)
    classes = bool(frame0["confidence"].notna().all())
    frames = []
    for d in distances:
        d = int(d)
        if d < 0:
            raise InputError(f"distances must be 0 or more (0 = the last real step); got {d}.", field="distances")
        rows = np.flatnonzero(L > d)
        if rows.size == 0:
            continue
        xd = xt[rows].clone()
        xd[torch.arange(rows.size), torch.as_tensor(L[rows] - 1 - d)] = fill.to(xd.dtype)
        new = predict(model, xd, None if lt is None else lt[rows], **kw)
        if classes:
            pb = _prob_rows(base[rows], task)
            pn = _prob_rows(new, task)
            change = np.abs(pn - pb).sum(1)
            flipped = (pb.argmax(1) != pn.argmax(1)).astype(np.float64)
        else:
            change = np.abs(new.reshape(rows.size, -1) - base[rows].reshape(rows.size, -1)).mean(1)
            flipped = np.full(rows.size, np.nan)
        frames.append(pd.DataFrame({"seq": rows if ids is None else np.asarray(ids)[rows], "distance": d,
                                    "output_change": change, "flipped": flipped,
                                    "condition": f"step {d} before the end"}))
    if not frames:
        raise InputError("No sequence is long enough for the distances asked for.", field="distances")
    return pd.concat(frames, ignore_index=True)


def _prob_rows(logits: np.ndarray, task: str) -> np.ndarray:
    """Class probabilities [n, C] (a single logit: [1 - p, p])."""
    from scipy.special import expit, softmax

    arr = np.asarray(logits, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] >= 2 and task != "binary":
        return softmax(arr, axis=1)
    z = arr.reshape(arr.shape[0], -1)[:, 0]
    return np.stack([expit(-z), expit(z)], axis=1)


def damage_summary(frame: pd.DataFrame, table: pd.DataFrame | None = None,
                   by: str | Sequence[Any] | pd.Series | None = None) -> pd.DataFrame:
    """Per distance (and group, with ``table`` and ``by``): ``size``, ``mean_output_change``,
    ``median_output_change``, ``flip_rate`` with 95% intervals, from
    :func:`rnnviz_core.groups.resilience_summary`; plus ``distance``."""
    if table is None or by is None:
        table = pd.DataFrame({"seq": frame["seq"].unique()})
        by = ["all"] * len(table)
    out = resilience_summary(frame, table, by)
    dist = frame.drop_duplicates("condition").set_index("condition")["distance"]
    out.insert(0, "distance", out["condition"].map(dist).to_numpy())
    return out.sort_values(["distance", "group"], kind="stable").reset_index(drop=True)
