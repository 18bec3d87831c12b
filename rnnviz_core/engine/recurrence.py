"""The recurrence, step by step, with the model's own weights — and its gradient, by hand.

Forward (:func:`run_direction`): one layer, one direction, as the PyTorch docs write it::

    GRU   r = σ(W_ir x + b_ir + W_hr h + b_hr)      LSTM  i, f, o = σ(W_i* x + b_i* + W_h* h + b_h*)
          z = σ(W_iz x + b_iz + W_hz h + b_hz)            g = tanh(W_ig x + b_ig + W_hg h + b_hg)
          n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))   c' = f ⊙ c + i ⊙ g
          h' = (1 − z) ⊙ n + z ⊙ h                        h' = o ⊙ tanh(c')   (then W_hr h' if projected)
    RNN   h' = tanh or relu(W_ih x + b_ih + W_hh h + b_hh)

With ``lengths`` (a packed input) a sequence's state is held past its last real step and its
output there is 0, as ``pad_packed_sequence`` gives; the backward direction starts at each
sequence's last real step.

Backward (:class:`LayerFn`): back-propagation through time written out by hand from the
per-step values the forward loop kept. Each step costs a handful of small tensor operations;
autograd's graph of the same loop costs several times more. It returns the gradients for the
layer input, the initial states, and a zero *probe* added to h_t at every step — that is, the
total derivative d out / d h_t. No parameter gradient is ever computed, and no cuDNN backward
is used (cuDNN refuses to run RNN backward in eval mode). The autograd version of the same loop
(``recurrence="stepwise"``) is the reference the tests hold it against, with the fused modules.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# Gate letters in the order PyTorch stacks them in weight_ih / weight_hh.
GATES: dict[str, tuple[str, ...]] = {
    "GRU": ("r", "z", "n"),
    "LSTM": ("i", "f", "g", "o"),
    "RNN_TANH": (),
    "RNN_RELU": (),
}
DIRECTIONS = ("fwd", "bwd")

# How a recurrent module runs (the ``recurrence=`` keyword of ModelView, run_module, unrolled_forward):
# "fused": the module itself (nn.GRU/nn.LSTM/nn.RNN); "fast": step by step with a hand-written
# backward; "stepwise": step by step with autograd recording every step (the reference).
RECURRENCES = ("fused", "fast", "stepwise")


def pick_recurrence(recurrence: str, engine: str | None = None) -> str:
    """``recurrence``, or the value of the keyword's old name ``engine=`` when that is given
    (kept for one release: the word "engine" also names the bundle's local/ray choice)."""
    return recurrence if engine is None else engine

# Fused derivative kernels: grad * y * (1 - y) and grad * (1 - y^2) in one pass, given the output y.
_sigmoid_bwd = torch.ops.aten.sigmoid_backward.grad_input
_tanh_bwd = torch.ops.aten.tanh_backward.grad_input


@dataclass
class LayerWeights:
    """One layer and direction's weights, detached, on the compute device."""

    w_ih: torch.Tensor  # (G*H, I)
    w_hh: torch.Tensor  # (G*H, Hs)
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None
    w_hr: torch.Tensor | None  # (Hs, H) LSTM projection


def layer_weights(m: nn.RNNBase, layer: int, reverse: bool, device, dtype) -> LayerWeights:
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")

    def get(name):
        p = getattr(m, name + sfx, None)
        return None if p is None else p.detach().to(device=device, dtype=dtype)

    return LayerWeights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr"))


def run_direction(mode, x, h, c, w: LayerWeights, mask, reverse, probe=None, record=False, keep=False):
    """One layer, one direction, step by step.

    Parameters
    ----------
    x : (N, T, I) layer input; h : (N, Hs) initial state; c : (N, H) initial cell state (LSTM).
    mask : (N, T) bool, True on real steps, or None (every step real).
    probe : (N, T, Hs) or None, added to h_t inside the recurrence.
    record : also return the per-step gates and cell state, each (N, T, H).
    keep : also return the per-step values the hand-written backward needs.

    Returns ``(out, h_n, c_n, records, kept)``; ``out`` is (N, T, Hs) with zeros on padding.
    """
    if mode == "GRU" and keep and not record and not reverse and probe is None:
        return _gru_keep(x, h, w, mask)
    if mode == "LSTM" and (keep or (record and probe is None and not torch.is_grad_enabled())):
        if probe is not None:
            raise ValueError("internal: the hand-written LSTM backward takes the probe as a gradient, not a value")
        if keep and record:
            raise ValueError("internal: an LSTM layer is run either to keep factors or to record gates")
        fn = _lstm_keep if keep else _lstm_record
        if not reverse:
            return fn(x, h, c, w, mask)
        # the backward direction is the forward one on each sequence reversed within its length;
        # h_n, c_n (its last processing step) and the kept factors stay in processing order
        idx = _reverse_index(mask, x.shape[1], x.shape[0], x.device)
        out, h_n, c_n, rec, kept = fn(_reorder(x, idx), h, c, w, mask)
        return _reorder(out, idx), h_n, c_n, {k: _reorder(v, idx) for k, v in rec.items()}, kept
    t_len = x.shape[1]
    hc = w.w_hh.shape[0] // max(1, len(GATES[mode]))  # hidden size (state size differs when projected)
    # Input part of every gate for all steps in one matmul, time-major so each step is contiguous.
    # Hidden biases that simply add are folded in (GRU's b_hn is not: it sits inside r * (...)).
    b_in, b_step = w.b_ih, w.b_hh
    if w.b_hh is not None:
        if mode == "GRU":
            b_in = w.b_ih + torch.cat([w.b_hh[: 2 * hc], torch.zeros_like(w.b_hh[2 * hc :])])
            b_step = torch.cat([torch.zeros_like(w.b_hh[: 2 * hc]), w.b_hh[2 * hc :]])
        else:
            b_in, b_step = w.b_ih + w.b_hh, None
    w_ih, w_hh = w.w_ih, w.w_hh
    if mode == "LSTM":
        # tanh(u) = 2 sigmoid(2u) - 1: doubling the g rows lets one sigmoid serve all four gates
        scale = torch.ones(4 * hc, dtype=w_ih.dtype, device=w_ih.device)
        scale[2 * hc : 3 * hc] = 2.0
        w_ih, w_hh = w_ih * scale[:, None], w_hh * scale[:, None]
        b_in = None if b_in is None else b_in * scale
    gi = torch.nn.functional.linear(x.transpose(0, 1).contiguous(), w_ih, b_in)  # (T, N, G*H)
    w_hh_t = w_hh.t()
    w_hr_t = None if w.w_hr is None else w.w_hr.t()
    outs = [None] * t_len
    n_seq = x.shape[0]
    # Recorded values go straight into time-major buffers (one contiguous copy per step).
    sig_buf = x.new_empty(t_len, n_seq, (2 if mode == "GRU" else 4) * hc) if record and mode in ("GRU", "LSTM") else None
    cell_buf = x.new_empty(t_len, n_seq, hc) if record and mode in ("GRU", "LSTM") else None  # GRU n, LSTM c
    kept = [None] * t_len if keep else None
    # Without autograd, the recorded values are computed in place in those buffers (no copies).
    direct = record and not torch.is_grad_enabled()
    for t in range(t_len - 1, -1, -1) if reverse else range(t_len):
        if mode == "GRU":
            gh = torch.addmm(b_step, h, w_hh_t) if b_step is not None else h @ w_hh_t  # (N, 3H)
            rz = torch.sigmoid(gi[t, :, : 2 * hc] + gh[:, : 2 * hc], out=sig_buf[t] if direct else None)
            r, z = rz[:, :hc], rz[:, hc:]
            ghn = gh[:, 2 * hc :]  # W_hn h + b_hn
            n = torch.tanh(torch.addcmul(gi[t, :, 2 * hc :], r, ghn), out=cell_buf[t] if direct else None)
            h_new = torch.addcmul(n, z, h - n)  # (1 - z) * n + z * h
            if record and not direct:
                sig_buf[t] = rz
                cell_buf[t] = n
            if keep:
                kept[t] = (h, r, z, n, ghn)
        elif mode == "LSTM":
            pre = torch.addmm(gi[t], h, w_hh_t)  # (N, 4H), gate order i, f, g, o (g rows doubled)
            sg = torch.sigmoid(pre, out=sig_buf[t] if direct else None)
            i_g, f_g, o_g = sg[:, :hc], sg[:, hc : 2 * hc], sg[:, 3 * hc :]
            if keep or not direct:
                g_g = sg[:, 2 * hc : 3 * hc] * 2 - 1  # = tanh of the g pre-activation
                c_new = torch.addcmul(f_g * c, i_g, g_g)  # c_t = f * c_{t-1} + i * g
            else:  # the same, one operation shorter: f c + i (2 s_g - 1)
                c_new = torch.addcmul(f_g * c - i_g, i_g, sg[:, 2 * hc : 3 * hc], value=2, out=cell_buf[t])
            tc = torch.tanh(c_new)
            h_new = o_g * tc
            if w_hr_t is not None:
                h_new = h_new @ w_hr_t  # projection: h_t = W_hr (o_t * tanh(c_t))
            if keep:
                kept[t] = (c, i_g, f_g, g_g, o_g, tc)
            if record and not direct:
                sig_buf[t] = sg
                cell_buf[t] = c_new
            elif direct and keep:
                cell_buf[t] = c_new
            c = torch.where(mask[:, t, None], c_new, c) if mask is not None else c_new
        else:
            pre = torch.addmm(gi[t], h, w_hh_t)
            h_new = torch.tanh(pre) if mode == "RNN_TANH" else torch.relu(pre)
            if keep:
                kept[t] = h_new
        if probe is not None:
            h_new = h_new + probe[:, t]
        if mask is not None:
            m_t = mask[:, t, None]
            h = torch.where(m_t, h_new, h)
            outs[t] = h_new * m_t
        else:
            h = h_new
            outs[t] = h_new
    out = torch.stack(outs, 0).transpose(0, 1)  # (N, T, Hs), time-major storage
    rec = {}
    if record and mode == "GRU":
        rec = {"r": sig_buf[..., :hc], "z": sig_buf[..., hc:], "n": cell_buf}
    elif record and mode == "LSTM":
        rec = {"i": sig_buf[..., :hc], "f": sig_buf[..., hc : 2 * hc], "g": sig_buf[..., 2 * hc : 3 * hc] * 2 - 1,
               "o": sig_buf[..., 3 * hc :], "c": cell_buf}
    return out, h, c, {k: v.transpose(0, 1) for k, v in rec.items()}, kept


# Buffers at least this large (bytes) are taken from numpy on the CPU: numpy asks the kernel for
# huge pages (madvise), so first-touching tens of MB costs a fraction of what 4 KB pages cost.
_BIG = 4 << 20


def big_empty(shape, dtype, device) -> torch.Tensor:
    """``torch.empty`` for large CPU float buffers, backed by numpy (huge pages where available).

    The tensor shares its memory with a numpy array, so ``t.numpy()`` hands it over with no copy.
    """
    device = torch.device(device)
    if device.type == "cpu" and dtype in (torch.float32, torch.float64):
        size = 1
        for s in shape:
            size *= int(s)
        if size * (4 if dtype == torch.float32 else 8) >= _BIG:
            return torch.from_numpy(np.empty(tuple(int(s) for s in shape),
                                             dtype=np.float32 if dtype == torch.float32 else np.float64))
    return torch.empty(shape, dtype=dtype, device=device)


def _fused_linear_op():
    """oneDNN's fused linear + activation kernel (what torch.compile uses on x86 CPUs), or None."""
    try:
        if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
            return None
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return None


_LINEAR_ACT = _fused_linear_op()


def linear_act(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor, act: str) -> torch.Tensor:
    """``act(z @ w.T + b)`` for z (M, K), w (O, K), b (O,); act "sigmoid" or "tanh".

    On the CPU one oneDNN kernel computes the product, adds the bias and applies the activation
    while each block of the result is in cache (a third of the memory traffic of three passes);
    elsewhere, or if that kernel refuses the input, the same in plain operations.
    """
    if _LINEAR_ACT is not None and z.device.type == "cpu" and z.dtype == torch.float32:
        try:
            return _LINEAR_ACT(z, w, b, act, [], "")
        except RuntimeError:
            pass
    y = torch.addmm(b, z, w.t())
    return y.sigmoid_() if act == "sigmoid" else y.tanh_()


def _lstm_fused_h(x, h0, c0, w: LayerWeights, mask):
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


def _lstm_record(x, h0, c0, w: LayerWeights, mask):
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
    out_tm, z, bias = _lstm_fused_h(x, h0, c0, w, mask)
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


def _lstm_keep(x, h0, c0, w: LayerWeights, mask):
    """Forward-direction LSTM layer for the hand-written backward: h from the fused kernel, and
    the per-step factors :func:`backward_direction` multiplies by, in as few passes and buffers
    as it takes.

    Gates as in :func:`_lstm_record` (one product for all four with their sigmoid, g rows doubled
    so one sigmoid serves all: tanh(u) = 2 sigmoid(2u) - 1), the cell
    state by its one-line recurrence, then the factors are written over the gates they come
    from: d pre_i = dc g i(1-i), d pre_f = dc c_prev f(1-f), d pre_g = dc i (1-g^2),
    d pre_o = lam tanh(c) o(1-o), and dc = carry + lam o (1 - tanh(c)^2). Same returns as
    :func:`run_direction` (no records).
    """
    n, t_len, _ = x.shape
    dev, dt = x.device, x.dtype
    hc = w.w_hh.shape[0] // 4
    out_tm, z, bias = _lstm_fused_h(x, h0, c0, w, mask)
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
    _sigmoid_bwd(cs[:-1], f_g, grad_input=f_g)  # c_prev f (1 - f)
    tmp = cs[1:]  # c is no longer needed: its buffer serves as scratch
    _tanh_bwd(i_g, g_g, grad_input=tmp)  # i (1 - g^2)
    _sigmoid_bwd(g_g, i_g, grad_input=i_g)  # g i (1 - i)
    g_g.copy_(tmp)
    _tanh_bwd(o_g, tc, grad_input=tmp)  # o (1 - tanh(c)^2)
    _sigmoid_bwd(tc, o_g, grad_input=o_g)  # tanh(c) o (1 - o)
    kept = {"fac": sg, "dc": tmp, "f": f_keep}
    return out_tm.transpose(0, 1), h_n, c_n, {}, kept


def _gru_keep(x, h0, w: LayerWeights, mask):
    """Forward-direction GRU layer for the hand-written backward: h from the fused kernel
    (``torch._VF.gru``, what ``nn.GRU`` calls), then every step's gates at once.

    r_t, z_t, n_t depend only on x_t and h_{t-1}, so with h known at every step they are three
    matrix products over whole sequences (``[x_t, h_{t-1}] @ [W_i, W_h]^T`` with one fused
    sigmoid for r and z, ``h_{t-1} @ W_hn^T + b_hn`` and ``x_t @ W_in^T + b_in`` for n) instead
    of a Python loop that allocates fresh memory for five tensors at every step. Padding steps
    (mask False) are fed zeros and their values are never used (the backward sees no gradient
    there). Returns what :func:`run_direction` returns with ``keep=True``: ``kept[t]`` is
    ``(h_{t-1}, r_t, z_t, n_t, W_hn h_{t-1} + b_hn)``.
    """
    n, t_len, n_in = x.shape
    dev, dt = x.device, x.dtype
    hs = w.w_hh.shape[1]
    hc = w.w_hh.shape[0] // 3
    if mask is not None:
        x = torch.where(mask[..., None], x, torch.zeros((), dtype=dt, device=dev))
    params = [w.w_ih, w.w_hh]
    if w.b_ih is not None:
        params += [w.b_ih, w.b_hh]
    x_tm = x.transpose(0, 1)
    out_tm, _ = torch._VF.gru(x_tm, h0[None], params, w.b_ih is not None, 1, 0.0, False, False, False)
    out_tm = out_tm.contiguous()
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
    if mask is None:
        h_n = out_tm[-1].clone()
    else:
        last = (mask.sum(1) - 1).clamp_min(0)
        h_n = out_tm[last, torch.arange(n, device=dev)]
        out_tm.masked_fill_(~mask.t()[..., None], 0)
    kept = [(h_prev[t], rz[t, :, :hc], rz[t, :, hc:], g_n[t], ghn[t]) for t in range(t_len)]
    return out_tm.transpose(0, 1), h_n, None, {}, kept


def _reverse_index(mask, t_len, n, device):
    """(N, T) int64 index that reverses each sequence within its length (padding stays put).

    The permutation is its own inverse: gathering with it again restores the original order.
    """
    t = torch.arange(t_len, device=device)[None, :].expand(n, t_len)
    if mask is None:
        return t_len - 1 - t
    lens = mask.sum(1, keepdim=True)
    return torch.where(t < lens, lens - 1 - t, t)


def _reorder(a, idx):
    """Reorder a batch-first (N, T, K) tensor along time with a per-sequence index (N, T)."""
    return a.gather(1, idx[..., None].expand_as(a))


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
            return _lstm_backward_forward_dir(w, kept, dh_direct, dc_direct, need_dx)
        # kept in processing order (see run_direction): reverse the gradients in, the results out
        n, t_len = dh_direct.shape[:2]
        idx = _reverse_index(None if mask_f is None else mask_f > 0, t_len, n, dh_direct.device)
        lam, dx, dh0, dc0 = _lstm_backward_forward_dir(
            w, kept, _reorder(dh_direct, idx), None if dc_direct is None else _reorder(dc_direct, idx), need_dx)
        return _reorder(lam, idx), (None if dx is None else _reorder(dx, idx)), dh0, dc0
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
            _tanh_bwd(lam_t - lz, g_n, grad_input=d_n)  # d out / d (pre-activation of n): lam (1-z) (1-n^2)
            _sigmoid_bwd(lam_t * (hp - g_n), z, grad_input=d_z)  # lam (h - n) z (1-z)
            _sigmoid_bwd(d_n * ghn, r, grad_input=d_r)  # through r * (W_hn h + b_hn)
            nxt = torch.addmm(lz, buf[:, : 2 * hc], w_hh[: 2 * hc])
            nxt = torch.addmm(nxt, d_n * r, w_hh[2 * hc :])  # through W_hn h + b_hn, scaled by r
        else:
            act = kept[t]
            if mode == "RNN_TANH":
                _tanh_bwd(lam_t, act, grad_input=buf)
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


def _lstm_backward_forward_dir(w: LayerWeights, kept, dh_direct, dc_direct, need_dx):
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


@dataclass
class LayerSpec:
    mode: str
    weights: list  # per direction
    state_size: int
    hidden_size: int


class LayerFn(torch.autograd.Function):
    """One layer (all directions): forward loop without autograd, backward by hand.

    Inputs: x (N, T, I), h0 (D, N, Hs), c0 (D, N, H) or None, probe (N, T, D*Hs) or None
    (treated as zeros), spec, mask (N, T) bool or None. Outputs: out, h_n, c_n (empty for
    non-LSTM).
    """

    @staticmethod
    def forward(ctx, x, h0, c0, probe, spec, mask):
        outs, h_n, c_n, kept = [], [], [], []
        for d, w in enumerate(spec.weights):
            out, h_last, c_last, _, k = run_direction(
                spec.mode, x, h0[d], None if c0 is None else c0[d], w, mask, reverse=d == 1, keep=True
            )
            outs.append(out)
            h_n.append(h_last)
            if c_last is not None:
                c_n.append(c_last)
            kept.append(k)
        ctx.spec, ctx.mask, ctx.kept = spec, mask, kept
        ctx.set_materialize_grads(False)  # outputs the model never used get None, not zeros
        ctx.shape = x.shape
        ctx.has = (c0 is not None, probe is not None)
        out = outs[0] if len(outs) == 1 else torch.cat(outs, -1)
        return out, torch.stack(h_n, 0), (torch.stack(c_n, 0) if c_n else h0.new_zeros(0))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, d_out, d_hn, d_cn):
        spec, mask = ctx.spec, ctx.mask
        n, t_len, _ = ctx.shape
        hs, hc = spec.state_size, spec.hidden_size
        ref = next((g for g in (d_out, d_hn, d_cn) if g is not None and g.numel()), None)
        if ref is None:  # nothing downstream depends on this layer
            return None, None, None, None, None, None
        mask_f = None if mask is None else mask.to(ref.dtype)
        if mask is None:
            ends = torch.full((n,), t_len - 1, dtype=torch.int64, device=ref.device)
        else:
            ends = mask.sum(1) - 1
        rows = torch.arange(n, device=ref.device)
        need_dx = ctx.needs_input_grad[0]
        dx = None
        lams, dh0s, dc0s = [], [], []
        for d, w in enumerate(spec.weights):
            dh = ref.new_zeros(n, t_len, hs) if d_out is None else d_out[..., d * hs : (d + 1) * hs]
            if mask_f is not None:
                dh = dh * mask_f[..., None]
            end = ends if d == 0 else torch.zeros_like(ends)
            if d_hn is not None:
                if d_out is not None and mask_f is None:
                    dh = dh.clone()  # d_out is autograd's: not ours to change
                dh[rows, end] += d_hn[d]
            dc = None
            if spec.mode == "LSTM" and d_cn is not None and d_cn.numel():
                dc = ref.new_zeros(n, t_len, hc)
                dc[rows, end] = d_cn[d]
            lam, dx_d, dh0, dc0 = backward_direction(spec.mode, w, ctx.kept[d], dh, dc, mask_f, d == 1, need_dx)
            if mask_f is not None:
                lam = lam * mask_f[..., None]
                if dx_d is not None:
                    dx_d = dx_d * mask_f[..., None]
            if dx_d is not None:
                dx = dx_d if dx is None else dx + dx_d
            lams.append(lam)
            dh0s.append(dh0)
            if dc0 is not None:
                dc0s.append(dc0)
        has_c0, has_probe = ctx.has
        dprobe = (lams[0] if len(lams) == 1 else torch.cat(lams, -1)) if has_probe else None
        dc0_out = torch.stack(dc0s, 0) if (has_c0 and dc0s) else None
        return dx, torch.stack(dh0s, 0), dc0_out, dprobe, None, None


def _initial(info, x, hx):
    n = x.shape[0]
    nd = info.num_directions
    if info.mode == "LSTM":
        h0, c0 = hx if hx is not None else (None, None)
    else:
        h0, c0 = hx, None
    if h0 is None:
        h0 = x.new_zeros(info.num_layers * nd, n, info.state_size)
    if info.mode == "LSTM" and c0 is None:
        c0 = x.new_zeros(info.num_layers * nd, n, info.hidden_size)
    return h0, c0


def run_module(info, weights, x, hx, mask, probe=None, record=False, recurrence="fast", *, engine=None):
    """All layers and directions of one module; ``x`` (N, T, I) batch-first, ``hx`` as PyTorch takes it.

    ``recurrence="fast"``: autograd sees one :class:`LayerFn` per layer (hand-written backward);
    ``"stepwise"``: autograd records every step (the reference). ``probe`` goes to the last layer.
    ``engine=`` is the old name of ``recurrence=``, still accepted.
    Returns ``(output, h_n, c_n, records)``; records are keyed "l{layer}.{dir}.{kind}".
    """
    recurrence = pick_recurrence(recurrence, engine)
    nd = info.num_directions
    h0, c0 = _initial(info, x, hx)
    layer_in = x
    h_n, c_n, records = [], [], {}
    for layer in range(info.num_layers):
        sl = slice(layer * nd, (layer + 1) * nd)
        p = probe if layer == info.num_layers - 1 else None
        ws = [weights[(layer, d)] for d in range(nd)]
        use_fn = (
            recurrence == "fast"
            and not record
            and torch.is_grad_enabled()
            and any(v is not None and v.requires_grad for v in (layer_in, h0, c0, p))
        )
        if use_fn:
            spec = LayerSpec(info.mode, ws, info.state_size, info.hidden_size)
            out, hn_l, cn_l = LayerFn.apply(layer_in, h0[sl], None if c0 is None else c0[sl], p, spec, mask)
            h_n.append(hn_l)
            if info.mode == "LSTM":
                c_n.append(cn_l)
        else:
            outs = []
            for d in range(nd):
                k = layer * nd + d
                pd = None if p is None else p[..., d * info.state_size : (d + 1) * info.state_size]
                out_d, h_last, c_last, rec, _ = run_direction(
                    info.mode, layer_in, h0[k], None if c0 is None else c0[k], ws[d], mask,
                    reverse=d == 1, probe=pd, record=record,
                )
                outs.append(out_d)
                h_n.append(h_last[None])
                if c_last is not None:
                    c_n.append(c_last[None])
                if record:
                    prefix = f"l{layer}.{DIRECTIONS[d]}."
                    records[prefix + "h"] = out_d
                    for kind, arr in rec.items():
                        records[prefix + kind] = arr
            out = outs[0] if nd == 1 else torch.cat(outs, -1)
        layer_in = out
    return layer_in, torch.cat(h_n, 0), (torch.cat(c_n, 0) if c_n else None), records
