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

By concern (issue 20): :mod:`.kernels` (gate letters, weights, buffers, fused kernels),
:mod:`.lstm_steps` (the LSTM forward on the fused kernel), :mod:`.backward` (the hand-written
backward); this module runs them (:func:`run_direction`, :class:`LayerFn`, :func:`run_module`) and
re-exports the names that lived here before.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .backward import backward_direction
from .kernels import GATES, LayerWeights, big_empty, layer_weights, linear_act  # noqa: F401  (old home)
from .kernels import reorder as _reorder, reverse_index as _reverse_index
from .gru_steps import gru_keep, gru_plain, gru_record
from .lstm_steps import lstm_keep as _lstm_keep, lstm_record as _lstm_record

DIRECTIONS = ("fwd", "bwd")

# How a recurrent module runs (the ``recurrence=`` keyword of ModelView, run_module, unrolled_forward):
# "fused": the module itself (nn.GRU/nn.LSTM/nn.RNN); "fast": step by step with a hand-written
# backward; "stepwise": step by step with autograd recording every step (the reference).
RECURRENCES = ("fused", "fast", "stepwise")


def pick_recurrence(recurrence: str, engine: str | None = None) -> str:
    """``recurrence``, or the value of the keyword's old name ``engine=`` when that is given
    (kept for one release: the word "engine" also names the bundle's local/ray choice)."""
    return recurrence if engine is None else engine


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
    if mode == "GRU" and keep and not record and probe is None:
        if not reverse:
            return gru_keep(x, h, w, mask)
        # as the LSTM's below: the forward direction on each sequence reversed within its length,
        # the kept values in processing order (backward_direction reverses the gradients to match)
        idx = _reverse_index(mask, x.shape[1], x.shape[0], x.device)
        out, h_n, _, _, kept = gru_keep(_reorder(x, idx), h, w, mask)
        return _reorder(out, idx), h_n, None, {}, kept
    # without gradients (recorded or not: a layer runs the same kernel either way, so a trace and
    # a pass that records as it scores agree bit for bit), the fused kernel and whole-sequence gates
    if mode == "GRU" and not keep and probe is None and not torch.is_grad_enabled():
        fn = gru_record if record else gru_plain   # the gates only when recorded (the same kernel's h)
        if not reverse:
            return fn(x, h, w, mask)
        idx = _reverse_index(mask, x.shape[1], x.shape[0], x.device)  # as the LSTM's below
        out, h_n, _, rec, _ = fn(_reorder(x, idx), h, w, mask)
        return _reorder(out, idx), h_n, None, {k: _reorder(v, idx) for k, v in rec.items()}, None
    if mode == "LSTM" and (keep or (probe is None and not torch.is_grad_enabled())):
        if probe is not None:
            raise ValueError("internal: the hand-written LSTM backward takes the probe as a gradient, not a value")
        if keep and record:
            raise ValueError("internal: an LSTM layer is run either to keep factors or to record gates")
        fn = _lstm_keep if keep else _lstm_record
        if not reverse:
            out, h_n, c_n, rec, kept = fn(x, h, c, w, mask)
            return out, h_n, c_n, (rec if record else {}), kept
        # the backward direction is the forward one on each sequence reversed within its length;
        # h_n, c_n (its last processing step) and the kept factors stay in processing order
        idx = _reverse_index(mask, x.shape[1], x.shape[0], x.device)
        out, h_n, c_n, rec, kept = fn(_reorder(x, idx), h, c, w, mask)
        return (_reorder(out, idx), h_n, c_n, ({k: _reorder(v, idx) for k, v in rec.items()} if record else {}),
                kept)
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



@dataclass
class LayerSpec:
    mode: str
    weights: list  # per direction
    state_size: int
    hidden_size: int
    # record=True: the layer's per-direction records ("h" and the gates, as run_direction's
    # record=True gives them; detached) are left in ``recorded`` by the forward (issue 21: the
    # scores' pass hands the bundle its trace)
    record: bool = False
    recorded: list | None = None


def _layer_records(mode, x, h0, c0, w, mask, reverse, out, kept):
    """One direction's records, for :class:`LayerFn` with ``spec.record``: the gates a recorded
    run (``run_direction(record=True)`` without gradients, what a trace runs) gives, bit for bit.
    A GRU's come from the values its backward keeps (the same kernels,
    :func:`.gru_steps._gru_steps`), a plain RNN has none, and an LSTM's (whose kept factors
    overwrite its gates) are recorded by that run of the direction alone."""
    if mode == "GRU":
        hc = kept.hc
        rec = {"r": kept.rz[..., :hc].transpose(0, 1), "z": kept.rz[..., hc:].transpose(0, 1),
               "n": kept.g_n.transpose(0, 1)}
        if reverse:   # kept in processing order (see run_direction)
            idx = _reverse_index(mask, x.shape[1], x.shape[0], x.device)
            rec = {k: _reorder(v, idx) for k, v in rec.items()}
        return {"h": out.detach(), **rec}
    if mode != "LSTM":
        return {"h": out.detach()}
    with torch.no_grad():
        _, _, _, rec, _ = run_direction(mode, x, h0, c0, w, mask, reverse=reverse, record=True)
    return {"h": out.detach(), **rec}   # the same kernel made this pass's h (lstm_fused_h)


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
            if spec.record:
                spec.recorded.append(_layer_records(spec.mode, x, h0[d], None if c0 is None else c0[d], w, mask,
                                                    d == 1, out, k))
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
    Returns ``(output, h_n, c_n, records)``; records are keyed "l{layer}.{dir}.{kind}". With
    ``record`` on the fast path while gradients flow, the records are detached values (the
    forward of :class:`LayerFn` leaves them, see :func:`_layer_records`), the same as a recorded
    run without gradients gives.
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
        needs_grad = any(v is not None and v.requires_grad for v in (layer_in, h0, c0, p))
        use_fn = recurrence == "fast" and torch.is_grad_enabled() and needs_grad
        if use_fn:
            spec = LayerSpec(info.mode, ws, info.state_size, info.hidden_size, record=record,
                             recorded=[] if record else None)
            out, hn_l, cn_l = LayerFn.apply(layer_in, h0[sl], None if c0 is None else c0[sl], p, spec, mask)
            for d, rec in enumerate(spec.recorded or ()):
                records.update({f"l{layer}.{DIRECTIONS[d]}.{kind}": arr for kind, arr in rec.items()})
            spec.recorded = None   # the records go with this call, not with the backward's context
            h_n.append(hn_l)
            if info.mode == "LSTM":
                c_n.append(cn_l)
        else:
            outs = []
            for d in range(nd):
                k = layer * nd + d
                pd = None if p is None else p[..., d * info.state_size : (d + 1) * info.state_size]
                # a fast layer that nothing differentiates (the first layers of a pass that differentiates
                # by the last one's states) runs as a trace runs it, without gradients: the same kernel
                with torch.no_grad() if recurrence == "fast" and not needs_grad else nullcontext():
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
