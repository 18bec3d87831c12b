"""One recurrent layer, fast: fused forward, gates recomputed in batch, hand-written backward.

Forward: the layer's states come from PyTorch's own fused kernel for one layer (oneDNN on CPU,
cuDNN on GPU), run without autograd. Every gate is then recomputed *in one batch over all steps*
from the layer input and the previous states, with the layer's own weights, exactly as the
PyTorch docs write the equations (GRU ``r z n``; LSTM ``i f g o``; the LSTM cell state by its
recurrence ``c_t = f_t * c_{t-1} + i_t * g_t``).

Backward (:class:`LayerFn`): back-propagation through time written out by hand. The local
Jacobian of each step depends only on forward values, so its factors are computed in batch and
the per-step loop is three or four tensor operations. It returns the gradients for the layer
input, the initial states and a zero *probe* added to h_t at every step, i.e. the total
derivative d out / d h_t. No parameter gradient is ever computed, and no cuDNN backward is used
(cuDNN refuses to run RNN backward in eval mode).

The step-by-step autograd recurrence in ``engine._run_direction`` is the reference that the
tests hold this against, together with the fused modules.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import _VF
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

_FUSED = {"GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu, "LSTM": _VF.lstm}


@dataclass
class LayerSpec:
    """What one call needs besides tensors: mode, the weights of each direction, lengths."""

    mode: str
    weights: list  # per direction: engine._LayerWeights
    lengths: torch.Tensor | None  # int64 CPU [N], None = all steps real
    hidden_size: int
    state_size: int


def _flat(ws) -> list[torch.Tensor]:
    flat = []
    for w in ws:
        flat += [w.w_ih, w.w_hh]
        if w.b_ih is not None:
            flat += [w.b_ih, w.b_hh]
        if w.w_hr is not None:
            flat.append(w.w_hr)
    return flat


def fused_states(spec: LayerSpec, x, h0, c0):
    """The fused kernel on one layer: returns (out [N,T,D*Hs] zeros on padding, h_n [D,N,Hs], c_n)."""
    n, t_len, _ = x.shape
    nd = len(spec.weights)
    flat = _flat(spec.weights)
    bias = spec.weights[0].b_ih is not None
    fn = _FUSED[spec.mode]
    hx = (h0, c0) if spec.mode == "LSTM" else h0
    if spec.lengths is None:
        res = fn(x.contiguous(), hx, flat, bias, 1, 0.0, False, nd == 2, True)
        out, h_n = res[0], res[1]
        c_n = res[2] if spec.mode == "LSTM" else None
        return out, h_n, c_n
    packed = pack_padded_sequence(x, spec.lengths, batch_first=True, enforce_sorted=False)
    si, ui = packed.sorted_indices, packed.unsorted_indices
    dev_si = si.to(x.device)
    if spec.mode == "LSTM":
        hx = (h0.index_select(1, dev_si), c0.index_select(1, dev_si))
    else:
        hx = h0.index_select(1, dev_si)
    res = fn(packed.data, packed.batch_sizes, hx, flat, bias, 1, 0.0, False, nd == 2)
    out = pad_packed_sequence(
        type(packed)(res[0], packed.batch_sizes, si, ui), batch_first=True, total_length=t_len
    )[0]
    dev_ui = ui.to(x.device)
    h_n = res[1].index_select(1, dev_ui)
    c_n = res[2].index_select(1, dev_ui) if spec.mode == "LSTM" else None
    return out, h_n, c_n


def _prev_states(h, h0, lengths, reverse):
    """h_{t-1} for every step (h_{t+1} for the backward direction), h0 where the sequence starts."""
    if not reverse:
        return torch.cat([h0[:, None], h[:, :-1]], 1)
    shifted = torch.cat([h[:, 1:], h0[:, None]], 1)
    if lengths is None:
        return shifted
    t_len = h.shape[1]
    start = (torch.arange(t_len)[None, :] == (lengths[:, None] - 1)).to(h.device)  # (N, T)
    return torch.where(start[..., None], h0[:, None], shifted)


def _cell_sequence(f, i, g, c0, mask, reverse):
    """c_t = f_t * c_{t-1} + i_t * g_t over time (held on padding); returns (c, c_prev), each (N, T, H)."""
    t_len = f.shape[1]
    ig = i * g
    cs = [None] * t_len
    prevs = [None] * t_len
    c = c0
    for t in (range(t_len - 1, -1, -1) if reverse else range(t_len)):
        prevs[t] = c
        c_new = torch.addcmul(ig[:, t], f[:, t], c)
        cs[t] = c_new
        c = torch.where(mask[:, t, None], c_new, c) if mask is not None else c_new
    return torch.stack(cs, 1), torch.stack(prevs, 1)


def direction_gates(spec: LayerSpec, d: int, x, h, h0, c0, mask):
    """Gates of one direction from the layer input x (N,T,I) and its states h (N,T,Hs), in batch.

    Returns a dict with the gates by PyTorch letter, "c" and "c_prev" (LSTM), "h_prev", and
    "ghn" (GRU: W_hn h_{t-1} + b_hn, needed by the backward pass), "pre" (RNN pre-activation).
    """
    w = spec.weights[d]
    hc = spec.hidden_size
    h_prev = _prev_states(h, h0, spec.lengths, d == 1)
    gi = torch.nn.functional.linear(x, w.w_ih, w.b_ih)  # (N, T, G*H)
    gh = torch.nn.functional.linear(h_prev, w.w_hh, w.b_hh)
    out = {"h_prev": h_prev}
    if spec.mode == "GRU":
        rz = torch.sigmoid(gi[..., : 2 * hc] + gh[..., : 2 * hc])
        out["r"], out["z"] = rz[..., :hc], rz[..., hc:]
        out["ghn"] = gh[..., 2 * hc :]
        out["n"] = torch.tanh(torch.addcmul(gi[..., 2 * hc :], out["r"], out["ghn"]))
    elif spec.mode == "LSTM":
        pre = gi + gh
        sg = torch.sigmoid(pre)
        out["i"], out["f"], out["o"] = sg[..., :hc], sg[..., hc : 2 * hc], sg[..., 3 * hc :]
        out["g"] = torch.tanh(pre[..., 2 * hc : 3 * hc])
        c0d = c0 if c0 is not None else x.new_zeros(x.shape[0], hc)
        out["c"], out["c_prev"] = _cell_sequence(out["f"], out["i"], out["g"], c0d, mask, d == 1)
    else:
        out["pre"] = gi + gh
    return out


def _coefficients(spec: LayerSpec, gates):
    """Batched factors of the local Jacobians: the loop multiplies by these."""
    mode = spec.mode
    if mode == "GRU":
        r, z, n, ghn, h_prev = gates["r"], gates["z"], gates["n"], gates["ghn"], gates["h_prev"]
        a_n = (1 - z) * (1 - n * n)  # d h / d pre_n
        a_r = a_n * ghn * r * (1 - r)  # d h / d pre_r
        a_z = (h_prev - n) * z * (1 - z)  # d h / d pre_z
        return {
            "hh": torch.cat([a_r, a_z, a_n * r], -1),  # factors for [pre_r, pre_z, W_hn h + b_hn]
            "ih": torch.cat([a_r, a_z, a_n], -1),  # factors for the input part of each gate
            "z": z,
        }
    if mode == "LSTM":
        i, f, g, o, c, c_prev = (gates[k] for k in ("i", "f", "g", "o", "c", "c_prev"))
        tc = torch.tanh(c)
        return {
            "b": o * (1 - tc * tc),  # d h / d c (before projection)
            "ifg": torch.cat([g * i * (1 - i), c_prev * f * (1 - f), i * (1 - g * g)], -1),  # per d c
            "o": tc * o * (1 - o),  # per d h
            "f": f,
        }
    pre = gates["pre"]
    if mode == "RNN_TANH":
        th = torch.tanh(pre)
        return {"a": 1 - th * th}
    return {"a": (pre > 0).to(pre.dtype)}


def _backward_direction(spec: LayerSpec, d, coef, dh_direct, dc_final, mask_f):
    """Back-propagation through time for one direction.

    dh_direct (N, T, Hs): gradient reaching each h_t from outside the layer (the head, the next
    layer, h_n at the last real step). dc_final (N, T, H) or None: the same for c (LSTM c_n).
    Returns (lam (N,T,Hs) = d out / d h_t, pre-activation gradients for the input part (N,T,G*H),
    d h0 (N,Hs), d c0 (N,H) or None).
    """
    w = spec.weights[d]
    mode = spec.mode
    n, t_len, hs = dh_direct.shape
    reverse = d == 1
    order = range(t_len) if reverse else range(t_len - 1, -1, -1)
    w_hh = w.w_hh  # (G*H, Hs)
    lam = [None] * t_len
    dcs = [None] * t_len if mode == "LSTM" else None
    carry = torch.zeros(n, hs, dtype=dh_direct.dtype, device=dh_direct.device)
    carry_c = torch.zeros(n, spec.hidden_size, dtype=dh_direct.dtype, device=dh_direct.device) if mode == "LSTM" else None
    dh0 = torch.zeros_like(carry)
    dc0 = torch.zeros_like(carry_c) if mode == "LSTM" else None
    for t in order:
        lam_t = dh_direct[:, t] + carry
        lam[t] = lam_t
        if mode == "GRU":
            p = (lam_t.repeat(1, 3) * coef["hh"][:, t])
            nxt = torch.addmm(lam_t * coef["z"][:, t], p, w_hh)
        elif mode == "LSTM":
            lam_m = lam_t @ w.w_hr if w.w_hr is not None else lam_t  # through the projection
            dc = torch.addcmul(carry_c, lam_m, coef["b"][:, t])
            if dc_final is not None:
                dc = dc + dc_final[:, t]
            dcs[t] = dc
            p = torch.cat([dc.repeat(1, 3) * coef["ifg"][:, t], lam_m * coef["o"][:, t]], 1)
            nxt = p @ w_hh
            nxt_c = dc * coef["f"][:, t]
        else:
            nxt = (lam_t * coef["a"][:, t]) @ w_hh
        # where does the gradient of h_prev go: the neighbouring step, or h0 where the sequence starts
        nb = t + 1 if reverse else t - 1
        if reverse and mask_f is not None:
            keep = mask_f[:, nb, None] if nb < t_len else torch.zeros_like(mask_f[:, :1])
            dh0 = dh0 + nxt * (1 - keep)
            carry = nxt * keep
            if mode == "LSTM":
                dc0 = dc0 + nxt_c * (1 - keep)
                carry_c = nxt_c * keep
        elif nb < 0 or nb >= t_len:
            dh0 = dh0 + nxt
            carry = carry * 0
            if mode == "LSTM":
                dc0 = dc0 + nxt_c
        else:
            carry = nxt
            if mode == "LSTM":
                carry_c = nxt_c
    lam_all = torch.stack(lam, 1)  # (N, T, Hs)
    if mode == "GRU":
        dpre = lam_all.repeat(1, 1, 3) * coef["ih"]
    elif mode == "LSTM":
        dc_all = torch.stack(dcs, 1)
        lam_m_all = lam_all @ w.w_hr if w.w_hr is not None else lam_all
        dpre = torch.cat([dc_all.repeat(1, 1, 3) * coef["ifg"], lam_m_all * coef["o"]], -1)
    else:
        dpre = lam_all * coef["a"]
    return lam_all, dpre, dh0, dc0


def layer_forward(spec: LayerSpec, x, h0, c0, mask, record: bool):
    """Fused states plus, when ``record`` (or for the backward pass), every gate in batch."""
    out, h_n, c_n = fused_states(spec, x, h0, c0)
    if not record:
        return out, h_n, c_n, None
    hs = spec.state_size
    per_dir = []
    for d in range(len(spec.weights)):
        h = out[..., d * hs : (d + 1) * hs]
        per_dir.append(direction_gates(spec, d, x, h, h0[d], None if c0 is None else c0[d], mask))
    return out, h_n, c_n, per_dir


class LayerFn(torch.autograd.Function):
    """Autograd wrapper: fused forward, hand-written backward (inputs: x, h0, c0, probe)."""

    @staticmethod
    def forward(ctx, x, h0, c0, probe, spec, mask):
        out, h_n, c_n, per_dir = layer_forward(spec, x, h0, c0, mask, record=True)
        ctx.spec, ctx.mask = spec, mask
        ctx.per_dir = per_dir
        ctx.save_for_backward(x)
        ctx.has_c0 = c0 is not None
        ctx.has_probe = probe is not None
        if c_n is None:
            c_n = h_n.new_zeros(0)
        return out, h_n, c_n

    @staticmethod
    def backward(ctx, d_out, d_hn, d_cn):
        spec, mask = ctx.spec, ctx.mask
        (x,) = ctx.saved_tensors
        n, t_len, _ = x.shape
        hs = spec.state_size
        nd = len(spec.weights)
        lengths = spec.lengths if spec.lengths is not None else torch.full((n,), t_len, dtype=torch.int64)
        mask_f = None if mask is None else mask.to(x.dtype)
        rows = torch.arange(n, device=x.device)
        dx = torch.zeros_like(x)
        dh0s, dc0s, lams = [], [], []
        for d in range(nd):
            dh = d_out[..., d * hs : (d + 1) * hs] if d_out is not None else x.new_zeros(n, t_len, hs)
            if mask_f is not None:
                dh = dh * mask_f[..., None]
            dh = dh.clone()
            end = (lengths - 1).to(x.device) if d == 0 else torch.zeros(n, dtype=torch.int64, device=x.device)
            if d_hn is not None:
                dh[rows, end] += d_hn[d]
            dc_final = None
            if spec.mode == "LSTM" and d_cn is not None and d_cn.numel():
                dc_final = x.new_zeros(n, t_len, spec.hidden_size)
                dc_final[rows, end] = d_cn[d]
            coef = _coefficients(spec, ctx.per_dir[d])
            lam, dpre, dh0, dc0 = _backward_direction(spec, d, coef, dh, dc_final, mask_f)
            if mask_f is not None:
                lam = lam * mask_f[..., None]
                dpre = dpre * mask_f[..., None]
            dx = dx + dpre @ spec.weights[d].w_ih
            dh0s.append(dh0)
            if dc0 is not None:
                dc0s.append(dc0)
            lams.append(lam)
        dprobe = None if not ctx.has_probe else (torch.cat(lams, -1) if nd > 1 else lams[0])
        dc0_out = torch.stack(dc0s, 0) if (dc0s and ctx.has_c0) else None
        return dx, torch.stack(dh0s, 0), dc0_out, dprobe, None, None
