"""Back-propagation through time for one layer and direction, written out by hand from the
per-step values the forward loop kept (see :mod:`rnnviz_core.engine.recurrence`).
"""
from __future__ import annotations

import numpy as np
import torch

from .kernels import GATES, LayerWeights, reorder, reverse_index, sigmoid_bwd, tanh_bwd

__all__ = ["backward_direction", "lstm_backward_forward_dir", "GRAD_FLOOR"]


#: gradients smaller than this share of the largest gradient arriving from outside a layer are set
#: to zero in the backward loops. Without it, a gradient that fades over hundreds of steps runs into
#: the float32 subnormal range (below 1.2e-38), where every multiply on this CPU costs up to 200x
#: more (6.6 ms instead of 0.03 ms for one 65 x 256 x 128 step); and once the whole carried
#: gradient is zero the loop stops early, since nothing earlier can change. 24 orders of magnitude
#: below the largest gradient is far below anything a chart, a ranking or a float32 sum can show.
GRAD_FLOOR = 1e-24


def _direct_sizes(dh_direct: torch.Tensor, dc_direct) -> tuple[float, int, int]:
    """(floor, first, last): the absolute size under which a gradient counts as zero (0.0: never),
    and the first and last step at which a gradient arrives from outside the layer ((T, -1): none)."""
    t_len = dh_direct.shape[1]
    if not dh_direct.numel():
        return 0.0, t_len, -1
    per_step = torch.linalg.vector_norm(dh_direct, float("inf"), dim=(0, 2))  # (T,) largest size per step
    if dc_direct is not None and dc_direct.numel():
        per_step = torch.maximum(per_step, torch.linalg.vector_norm(dc_direct, float("inf"), dim=(0, 2)))
    top = float(per_step.max())
    idx = (per_step != 0).nonzero()
    first, last = (int(idx[0]), int(idx[-1])) if len(idx) else (t_len, -1)
    return (top * GRAD_FLOOR if np.isfinite(top) else 0.0), first, last


def _zero_below(a: torch.Tensor, floor: float) -> torch.Tensor:
    """``a`` with every entry smaller than ``floor`` in size set to zero, in place."""
    if floor > 0:
        a.masked_fill_(a.abs() < floor, 0)
    return a


#: how often (in steps) the backward loops look whether the carried gradient has become all zero
_ZERO_CHECK = 8


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
    if mode == "GRU" and reverse and not isinstance(kept, list):
        # kept by the fused kernel in processing order (run_direction): the forward direction's
        # backward on the gradients reversed within each length, its results reversed back
        n, t_len = dh_direct.shape[:2]
        idx = reverse_index(None if mask_f is None else mask_f > 0, t_len, n, dh_direct.device)
        lam, dx, dh0, _ = backward_direction(mode, w, kept, reorder(dh_direct, idx), None, mask_f, False, need_dx)
        return reorder(lam, idx), (None if dx is None else reorder(dx, idx)), dh0, None
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
    floor, first, last = _direct_sizes(dh_direct, None)
    # (adding the direct gradient at every step costs less than finding the steps that have one)
    for t in range(t_len) if reverse else range(t_len - 1, -1, -1):
        lam_t = _zero_below(torch.add(carry, dh_direct[:, t], out=lam_buf[t]), floor)
        if t % _ZERO_CHECK == 0 and (t > last if reverse else t < first) and not bool(lam_t.any()):
            # nothing reaches this step or any step before it (in processing order): all zero
            rest = slice(t, t_len) if reverse else slice(0, t + 1)
            lam_buf[rest] = 0
            if need_dx:
                dpre_buf[rest] = 0
            break
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
    floor, first, _ = _direct_sizes(dh_direct, dc_direct)
    for t in range(t_len - 1, -1, -1):
        lam_t = _zero_below(lam_buf[t], floor)
        if t % _ZERO_CHECK == 0 and t < first and not (bool(lam_t.any()) or bool(carry_c.any())):
            # nothing reaches this step or any earlier one: every remaining gradient is zero
            lam_buf[: t + 1] = 0
            if need_dx:
                dpre_buf[: t + 1] = 0
            dh0 = dh_direct.new_zeros(n, hs)
            break
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
        carry_c = _zero_below(dc.mul_(f_g[t]), floor)  # d out / d c_{t-1}
    dc0 = carry_c
    lam_all = lam_buf.transpose(0, 1)  # (N, T, Hs)
    dx = (dpre_buf @ w.w_ih).transpose(0, 1) if need_dx else None  # (N, T, I)
    return lam_all, dx, dh0, dc0
