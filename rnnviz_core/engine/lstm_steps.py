"""The LSTM layer forward on the fused kernel: h_t from ``torch._VF.lstm``, then every gate
recomputed in a few large matmuls, either recorded (the trace) or reduced to the factors the
hand-written backward needs.
"""
from __future__ import annotations

import warnings

import torch

from .kernels import LayerWeights, big_empty, linear_act, sigmoid_bwd, tanh_bwd

__all__ = ["lstm_fused_h", "lstm_record", "lstm_keep"]


def lstm_fused_h(x, h0, c0, w: LayerWeights, mask):
    """h_t of a forward LSTM layer from the fused kernel, and every gate's input.

    Returns ``(out_tm, z, bias)``: the kernel's output (T, N, Hs) time-major (padding steps, mask
    False, are fed zeros and continue the recurrence), ``z`` (T*N, I+Hs) the rows
    ``[x_t, h_{t-1}]`` in the same order (time-major, so h_{t-1} of every step is one contiguous
    block of the output), and the summed bias (4H,).
    """
    n, t_len, n_in = x.shape
    dev, dt = x.device, x.dtype
    hs = w.w_hh.shape[1]
    if mask is not None:
        x = torch.where(mask[..., None], x, torch.zeros((), dtype=dt, device=dev))
    params = [w.w_ih, w.w_hh]
    if w.b_ih is not None:
        params += [w.b_ih, w.b_hh]
    if w.w_hr is not None:
        params.append(w.w_hr)
    x_tm = x.transpose(0, 1)
    with warnings.catch_warnings():  # oneDNN has no projected LSTM; PyTorch's own kernel runs (and says so)
        warnings.filterwarnings("ignore", message="LSTM with projections")
        out_tm, _, _ = torch._VF.lstm(x_tm, (h0[None], c0[None]), params, w.b_ih is not None, 1, 0.0, False,
                                      False, False)
    out_tm = out_tm.contiguous()
    z = torch.empty(t_len, n, n_in + hs, dtype=dt, device=dev)
    z[..., :n_in] = x_tm
    z[0, :, n_in:] = h0
    if t_len > 1:
        z[1:, :, n_in:] = out_tm[:-1]
    bias = (w.b_ih + w.b_hh) if w.b_ih is not None else torch.zeros(w.w_hh.shape[0], dtype=dt, device=dev)
    return out_tm, z.view(t_len * n, n_in + hs), bias


def lstm_record(x, h0, c0, w: LayerWeights, mask):
    """Forward-direction LSTM layer with every gate and cell state, each written once.

    h_t for every step comes from the fused kernel (``torch._VF.lstm``, what ``nn.LSTM`` calls),
    time-major. Every gate depends only on x_t and h_{t-1}, so gate k at all steps is one matrix
    product over whole sequences with its activation, ``act([x_t, h_{t-1}] @ [W_ik, W_hk]^T + b_k)``
    (:func:`linear_act`: one fused kernel on the CPU), into its own time-major buffer; the cell state
    c_t = f_t c_{t-1} + i_t g_t is the only recurrence left (one fused elementwise operation per
    step). Padding steps (mask False) are fed zeros; their values are not used (outputs there
    are 0, h_n and c_n come from each sequence's last real step).

    Returns ``(out, h_n, c_n, records, None)`` as :func:`run_direction`. ``out`` and the records
    are [N, T, size] views of time-major memory (not copied into batch-first order: the
    trace hands them over as they are).
    """
    n, t_len, _ = x.shape
    dev, dt = x.device, x.dtype
    hc = w.w_hh.shape[0] // 4
    out_tm, z, bias = lstm_fused_h(x, h0, c0, w, mask)
    # gate k at every step: act([x_t, h_{t-1}] @ [W_ik, W_hk]^T + b_k), one fused kernel per gate
    wz = torch.cat([w.w_ih, w.w_hh], 1)  # (4H, k_in)
    gates = [linear_act(z, wz[k * hc : (k + 1) * hc], bias[k * hc : (k + 1) * hc], act).view(t_len, n, hc)
             for k, act in enumerate(("sigmoid", "sigmoid", "tanh", "sigmoid"))]  # i, f, g, o
    del z
    i_g, f_g, g_g, o_g = gates
    c = big_empty((t_len, n, hc), dt, dev)
    torch.mul(i_g, g_g, out=c)
    c[0].addcmul_(f_g[0], c0)
    for t in range(1, t_len):
        c[t].addcmul_(f_g[t], c[t - 1])
    if mask is None:
        h_n, c_n = out_tm[-1], c[-1]
    else:
        rows_i = torch.arange(n, device=dev)
        last = (mask.sum(1) - 1).clamp_min(0)
        h_n, c_n = out_tm[last, rows_i], c[last, rows_i]
        out_tm.masked_fill_(~mask.t()[..., None], 0)
    rec = {k: v.transpose(0, 1) for k, v in zip("ifgo", (i_g, f_g, g_g, o_g))}
    rec["c"] = c.transpose(0, 1)
    return out_tm.transpose(0, 1), h_n.clone(), c_n.clone(), rec, None


def lstm_keep(x, h0, c0, w: LayerWeights, mask):
    """Forward-direction LSTM layer for the hand-written backward: h from the fused kernel, and
    the per-step factors :func:`backward_direction` multiplies by, in as few passes and buffers
    as it takes.

    Gates as in :func:`lstm_record` (one product for all four with their sigmoid, g rows doubled
    so one sigmoid serves all: tanh(u) = 2 sigmoid(2u) - 1), the cell
    state by its one-line recurrence, then the factors are written over the gates they come
    from: d pre_i = dc g i(1-i), d pre_f = dc c_prev f(1-f), d pre_g = dc i (1-g^2),
    d pre_o = lam tanh(c) o(1-o), and dc = carry + lam o (1 - tanh(c)^2). Same returns as
    :func:`run_direction` (no records).
    """
    n, t_len, _ = x.shape
    dev, dt = x.device, x.dtype
    hc = w.w_hh.shape[0] // 4
    out_tm, z, bias = lstm_fused_h(x, h0, c0, w, mask)
    scale = torch.ones(4 * hc, dtype=dt, device=dev)
    scale[2 * hc : 3 * hc] = 2.0
    wz = torch.cat([w.w_ih, w.w_hh], 1) * scale[:, None]  # (4H, k_in), g rows doubled
    sg = linear_act(z, wz, bias * scale, "sigmoid").view(t_len, n, 4 * hc)
    del z
    i_g, f_g, g_g, o_g = (sg[..., k * hc : (k + 1) * hc] for k in range(4))
    g_g.mul_(2).sub_(1)  # now tanh of the g pre-activation
    cs = torch.empty(t_len + 1, n, hc, dtype=dt, device=dev)  # cs[0] = c0, cs[t + 1] = c_t
    cs[0] = c0
    torch.mul(i_g, g_g, out=cs[1:])
    for t in range(t_len):
        cs[t + 1].addcmul_(f_g[t], cs[t])
    if mask is None:
        h_n, c_n = out_tm[-1].clone(), cs[-1].clone()
    else:
        rows_i = torch.arange(n, device=dev)
        last = (mask.sum(1) - 1).clamp_min(0)
        h_n, c_n = out_tm[last, rows_i], cs[last + 1, rows_i]
        out_tm.masked_fill_(~mask.t()[..., None], 0)
    f_keep = f_g.clone()  # f itself is needed for the cell-state carry; its slot takes d pre_f
    tc = torch.tanh(cs[1:])
    sigmoid_bwd(cs[:-1], f_g, grad_input=f_g)  # c_prev f (1 - f)
    tmp = cs[1:]  # c is no longer needed: its buffer serves as scratch
    tanh_bwd(i_g, g_g, grad_input=tmp)  # i (1 - g^2)
    sigmoid_bwd(g_g, i_g, grad_input=i_g)  # g i (1 - i)
    g_g.copy_(tmp)
    tanh_bwd(o_g, tc, grad_input=tmp)  # o (1 - tanh(c)^2)
    sigmoid_bwd(tc, o_g, grad_input=o_g)  # tanh(c) o (1 - o)
    kept = {"fac": sg, "dc": tmp, "f": f_keep}
    return out_tm.transpose(0, 1), h_n, c_n, {}, kept
