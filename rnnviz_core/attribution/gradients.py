"""The gradient methods: grad_norm, grad_x_state (with respect to the recurrent states, through the
unrolled recurrence) and input_x_grad (with respect to the input or the embedding output), one at
a time or, for features, several from one shared pass (:func:`shared_scores`)."""
from __future__ import annotations

import torch

from .problem import Problem, chunks, input_grads


# --------------------------------------------------------------------------------------------
# gradient methods
# --------------------------------------------------------------------------------------------

def grad_norm_scores(prob: Problem, info) -> torch.Tensor:
    return shared_scores(prob, ["grad_norm"])["grad_norm"]


def grad_x_state_scores(prob: Problem, info) -> torch.Tensor:
    return shared_scores(prob, ["grad_x_state"])["grad_x_state"]


def input_x_grad_scores(prob: Problem, info) -> torch.Tensor:
    """x * df/dx summed over features (token ids: E * df/dE summed over the embedding dims)."""
    if not prob.tokens:
        return shared_scores(prob, ["input_x_grad"])["input_x_grad"]
    res = torch.empty((prob.N, prob.T), device=prob.dev)
    rows_all = torch.arange(prob.N, device=prob.dev)
    for s, e in chunks(prob.N, prob.rows_per_batch(prob.width())):
        out, leaf, delta = prob.forward_embedded(prob.xt[s:e], rows_all[s:e], "grad", clean=True)
        (g,) = input_grads(out.sum(), inputs=[leaf])
        res[s:e] = (delta * g).sum(-1)
    return res


#: the methods :func:`shared_scores` computes from one forward and one backward pass
SHARED = ("grad_norm", "grad_x_state", "input_x_grad")


def shared_scores(prob: Problem, methods, on_chunk=None) -> dict[str, torch.Tensor]:
    """Gradient methods from one forward and one backward pass per chunk of rows: one method (its
    own pass) or several (one shared pass).

    grad_norm and grad_x_state need d target / d h_t (h_t: the last recurrent layer's per-step
    state, through a zero probe added to it), input_x_grad d target / d x_t; both are gradients of
    the same output through the same unrolled recurrence, so one backward pass to the probe and to
    x gives every one of them. input_x_grad needs features (token ids go through the embedding
    output: :func:`input_x_grad_scores`); with ``prob.per_feature`` its scores are [N, T, F].
    """
    methods = list(methods)
    if not set(methods) <= set(SHARED) or (prob.tokens and "input_x_grad" in methods):
        raise ValueError("shared_scores takes grad_norm, grad_x_state and (features only) input_x_grad")
    want_h = any(m != "input_x_grad" for m in methods)
    want_x = "input_x_grad" in methods
    H = prob.width()
    res = {m: torch.empty((prob.N, prob.T, prob.n_features) if m == "input_x_grad" and prob.per_feature
                          else (prob.N, prob.T), device=prob.dev) for m in methods}
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
        cap = None if on_chunk is None else {}
        out, h = prob.forward(xr, rows, probe=probe, clean=True, capture=cap)
        grads = list(input_grads(out.sum(), inputs=leaves))
        g = grads.pop(0) if want_h else None
        gx = grads.pop(0) if want_x else None
        for m in methods:
            if m == "grad_norm":
                res[m][s:e] = g.norm(dim=-1)
            elif m == "grad_x_state":
                res[m][s:e] = (g * h.detach()).sum(-1)
            else:
                prod = xr.detach() * gx
                res[m][s:e] = prod if prob.per_feature else prod.sum(-1)
        if cap is not None:   # once this chunk's scores are taken: the records may be handed over as they are
            on_chunk(s, cap)
    return res
