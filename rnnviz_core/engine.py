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
* ``"fast"`` (:mod:`.recurrence`): the recurrence step by step with the module's own weights,
  exactly as the PyTorch docs write the equations, recording h, c and every gate; under
  autograd each layer is one node whose backward (back-propagation through time) is written by
  hand: no cuDNN backward (so gradients work in eval mode on GPU), no parameter gradients.
  Used for full traces and for gradients.
* ``"stepwise"``: the same loop with autograd recording every step: the slower reference the
  hand-written backward is tested against.

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

from .recurrence import DIRECTIONS, GATES, layer_weights, run_module
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
                (layer, d): layer_weights(orig, layer, d == 1, device, dtype)
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
        mask = None if lengths is None else valid_mask(lengths, x.shape[0], x.shape[1], x.device)
        output, h_n, c_n, recs = run_module(
            info, self.rv_weights, x, hx, mask, probe=probe, record=session.record, engine=session.engine
        )
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


def fused_forward(
    model: nn.Module,
    xt: torch.Tensor,
    lt: torch.Tensor | None,
    *,
    batch_size: int | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """The model's own output for a prepared batch, without gradients (eval mode, model untouched).

    Rows stream through one private view in chunks of ``batch_size`` (default: all at once), each
    chunk moved to ``device`` (default: where ``xt`` is); the outputs stay on that device.
    """
    view = ModelView(model, device or xt.device, engine="fused")
    n = xt.shape[0]
    bs = int(batch_size) if batch_size else n
    with torch.no_grad():
        parts = [
            view.run(xt[s : s + bs].to(view.device), None if lt is None else lt[s : s + bs])
            for s in range(0, n, bs)
        ]
    return parts[0] if len(parts) == 1 else torch.cat(parts, 0)


def unrolled_forward(
    model: nn.Module,
    xt: torch.Tensor,
    lt: torch.Tensor | None,
    probe: torch.Tensor | None = None,
    *,
    engine: str = "fast",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model with every recurrent module recomputed by rnnviz (differentiable).

    ``engine="fast"`` (default) back-propagates with the hand-written BPTT of
    :mod:`.recurrence`; ``"stepwise"`` lets autograd record every step (the reference). A probe with non-zero values always uses ``"stepwise"``
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
