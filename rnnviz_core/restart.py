"""Restarting the recurrence from kept states: the machinery behind :func:`rnnviz_core.what_if`
and :func:`prefix_outputs`.

A run *captured* with :func:`capturing` keeps, per recurrent module, its input, its initial
state and every layer's per-step records. A later run through :func:`resuming` copies the
captured steps before ``start`` and runs the recurrence only from there, starting every layer
from its captured h (and c) at the step before. The restart is used only where it is exact: the
module's input before ``start`` (and its initial state) must equal the captured ones, and the
module must read forwards only; otherwise the module runs in full. Both are runners for
:class:`rnnviz_core.engine.ModelView` (``view.session.runner``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .arrays import valid_mask
from .device import resolve_device
from .engine import ModelView, find_recurrent, prepare, unwrap_model
from .recurrence import run_module

__all__ = ["Capture", "capturing", "resuming", "run_one", "kept_records", "prefix_outputs", "gru_fused"]

# the recurrent module's input before the restart must match the captured one this closely
_INPUT_RTOL, _INPUT_ATOL = 1e-5, 1e-6


@dataclass
class Capture:
    """One run's recurrent modules, batch rows in the caller's order: per module its input
    (n, T, I) and records ("out" and "l{layer}.{dir}.{kind}", each (n, T, size))."""

    inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    hx: dict[str, Any] = field(default_factory=dict)
    records: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)


def rows_order(view: ModelView, n: int) -> torch.Tensor:
    perm = view.session.perm
    return torch.arange(n) if perm is None else perm


def capturing(view: ModelView, cap: Capture) -> Callable:
    """A runner that runs the recurrence as usual and keeps each module's input."""

    def runner(name, info, weights, x, hx, mask, record):
        res = run_module(info, weights, x, hx, mask, record=True, engine="fast")
        inv = torch.argsort(rows_order(view, x.shape[0]))
        cap.inputs[name] = x.detach()[inv]
        cap.hx[name] = None if hx is None else (tuple(h.detach()[:, inv] for h in hx) if isinstance(hx, tuple)
                                                else hx.detach()[:, inv])
        return res

    return runner


def gru_fused(info, weights, x, h0, mask, record):
    """A forward GRU's steps from PyTorch's fused kernel, each layer's gates then computed for all
    steps at once from the states before them (what the step loop gives, in a few matrix
    products). None (use the step loop) for other cells or when some step is padding."""
    if info.mode != "GRU" or info.num_directions != 1 or (mask is not None and not bool(mask.all())):
        return None
    import torch.nn.functional as F_

    layer_in, h_n, recs = x, [], {}
    H = info.hidden_size
    for layer in range(info.num_layers):
        w = weights[(layer, 0)]
        params = [w.w_ih, w.w_hh] + ([w.b_ih, w.b_hh] if w.b_ih is not None else [])
        out, hn = torch._VF.gru(layer_in, h0[layer : layer + 1].contiguous(), params, w.b_ih is not None, 1, 0.0,
                                False, False, True)                     # out (n, T, H), batch-first
        if record:
            prev = torch.cat([h0[layer][:, None], out[:, :-1]], 1)      # h_{t-1} of every step
            gi = F_.linear(layer_in, w.w_ih, w.b_ih)                   # (n, T, 3H)
            gh = F_.linear(prev, w.w_hh, w.b_hh)
            rz = torch.sigmoid(gi[..., : 2 * H] + gh[..., : 2 * H])
            r = rz[..., :H]
            recs[f"l{layer}.fwd.h"] = out
            recs[f"l{layer}.fwd.r"] = r
            recs[f"l{layer}.fwd.z"] = rz[..., H:]
            recs[f"l{layer}.fwd.n"] = torch.tanh(gi[..., 2 * H :] + r * gh[..., 2 * H :])
        h_n.append(hn)
        layer_in = out
    return layer_in, torch.cat(h_n, 0), None, recs


def same_hx(hx, old, idx) -> bool:
    """Whether the initial state the model gives now is the captured one (rows ``idx`` of it)."""
    if hx is None or old is None:
        return hx is None and old is None
    a = hx if isinstance(hx, tuple) else (hx,)
    b = old if isinstance(old, tuple) else (old,)
    return len(a) == len(b) and all(
        u is None and v is None or (u is not None and v is not None and u.shape == v[:, idx].shape
                                    and torch.allclose(u, v[:, idx].to(u.dtype), rtol=_INPUT_RTOL, atol=_INPUT_ATOL))
        for u, v in zip(a, b))


def resuming(view: ModelView, cap: Capture, start: int, used: dict[str, int]) -> Callable:
    """A runner that copies ``cap``'s steps before ``start`` and runs the recurrence from there.

    Row r of the batch is row r of ``cap``. A row whose length (in this call) is ``len <= start``
    needs no new step: its final state is the captured state at ``len - 1``. ``used[name]`` is set
    to the step each module restarted at (0: it ran in full).
    """

    def runner(name, info, weights, x, hx, mask, record):
        n, T = x.shape[:2]
        idx = rows_order(view, n)
        c_in = cap.inputs.get(name)
        s = min(start, T, 0 if c_in is None else c_in.shape[1])
        ok = (s > 0 and info.num_directions == 1 and same_hx(hx, cap.hx.get(name), idx)
              and torch.allclose(x[:, :s], c_in[idx, :s].to(x.dtype), rtol=_INPUT_RTOL, atol=_INPUT_ATOL))
        if not ok:
            used[name] = 0
            return None
        used[name] = s
        recs = cap.records[name]
        lens = torch.full((n,), T, dtype=torch.int64) if mask is None else mask.sum(1).cpu()
        k = (torch.clamp(lens, max=s) - 1).to(x.device)  # (n,) step whose state starts the rest
        src = idx.to(x.device)
        h0 = torch.stack([recs[f"l{l}.fwd.h"][src, k] for l in range(info.num_layers)], 0)  # (L, n, Hs)
        c0 = None
        if info.mode == "LSTM":
            c0 = torch.stack([recs[f"l{l}.fwd.c"][src, k] for l in range(info.num_layers)], 0)
        if T > s:
            m_s = None if mask is None else mask[:, s:]
            done = gru_fused(info, weights, x[:, s:], h0, m_s, record)
            out_s, h_n, c_n, recs_s = done if done is not None else run_module(
                info, weights, x[:, s:], (h0, c0) if c0 is not None else h0, m_s, record=record, engine="fast")
        else:
            out_s, h_n, c_n, recs_s = x.new_zeros(n, 0, info.output_size), h0, c0, {}
        out = torch.cat([recs["out"][idx, :s].to(out_s.dtype), out_s], 1)
        new_recs = {}
        if record:
            for key, val in recs.items():
                if key == "out":
                    continue
                tail = recs_s.get(key)
                if tail is None:
                    tail = val.new_zeros(n, T - s, val.shape[-1])
                new_recs[key] = torch.cat([val[idx, :s], tail], 1)
        return out, h_n, c_n, new_recs

    return runner


def run_one(model, dev, x_row: torch.Tensor, length: int, lengths_arg, output, runner_factory,
                 record=True):
    """Run the model on one sequence (its first ``length`` steps) through ``runner_factory(view)``;
    returns (logits (1, ...), records of every module in caller order)."""
    view = ModelView(model, dev, engine="fast", record=record, lengths_arg=lengths_arg, output=output)
    view.session.runner = runner_factory(view)
    xb = x_row[:length][None].to(dev)
    lb = torch.tensor([length], dtype=torch.int64)
    with torch.inference_mode():
        out = view.run(xb, lb)
    return out.detach().to("cpu", torch.float32), kept_records(view)


def kept_records(view: ModelView) -> dict[str, dict[str, torch.Tensor]]:
    """The per-step records of a run (each (n, T, size)), by module."""
    return {name: {k: v for k, v in rec.items() if isinstance(v, torch.Tensor) and v.dim() == 3}
            for name, rec in view.records.items()}


# ----------------------------------------------------------------------------- prefix outputs
def prefix_outputs(
    model: nn.Module,
    x: Any,
    lengths: Any = None,
    *,
    device: str | torch.device | None = "auto",
    batch_size: int | None = None,
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
    states: Any = None,
) -> np.ndarray:
    """The model's output after each prefix: ``out[i, t] = f(x[i, :t+1])``.

    Each batch's recurrence runs once; every prefix then reuses its states (see the module
    docstring), so a prefix costs the model's other layers only. Returns float32 [N, T, K]
    (K outputs: the classes, or 1), NaN at and past each length.

    ``states``: [N, >= T, H] the last recurrent layer's outputs on these sequences (a trace's
    ``h`` of the last layer), used instead of running the recurrence again when the model is a
    forward-reading one of rnnviz's built-in family (its head then reads them step by step);
    ignored for any other model.
    """
    model = unwrap_model(model)
    xt, lt = prepare(model, x, lengths, torch.device("cpu"))
    return prepared_prefix_outputs(model, xt, lt, device=device, batch_size=batch_size, lengths_arg=lengths_arg,
                                   output=output, states=states)


def prepared_prefix_outputs(model: nn.Module, xt: torch.Tensor, lt: torch.Tensor | None, *,
                            device: str | torch.device | None = "auto", batch_size: int | None = None,
                            lengths_arg: str | None = None, output: int | str | Callable | None = None,
                            states: Any = None) -> np.ndarray:
    """:func:`prefix_outputs` of inputs ``prepare`` has already checked (``xt`` on the CPU, ``lt``
    an int64 tensor or None): a caller that has checked them does not pay for it twice."""
    model = unwrap_model(model)
    dev = resolve_device(device)
    n, T = xt.shape[:2]
    L = np.full(n, T, dtype=np.int64) if lt is None else lt.numpy().astype(np.int64)
    if output is None and lengths_arg is None and _cumulative_head(model):
        return _builtin_prefix_outputs(model, xt, L, dev, batch_size, states)
    per_seq = max(1, T * sum(i.output_size * (4 if i.mode == "LSTM" else 3) * i.num_layers
                             for i in find_recurrent(model)))
    bs = int(batch_size) if batch_size else int(max(1, min(n, 2**22 // per_seq)))
    res = None
    for s in range(0, n, bs):
        xb, Lb = xt[s : s + bs], L[s : s + bs]
        nb = xb.shape[0]
        Tb = int(Lb.max())
        cap = Capture()
        view = ModelView(model, dev, engine="fast", record=True, lengths_arg=lengths_arg, output=output)
        view.session.runner = capturing(view, cap)
        with torch.inference_mode():
            # one forward on the whole batch (a model without lengths reads the padding of shorter
            # rows here, but only their real steps' states are ever reused: the recurrence is causal)
            full = view.run_batch(xb[:, :Tb].to(dev), torch.as_tensor(Lb), None, None, True)
            cap.records = kept_records(view)
            k_out = 1 if full.dim() == 1 else full.shape[1]
            if res is None:
                res = np.full((n, T, k_out), np.nan, dtype=np.float32)
            used: dict[str, int] = {}
            pview = ModelView(model, dev, engine="fast", record=False, lengths_arg=lengths_arg, output=output)
            pview.session.runner = None
            for t in range(1, Tb + 1):
                # every row reads min(length, t) steps; rows shorter than t are dropped below
                pview.session.runner = resuming(pview, cap, t, used)
                out = pview.run_batch(xb[:, :t].to(dev), torch.as_tensor(np.minimum(Lb, t)), None, None, True)
                alive = np.flatnonzero(Lb >= t)
                out = out.detach().to("cpu", torch.float32).numpy().reshape(nb, k_out)
                res[s + alive, t - 1] = out[alive]
    return res


def _cumulative_head(model: nn.Module) -> bool:
    """True for a forward-reading model of rnnviz's built-in family, whose head reads the last
    layer's outputs at the last step, their mean or their maximum: the output after prefix t is
    then that head applied to a running reading of the full run's outputs (the recurrence is
    causal), with no second run per prefix."""
    from .model.family import RecurrentModel
    return (isinstance(model, RecurrentModel) and not model.config.bidirectional
            and model.config.readout in ("last", "h_n", "mean", "max"))


def _builtin_prefix_outputs(model, xt: torch.Tensor, L: np.ndarray, dev, batch_size, states=None) -> np.ndarray:
    """:func:`prefix_outputs` of a :func:`_cumulative_head` model: one run of the model's own
    layers per batch (none when ``states``, its last layer's outputs, are given); the head reads,
    at every step t, what it would read after t + 1 steps (the output at t for ``last``/``h_n``,
    the running mean or maximum for ``mean``/``max``)."""
    c = model.config
    n, T = xt.shape[:2]
    captured: dict = {}

    def keep(_mod, _inp, result):
        captured["out"] = result

    width = c.state_size * max(1, c.num_outputs)
    bs = int(batch_size) if batch_size else int(max(1, min(n, 2**22 // max(1, T * width))))
    res = None
    was_training = model.training
    dev = next(model.parameters()).device     # one forward per batch: run where the model lives
    handle = model.rnn.register_forward_hook(keep)
    try:
        model.eval()
        with torch.inference_mode():
            for s in range(0, n, bs):
                xb, Lb = xt[s:s + bs], L[s:s + bs]
                tb = int(Lb.max())
                if states is not None:   # the recurrence's outputs are known: only the head runs
                    with warnings.catch_warnings():   # a trace's arrays are read-only; the head only reads them
                        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                        seq = torch.as_tensor(np.asarray(states[s:s + bs, :tb], dtype=np.float32)).to(dev)
                    seq = seq.to(next(model.head.parameters()).dtype)
                else:
                    model(xb[:, :tb].to(dev), torch.as_tensor(Lb))
                    seq = captured.pop("out")[0]
                if isinstance(seq, torch.nn.utils.rnn.PackedSequence):
                    seq, _ = torch.nn.utils.rnn.pad_packed_sequence(seq, batch_first=True, total_length=tb)
                if c.readout == "mean":
                    steps = torch.arange(1, tb + 1, device=seq.device, dtype=seq.dtype)
                    seq = seq.cumsum(1) / steps[None, :, None]
                elif c.readout == "max":
                    seq = seq.cummax(1).values
                out = model.head(seq)                                   # (nb, tb, C)
                out = out.reshape(out.shape[0], tb, -1).to("cpu", torch.float32).numpy()
                if res is None:
                    res = np.full((n, T, out.shape[2]), np.nan, dtype=np.float32)
                block = res[s:s + len(Lb), :tb]
                block[...] = out
                block[~valid_mask(Lb, tb)] = np.nan   # padding, as at and past each length elsewhere
    finally:
        handle.remove()
        model.train(was_training)
    return res
