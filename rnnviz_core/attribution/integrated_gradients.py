"""Integrated gradients: Gauss-Legendre at a fixed step count, or adaptive Gauss-Kronrod panels until
the completeness error is below ``tol`` (a forward-only scan of the path places the first panels)."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..arrays import valid_mask
from ..errors import InputError
from .problem import Problem, chunks, input_grads

# Integrated-gradients refinement defaults (see integrated_gradients_scores).
IG_MAX_STEPS = 2048      # gradient evaluations per sequence before refinement gives up
IG_TOL = 0.01
IG_FLOOR = 0.01
_IG_SPLIT = 0.25          # split every panel whose error estimate is >= this share of the worst

# Gauss-Kronrod 7-15 on [-1, 1] (QUADPACK's constants, as in scipy.integrate.quad_vec).
_GK_X = np.array([0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                  0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                  0.586087235467691130294144838258730, 0.405845151377397166906606412076961,
                  0.207784955007898467600689403773245, 0.0])
_GK_X = np.concatenate([_GK_X, -_GK_X[-2::-1]])                               # 15 nodes
_GK_WK = np.array([0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                   0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                   0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                   0.204432940075298892414161999234649, 0.209482141084727828012999174891714])
_GK_WK = np.concatenate([_GK_WK, _GK_WK[-2::-1]])                             # Kronrod weights
_GK_WG = np.zeros(15)                                                         # Gauss-7 weights
_GK_WG[1::2] = [0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                0.381830050505118944950369775488975, 0.417959183673469387755102040816327,
                0.381830050505118944950369775488975, 0.279705391489276667901467771423780,
                0.129484966168869693270611432679082]


_IG_SCAN = 32             # forward-only scan of the path: cells of width 1/32 ...
_IG_PEAK = 3.0            # ... where the output changes this many times faster than on average


# --------------------------------------------------------------------------------------------
# integrated gradients
# --------------------------------------------------------------------------------------------

def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (alphas in (0, 1)) and weights (sum 1) of n-point Gauss-Legendre quadrature."""
    z, w = np.polynomial.legendre.leggauss(n)
    return (z + 1.0) / 2.0, w / 2.0


def _ig_nodes(prob: Problem, b: torch.Tensor, rows: torch.Tensor,
              alphas: torch.Tensor) -> torch.Tensor:
    """Per path point: sum over features of (x - b) * grad f(b + a (x - b)).

    ``rows`` [E] (dataset rows, may repeat) and ``alphas`` [E] list the points; they are
    evaluated in batches of rows, never one sequence at a time. Returns [E, T], or with
    ``prob.per_feature`` [E, T * F] (step-major: the features of step 0, then of step 1, ...).
    Token ids: the path runs in the embedding space (engine.EmbedSpec), summed over its dims.
    """
    E = rows.numel()
    width = prob.T * prob.n_features if prob.per_feature else prob.T
    res = torch.empty(E, width, device=prob.dev)
    per = prob.rows_per_batch(prob.width())
    for s, e in chunks(E, per):
        r = rows[s:e]
        if prob.tokens:
            base = None if prob.zero_embedding else b[r]
            out, leaf, d = prob.forward_embedded(prob.xt[r], r, "path", base, alphas[s:e])
            (g,) = input_grads(out.sum(), inputs=[leaf])
            res[s:e] = (d * g).sum(-1)
            continue
        a = alphas[s:e].to(prob.xt.dtype)
        x, bb = prob.xt[r], b[r]
        d = x - bb                                                   # (n, T, F)
        xa = (bb + a[:, None, None] * d).requires_grad_(True)
        out, _ = prob.forward(xa, r)
        (g,) = input_grads(out.sum(), inputs=[xa])
        res[s:e] = (d * g).reshape(e - s, -1) if prob.per_feature else (d * g).sum(-1)
    return res


def _ig_fixed(prob: Problem, b: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    """n-point Gauss-Legendre integrated gradients for the given rows -> (len(rows), T)."""
    a, w = gauss_legendre(n)
    K, m = n, rows.numel()
    a_t = torch.as_tensor(a, dtype=torch.float64, device=prob.dev)
    w_t = torch.as_tensor(w, dtype=torch.float32, device=prob.dev)
    k = torch.arange(K, device=prob.dev).repeat_interleave(m)             # node-major order
    i = torch.arange(m, device=prob.dev).repeat(K)
    c = _ig_nodes(prob, b, rows[i], a_t[k])                                # (K*m, T)
    res = torch.zeros(m, c.shape[1], device=prob.dev)
    res.index_add_(0, i, c * w_t[k, None])
    return res


def _ig_first_panels(prob: Problem, b: torch.Tensor, max_panels: int):
    """Starting panels of every sequence's path, from a cheap forward-only scan of it.

    The target is computed (fused forward, no gradient) at ``_IG_SCAN + 1`` evenly spaced points
    of the path. Runs of cells where it changes more than ``_IG_PEAK`` times faster than its
    average over the path become panels of their own, and the stretches between them the
    others: a sharp transition (a gate flipping) then starts inside a narrow panel instead of
    being found by repeated halving of [0, 1]. A path without one keeps the single panel
    [0, 1], and so does one that would need more than ``max_panels`` (the evaluation budget).
    Token models (whose path runs in the embedding space) always start from [0, 1].
    Returns flat (row, start, end) tensors, grouped by row, panels in order.
    """
    N, dev, M = prob.N, prob.dev, _IG_SCAN
    rows_all = torch.arange(N, device=dev)
    if prob.tokens or M < 2:
        return (rows_all, torch.zeros(N, dtype=torch.float64, device=dev),
                torch.ones(N, dtype=torch.float64, device=dev))
    grid = torch.linspace(0, 1, M + 1, dtype=prob.xt.dtype, device=dev)
    f = torch.empty(N, M + 1, device=dev)
    per = max(1, prob.rows_per_batch(prob.width()) // (M + 1))
    with torch.no_grad():
        for s, e in chunks(N, per):
            r = rows_all[s:e].repeat_interleave(M + 1)
            xb, bb = prob.xt[r], b[r]
            a = grid.repeat(e - s)[:, None, None]
            f[s:e] = prob.predict_out(bb + a * (xb - bb), r).reshape(e - s, M + 1)
    v = (f[:, 1:] - f[:, :-1]).abs().cpu().numpy()                     # (N, M) change per cell
    total = v.sum(1, keepdims=True)
    peak = (v * M > _IG_PEAK * total) & np.isfinite(v) & (total > 0)
    cuts = peak[:, 1:] != peak[:, :-1]                                  # edges of peak runs
    cuts[cuts.sum(1) + 1 > max_panels] = False
    cut_r, cut_j = np.nonzero(cuts)
    rows = np.concatenate([np.arange(N), np.arange(N), cut_r])
    pts = np.concatenate([np.zeros(N), np.ones(N), (cut_j + 1) / M])
    order = np.lexsort((pts, rows))
    rows, pts = rows[order], pts[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    start = ~np.roll(first, -1)                                       # not a row's last point
    return (torch.as_tensor(rows[start], device=dev),
            torch.as_tensor(pts[start], dtype=torch.float64, device=dev),
            torch.as_tensor(pts[np.roll(start, 1)], dtype=torch.float64, device=dev))


def _ig_adaptive(prob: Problem, b: torch.Tensor, delta: torch.Tensor, denom: torch.Tensor,
                 valid: torch.Tensor, tol: float, max_evals: int):
    """Adaptive Gauss-Kronrod integrated gradients, per sequence (see contributions Notes).

    The first panels come from :func:`_ig_first_panels`; then every round splits in two the
    panels whose error estimate is near their sequence's worst.

    Panels are kept in flat tensors (row, start, end, Kronrod estimate [T], error estimate) so
    every round is one batched pass over all the points of all the sequences still refining.
    Returns (scores [N, T], evaluations per row [N]).
    """
    N, dev = prob.N, prob.dev
    W = valid.shape[1]               # T, or T * F for per-feature scores
    gx = torch.as_tensor(_GK_X, dtype=torch.float64, device=dev)
    wk = torch.as_tensor(_GK_WK, dtype=torch.float32, device=dev)
    wg = torch.as_tensor(_GK_WG, dtype=torch.float32, device=dev)

    def evaluate(p_row, p_a, p_b):
        """Kronrod estimate [P, T] and |Kronrod - Gauss| of the scalar sum, per panel."""
        P = p_row.numel()
        half = (p_b - p_a) / 2                                               # (P,)
        alphas = ((p_a + p_b) / 2)[:, None] + half[:, None] * gx[None, :]    # (P, 15)
        c = _ig_nodes(prob, b, p_row.repeat_interleave(15), alphas.reshape(-1))
        c = c.reshape(P, 15, W) * valid[p_row][:, None, :]
        h = half.to(torch.float32)[:, None]
        k_est = torch.einsum("k,pkt->pt", wk, c) * h                         # (P, T)
        g_sum = torch.einsum("k,pkt->p", wg, c) * h[:, 0]
        return k_est, (k_est.sum(1) - g_sum).abs()

    p_row, p_a, p_b = _ig_first_panels(prob, b, max_evals // 15)
    p_est, p_err = evaluate(p_row, p_a, p_b)
    evals = 15 * torch.bincount(p_row, minlength=N)
    while True:
        scores = torch.zeros(N, W, device=dev).index_add_(0, p_row, p_est)
        err = (scores.sum(1) - delta).abs() / denom
        active = (err > tol) & (evals + 30 <= max_evals)
        if not bool(active.any()):
            return scores, evals
        # split, in each active row, the panels whose estimate is near that row's worst
        worst = torch.zeros(N, device=dev).scatter_reduce(0, p_row, p_err, "amax")
        split = active[p_row] & (p_err >= _IG_SPLIT * worst[p_row])
        # never split more panels than the evaluation budget of the row allows: rank each
        # panel within its row by decreasing error (candidates come first) and keep the top
        by_err = torch.argsort(-p_err, stable=True)
        idx = by_err[torch.argsort(p_row[by_err], stable=True)]    # grouped by row, worst first
        rs = p_row[idx]
        rank = torch.empty_like(p_row)
        rank[idx] = torch.arange(rs.numel(), device=dev) - torch.searchsorted(rs, rs)
        allowed = (max_evals - evals) // 30
        split = split & (rank < allowed[p_row])
        cnt = torch.zeros(N, dtype=torch.long, device=dev).index_add_(0, p_row, split.long())
        mid = (p_a[split] + p_b[split]) / 2
        n_row = torch.cat([p_row[split], p_row[split]])
        n_a = torch.cat([p_a[split], mid])
        n_b = torch.cat([mid, p_b[split]])
        n_est, n_err = evaluate(n_row, n_a, n_b)
        keep = ~split
        p_row = torch.cat([p_row[keep], n_row])
        p_a = torch.cat([p_a[keep], n_a])
        p_b = torch.cat([p_b[keep], n_b])
        p_est = torch.cat([p_est[keep], n_est])
        p_err = torch.cat([p_err[keep], n_err])
        evals += 30 * cnt


def unrolled_out(prob: Problem, x: torch.Tensor, clean: bool = False,
                  zero_embedding: bool = False) -> torch.Tensor:
    """Target for every row with the same unrolled forward the gradients use (no grad).

    ``zero_embedding`` (token ids): the embedding output is zero on every real step.
    """
    res = torch.empty(prob.N, device=prob.dev)
    rows_all = torch.arange(prob.N, device=prob.dev)
    with torch.no_grad():
        for s, e in chunks(prob.N, prob.rows_per_batch(prob.width())):
            r = rows_all[s:e]
            if zero_embedding:
                zero = torch.zeros(e - s, dtype=torch.float64, device=prob.dev)
                res[s:e] = prob.forward_embedded(x[s:e], r, "path", None, zero)[0]
            else:
                res[s:e] = prob.forward(x[s:e], r, clean=clean)[0]
    return res


def integrated_gradients_scores(prob: Problem, b: torch.Tensor, info, *, steps=None, tol=IG_TOL,
                          max_steps=IG_MAX_STEPS, floor=IG_FLOOR) -> torch.Tensor:
    """Integrated gradients along the straight path b -> x (see contributions Notes)."""
    for name, v in (("tol", tol), ("floor", floor)):
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InputError(f"{name} must be a positive number, got {v!r}.")
    for name, v in (("steps", steps), ("max_steps", max_steps)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                              or v < 1):
            raise InputError(f"{name} must be a positive whole number, got {v!r}.")
    if steps is None and max_steps < 15:
        raise InputError("max_steps must be at least 15 (one Gauss-Kronrod panel) when the "
                         "step count is refined; pass steps= for a fixed, smaller count.")
    fx = unrolled_out(prob, prob.xt, clean=True)
    fb = (unrolled_out(prob, prob.xt, zero_embedding=True) if prob.tokens and prob.zero_embedding
          else unrolled_out(prob, b))
    delta = fx - fb                                            # (N,)
    denom = delta.abs().clamp_min(floor)
    valid = valid_mask(prob.L, prob.T, device=prob.dev)
    if prob.per_feature:                                       # (N, T * F), step-major
        valid = valid[:, :, None].expand(-1, -1, prob.n_features).reshape(prob.N, -1)
    rows_all = torch.arange(prob.N, device=prob.dev)
    if steps is not None:
        res = _ig_fixed(prob, b, rows_all, int(steps))
        evals = np.full(prob.N, int(steps), dtype=np.int64)
        rule = f"gauss-legendre, {int(steps)} points"
    else:
        res, ev = _ig_adaptive(prob, b, delta, denom, valid, float(tol), int(max_steps))
        evals = ev.cpu().numpy().astype(np.int64)
        rule = (f"adaptive gauss-kronrod 7-15 to {tol:g} completeness, at most {max_steps} "
                "evaluations per sequence")
    res = res * valid
    sums = res.sum(1)                                          # (N,)
    err = ((sums - delta).abs() / denom)
    if prob.per_feature:
        res = res.reshape(prob.N, prob.T, prob.n_features)
    info.update({
        "completeness_error": err.cpu().numpy().astype(np.float64),
        "converged": (err <= tol).cpu().numpy(),
        "steps": evals,
        "gradient_evaluations": int(evals.sum()),
        "target_x": fx.cpu().numpy(), "target_baseline": fb.cpu().numpy(),
        "sum_scores": sums.cpu().numpy(),
        "tol": float(tol), "floor": float(floor), "rule": rule,
    })
    return res
