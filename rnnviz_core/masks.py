"""Perturbation masks: the smallest part of a sequence that keeps the model's answer.

For every sequence a mask ``m`` in [0, 1] over its cells (steps x features; steps for token
ids) is learned so that the model, reading ``m * x + (1 - m) * p`` (``p``: the perturbation
that stands for "removed"), still gives the answer it gives on ``x``, while as little of the
sequence as possible is kept. The loss of sequence i is

    ((f(x~_i) - f(x_i)) / d_i) ** 2  +  area * mean(m_i over its cells)

with ``d_i = max(|f(x_i) - f(p_i)|, 0.01)`` (how far removing everything moves the output), so
the first term is the share of the answer lost, squared. Masks are ``sigmoid`` of free
parameters, all sequences of a batch are optimised at once (Adam, a fixed number of
iterations; every row's loss is its own, so the result does not depend on how rows are
batched), padding is never masked (no mask mass at or past a length) and, with ``at_steps=``,
only the chosen steps are masked while the others stay as they are. Those restart the
recurrence from the clean states before the first chosen step (:mod:`.resume`), so masking the
last step of each prefix costs one recurrent step per iteration.

``p`` is the baseline (``perturbation="baseline"``: zeros, the mean or an array, as for
occlusion) or a Gaussian blur of the sequence over its own valid steps
(``perturbation="blur"``, width ``sigma`` steps), as DynaMask uses. Token ids: the mask moves
each step's embedding output toward the baseline token's embedding.

``temperature`` (default 1) anneals the sigmoid: the mask at iteration k is
``sigmoid(theta / temperature ** (k / (iterations - 1)))``, so a final temperature below 1
pushes each cell toward 0 or 1 (a set of cells kept, rather than shares).

Scores: the mask itself ([N, T, F] with ``per_feature=True``), or its sum over features per
step. Method ``mask_x_grad`` multiplies each masked cell's mask value by ``|df/dx|`` at the
real input divided by its largest value over the sequence's masked cells (token ids: the
norm of the gradient with respect to the step's embedding): a cell scores high only when the
answer needs it and is among the most sensitive to it; a cell the mask keeps only because
removing it shifts the answer a little, or one the answer is sensitive to but does not need,
scores low. ``info`` adds ``loss_curve`` (mean loss per sequence at every iteration), ``area``
(share of each sequence's masked cells kept: mean mask) and ``output_kept``/``target_x``
(output on the masked and on the real sequence).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .arrays import valid_mask
from .errors import InputError

__all__ = ["mask"]

PERTURBATIONS = ("baseline", "blur")


def _blur(x: torch.Tensor, L: np.ndarray, sigma: float) -> torch.Tensor:
    """Gaussian blur over each sequence's valid steps (weights renormalised at the ends)."""
    N, T, Fdim = x.shape
    half = max(1, int(math.ceil(3 * sigma)))
    k = torch.exp(-0.5 * (torch.arange(-half, half + 1, device=x.device, dtype=x.dtype) / sigma) ** 2)
    valid = valid_mask(L, T, device=x.device)
    v = valid.to(x.dtype)[:, None, :]                                       # (N, 1, T)
    xs = (x * valid[..., None]).transpose(1, 2).reshape(N * Fdim, 1, T)
    num = torch.nn.functional.conv1d(xs, k[None, None], padding=half).reshape(N, Fdim, T)
    den = torch.nn.functional.conv1d(v, k[None, None], padding=half)           # (N, 1, T)
    return torch.where(valid[..., None], (num / den.clamp_min(1e-12)).transpose(1, 2), x)


def _check(iterations, area, lr, perturbation, sigma, seed, temperature=1.0):
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise InputError(f"iterations must be a positive whole number, got {iterations!r}.")
    for name, v in (("area", area), ("lr", lr), ("sigma", sigma),
                    ("temperature", temperature)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise InputError(f"{name} must be a positive number, got {v!r}.")
    if perturbation not in PERTURBATIONS:
        raise InputError(f"Unknown perturbation {perturbation!r}. Choose one of: "
                         f"{', '.join(PERTURBATIONS)}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be a whole number, got {seed!r}.")


def mask(prob, b: torch.Tensor, info, *, at_steps=None, iterations: int = 60,
         area: float = 0.1, lr: float = 0.2, perturbation: str = "baseline",
         sigma: float = 1.0, seed: int = 0, temperature: float = 1.0,
         gate: bool = False) -> torch.Tensor:
    """Mask scores [N, T] (or [N, T, F]); zeros where not masked (NaN-ed by the caller).

    ``gate=True`` (method ``mask_x_grad``): each cell's mask value times the size of the
    gradient of the target at that cell (at the real input), the gradient relative to the
    largest of the sequence's masked cells; token ids: the gradient's norm over the embedding.
    """
    from .occlusion import chosen_steps
    from .resume import Resumer

    _check(iterations, area, lr, perturbation, sigma, seed, temperature)
    if prob.tokens and perturbation == "blur":
        raise InputError('perturbation="blur" needs features [N, T, F]; token ids have no values '
                         'to blur. Use perturbation="baseline" (the baseline token).')
    chosen = chosen_steps(at_steps, prob.L, prob.T)                          # (N, T) bool
    N, T, dev = prob.N, prob.T, prob.dev
    Fdim = prob.n_features
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    noise = (torch.rand((N, T, Fdim), generator=gen) - 0.5).mul_(0.02).to(dev)  # tie-breaking
    res = torch.zeros(N, T, Fdim, device=dev)
    curve = torch.zeros(int(iterations), device=dev)
    kept_out = torch.zeros(N, device=dev)
    area_kept = torch.zeros(N, device=dev)
    first = np.where(chosen.any(1), chosen.argmax(1), -1)                  # first masked step
    if prob.tokens:
        p = b
        fx = _token_target(prob, b, None, torch.arange(N, device=dev))
        starts, runner = [0], None
        first = np.where(first >= 0, 0, -1)
    else:
        p = b if perturbation == "baseline" else _blur(prob.xt, prob.L, float(sigma))
        runner = Resumer(prob)
        fx = runner.clean()
        starts = sorted(set(first[first >= 0].tolist()))
    per = prob.rows_per_batch(prob.width())
    for s0 in starts:
        if runner is not None:
            runner.advance(s0)
        rows_g = torch.as_tensor(np.nonzero(first == s0)[0], device=dev)
        for c0 in range(0, rows_g.numel(), per):
            r = rows_g[c0:c0 + per]
            cm = torch.as_tensor(chosen, device=dev)[r][..., None].expand(-1, -1, Fdim)
            ncell = cm.sum((1, 2)).clamp_min(1).float()
            x, pr = prob.xt[r], p[r]
            with torch.no_grad():                                  # how far full removal goes
                f_all = (_token_target(prob, b, torch.zeros(r.numel(), T, device=dev), r)
                         if prob.tokens else runner.out(torch.where(cm, pr, x), r, start=s0))
            d = (fx[r] - f_all).abs().clamp_min(0.01)
            theta = noise[r].clone().requires_grad_(True)
            adam = _Adam(theta, float(lr))

            def loss_of(theta, temp=float(temperature)):
                m = torch.sigmoid(theta / temp) * cm
                if prob.tokens:
                    out = _token_target(prob, b, m[..., 0], r)
                else:
                    out = runner.out(torch.where(cm, m * x + (1 - m) * pr, x), r, start=s0)
                a = m.sum((1, 2)) / ncell
                return ((out - fx[r]) / d) ** 2 + float(area) * a, out, a

            for it in range(int(iterations)):
                loss, _, _ = loss_of(theta, _temp(it, int(iterations), float(temperature)))
                (g,) = torch.autograd.grad(loss.sum(), [theta])
                adam.step(g)
                curve[it] += loss.detach().sum()
            with torch.no_grad():
                _, out, a = loss_of(theta)
                res[r] = torch.sigmoid(theta / float(temperature)) * cm
                kept_out[r], area_kept[r] = out, a
            if gate:
                res[r] = res[r] * _sensitivity(prob, runner, b, r, cm, s0)
    done = int((first >= 0).sum())
    info.update({"loss_curve": (curve / max(done, 1)).cpu().numpy(),
                 "area": area_kept.cpu().numpy(), "output_kept": kept_out.cpu().numpy(),
                 "target_x": fx.cpu().numpy(), "scored": chosen,
                 "iterations": int(iterations), "perturbation": perturbation,
                 "temperature": float(temperature)})
    return res if prob.per_feature else res.sum(-1)


def _temp(it: int, iterations: int, end: float) -> float:
    """Sigmoid temperature at iteration ``it``: 1 at the first, ``end`` at the last (geometric),
    so that a final temperature below 1 pushes the mask toward 0 or 1."""
    return end ** (it / max(iterations - 1, 1))


def _sensitivity(prob, runner, b, r, cm, s0) -> torch.Tensor:
    """|d target / d x| at the real input of rows r, on the masked cells cm (n, T, F), divided by
    its largest value over each row's masked cells (token ids: the embedding gradient's norm)."""
    if prob.tokens:
        out, leaf, _ = prob.forward_embedded(prob.xt[r], r, "grad", clean=True)
        (g,) = torch.autograd.grad(out.sum(), [leaf])
        s = g.norm(dim=-1)[..., None] * cm
    else:
        xg = prob.xt[r].detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(runner.out(xg, r, start=s0).sum(), [xg])
        s = g.abs() * cm
    top = s.flatten(1).amax(1).clamp_min(1e-30)
    return (s / top[:, None, None]).detach()


class _Adam:
    """Adam (Kingma & Ba, torch's defaults) on one tensor: a few lines instead of importing
    torch.optim, whose first import costs seconds."""

    def __init__(self, p: torch.Tensor, lr: float, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8):
        self.p, self.lr, self.b1, self.b2, self.eps, self.k = p, lr, b1, b2, eps, 0
        self.m = torch.zeros_like(p)
        self.v = torch.zeros_like(p)

    @torch.no_grad()
    def step(self, g: torch.Tensor) -> None:
        self.k += 1
        self.m.mul_(self.b1).add_(g, alpha=1 - self.b1)
        self.v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
        mh = self.m / (1 - self.b1 ** self.k)
        vh = self.v / (1 - self.b2 ** self.k)
        self.p.sub_(self.lr * mh / (vh.sqrt() + self.eps))


def _token_target(prob, b, m, rows):
    """Token ids: target with each step's embedding at m (n, T) of the way from the baseline
    token's embedding (ids b) to its own; m None: the real sequence (fixes the predicted class)."""
    x = prob.xt[rows]
    if m is None:
        with torch.no_grad():
            return prob.predict_out(x, rows, clean=True)
    return prob.forward_embedded(x, rows, "path", b[rows], m)[0]
