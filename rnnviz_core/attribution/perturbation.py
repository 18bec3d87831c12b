"""Methods that change the input and run the model again: occlusion (a step replaced by the
baseline) and prediction_delta (the running answer before and after each step)."""
from __future__ import annotations

import numpy as np
import torch

from ..arrays import valid_mask
from .problem import Problem, chunks


# --------------------------------------------------------------------------------------------
# perturbation methods (no gradients; fused forward)
# --------------------------------------------------------------------------------------------

def occlusion_scores(prob: Problem, b: torch.Tensor, info, at_steps=None) -> torch.Tensor:
    """Occlusion restarted from cached states (see :mod:`.occlusion`)."""
    from ..occlusion import occlusion
    return occlusion(prob, b, info, at_steps=at_steps)


def occlusion_reference(prob: Problem, b: torch.Tensor, info) -> torch.Tensor:
    """f(x) - f(x with step t replaced by the baseline), every valid (sequence, step) pair.

    The whole model reruns for every replacement: the reference the restarted occlusion is
    tested against.

    Per feature: f(x) - f(x with feature k of step t replaced), every valid (sequence, step,
    feature) triple. Token ids: the step's token is replaced by the baseline token.
    """
    rows_all = torch.arange(prob.N, device=prob.dev)
    fx = prob.predict_out(prob.xt, rows_all, clean=True)
    valid = valid_mask(prob.L, prob.T)
    per = prob.rows_per_batch(prob.n_features * 4)
    if prob.per_feature:
        Fdim = prob.n_features
        res = torch.zeros(prob.N, prob.T, Fdim, device=prob.dev)
        cells = torch.as_tensor(np.argwhere(np.repeat(valid[:, :, None], Fdim, 2)),
                                device=prob.dev)                             # (P, 3)
        for s, e in chunks(cells.shape[0], per):
            r, t, k = cells[s:e, 0], cells[s:e, 1], cells[s:e, 2]
            xo = prob.xt[r].clone()                            # (p, T, F) private copy
            xo[torch.arange(e - s, device=prob.dev), t, k] = b[r, t, k]
            res[r, t, k] = fx[r] - prob.predict_out(xo, r)
        info["target_x"] = fx.cpu().numpy()
        return res
    res = torch.zeros(prob.N, prob.T, device=prob.dev)
    pairs = torch.as_tensor(np.argwhere(valid), device=prob.dev)             # (P, 2)
    for s, e in chunks(pairs.shape[0], per):
        r, t = pairs[s:e, 0], pairs[s:e, 1]
        xo = prob.xt[r].clone()                                # (p, T, F) private copy
        xo[torch.arange(e - s, device=prob.dev), t] = b[r, t]
        res[r, t] = fx[r] - prob.predict_out(xo, r)
    info["target_x"] = fx.cpu().numpy()
    return res


def prediction_delta_scores(prob: Problem, b: torch.Tensor, info) -> torch.Tensor:
    """Running output on prefixes: score_t = f(x[:t+1]) - f(x[:t]); f(empty) = f(b[:1])."""
    N, T = prob.N, prob.T
    rows_all = torch.arange(N, device=prob.dev)
    if prob.predicted:  # the class explained is the one predicted for the whole sequence
        prob.predict_out(prob.xt, rows_all, clean=True)
    prev = prob.predict_out(b[:, :1], rows_all, lengths=ones_like_lengths(prob.lt, N))
    info["target_empty_prefix"] = prev.cpu().numpy().copy()
    res = torch.zeros(N, T, device=prob.dev)
    L_t = torch.as_tensor(prob.L, device=prob.dev)
    per = prob.rows_per_batch(prob.n_features * 4)
    for t in range(1, T + 1):                                  # a loop over time, batched rows
        rows = rows_all[L_t >= t]
        if rows.numel() == 0:
            break
        cur = torch.empty(rows.numel(), device=prob.dev)
        for s, e in chunks(rows.numel(), per):
            r = rows[s:e]
            lt = None if prob.lt is None else torch.full((e - s,), t, dtype=torch.int64)
            cur[s:e] = prob.predict_out(prob.xt[r, :t], r, lengths=lt)
        res[rows, t - 1] = cur - prev[rows]
        prev = prev.clone()
        prev[rows] = cur
    return res


def ones_like_lengths(lt, N):
    return None if lt is None else torch.ones(N, dtype=torch.int64)
