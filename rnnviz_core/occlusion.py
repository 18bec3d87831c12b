"""Occlusion that reuses the recurrence, and the choice of which steps to score.

``f(x) - f(x with step t replaced by the baseline)`` (per feature: one feature of step t) for
every chosen (sequence, step) pair. Replacing step t changes only what the recurrence computes
from t on, so the clean pass is made once and every perturbed pass restarts each
unidirectional recurrent module at t from the clean state at t - 1 (:class:`.resume.Resumer`):
the scores are those of replacing the step and rerunning the whole model, at about half the
recurrent steps when every step is scored, and at one step per score when only the last steps
are (``at_steps=-1``).
"""
from __future__ import annotations

import numpy as np
import torch

from .arrays import valid_mask
from .errors import InputError

__all__ = ["chosen_steps", "occlusion"]


def chosen_steps(at_steps, L: np.ndarray, T: int) -> np.ndarray:
    """Boolean [N, T]: the valid steps to score.

    ``None``: every valid step; an int or a list of ints: those steps of every sequence
    (negative numbers count from each sequence's own end: -1 is its last valid step); steps at
    or past a sequence's length are left out. A boolean array [N, T] is used as given (and
    cut to the valid steps).
    """
    L = np.asarray(L)
    valid = valid_mask(L, T)
    if at_steps is None:
        return valid
    arr = np.asarray(at_steps.detach().cpu() if torch.is_tensor(at_steps) else at_steps)
    if arr.dtype == bool:
        if arr.shape != valid.shape:
            raise InputError(f"at_steps as a mask must have shape [{L.size}, {T}], got "
                             f"{list(arr.shape)}.")
        return arr & valid
    arr = arr.reshape(-1)
    if arr.size == 0 or arr.dtype.kind not in "iu":
        raise InputError("at_steps must be a step number, a list of step numbers (negative: "
                         "counted from each sequence's end, -1 = its last step), or None for all.")
    out = np.zeros_like(valid)
    rows = np.arange(L.size)
    for s in arr.astype(np.int64):
        t = L + s if s < 0 else np.full(L.size, s)
        ok = (t >= 0) & (t < L)
        out[rows[ok], t[ok]] = True
    return out


def occlusion(prob, b: torch.Tensor, info, at_steps=None) -> torch.Tensor:
    """Scores [N, T] (or [N, T, F] per feature); zeros where not scored (NaN-ed by the caller)."""
    from .resume import Resumer

    chosen = chosen_steps(at_steps, prob.L, prob.T)
    r = Resumer(prob)
    fx = r.clean()
    Fdim = prob.n_features if prob.per_feature else 1
    res = torch.zeros((prob.N, prob.T, Fdim), device=prob.dev)
    per = prob.rows_per_batch(prob.n_features * 4)
    ks = torch.arange(Fdim, device=prob.dev)
    with torch.no_grad():
        for t in np.nonzero(chosen.any(0))[0]:
            t = int(t)
            r.advance(t)
            rows = torch.as_tensor(np.nonzero(chosen[:, t])[0], device=prob.dev)
            rr = rows.repeat_interleave(Fdim)                       # (n * F,) row of each pass
            kk = ks.repeat(rows.numel())                            # (n * F,) feature replaced
            for s in range(0, rr.numel(), per):
                ri, ki = rr[s:s + per], kk[s:s + per]
                xo = prob.xt[ri].clone()                           # (p, T, F) private copy
                a = torch.arange(ri.numel(), device=prob.dev)
                if prob.tokens:
                    xo[a, t] = b[ri, t]
                elif prob.per_feature:
                    xo[a, t, ki] = b[ri, t, ki]
                else:
                    xo[a, t] = b[ri, t]
                res[ri, t, ki] = fx[ri] - r.out(xo, ri, start=t)
    info["target_x"] = fx.cpu().numpy()
    info["scored"] = chosen
    info["restarted_passes"] = r.restarted
    return res if prob.per_feature else res[..., 0]
