"""A forward-direction GRU layer from the fused kernel with every gate in three matrix products:
for the hand-written backward (:func:`gru_keep`) and for a trace with gates (:func:`gru_record`)."""
from __future__ import annotations

import torch

from .kernels import LayerWeights, big_empty, linear_act

__all__ = ["gru_keep", "gru_plain", "gru_record"]


def _fused(x, h0, w: LayerWeights, mask):
    """(x time-major with padding steps fed zeros, the fused kernel's output (T, N, Hs))."""
    dt, dev = x.dtype, x.device
    if mask is not None:
        x = torch.where(mask[..., None], x, torch.zeros((), dtype=dt, device=dev))
    params = [w.w_ih, w.w_hh]
    if w.b_ih is not None:
        params += [w.b_ih, w.b_hh]
    x_tm = x.transpose(0, 1)
    out_tm, _ = torch._VF.gru(x_tm, h0[None], params, w.b_ih is not None, 1, 0.0, False, False, False)
    return x_tm, out_tm.contiguous()


def _last(out_tm, mask):
    """(h_n at each sequence's last real step, out_tm with zeros on padding (in place))."""
    if mask is None:
        return out_tm[-1].clone(), out_tm
    n = out_tm.shape[1]
    last = (mask.sum(1) - 1).clamp_min(0)
    h_n = out_tm[last, torch.arange(n, device=out_tm.device)]
    out_tm.masked_fill_(~mask.t()[..., None], 0)
    return h_n, out_tm


def gru_plain(x, h0, w: LayerWeights, mask):
    """Forward-direction GRU layer without gates (no gradient, nothing recorded): the fused
    kernel's h, the same numbers as :func:`gru_record` and :func:`gru_keep` give. Returns what
    :func:`.recurrence.run_direction` returns."""
    _, out_tm = _fused(x, h0, w, mask)
    h_n, out_tm = _last(out_tm, mask)
    return out_tm.transpose(0, 1), h_n, None, {}, None


def _gru_steps(x, h0, w: LayerWeights, mask):
    """(out_tm (T, N, Hs) with zeros on padding, h_n, rz (T, N, 2H), n (T, N, H), W_hn h_{t-1} + b_hn
    (T, N, H), h_{t-1} (T, N, Hs)) of a forward-direction GRU layer; see :func:`gru_keep`."""
    n, t_len, n_in = x.shape
    dev, dt = x.device, x.dtype
    hs = w.w_hh.shape[1]
    hc = w.w_hh.shape[0] // 3
    x_tm, out_tm = _fused(x, h0, w, mask)
    z = big_empty((t_len, n, n_in + hs), dt, dev)  # rows [x_t, h_{t-1}], time-major
    z[..., :n_in] = x_tm
    z[0, :, n_in:] = h0
    if t_len > 1:
        z[1:, :, n_in:] = out_tm[:-1]
    zero = torch.zeros(3 * hc, dtype=dt, device=dev)
    b_ih = zero if w.b_ih is None else w.b_ih
    b_hh = zero if w.b_hh is None else w.b_hh
    flat = z.view(t_len * n, n_in + hs)
    w_rz = torch.cat([w.w_ih[: 2 * hc], w.w_hh[: 2 * hc]], 1)
    rz = linear_act(flat, w_rz, b_ih[: 2 * hc] + b_hh[: 2 * hc], "sigmoid").view(t_len, n, 2 * hc)
    ghn = torch.addmm(b_hh[2 * hc :], flat[:, n_in:], w.w_hh[2 * hc :].t()).view(t_len, n, hc)
    g_n = torch.addmm(b_ih[2 * hc :], flat[:, :n_in], w.w_ih[2 * hc :].t()).view(t_len, n, hc)
    g_n.addcmul_(rz[..., :hc], ghn).tanh_()
    h_prev = z[..., n_in:]
    h_n, out_tm = _last(out_tm, mask)
    return out_tm, h_n, rz, g_n, ghn, h_prev


def gru_keep(x, h0, w: LayerWeights, mask):
    """Forward-direction GRU layer for the hand-written backward: h from the fused kernel
    (``torch._VF.gru``, what ``nn.GRU`` calls), then every step's gates at once.

    r_t, z_t, n_t depend only on x_t and h_{t-1}, so with h known at every step they are three
    matrix products over whole sequences (``[x_t, h_{t-1}] @ [W_i, W_h]^T`` with one fused
    sigmoid for r and z, ``h_{t-1} @ W_hn^T + b_hn`` and ``x_t @ W_in^T + b_in`` for n) instead
    of a Python loop that allocates fresh memory for five tensors at every step. Padding steps
    (mask False) are fed zeros and their values are never used (the backward sees no gradient
    there). Returns what :func:`.recurrence.run_direction` returns with ``keep=True``: ``kept[t]`` is
    ``(h_{t-1}, r_t, z_t, n_t, W_hn h_{t-1} + b_hn)``.
    """
    out_tm, h_n, rz, g_n, ghn, h_prev = _gru_steps(x, h0, w, mask)
    return out_tm.transpose(0, 1), h_n, None, {}, _Kept(h_prev, rz, g_n, ghn)


class _Kept:
    """``kept[t]`` of :func:`gru_keep`, its views made when the backward reaches step t (it often
    stops early: see :mod:`.backward`), not 5 x T of them up front."""

    def __init__(self, h_prev, rz, g_n, ghn):
        self.h_prev, self.rz, self.g_n, self.ghn = h_prev, rz, g_n, ghn
        self.hc = g_n.shape[2]

    def __len__(self) -> int:
        return self.g_n.shape[0]

    def __getitem__(self, t: int):
        hc = self.hc
        return self.h_prev[t], self.rz[t, :, :hc], self.rz[t, :, hc:], self.g_n[t], self.ghn[t]


def gru_record(x, h0, w: LayerWeights, mask):
    """Forward-direction GRU layer with its gates r, z and candidate n recorded, each (N, T, H)
    (views of time-major memory), as :func:`.recurrence.run_direction` returns with
    ``record=True``; computed as in :func:`gru_keep`. Values on padding steps are not the held
    state's (the trace sets them to NaN)."""
    out_tm, h_n, rz, g_n, _, _ = _gru_steps(x, h0, w, mask)
    hc = g_n.shape[2]
    rec = {"r": rz[..., :hc].transpose(0, 1), "z": rz[..., hc:].transpose(0, 1), "n": g_n.transpose(0, 1)}
    return out_tm.transpose(0, 1), h_n, None, rec, None
