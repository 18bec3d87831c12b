"""Shapley values over steps or groups of consecutive steps (as TimeSHAP users ask for).

The players of sequence i are its steps, or ``groups`` blocks of consecutive steps (block j
holds the steps t with ``floor(t * G_i / L_i) == j``, ``G_i = min(groups, L_i)``). The value of
a coalition S is the target output with every step outside S replaced by the baseline
(padding never replaced): ``v(S) = f(x_S)``, so ``v(all) = f(x)`` and ``v(none) = f(b)``.
A player's Shapley value is its marginal contribution averaged over all orders of the
players; a sequence's values add up to ``f(x) - f(b)`` exactly (efficiency), and each step's
score is its block's value shared equally among the block's steps.

* exact (default, at most ``exact_max`` = 12 players): every coalition is evaluated, ``2^G``
  forward passes per sequence (1,024 for 10 blocks), batched over sequences and coalitions;
* sampled (``samples=n``, any number of players): n random orders per sequence, each walked
  from the baseline to x (G + 1 passes per order, antithetic pairs: each order and its
  reverse), the mean marginal contribution, with its standard error reported in
  ``info["standard_error"]`` [N, G]. Efficiency holds exactly for every order, so it holds
  for the estimate too.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .errors import InputError

__all__ = ["shapley"]

EXACT_MAX = 12


def _groups(L: np.ndarray, T: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Block of every (sequence, step) [N, T] (-1 on padding) and players per sequence [N]."""
    G = np.minimum(groups, L)
    t = np.arange(T)[None, :]
    g = (t * G[:, None]) // np.maximum(L[:, None], 1)
    g[t >= L[:, None]] = -1
    return g, G


def shapley(prob, b: torch.Tensor, info, *, groups: int | None = None,
            samples: int | None = None, seed: int = 0) -> torch.Tensor:
    """Per-step Shapley scores [N, T]; see the module docstring."""
    if groups is None:
        groups = min(prob.T, 10)
    for name, v in (("groups", groups), ("samples", samples)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise InputError(f"{name} must be a positive whole number, got {v!r}.")
    if samples is None and groups > EXACT_MAX:
        raise InputError(f"Exact Shapley values over {groups} groups would take 2^{groups} model "
                         f"passes per sequence; use at most {EXACT_MAX} groups, or pass samples= "
                         "(random orders, with a standard error).")
    if prob.per_feature:
        raise InputError("per_feature=True is not offered for shapley (its players are steps).")
    N, T, dev = prob.N, prob.T, prob.dev
    gmap, G = _groups(prob.L, T, int(groups))
    Gmax = int(G.max())
    gmap_t = torch.as_tensor(gmap, device=dev)                                 # (N, T)
    rows_all = torch.arange(N, device=dev)
    fx = prob.predict_out(prob.xt, rows_all, clean=True)
    per = max(1, prob.rows_per_batch(prob.n_features * 4))

    def values(rows: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        """v for rows [P] with coalition bit masks members [P, Gmax] (bool)."""
        out = torch.empty(rows.numel(), device=dev)
        for s in range(0, rows.numel(), per):
            r, mem = rows[s:s + per], members[s:s + per]
            g = gmap_t[r]                                                     # (p, T)
            keep = (g < 0) | torch.gather(mem, 1, g.clamp_min(0))             # (p, T)
            xs = torch.where(keep if prob.tokens else keep[..., None], prob.xt[r], b[r])
            out[s:s + per] = prob.predict_out(xs, r)
        return out

    phi = torch.zeros(N, Gmax, device=dev)
    se = torch.zeros(N, Gmax, device=dev)
    bits = torch.arange(Gmax, device=dev)
    if samples is None:
        K = 1 << Gmax
        codes = torch.arange(K, device=dev)
        member = ((codes[:, None] >> bits[None, :]) & 1).bool()                # (K, Gmax)
        rr = rows_all.repeat_interleave(K)
        V = values(rr, member.repeat(N, 1)).reshape(N, K)                      # (N, K)
        size = member.sum(1)                                                   # (K,)
        for i_g in np.unique(G):
            rows = torch.as_tensor(np.nonzero(G == i_g)[0], device=dev)
            n = int(i_g)
            w = torch.tensor([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
                              for s in range(n)], device=dev)
            # coalitions of this row's own players only (the others are padding: dummies)
            own = codes < (1 << n)
            for j in range(n):
                S = codes[own & ~member[:, j]]                                 # without j
                phi[rows, j] = ((V[rows][:, S | (1 << j)] - V[rows][:, S]) * w[size[S]]).sum(1)
        evals = N * K
        fb = V[:, 0]
    else:
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        n_pairs = max(1, (int(samples) + 1) // 2)
        acc = torch.zeros(N, Gmax, device=dev)
        acc2 = torch.zeros(N, Gmax, device=dev)
        fb = None
        for _ in range(n_pairs):
            key = torch.rand((N, Gmax), generator=gen).to(dev)
            key[bits[None, :] >= torch.as_tensor(G, device=dev)[:, None]] = 2.0   # dummies last
            order = torch.argsort(key, 1)
            pair = []
            for o in (order, _reverse_own(order, G, dev)):
                contrib = _walk(values, o, G, N, Gmax, dev)
                pair.append(contrib)
            c = (pair[0] + pair[1]) / 2                                        # antithetic mean
            acc += c
            acc2 += c * c
        mean = acc / n_pairs
        var = (acc2 / n_pairs - mean ** 2).clamp_min(0) * n_pairs / max(n_pairs - 1, 1)
        phi, se = mean, (var / n_pairs).sqrt()
        evals = 2 * n_pairs * N * (Gmax + 1)
        fb = values(rows_all, torch.zeros(N, Gmax, dtype=torch.bool, device=dev))
    # spread each block's value over its steps
    count = torch.zeros(N, Gmax, device=dev).scatter_add_(
        1, gmap_t.clamp_min(0), (gmap_t >= 0).float())
    share = phi / count.clamp_min(1)
    res = torch.where(gmap_t >= 0, torch.gather(share, 1, gmap_t.clamp_min(0)),
                      torch.zeros((), device=dev))
    info.update({"group_values": phi.cpu().numpy(), "groups": gmap, "players": G,
                 "standard_error": se.cpu().numpy(), "exact": samples is None,
                 "evaluations": int(evals), "target_x": fx.cpu().numpy(),
                 "target_baseline": fb.cpu().numpy(),
                 "sum_scores": phi.sum(1).cpu().numpy()})
    return res


def _reverse_own(order: torch.Tensor, G: np.ndarray, dev) -> torch.Tensor:
    """Each row's order of its own players reversed (dummies stay last)."""
    N, Gmax = order.shape
    idx = torch.arange(Gmax, device=dev)[None, :].expand(N, -1)
    g = torch.as_tensor(G, device=dev)[:, None]
    src = torch.where(idx < g, g - 1 - idx, idx)
    return torch.gather(order, 1, src)


def _walk(values, order: torch.Tensor, G: np.ndarray, N: int, Gmax: int, dev) -> torch.Tensor:
    """Marginal contribution of every player along one order per row -> [N, Gmax]."""
    rows_all = torch.arange(N, device=dev)
    mem = torch.zeros(N, Gmax, dtype=torch.bool, device=dev)
    steps = [mem.clone()]
    for k in range(Gmax):
        mem = mem.clone()
        mem[rows_all, order[:, k]] = True
        steps.append(mem)
    allm = torch.stack(steps, 1).reshape(N * (Gmax + 1), Gmax)
    V = values(rows_all.repeat_interleave(Gmax + 1), allm).reshape(N, Gmax + 1)
    contrib = torch.zeros(N, Gmax, device=dev)
    contrib.scatter_(1, order, V[:, 1:] - V[:, :-1])
    return contrib
