"""The gradient methods: grad_norm, grad_x_state (with respect to the recurrent states, through the
unrolled recurrence) and input_x_grad (with respect to the input or the embedding output), one at
a time or, for features, several from one shared pass (:func:`shared_scores`)."""
from __future__ import annotations

import torch

from .problem import Problem, chunks, input_grads


# --------------------------------------------------------------------------------------------
# gradient methods
# --------------------------------------------------------------------------------------------

def state_grads(prob: Problem, want_state: bool):
    """Yield (rows, g, h) chunk by chunk: g = d target / d h_t (total), h = h_t."""
    H = prob.width()
    rows_all = torch.arange(prob.N, device=prob.dev)
    for s, e in chunks(prob.N, prob.rows_per_batch(H)):
        rows = rows_all[s:e]
        # a zero added to every h_t: its values are never stored, so one zero seen as [n, T, H]
        probe = torch.zeros(1, 1, 1, device=prob.dev, requires_grad=True).expand(e - s, prob.T, H)
        out, h = prob.forward(prob.xt[s:e], rows, probe=probe, clean=True)
        (g,) = input_grads(out.sum(), inputs=[probe])   # (n, T, H)
        yield s, e, g, (h.detach() if want_state else None)


def grad_norm_scores(prob: Problem, info) -> torch.Tensor:
    res = torch.empty(prob.N, prob.T, device=prob.dev)
    for s, e, g, _ in state_grads(prob, False):
        res[s:e] = g.norm(dim=-1)
    return res


def grad_x_state_scores(prob: Problem, info) -> torch.Tensor:
    res = torch.empty(prob.N, prob.T, device=prob.dev)
    for s, e, g, h in state_grads(prob, True):
        res[s:e] = (g * h).sum(-1)
    return res


def input_x_grad_scores(prob: Problem, info) -> torch.Tensor:
    """x * df/dx summed over features (token ids: E * df/dE summed over the embedding dims)."""
    shape = (prob.N, prob.T, prob.n_features) if prob.per_feature else (prob.N, prob.T)
    res = torch.empty(shape, device=prob.dev)
    rows_all = torch.arange(prob.N, device=prob.dev)
    for s, e in chunks(prob.N, prob.rows_per_batch(prob.width())):
        if prob.tokens:
            out, leaf, delta = prob.forward_embedded(prob.xt[s:e], rows_all[s:e], "grad", clean=True)
            (g,) = input_grads(out.sum(), inputs=[leaf])
            res[s:e] = (delta * g).sum(-1)
            continue
        xr = prob.xt[s:e].detach().clone().requires_grad_(True)
        out, _ = prob.forward(xr, rows_all[s:e], clean=True)
        (g,) = input_grads(out.sum(), inputs=[xr])
        prod = xr.detach() * g
        res[s:e] = prod if prob.per_feature else prod.sum(-1)
    return res


#: the methods :func:`shared_scores` computes from one forward and one backward pass
SHARED = ("grad_norm", "grad_x_state", "input_x_grad")


def shared_scores(prob: Problem, methods) -> dict[str, torch.Tensor]:
    """Several gradient methods from one forward and one backward pass per chunk of rows.

    grad_norm and grad_x_state need d target / d h_t, input_x_grad d target / d x_t; both are
    gradients of the same output through the same unrolled recurrence, so one backward pass to
    the state probe and to x gives every one of them (the same numbers as the methods' own
    passes: the same graph, differentiated once). Features only (token ids go through the
    embedding output, one method at a time); per-step scores only.
    """
    methods = list(methods)
    if prob.tokens or prob.per_feature or not set(methods) <= set(SHARED):
        raise ValueError("shared_scores takes features and per-step gradient methods only")
    want_h = any(m != "input_x_grad" for m in methods)
    want_x = "input_x_grad" in methods
    H = prob.width()
    res = {m: torch.empty(prob.N, prob.T, device=prob.dev) for m in methods}
    rows_all = torch.arange(prob.N, device=prob.dev)
    for s, e in chunks(prob.N, prob.rows_per_batch(H)):
        rows = rows_all[s:e]
        leaves = []
        probe = None
        if want_h:
            probe = torch.zeros(1, 1, 1, device=prob.dev, requires_grad=True).expand(e - s, prob.T, H)
            leaves.append(probe)
        xr = prob.xt[s:e]
        if want_x:
            xr = xr.detach().clone().requires_grad_(True)
            leaves.append(xr)
        out, h = prob.forward(xr, rows, probe=probe, clean=True)
        grads = list(input_grads(out.sum(), inputs=leaves))
        g = grads.pop(0) if want_h else None
        gx = grads.pop(0) if want_x else None
        for m in methods:
            if m == "grad_norm":
                res[m][s:e] = g.norm(dim=-1)
            elif m == "grad_x_state":
                res[m][s:e] = (g * h.detach()).sum(-1)
            else:
                res[m][s:e] = (xr.detach() * gx).sum(-1)
    return res
