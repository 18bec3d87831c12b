"""How far to trust a ranking of steps: the deletion check, against a random ranking.

For each sequence, the steps a method ranks highest are removed first (replaced by the
baseline, zeros by default), and the model's output for the explained class is recorded after
removing each fraction of the sequence's steps (0%, 10%, ..., 100% by default; a fraction ``f``
of a sequence of length ``L`` removes ``round(f * L)`` steps). A ranking that really finds the
steps the model relies on makes the output fall fast; a random ranking is the bar to clear.

* deletion curve: mean output over sequences at each fraction removed;
* AOPC (area over the perturbation curve, Samek et al. 2017): the mean, over the fractions and
  the sequences, of ``output(nothing removed) - output(fraction removed)``. Higher is better;
  ``aopc_minus_random`` > 0 means the method beats chance on this model and data.
* random ranking: each sequence's valid steps in a random order (seeded), averaged over
  ``n_random`` draws.

Ranking order: by signed score, highest first (the steps that pushed the explained output up
the most), so with signed methods the output should fall; for never-negative methods
(grad_norm) this is simply the largest first. ``order="abs"`` ranks by size instead.

Every forward pass covers the whole batch of sequences (one pass per fraction), with the model's
own fused recurrent modules and no gradients.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
import pandas as pd
import torch

from .arrays import valid_mask
from .contributions import METHODS, USES_BASELINE, contributions, resolve_baseline, setup
from .errors import InputError

__all__ = ["deletion_curve", "compare_methods", "FaithfulnessReport", "aopc",
           "DEFAULT_METHODS"]

DEFAULT_METHODS = ("grad_norm", "input_x_grad", "integrated_gradients", "occlusion")


class FaithfulnessReport(NamedTuple):
    """What :func:`compare_methods` returns (unpacks as ``curves, summary, scores, info``)."""

    curves: pd.DataFrame       # method, fraction, mean_output, is_random
    summary: pd.DataFrame      # method, aopc, aopc_minus_random, completeness_error, ...
    scores: dict               # method -> [N, T] scores used
    info: dict                 # method -> info dict from rv.contributions (+ "targets")


def _fractions(fractions) -> np.ndarray:
    if isinstance(fractions, (int, np.integer)) and not isinstance(fractions, bool):
        if fractions < 2:
            raise InputError("fractions must be at least 2 points (0 and 1).")
        return np.linspace(0.0, 1.0, int(fractions))
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or f.size < 2 or not np.all(np.isfinite(f)) or f.min() < 0 or f.max() > 1 \
            or np.any(np.diff(f) <= 0):
        raise InputError("fractions must be increasing numbers between 0 and 1 (e.g. 0, 0.1, "
                         "..., 1), or a count of evenly spaced points.")
    return f


def _ranking(scores: np.ndarray, L: np.ndarray, order: str) -> np.ndarray:
    """Steps of each row, best first; padding last. (N, T) int."""
    key = np.abs(scores) if order == "abs" else scores.astype(np.float64).copy()
    key = np.where(~valid_mask(L, scores.shape[1]) | np.isnan(key), -np.inf, key)
    return np.argsort(-key, axis=1, kind="stable")


def _random_ranking(L: np.ndarray, T: int, rng: np.random.Generator) -> np.ndarray:
    key = rng.random((L.shape[0], T))
    key[~valid_mask(L, T)] = 2.0                     # padding sorts last
    return np.argsort(key, axis=1, kind="stable")


def _deletion_outputs(prob, b: torch.Tensor, ranking: np.ndarray, fr: np.ndarray) -> np.ndarray:
    """Target output per (fraction, sequence) after deleting the top round(f*L) steps."""
    N, T = ranking.shape
    rows = torch.arange(N, device=prob.dev)
    rank_pos = np.empty_like(ranking)              # rank_pos[i, step] = rank of step in row i
    np.put_along_axis(rank_pos, ranking, np.arange(T)[None, :].repeat(N, 0), axis=1)
    rank_pos_t = torch.as_tensor(rank_pos, device=prob.dev)
    outs = np.empty((fr.size, N))
    for j, f in enumerate(fr):
        k = torch.as_tensor(np.rint(f * prob.L).astype(np.int64), device=prob.dev)   # (N,)
        removed = rank_pos_t < k[:, None]                                            # (N, T)
        xd = torch.where(removed if prob.tokens else removed[..., None], b, prob.xt)
        outs[j] = prob.predict_out(xd, rows).cpu().numpy()
    return outs


def aopc(outputs: np.ndarray) -> float:
    """AOPC from outputs [fractions, N] whose first row is 'nothing removed'."""
    o = np.asarray(outputs, dtype=np.float64)
    return float(np.mean(o[0][None, :] - o))


def _prepare(model, x, lengths, target, baseline, target_kind, y, device, batch_size,
             lengths_arg=None, output=None, baseline_token=None):
    prob = setup(model, x, lengths, target, device=device, batch_size=batch_size,
                  target_kind=target_kind, y=y, loss="auto", lengths_arg=lengths_arg,
                  output=output, baseline_token=baseline_token)
    b = resolve_baseline(baseline, prob.xt, prob.L, baseline_token=prob.baseline_token,
                         zeros_ok=False)
    rows = torch.arange(prob.N, device=prob.dev)
    prob.predict_out(prob.xt, rows, clean=True)            # fixes the predicted class
    return prob, b


def _check_scores(scores, N, T, name="scores") -> np.ndarray:
    s = np.asarray(scores.detach().cpu() if torch.is_tensor(scores) else scores,
                   dtype=np.float64)
    if s.shape != (N, T):
        raise InputError(f"{name} must have shape [{N}, {T}] (one score per sequence and "
                         f"step, as rv.contributions returns), got {list(s.shape)}.")
    return s


def deletion_curve(model, x, scores, lengths=None, target=None, *, baseline=None,
                   fractions: Any = 11, order: str = "score", target_kind: str = "logit",
                   y=None, random: bool = False, n_random: int = 3, seed: int = 0,
                   device="auto", batch_size=None, lengths_arg=None, output=None,
                   baseline_token=None) -> pd.DataFrame:
    """Deletion curve of one ranking (``scores`` [N, T]), optionally with the random one.

    ``lengths_arg``, ``output`` and (token ids) ``baseline_token`` are as in
    :func:`rnnviz_core.contributions`; for token ids a removed step holds the baseline token.

    Returns columns ``method`` ("scores" / "random"), ``fraction``, ``mean_output``,
    ``is_random``; the AOPC of each is :func:`aopc` of the curve or see
    :func:`compare_methods`, which gives it directly.
    """
    if order not in ("score", "abs"):
        raise InputError(f'order must be "score" or "abs", got {order!r}.')
    fr = _fractions(fractions)
    prob, b = _prepare(model, x, lengths, target, baseline, target_kind, y, device, batch_size,
                       lengths_arg, output, baseline_token)
    s = _check_scores(scores, prob.N, prob.T)
    outs = _deletion_outputs(prob, b, _ranking(s, prob.L, order), fr)
    frames = [_curve_frame("scores", fr, outs, False)]
    if random:
        frames.append(_curve_frame("random", fr, _random_outputs(prob, b, fr, n_random, seed),
                                   True))
    return pd.concat(frames, ignore_index=True)


def _random_outputs(prob, b, fr, n_random, seed) -> np.ndarray:
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise InputError(f"n_random must be a positive whole number, got {n_random!r}.")
    rng = np.random.default_rng(seed)
    draws = [_deletion_outputs(prob, b, _random_ranking(prob.L, prob.T, rng), fr)
             for _ in range(int(n_random))]
    return np.mean(draws, 0)


def _curve_frame(name, fr, outs, is_random) -> pd.DataFrame:
    return pd.DataFrame({"method": name, "fraction": fr, "mean_output": outs.mean(1),
                         "is_random": is_random})


def compare_methods(model, x, methods: Sequence[str] = DEFAULT_METHODS, lengths=None,
                    target=None, *, scores: dict | None = None, baseline=None,
                    fractions: Any = 11, order: str = "score", n_random: int = 3, seed: int = 0,
                    target_kind: str = "logit", y=None, device="auto", batch_size=None,
                    method_options: dict | None = None, lengths_arg=None, output=None,
                    baseline_token=None) -> FaithfulnessReport:
    """Deletion curves and AOPC of several methods on the same sequences, against random.

    Parameters
    ----------
    methods : names from :data:`rnnviz_core.contributions.METHODS`; ignored for the methods
        whose scores are given in ``scores``.
    scores : dict name -> [N, T], optional
        Precomputed scores (e.g. cached by the app); computed with :func:`contributions` (same
        target, target kind and baseline) for the methods not given.
    method_options : dict name -> dict of options passed to :func:`contributions`.
    lengths_arg, output, baseline_token : as in :func:`contributions` (token ids: a removed
        step holds ``baseline_token``, and integrated gradients starts from its embedding).

    Returns
    -------
    FaithfulnessReport(curves, summary, scores, info)
        ``curves``: method, fraction, mean_output, is_random ("random" last).
        ``summary``: one row per method and one for "random": method, aopc,
        aopc_minus_random, output_start (mean output with nothing removed), output_end (all
        steps removed), completeness_error (median over sequences; integrated gradients only),
        completeness_error_max, converged_share.
    """
    if order not in ("score", "abs"):
        raise InputError(f'order must be "score" or "abs", got {order!r}.')
    scores = dict(scores or {})
    names = list(dict.fromkeys(list(scores) + [m for m in methods if m not in scores]))
    if not names:
        raise InputError("Give at least one method to compare.")
    unknown = [m for m in names if m not in METHODS and m not in scores]
    if unknown:
        raise InputError(f"Unknown contribution method {unknown[0]!r}. Choose from: "
                         f"{', '.join(METHODS)}.")
    if "random" in names:
        raise InputError('"random" is the reference added automatically; do not name a method so.')
    fr = _fractions(fractions)
    prob, b = _prepare(model, x, lengths, target, baseline, target_kind, y, device, batch_size,
                       lengths_arg, output, baseline_token)
    targets = prob.cls.cpu().numpy()
    method_options = method_options or {}
    infos: dict[str, Any] = {"targets": targets}
    curves, rows = [], []
    for name in names:
        if name in scores:
            s = _check_scores(scores[name], prob.N, prob.T, f"scores[{name!r}]")
            infos[name] = {}
        else:
            kw = dict(method_options.get(name, {}))
            if name in USES_BASELINE:
                kw["baseline"] = b                       # the very same baseline tensor
            s, infos[name] = contributions(
                model, prob.xt, name, lengths=prob.lt,
                target=None if prob.single else targets, device=prob.dev,
                batch_size=batch_size, return_info=True, target_kind=target_kind, y=y,
                lengths_arg=lengths_arg, output=output, **kw)
            scores[name] = s
        outs = _deletion_outputs(prob, b, _ranking(np.asarray(s, np.float64), prob.L, order), fr)
        curves.append(_curve_frame(name, fr, outs, False))
        err = infos[name].get("completeness_error")
        rows.append({"method": name, "aopc": aopc(outs), "output_start": outs[0].mean(),
                     "output_end": outs[-1].mean(),
                     "completeness_error": np.nan if err is None else float(np.median(err)),
                     "completeness_error_max": np.nan if err is None else float(np.max(err)),
                     "converged_share": np.nan if err is None
                     else float(np.mean(infos[name]["converged"]))})
    r_outs = _random_outputs(prob, b, fr, n_random, seed)
    curves.append(_curve_frame("random", fr, r_outs, True))
    rows.append({"method": "random", "aopc": aopc(r_outs), "output_start": r_outs[0].mean(),
                 "output_end": r_outs[-1].mean(), "completeness_error": np.nan,
                 "completeness_error_max": np.nan, "converged_share": np.nan})
    summary = pd.DataFrame(rows)
    summary.insert(2, "aopc_minus_random", summary["aopc"] - aopc(r_outs))
    return FaithfulnessReport(pd.concat(curves, ignore_index=True), summary, scores, infos)
