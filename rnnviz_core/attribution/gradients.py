"""The gradient methods: grad_norm, grad_x_state (with respect to the recurrent states, through the
unrolled recurrence) and input_x_grad (with respect to the input or the embedding output)."""
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
