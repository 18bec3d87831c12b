"""Back-propagation through time for one layer and direction, written out by hand from the
per-step values the forward loop kept (see :mod:`rnnviz_core.engine.recurrence`).
"""
from __future__ import annotations

import torch

from .kernels import GATES, LayerWeights, reorder, reverse_index, sigmoid_bwd, tanh_bwd

__all__ = ["backward_direction", "lstm_backward_forward_dir"]


def backward_direction(mode, w: LayerWeights, kept, dh_direct, dc_direct, mask_f, reverse, need_dx):
    """Back-propagation through time for one direction, by hand.

    dh_direct (N, T, Hs): gradient reaching h_t from outside the layer (next layer or head,
    h_n at the last real step); dc_direct (N, T, H) or None: the same for c (LSTM c_n).
    Returns (lam (N, T, Hs) = d out / d h_t, dx (N, T, I) or None, d h0 (N, Hs), d c0 or None).
    """
    if mode == "LSTM":
        if not reverse:
            return lstm_backward_forward_dir(w, kept, dh_direct, dc_direct, need_dx)
        # kept in processing order (see run_direction): reverse the gradients in, the results out
        n, t_len = dh_direct.shape[:2]
        idx = reverse_index(None if mask_f is None else mask_f > 0, t_len, n, dh_direct.device)
        lam, dx, dh0, dc0 = lstm_backward_forward_dir(
            w, kept, reorder(dh_direct, idx), None if dc_direct is None else reorder(dc_direct, idx), need_dx)
        return reorder(lam, idx), (None if dx is None else reorder(dx, idx)), dh0, dc0
    n, t_len, hs = dh_direct.shape
    w_hh = w.w_hh  # (G*H, Hs)
    g_h = w_hh.shape[0]  # G*H
    hc = g_h // max(1, len(GATES[mode]))
    # Pre-activation gradients go straight into a time-major buffer (no per-step concatenation);
    # without an input gradient one (N, G*H) buffer is reused.
    dpre_buf = dh_direct.new_empty(t_len, n, g_h) if need_dx else None
    work = None if need_dx else dh_direct.new_empty(n, g_h)
    lam_buf = dh_direct.new_empty(t_len, n, hs)
    carry = dh_direct.new_zeros(n, hs)
    dh0 = dh_direct.new_zeros(n, hs)
    # (adding the direct gradient at every step costs less than finding the steps that have one)
    for t in range(t_len) if reverse else range(t_len - 1, -1, -1):
        lam_t = torch.add(carry, dh_direct[:, t], out=lam_buf[t])
        buf = dpre_buf[t] if need_dx else work  # (N, G*H)
        if mode == "GRU":
            hp, r, z, g_n, ghn = kept[t]
            d_r, d_z, d_n = buf[:, :hc], buf[:, hc : 2 * hc], buf[:, 2 * hc :]
            lz = lam_t * z
            tanh_bwd(lam_t - lz, g_n, grad_input=d_n)  # d out / d (pre-activation of n): lam (1-z) (1-n^2)
            sigmoid_bwd(lam_t * (hp - g_n), z, grad_input=d_z)  # lam (h - n) z (1-z)
            sigmoid_bwd(d_n * ghn, r, grad_input=d_r)  # through r * (W_hn h + b_hn)
            nxt = torch.addmm(lz, buf[:, : 2 * hc], w_hh[: 2 * hc])
            nxt = torch.addmm(nxt, d_n * r, w_hh[2 * hc :])  # through W_hn h + b_hn, scaled by r
        else:
            act = kept[t]
            if mode == "RNN_TANH":
                tanh_bwd(lam_t, act, grad_input=buf)
            else:
                torch.mul(lam_t, (act > 0).to(act.dtype), out=buf)
            nxt = buf @ w_hh
        # the gradient of h_prev goes to the neighbouring step, or to h0 where the sequence starts
        nb = t + 1 if reverse else t - 1
        if 0 <= nb < t_len and (mask_f is None or not reverse):
            carry = nxt
        elif 0 <= nb < t_len:  # backward direction with lengths: starts at each sequence's last step
            keep_m = mask_f[:, nb, None]
            dh0 = dh0 + nxt * (1 - keep_m)
            carry = nxt * keep_m
        else:
            dh0 = dh0 + nxt
    lam_all = lam_buf.transpose(0, 1)  # (N, T, Hs)
    dx = (dpre_buf @ w.w_ih).transpose(0, 1) if need_dx else None  # (N, T, I)
    return lam_all, dx, dh0, None


def lstm_backward_forward_dir(w: LayerWeights, kept, dh_direct, dc_direct, need_dx):
    """:func:`backward_direction` for a forward-direction LSTM layer, every buffer allocated once.

    Per step: dc = carry_c + lam ⊙ dcf (through h = o tanh(c)), the gate pre-activation
    gradients from the kept factors, and the gradient of h_{t-1} written straight into the next
    step's slot of the result together with its direct gradient (one ``addmm``). No tensor is
    created inside the loop: a fresh 128 KB block per operation costs the C allocator a page
    mapping each time, more than the arithmetic.
    """
    n, t_len, hs = dh_direct.shape
    w_hh = w.w_hh  # (4H, Hs)
    hc = w_hh.shape[0] // 4
    fac, dcf, f_g = kept["fac"], kept["dc"], kept["f"]
    lam_buf = dh_direct.new_empty(t_len, n, hs)
    lam_buf[t_len - 1].copy_(dh_direct[:, t_len - 1])
    dpre_buf = dh_direct.new_empty(t_len, n, 4 * hc) if need_dx else None
    work = None if need_dx else dh_direct.new_empty(n, 4 * hc)
    carry_c = dh_direct.new_zeros(n, hc)  # d out / d c_t from later steps; becomes dc in place
    lam_m = None if w.w_hr is None else dh_direct.new_empty(n, hc)
    dh0 = dc0 = None
    for t in range(t_len - 1, -1, -1):
        lam_t = lam_buf[t]
        if lam_m is not None:  # through the projection h = W_hr (o tanh(c))
            lm = torch.mm(lam_t, w.w_hr, out=lam_m)
        else:
            lm = lam_t
        dc = carry_c.addcmul_(lm, dcf[t])
        if dc_direct is not None:
            dc.add_(dc_direct[:, t])
        buf = dpre_buf[t] if need_dx else work
        torch.mul(fac[t, :, : 3 * hc].view(n, 3, hc), dc[:, None, :], out=buf[:, : 3 * hc].view(n, 3, hc))
        torch.mul(fac[t, :, 3 * hc :], lm, out=buf[:, 3 * hc :])
        if t > 0:
            torch.addmm(dh_direct[:, t - 1], buf, w_hh, out=lam_buf[t - 1])
        else:
            dh0 = buf @ w_hh
        carry_c = dc.mul_(f_g[t])  # d out / d c_{t-1}
    dc0 = carry_c
    lam_all = lam_buf.transpose(0, 1)  # (N, T, Hs)
    dx = (dpre_buf @ w.w_ih).transpose(0, 1) if need_dx else None  # (N, T, I)
    return lam_all, dx, dh0, dc0
