"""Resilience: inputs damaged (noise, missing steps) and how much each sequence's output moves."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..arrays import check_lengths, to_numpy, valid_mask
from ..errors import InputError
from .intervals import mean_ci, share_ci
from .outcomes import assign_groups, logits_array, class_probabilities, resolve_task


# ----------------------------------------------------------------------------- resilience
_POSITIONS = ("early", "late", "random")


def _x_and_lengths(x: Any, lengths: Any) -> tuple[np.ndarray, np.ndarray]:
    arr = to_numpy(x, "x")
    if arr.ndim != 3:
        raise InputError(f"x must be shaped [N, T, F] (sequences, steps, features); got {arr.shape}.")
    arr = arr.astype(np.float32, copy=False)
    n, t = arr.shape[:2]
    lens = np.full(n, t, dtype=np.int64) if lengths is None else check_lengths(lengths, n, t)
    return arr, lens


def _feature_stats(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pts = x[mask].astype(np.float64)  # (P, F)
    return pts.mean(axis=0), pts.std(axis=0)


def perturb_inputs(
    x: Any,
    lengths: Any = None,
    *,
    kind: str = "noise",
    scale: float = 0.1,
    fraction: float = 0.2,
    position: str = "random",
    fill: str = "baseline",
    baseline: str | Sequence[float] | np.ndarray = "mean",
    feature_std: Sequence[float] | np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Damage a padded batch the way real data gets damaged, all sequences at once.

    * ``kind="noise"``: add Gaussian noise with standard deviation ``scale * std_f`` to every
      valid step of feature f, where ``std_f`` is the feature's standard deviation over all
      valid steps of ``x`` (or ``feature_std``). Meant for real-valued features, not token ids.
    * ``kind="missing"``: in each sequence of length L, ``k = max(1, round(fraction * L))`` steps
      (when ``fraction > 0``) go missing, chosen by ``position``: ``"early"`` (the first k),
      ``"late"`` (the last k) or ``"random"`` (k distinct steps drawn per sequence). With
      ``fill="baseline"`` their features are replaced by ``baseline`` (``"mean"``: each
      feature's mean over valid steps; ``"zeros"``; or an array [F]); with ``fill="drop"`` they
      are removed, later steps move up and the length shrinks by k (at most to 1 step).

    Padding is left as it is; ``x`` itself is never modified. Randomness comes from
    ``numpy.random.default_rng(seed)``, so a call is reproducible.

    Returns
    -------
    (x_new float32 [N, T, F], lengths_new int64 [N])
    """
    arr, lens = _x_and_lengths(x, lengths)
    n, t, f = arr.shape
    mask = valid_mask(lens, t)
    rng = np.random.default_rng(seed)
    out = arr.copy()
    if kind == "noise":
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise InputError(f"scale must be a number; got {scale!r}.") from None
        if not np.isfinite(scale) or scale < 0:
            raise InputError(f"scale (noise size relative to each feature's spread) must be >= 0; got {scale}.")
        if feature_std is None:
            std = _feature_stats(arr, mask)[1]
        else:
            std = np.asarray(feature_std, dtype=np.float64).reshape(-1)
            if std.shape != (f,):
                raise InputError(f"feature_std must hold one value per feature ({f}).")
        noise = rng.standard_normal(arr.shape) * (scale * std)  # (N, T, F)
        out = np.where(mask[..., None], arr + noise, arr).astype(np.float32)
        return out, lens.copy()
    if kind != "missing":
        raise InputError(f"kind must be 'noise' or 'missing'; got {kind!r}.")
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise InputError(f"fraction must be a number between 0 and 1; got {fraction!r}.") from None
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"fraction (share of steps that go missing) must be between 0 and 1; got {fraction}.")
    if position not in _POSITIONS:
        raise InputError(f"position must be one of {', '.join(_POSITIONS)}; got {position!r}.")
    if fill not in ("baseline", "drop"):
        raise InputError(f"fill must be 'baseline' or 'drop'; got {fill!r}.")
    k = np.floor(fraction * lens + 0.5).astype(np.int64)
    if fraction > 0:
        k = np.maximum(k, 1)
    k = np.minimum(k, lens - 1 if fill == "drop" else lens)
    steps = np.arange(t)[None, :]
    if position == "early":
        missing = steps < k[:, None]
    elif position == "late":
        missing = mask & (steps >= (lens - k)[:, None])
    else:
        keys = np.where(mask, rng.random((n, t)), np.inf)
        rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
        missing = rank < k[:, None]
    if fill == "baseline":
        if isinstance(baseline, str):
            if baseline == "mean":
                base = _feature_stats(arr, mask)[0]
            elif baseline == "zeros":
                base = np.zeros(f)
            else:
                raise InputError(f"baseline must be 'mean', 'zeros' or one value per feature; got {baseline!r}.")
        else:
            base = np.asarray(baseline, dtype=np.float64).reshape(-1)
            if base.shape != (f,):
                raise InputError(f"baseline must hold one value per feature ({f}).")
        out[missing] = base.astype(np.float32)
        return out, lens.copy()
    # drop: stable sort puts kept valid steps first, in order
    order = np.argsort((missing | ~mask).astype(np.int8), axis=1, kind="stable")  # (N, T)
    out = np.take_along_axis(arr, order[..., None], axis=1)
    new_lens = lens - k
    out[~valid_mask(new_lens, t)] = 0.0
    return out.astype(np.float32, copy=False), new_lens


def _default_predict(model: Any, device: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    from ..trace import predict

    def run(x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return predict(model, x, lengths, device=device)

    return run


def _change_and_flip(base: np.ndarray, new: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pb, pn = class_probabilities(base, task), class_probabilities(new, task)
    n = base.shape[0]
    if pb is None:
        b, w = base.reshape(n, -1), new.reshape(n, -1)
        change = np.abs(w - b).mean(axis=1)
        nan = np.full(n, np.nan)
        return change, nan, (b[:, 0] if b.shape[1] == 1 else nan), (w[:, 0] if w.shape[1] == 1 else nan)
    change = np.abs(pn - pb).sum(axis=1)
    bp, np_ = pb.argmax(axis=1), pn.argmax(axis=1)
    return change, (bp != np_), bp, np_


def resilience(
    model: Any,
    x: Any,
    lengths: Any = None,
    *,
    kind: str = "noise",
    scale: float = 0.1,
    fraction: float = 0.2,
    position: str = "random",
    fill: str = "baseline",
    baseline: str | Sequence[float] | np.ndarray = "mean",
    seed: int = 0,
    task: str = "auto",
    base_logits: Any = None,
    predict_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    device: Any = "auto",
    ids: Any = None,
) -> pd.DataFrame:
    """How much each sequence's output moves when its input is damaged, in one batched call.

    The damage is :func:`perturb_inputs` with the same keyword arguments. The model runs once
    on the damaged batch (and once on the clean batch unless ``base_logits`` is given), through
    :func:`rnnviz_core.predict` or ``predict_fn(x, lengths) -> logits``.

    Per sequence:

    * ``output_change``: classification — the L1 distance between the class probability vectors
      before and after (0 = no change, 2 = all probability moved to other classes); regression —
      the mean absolute change of the output(s).
    * ``flipped``: whether the predicted class changed (NaN for regression).
    * ``base_pred``, ``new_pred``: predicted class (or output) before and after.

    Comparing ``position="early"`` with ``"late"`` answers "does the model lean on the current
    step early in a sequence?". Columns: ``seq, output_change, flipped, base_pred, new_pred``
    plus the condition (``kind``, ``scale``/``fraction``, ``position``, ``fill``, ``condition``).
    """
    arr, lens = _x_and_lengths(x, lengths)
    run = predict_fn if predict_fn is not None else _default_predict(model, device)
    base = logits_array(run(arr, lens) if base_logits is None else base_logits)
    task = resolve_task(base, task)
    xn, ln = perturb_inputs(arr, lens, kind=kind, scale=scale, fraction=fraction, position=position,
                            fill=fill, baseline=baseline, seed=seed)
    new = logits_array(run(xn, ln))
    if new.shape != base.shape:
        raise InputError(f"The model's output changed shape ({base.shape} -> {new.shape}) on damaged input.")
    change, flipped, bp, np_ = _change_and_flip(base, new, task)
    n = arr.shape[0]
    frame = pd.DataFrame({"seq": np.arange(n) if ids is None else np.asarray(ids),
                          "output_change": change,
                          "flipped": flipped if task != "regression" else np.full(n, np.nan),
                          "base_pred": bp, "new_pred": np_})
    frame["kind"] = kind
    if kind == "noise":
        frame["scale"] = float(scale)
        frame["condition"] = f"noise {float(scale):g} x std"
    else:
        frame["fraction"] = float(fraction)
        frame["position"] = position
        frame["fill"] = fill
        frame["condition"] = f"{float(fraction):.0%} missing, {position}, {'dropped' if fill == 'drop' else 'baseline'}"
    return frame


def resilience_sweep(
    model: Any,
    x: Any,
    lengths: Any = None,
    conditions: Iterable[Mapping[str, Any]] = (
        {"kind": "noise", "scale": 0.1},
        {"kind": "missing", "fraction": 0.2, "position": "early"},
        {"kind": "missing", "fraction": 0.2, "position": "late"},
        {"kind": "missing", "fraction": 0.2, "position": "random"},
    ),
    *,
    seed: int = 0,
    task: str = "auto",
    base_logits: Any = None,
    predict_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    device: Any = "auto",
) -> pd.DataFrame:
    """:func:`resilience` for several conditions (one batched model call each, the clean output
    computed once), stacked into one long frame with a ``condition`` column."""
    arr, lens = _x_and_lengths(x, lengths)
    run = predict_fn if predict_fn is not None else _default_predict(model, device)
    base = logits_array(run(arr, lens) if base_logits is None else base_logits)
    frames = []
    for cond in conditions:
        opts = {"seed": seed, **dict(cond)}
        frames.append(resilience(model, arr, lens, task=task, base_logits=base, predict_fn=run, **opts))
    if not frames:
        raise InputError("Give at least one condition, e.g. {'kind': 'noise', 'scale': 0.1}.")
    return pd.concat(frames, ignore_index=True)


def sweep_rows(model: Any, lengths: Any, *, work: float, minimum: int = 20) -> np.ndarray:
    """Rows [k] a resilience sweep can afford: every row when the sum over the sequences of length x
    the elements one step of the model's fused forward holds (as :mod:`rnnviz_core.trace` sizes its
    batches) is at most ``work``, else evenly spaced rows (first and last included, at least
    ``minimum``) whose mean work fits it. A model rnnviz cannot look into counts steps only."""
    from ..engine import find_recurrent
    from ..trace import fused_per_step
    from ..arrays import budget_rows
    L = np.asarray(lengths, dtype=np.int64).reshape(-1)
    try:
        per_step = max(1, fused_per_step(find_recurrent(model)))
    except Exception:
        per_step = 1
    return budget_rows(L.astype(np.float64) * per_step, work, minimum=minimum)


def resilience_summary(results: pd.DataFrame, table: pd.DataFrame, by: str | Sequence[Any] | pd.Series,
                       *, bins: int | None = None) -> pd.DataFrame:
    """Resilience compared across groups: per condition and group, ``size``,
    ``mean_output_change``, ``median_output_change`` and ``flip_rate``.

    ``results`` comes from :func:`resilience` / :func:`resilience_sweep`, ``table`` from
    :func:`sequence_table` (same sequences, matched on ``seq``)."""
    g = assign_groups(table, by, bins=bins)
    key = pd.DataFrame({"seq": table["seq"].to_numpy(), "group": g.values})
    try:
        merged = results.merge(key, on="seq", how="inner")
    except ValueError:  # ids of different kinds (e.g. str vs int) cannot match
        merged = results.iloc[:0]
    if merged.empty:
        raise InputError("The resilience results and the table share no sequence ids; pass the same ids= "
                         "to resilience and sequence_table (or leave both at the default).")
    if "condition" not in merged:
        merged["condition"] = "damage"
    grouped = merged.groupby(["condition", "group"], observed=True, sort=False)
    out = grouped.agg(size=("seq", "size"), mean_output_change=("output_change", "mean"),
                      median_output_change=("output_change", "median"),
                      flip_rate=("flipped", lambda s: pd.to_numeric(s, errors="coerce").mean()))
    change_ci = [mean_ci(grp["output_change"].to_numpy(dtype=np.float64), i) for i, (_, grp) in enumerate(grouped)]
    flip_ci = []
    for _, grp in grouped:
        f = pd.to_numeric(grp["flipped"], errors="coerce").to_numpy(dtype=np.float64)
        f = f[np.isfinite(f)]
        flip_ci.append(share_ci(int(f.sum()), int(f.size)) if f.size else (np.nan, np.nan))
    out["mean_output_change_low"] = [c[0] for c in change_ci]
    out["mean_output_change_high"] = [c[1] for c in change_ci]
    out["flip_rate_low"] = [c[0] for c in flip_ci]
    out["flip_rate_high"] = [c[1] for c in flip_ci]
    return out.reset_index()
