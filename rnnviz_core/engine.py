"""The engine: run a user's model with its recurrent modules swapped for recording proxies.

PyTorch's ``nn.GRU``/``nn.LSTM``/``nn.RNN`` run a whole sequence as one fused operation that
returns each step's output but no gates, no LSTM cell states, and no autograd path through the
per-step outputs (the gradient of the final output with respect to ``output[:, t]`` is zero
for every step the head does not read). The engine therefore runs the user's model through a
*private view*: a structural copy of the module tree, in eval mode, that shares the model's
parameter storage (detached, so no parameter gradients are ever built) and has each recurrent
module replaced by a :class:`_RecurrentProxy`. The user's model object is never touched: no
``.eval()``, no hooks, no ``.to()``; a model shared by several threads stays correct for all.

A proxy runs in one of three ways:

* ``"fused"``: it calls a copy of the original fused module (what the model itself does) and
  records the per-step output. Used for ``Trace.hidden`` and ``predict``.
* ``"fast"`` (:mod:`._fastlayer`): each layer's states from the fused kernel for that layer,
  every gate and the LSTM cell state recomputed in batch with the layer's own weights, and
  back-propagation through time written by hand (no cuDNN backward, so gradients work in eval
  mode on GPU; no parameter gradients). Used for full traces and for gradients.
* ``"stepwise"``: the recurrence step by step with autograd, exactly as the PyTorch docs write
  the equations: the slow reference the other two are tested against.

Both recomputing engines can add a zero ``probe`` to the last layer's state at every step, so
that ``autograd.grad(out, probe)`` is the total derivative d out / d h_t. The tests compare all
three with the fused modules on every configuration to 1e-5.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ._fastlayer import LayerFn, LayerSpec, layer_forward
from .device import resolve_device
from .errors import InputError, ModelError

__all__ = [
    "GATES",
    "RecurrentInfo",
    "find_recurrent",
    "prepare",
    "unrolled_forward",
    "fused_forward",
    "takes_lengths",
]

# Gate letters in the order PyTorch stacks them in weight_ih/weight_hh.
GATES: dict[str, tuple[str, ...]] = {
    "GRU": ("r", "z", "n"),
    "LSTM": ("i", "f", "g", "o"),
    "RNN_TANH": (),
    "RNN_RELU": (),
}
DIRECTIONS = ("fwd", "bwd")


@dataclass(frozen=True)
class RecurrentInfo:
    """What one recurrent module in the model is.

    ``name`` is its qualified name in the model ("rnn", "encoder.lstm"); ``mode`` is PyTorch's
    ("GRU", "LSTM", "RNN_TANH", "RNN_RELU").
    """

    name: str
    mode: str
    num_layers: int
    bidirectional: bool
    hidden_size: int
    proj_size: int
    input_size: int
    batch_first: bool

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:
        """Size of h per direction (``proj_size`` for a projected LSTM)."""
        return self.proj_size or self.hidden_size

    @property
    def output_size(self) -> int:
        """Size of the module's per-step output (directions concatenated)."""
        return self.state_size * self.num_directions

    @property
    def gates(self) -> tuple[str, ...]:
        return GATES[self.mode]

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every per-step array the trace holds for one layer and direction."""
        return ("h", "c") + self.gates if self.mode == "LSTM" else ("h",) + self.gates

    def kind_size(self, kind: str) -> int:
        return self.state_size if kind == "h" else self.hidden_size

    def describe(self) -> str:
        cell = {"GRU": "GRU", "LSTM": "LSTM", "RNN_TANH": "RNN (tanh)", "RNN_RELU": "RNN (ReLU)"}[self.mode]
        bits = [f"{self.num_layers} layer{'s' if self.num_layers > 1 else ''}", f"{self.hidden_size} units"]
        if self.bidirectional:
            bits.append("bidirectional")
        if self.proj_size:
            bits.append(f"projected to {self.proj_size}")
        return f"{cell} ({', '.join(bits)})"


def _info(name: str, m: nn.RNNBase) -> RecurrentInfo:
    return RecurrentInfo(
        name=name,
        mode=m.mode,
        num_layers=m.num_layers,
        bidirectional=m.bidirectional,
        hidden_size=m.hidden_size,
        proj_size=getattr(m, "proj_size", 0) or 0,
        input_size=m.input_size,
        batch_first=m.batch_first,
    )


def find_recurrent(model: nn.Module) -> list[RecurrentInfo]:
    """The recurrent modules of ``model`` in registration order; the last is "the last"."""
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"Expected a PyTorch model (torch.nn.Module), got {type(model).__name__}. "
            "Load one with rv.load_model(path) or pass your own nn.Module."
        )
    found = [_info(name, m) for name, m in model.named_modules() if isinstance(m, nn.RNNBase)]
    if not found:
        raise ModelError(
            "This model contains no recurrent module (nn.RNN, nn.GRU or nn.LSTM), so there are no "
            "hidden states to show. rnnviz works with models built from those PyTorch modules."
        )
    if any(info.name == "" for info in found):
        raise ModelError(
            "The model is a bare nn.RNN/nn.GRU/nn.LSTM, which returns states rather than one output per "
            "sequence. Wrap it in a module whose forward returns the prediction (e.g. a linear head on the last state)."
        )
    return found


def takes_lengths(model: nn.Module) -> bool:
    """Whether the model's forward has a ``lengths`` parameter."""
    try:
        return "lengths" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


# ----------------------------------------------------------------------------- inputs


def _check_x(x: Any, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise InputError(
                "x could not be read as one array of numbers. Pad the sequences to one length "
                "(shape [sequences, steps, features]) and pass their lengths separately."
            ) from exc
        if arr.dtype.kind not in "fiu":
            raise InputError(
                f"x must hold numbers, but its type is {arr.dtype}. Convert the features to floats "
                "(e.g. x.astype('float32')); text or categories need encoding first."
            )
        t = torch.as_tensor(arr)
    if t.dtype == torch.bool or t.is_complex():
        raise InputError(f"x must hold real numbers, but its type is {t.dtype}. Convert it to float32.")
    if t.dim() != 3:
        raise InputError(
            f"x must have three dimensions [sequences, steps, features], but its shape is {tuple(t.shape)}. "
            "For a single sequence use x[None]; for a single feature use x[..., None]."
        )
    if min(t.shape) == 0:
        raise InputError(f"x is empty (shape {tuple(t.shape)}): it needs at least one sequence, one step and one feature.")
    return t.to(dtype)


def _check_lengths(lengths: Any, n: int, t: int) -> torch.Tensor | None:
    if lengths is None:
        return None
    arr = lengths.detach().cpu().numpy() if isinstance(lengths, torch.Tensor) else np.asarray(lengths)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(
            f"lengths must hold one number per sequence ({n}), but it has shape {arr.shape}."
        )
    if arr.dtype.kind not in "iuf" or (arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr)))):
        raise InputError("lengths must be whole numbers (the count of real steps in each sequence).")
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < 1) | (arr > t))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"lengths must be between 1 and the padded length {t}, but sequence {i} has length {int(arr[i])} "
            f"({bad.size} sequence(s) out of range)."
        )
    return torch.from_numpy(arr)


def valid_mask(lengths: torch.Tensor | None, n: int, t: int, device: torch.device | None = None) -> torch.Tensor:
    """Bool [N, T]: True on real steps (all True when lengths is None)."""
    if lengths is None:
        return torch.ones(n, t, dtype=torch.bool, device=device)
    return torch.arange(t, device=device)[None, :] < lengths.to(device)[:, None]


def _check_features(model: nn.Module, f: int) -> None:
    """Catch the common feature-count mismatch before running (first Linear or RNN decides)."""
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            return
        if isinstance(m, nn.Linear):
            expected = m.in_features
        elif isinstance(m, nn.RNNBase):
            expected = m.input_size
        else:
            continue
        if expected != f:
            raise InputError(
                f"The model expects {expected} feature(s) per step, but the data has {f}. "
                "Check that the data file has the feature columns the model was trained on, in the same order."
            )
        return


def prepare(
    model: nn.Module,
    x: Any,
    lengths: Any = None,
    device: str | torch.device | None = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate ``x`` [N, T, F] and ``lengths`` [N] and return them as tensors.

    Returns ``(xt, lt)``: ``xt`` in the model's dtype on ``device`` (a new tensor whenever a
    value had to change; the caller's ``x`` is never modified), ``lt`` an int64 CPU tensor or
    None. NaN or infinite values on real steps are an error; on padding they become 0.
    """
    find_recurrent(model)
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    xt = _check_x(x, _model_dtype(model))
    n, t, f = xt.shape
    lt = _check_lengths(lengths, n, t)
    finite = torch.isfinite(xt)
    if not bool(finite.all()):
        bad = ~finite & valid_mask(lt, n, t, xt.device)[:, :, None]
        if bool(bad.any()):
            i, s, k = (int(v) for v in bad.nonzero()[0])
            raise InputError(
                f"x has {int(bad.sum())} missing (NaN) or infinite value(s); the first is in sequence {i}, "
                f"step {s}, feature {k}. Fill or drop them first (for data files, load them with missing='fill' or 'drop')."
            )
        xt = torch.where(finite, xt, torch.zeros((), dtype=xt.dtype, device=xt.device))  # padding only
    _check_features(model, f)
    return xt.to(dev), lt


# ----------------------------------------------------------------------------- recurrence


@dataclass
class _LayerWeights:
    w_ih: torch.Tensor
    w_hh: torch.Tensor
    b_ih: torch.Tensor | None
    b_hh: torch.Tensor | None
    w_hr: torch.Tensor | None


def _layer_weights(m: nn.RNNBase, layer: int, reverse: bool, device, dtype) -> _LayerWeights:
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")

    def get(name):
        p = getattr(m, name + sfx, None)
        return None if p is None else p.detach().to(device=device, dtype=dtype)

    return _LayerWeights(get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr"))


def _run_direction(
    mode: str,
    x: torch.Tensor,  # (N, T, I)
    h: torch.Tensor,  # (N, Hs) initial state
    c: torch.Tensor | None,  # (N, H) initial cell state (LSTM)
    w: _LayerWeights,
    mask: torch.Tensor | None,  # (N, T) bool, True on real steps; None = all real
    reverse: bool,
    probe: torch.Tensor | None = None,  # (N, T, Hs) added to h_t inside the recurrence
    record: bool = False,
):
    """One layer, one direction, step by step, as the PyTorch docs write the equations.

    Returns ``(out, h_n, c_n, rec)``: ``out`` (N, T, Hs) with zeros on padding (as
    ``pad_packed_sequence`` gives), the final states, and when ``record`` a dict of the
    per-step cell state and gates, each (N, T, H).
    """
    t_len = x.shape[1]
    hc = w.w_hh.shape[0] // len(GATES[mode] or "h")  # hidden size (state size differs when projected)
    # Input part of every gate for all steps in one matmul, time-major so each step is contiguous.
    # The hidden biases that simply add are folded in here (GRU's b_hn is not: it sits inside r * (...)).
    b_in = w.b_ih
    b_step = w.b_hh
    if w.b_hh is not None:
        if mode == "GRU":
            b_in = w.b_ih + torch.cat([w.b_hh[: 2 * hc], torch.zeros_like(w.b_hh[2 * hc :])])
            b_step = torch.cat([torch.zeros_like(w.b_hh[: 2 * hc]), w.b_hh[2 * hc :]])
        else:
            b_in = w.b_ih + w.b_hh
            b_step = None
    gi = torch.nn.functional.linear(x.transpose(0, 1), w.w_ih, b_in)  # (T, N, G*H)
    w_hh_t = w.w_hh.t()
    w_hr_t = None if w.w_hr is None else w.w_hr.t()
    outs: list[torch.Tensor] = [None] * t_len  # type: ignore[list-item]
    rec: dict[str, list] = {}
    if record:
        rec = {k: [None] * t_len for k in GATES[mode] + (("c",) if mode == "LSTM" else ())}
    steps = range(t_len - 1, -1, -1) if reverse else range(t_len)
    for t in steps:
        if mode == "GRU":
            gh = torch.addmm(b_step, h, w_hh_t) if b_step is not None else h @ w_hh_t  # (N, 3H)
            rz = torch.sigmoid(gi[t, :, : 2 * hc] + gh[:, : 2 * hc])
            r, z = rz[:, :hc], rz[:, hc:]
            g_n = torch.tanh(torch.addcmul(gi[t, :, 2 * hc :], r, gh[:, 2 * hc :]))  # n_t
            h_new = torch.addcmul(g_n, z, h - g_n)  # (1 - z) * n + z * h
            if record:
                rec["r"][t], rec["z"][t], rec["n"][t] = r, z, g_n
        elif mode == "LSTM":
            pre = torch.addmm(gi[t], h, w_hh_t)  # (N, 4H), gate order i, f, g, o
            sg = torch.sigmoid(pre)
            i_g, f_g, o_g = sg[:, :hc], sg[:, hc : 2 * hc], sg[:, 3 * hc :]
            g_g = torch.tanh(pre[:, 2 * hc : 3 * hc])
            c_new = torch.addcmul(f_g * c, i_g, g_g)  # c_t = f * c_{t-1} + i * g
            h_new = o_g * torch.tanh(c_new)
            if w_hr_t is not None:
                h_new = h_new @ w_hr_t  # projection: h_t = W_hr (o_t * tanh(c_t))
            c = torch.where(mask[:, t, None], c_new, c) if mask is not None else c_new
            if record:
                rec["i"][t], rec["f"][t], rec["g"][t], rec["o"][t], rec["c"][t] = i_g, f_g, g_g, o_g, c_new
        elif mode == "RNN_TANH":
            h_new = torch.tanh(torch.addmm(gi[t], h, w_hh_t))
        elif mode == "RNN_RELU":
            h_new = torch.relu(torch.addmm(gi[t], h, w_hh_t))
        else:  # pragma: no cover - find_recurrent only admits the modes above
            raise ModelError(f"Unsupported recurrent mode {mode}.")
        if probe is not None:
            h_new = h_new + probe[:, t]
        if mask is not None:
            m_t = mask[:, t, None]
            h = torch.where(m_t, h_new, h)
            outs[t] = h_new * m_t
        else:
            h = h_new
            outs[t] = h_new
    out = torch.stack(outs, 1)  # (N, T, Hs)
    recs = {k: torch.stack(v, 1) for k, v in rec.items()}
    return out, h, c, recs


def _run_module_unrolled(info: RecurrentInfo, weights, x, hx, lengths, probe=None, record=False):
    """All layers and directions of one module. ``x`` (N, T, I) batch-first, ``hx`` as PyTorch takes it."""
    n, t_len, _ = x.shape
    mask = None if lengths is None else valid_mask(lengths, n, t_len, x.device)
    nd, hs, hc = info.num_directions, info.state_size, info.hidden_size
    if info.mode == "LSTM":
        h0, c0 = hx if hx is not None else (None, None)
    else:
        h0, c0 = hx, None
    if h0 is None:
        h0 = x.new_zeros(info.num_layers * nd, n, hs)
    if info.mode == "LSTM" and c0 is None:
        c0 = x.new_zeros(info.num_layers * nd, n, hc)
    layer_in = x
    h_n, c_n, records = [], [], {}
    for layer in range(info.num_layers):
        outs = []
        for d in range(nd):
            k = layer * nd + d
            p = None
            if probe is not None and layer == info.num_layers - 1:
                p = probe[..., d * hs : (d + 1) * hs]
            out, h_last, c_last, rec = _run_direction(
                info.mode, layer_in, h0[k], None if c0 is None else c0[k], weights[(layer, d)], mask,
                reverse=d == 1, probe=p, record=record,
            )
            outs.append(out)
            h_n.append(h_last)
            if c_last is not None:
                c_n.append(c_last)
            if record:
                prefix = f"l{layer}.{DIRECTIONS[d]}."
                records[prefix + "h"] = out
                for kind, arr in rec.items():
                    records[prefix + kind] = arr
        layer_in = outs[0] if nd == 1 else torch.cat(outs, -1)
    h_n_t = torch.stack(h_n, 0)
    c_n_t = torch.stack(c_n, 0) if c_n else None
    return layer_in, h_n_t, c_n_t, records


def _run_module_fast(info: RecurrentInfo, weights, x, hx, lengths, probe=None, record=False):
    """All layers of one module through :mod:`._fastlayer`: fused states, batched gates, analytic backward."""
    n, t_len, _ = x.shape
    mask = None if lengths is None else valid_mask(lengths, n, t_len, x.device)
    nd, hs, hc = info.num_directions, info.state_size, info.hidden_size
    if info.mode == "LSTM":
        h0, c0 = hx if hx is not None else (None, None)
    else:
        h0, c0 = hx, None
    if h0 is None:
        h0 = x.new_zeros(info.num_layers * nd, n, hs)
    if info.mode == "LSTM" and c0 is None:
        c0 = x.new_zeros(info.num_layers * nd, n, hc)
    layer_in = x
    h_n, c_n, records = [], [], {}
    for layer in range(info.num_layers):
        spec = LayerSpec(info.mode, [weights[(layer, d)] for d in range(nd)], lengths, hc, hs)
        h0_l = h0[layer * nd : (layer + 1) * nd]
        c0_l = None if c0 is None else c0[layer * nd : (layer + 1) * nd]
        p = probe if layer == info.num_layers - 1 else None
        needs_grad = torch.is_grad_enabled() and any(
            v is not None and v.requires_grad for v in (layer_in, h0_l, c0_l, p)
        )
        if needs_grad:
            out, hn_l, cn_l = LayerFn.apply(layer_in, h0_l, c0_l, p, spec, mask)
            per_dir = None
        else:
            out, hn_l, cn_l, per_dir = layer_forward(spec, layer_in, h0_l, c0_l, mask, record)
        h_n.append(hn_l)
        if info.mode == "LSTM":
            c_n.append(cn_l)
        if record:
            if per_dir is None:
                raise ModelError("Gates cannot be recorded while computing gradients.")  # pragma: no cover
            for d in range(nd):
                prefix = f"l{layer}.{DIRECTIONS[d]}."
                records[prefix + "h"] = out[..., d * hs : (d + 1) * hs]
                for kind in info.kinds[1:]:
                    records[prefix + kind] = per_dir[d][kind]
        layer_in = out
    return layer_in, torch.cat(h_n, 0), (torch.cat(c_n, 0) if c_n else None), records


def _pack_like(padded: torch.Tensor, ref: PackedSequence) -> PackedSequence:
    """Pack ``padded`` (N, T, H), original batch order, exactly as ``ref`` is packed."""
    bs = ref.batch_sizes
    # lengths in sorted order: sequence j (sorted) is present at step t iff j < batch_sizes[t]
    sorted_len = (torch.arange(padded.shape[0])[:, None] < bs[None, :]).sum(1)
    src = padded if ref.sorted_indices is None else padded.index_select(0, ref.sorted_indices.to(padded.device))
    t_len = bs.shape[0]
    keep = (torch.arange(t_len)[:, None] < sorted_len[None, :]).to(padded.device)  # (T, N) in sorted order
    data = src[:, :t_len].transpose(0, 1)[keep]  # step-major, as packed data is laid out
    return PackedSequence(data, bs, ref.sorted_indices, ref.unsorted_indices)


# ----------------------------------------------------------------------------- private view


class _Session:
    """Per-call state shared by the proxies of one view: what to record and what was recorded."""

    def __init__(self, engine: str, record: bool = False, probe_name: str | None = None):
        self.engine = engine  # "fused" | "fast" | "stepwise"
        self.record = record
        self.probe_name = probe_name
        self.probe: torch.Tensor | None = None
        self.records: dict[str, dict[str, torch.Tensor]] = {}


class _RecurrentProxy(nn.Module):
    """Stands in for one nn.RNN/GRU/LSTM inside the private view; same inputs, same outputs."""

    def __init__(self, name: str, orig: nn.RNNBase, session: _Session, device, dtype):
        super().__init__()
        object.__setattr__(self, "_orig", orig)
        self.rv_name = name
        self.rv_info = _info(name, orig)
        self.rv_session = session
        if session.engine == "fused":
            fused = copy.copy(orig)
            fused.__dict__["_parameters"] = {
                k: (None if p is None else p.detach().to(device=device, dtype=dtype)) for k, p in orig._parameters.items()
            }
            fused.__dict__["training"] = False
            fused._init_flat_weights()
            object.__setattr__(self, "_fused", fused)
        else:
            nd = self.rv_info.num_directions
            self.rv_weights = {
                (layer, d): _layer_weights(orig, layer, d == 1, device, dtype)
                for layer in range(orig.num_layers)
                for d in range(nd)
            }

    def __getattr__(self, name):  # attributes the model may read (hidden_size, batch_first, ...)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "_orig"), name)

    def flatten_parameters(self) -> None:  # models often call this; nothing to do here
        return None

    def forward(self, input, hx=None):
        info, session = self.rv_info, self.rv_session
        if session.engine == "fused":
            return self._forward_fused(input, hx)
        packed = isinstance(input, PackedSequence)
        unbatched = False
        lengths = None
        if packed:
            x, lengths = pad_packed_sequence(input, batch_first=True)  # original batch order
        else:
            x = input
            if x.dim() == 2:
                unbatched = True
                x = x.unsqueeze(0 if info.batch_first else 1)
                if hx is not None:
                    hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
            if not info.batch_first:
                x = x.transpose(0, 1)
        probe = session.probe if session.probe_name == self.rv_name else None
        if probe is not None and probe.shape[:2] != x.shape[:2]:
            probe = probe[:, : x.shape[1]]
        run = _run_module_fast if session.engine == "fast" else _run_module_unrolled
        output, h_n, c_n, recs = run(info, self.rv_weights, x, hx, lengths, probe=probe, record=session.record)
        session.records[self.rv_name] = {"out": output, "lengths": lengths, **recs}
        if packed:
            out_obj = _pack_like(output, input)
        else:
            out_obj = output if info.batch_first else output.transpose(0, 1)
            if unbatched:
                out_obj = out_obj.squeeze(0 if info.batch_first else 1)
                h_n = h_n.squeeze(1)
                c_n = None if c_n is None else c_n.squeeze(1)
        return out_obj, ((h_n, c_n) if info.mode == "LSTM" else h_n)

    def _forward_fused(self, input, hx):
        info = self.rv_info
        result = object.__getattribute__(self, "_fused")(input, hx)
        out, lengths = result[0], None
        if isinstance(out, PackedSequence):
            out, lengths = pad_packed_sequence(out, batch_first=True)
        else:
            if out.dim() == 2:  # unbatched input
                out = out.unsqueeze(0 if info.batch_first else 1)
            if not info.batch_first:
                out = out.transpose(0, 1)
        self.rv_session.records[self.rv_name] = {"out": out, "lengths": lengths}
        return result


def _copy_tree(module: nn.Module, prefix: str, session: _Session, device, dtype, memo: dict) -> nn.Module:
    key = id(module)
    if key in memo:
        return memo[key]
    if isinstance(module, nn.RNNBase):
        new = _RecurrentProxy(prefix, module, session, device, dtype)
    else:
        new = copy.copy(module)
        d = new.__dict__
        d["training"] = False
        d["_parameters"] = {
            k: (None if p is None else p.detach().to(device=device, dtype=dtype if p.is_floating_point() else p.dtype))
            for k, p in module._parameters.items()
        }
        d["_buffers"] = {
            k: (None if b is None else b.to(device=device)) for k, b in module._buffers.items()
        }
        d["_modules"] = {
            k: (None if v is None else _copy_tree(v, f"{prefix}.{k}" if prefix else k, session, device, dtype, memo))
            for k, v in module._modules.items()
        }
    memo[key] = new
    return new


class ModelView:
    """A private, eval-mode view of ``model`` on ``device`` with recording proxies.

    Build it once per call and reuse it across batches; ``run`` returns the model's output and
    leaves what the proxies recorded in ``self.records``.
    """

    def __init__(self, model: nn.Module, device: torch.device, engine: str = "fused", record: bool = False,
                 probe_name: str | None = None):
        self.infos = find_recurrent(model)
        self.last = self.infos[-1]
        self.dtype = _model_dtype(model)
        self.device = device
        self.session = _Session(engine, record=record, probe_name=probe_name)
        self.module = _copy_tree(model, "", self.session, device, self.dtype, {})
        self.takes_lengths = takes_lengths(model)

    @property
    def records(self) -> dict[str, dict[str, torch.Tensor]]:
        return self.session.records

    def run(self, xt: torch.Tensor, lt: torch.Tensor | None, probe: torch.Tensor | None = None) -> torch.Tensor:
        self.session.records = {}
        self.session.probe = probe
        try:
            if self.takes_lengths:
                out = self.module(xt, lengths=lt)
            else:
                out = self.module(xt)
        except Exception as exc:
            raise ModelError(
                f"Running the model on these sequences failed ({type(exc).__name__}: {exc}). "
                "Check that the data has the features the model was trained on, in the same order."
            ) from exc
        finally:
            self.session.probe = None
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise ModelError(
                f"The model's forward returned {type(out).__name__}, not a tensor of outputs. "
                "rnnviz needs one output per sequence: logits [N, classes] or a value [N]."
            )
        if out.dim() == 0 or out.shape[0] != xt.shape[0] or out.dim() > 2:
            raise ModelError(
                f"The model returned an output of shape {tuple(out.shape)} for {xt.shape[0]} sequences; "
                "rnnviz needs one output per sequence: [N, classes], [N] or [N, 1]."
            )
        if self.last.name not in self.records:
            raise ModelError(
                f"The model's forward never ran its recurrent module '{self.last.name}', so it has no states to show."
            )
        return out


def fused_forward(model: nn.Module, xt: torch.Tensor, lt: torch.Tensor | None) -> torch.Tensor:
    """The model's own output for a prepared batch, without gradients (eval mode, model untouched)."""
    view = ModelView(model, xt.device, engine="fused")
    with torch.no_grad():
        return view.run(xt, lt)


def unrolled_forward(
    model: nn.Module,
    xt: torch.Tensor,
    lt: torch.Tensor | None,
    probe: torch.Tensor | None = None,
    *,
    engine: str = "fast",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model with every recurrent module recomputed by rnnviz (differentiable).

    ``engine="fast"`` (default) takes each layer's states from the fused kernel and
    back-propagates with the hand-written BPTT of :mod:`._fastlayer`; ``"stepwise"`` runs the
    step-by-step autograd reference. A probe with non-zero values always uses ``"stepwise"``
    (the fast forward treats the probe as zero).

    Parameters
    ----------
    xt, lt : the output of :func:`prepare` (xt may require grad).
    probe : optional tensor (N, T, H_out), normally zeros with ``requires_grad=True``, added to the
        last recurrent module's last-layer state at every real step inside the recurrence, so that
        ``torch.autograd.grad(out, probe)`` is d out / d h_t (forward half then backward half of
        H_out for a bidirectional layer).

    Returns
    -------
    logits : the model's output, as it returns it.
    h_last : (N, T, H_out) the last recurrent module's per-step output (zeros on padding when the
        model packs its input), still attached to the graph.
    """
    if engine not in ("fast", "stepwise"):
        raise InputError(f"engine must be 'fast' or 'stepwise', not {engine!r}.")
    if probe is not None and engine == "fast" and bool((probe.detach() != 0).any()):
        engine = "stepwise"
    view = ModelView(model, xt.device, engine=engine, probe_name=find_recurrent(model)[-1].name)
    if probe is not None:
        expected = (xt.shape[0], xt.shape[1], view.last.output_size)
        if tuple(probe.shape) != expected:
            raise InputError(f"probe must have shape {expected}, got {tuple(probe.shape)}.")
    logits = view.run(xt, lt, probe=probe)
    return logits, view.records[view.last.name]["out"]
