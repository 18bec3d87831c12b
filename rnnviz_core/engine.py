"""The engine: run a user's model with its recurrent modules swapped for recording proxies.

PyTorch's ``nn.GRU``/``nn.LSTM``/``nn.RNN`` run a whole sequence as one fused operation that
returns each step's output but no gates, no LSTM cell states, and no autograd path through the
per-step outputs (the gradient of the final output with respect to ``output[:, t]`` is zero
for every step the head does not read). The engine therefore runs the user's model through a
*private view*: a structural copy of the module tree, in eval mode, that shares the model's
parameter storage (detached, so no parameter gradients are ever built) and has each recurrent
module replaced by a :class:`_RecurrentProxy`. The user's model object is never touched: no
``.eval()``, no hooks registered on it, no ``.to()``; a model shared by several threads stays
correct for all.

The view runs the model as the user's own call would, whichever way its recurrences run:

* lengths reach the forward parameter that takes them (:func:`lengths_slot`), each batch
  sorted longest first when they do (``pack_padded_sequence`` defaults to
  ``enforce_sorted=True``), results returned in the caller's order;
* the user's forward hooks and forward pre-hooks (on any module, recurrent ones included) run
  once per call, on the fused and the unrolled recurrences alike; backward hooks never run (the
  gradients rnnviz reports are the derivative of the forward as it is);
* a forward that calls the same recurrent module twice is refused (:func:`_called_twice`);
* a tuple output gives the one element shaped [N, C] or [N] unless ``output=`` picks one;
* a failing forward is reported with its cause (:func:`_explain_failure`): feature count
  (expected and given), token ids, lengths, sorting, number types.

Token ids ([N, T] integers) go to the model unchanged; for gradients with respect to the input,
a forward hook on the view's copy of the ``nn.Embedding`` that reads them makes its output a
leaf (:class:`EmbedSpec`).

A proxy runs in one of three ways (``recurrence=``; the keyword was called ``engine=`` before):

* ``"fused"``: it calls a copy of the original fused module (what the model itself does) and
  records the per-step output. Used for ``Trace.hidden`` and ``predict``.
* ``"fast"`` (:mod:`.recurrence`): the recurrence step by step with the module's own weights,
  exactly as the PyTorch docs write the equations, recording h, c and every gate; under
  autograd each layer is one node whose backward (back-propagation through time) is written by
  hand: no cuDNN backward (so gradients work in eval mode on GPU), no parameter gradients.
  Used for full traces and for gradients.
* ``"stepwise"``: the same loop with autograd recording every step: the slower reference the
  hand-written backward is tested against.

Both recomputing ways can add a zero ``probe`` to the last layer's state at every step, so
that ``autograd.grad(out, probe)`` is the total derivative d out / d h_t. The tests compare all
three with the fused modules on every configuration to 1e-5.
"""
from __future__ import annotations

import inspect
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import torch.nn.functional as F_

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from .recurrence import DIRECTIONS, GATES, layer_weights, pick_recurrence, run_module
from .arrays import valid_mask as _length_mask
from .device import resolve_device
from .errors import InputError, MismatchError, ModelError, RnnvizError

__all__ = [
    "GATES",
    "RecurrentInfo",
    "find_recurrent",
    "prepare",
    "unrolled_forward",
    "fused_forward",
    "takes_lengths",
    "lengths_slot",
    "unwrap_model",
    "check_batch_size",
    "is_tokens",
    "embeddings",
    "default_baseline_token",
    "run_unrolled",
    "EmbedSpec",
    "ModelView",
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



# ----------------------------------------------------------------------------- the model


_WRAPPERS: tuple[type, ...] = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def unwrap_model(model: Any) -> Any:
    """The module inside ``nn.DataParallel`` / ``DistributedDataParallel`` wrappers (else ``model``).

    The wrappers only split a batch over devices; rnnviz runs the wrapped module itself, so
    module names read as the user wrote them ("rnn", not "module.rnn").
    """
    while isinstance(model, _WRAPPERS):
        model = model.module
    return model


def find_recurrent(model: nn.Module) -> list[RecurrentInfo]:
    """The recurrent modules of ``model`` in registration order; the last is "the last"."""
    model = unwrap_model(model)
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


# Names a forward's lengths parameter goes by in tutorials and libraries (any name containing
# "len" is also taken); names that are never lengths even as the only extra parameter.
_LENGTH_NAMES = ("lengths", "lens", "length", "seq_lens", "seq_len", "seq_lengths", "seq_length",
                 "sequence_lengths", "sequence_length", "input_lengths", "input_lens", "x_lengths",
                 "x_lens", "src_lengths", "src_lens", "text_lengths", "text_lens", "l")
_NOT_LENGTHS = {"h", "hx", "h0", "h_0", "c0", "hc", "hidden", "hiddens", "hidden_state", "state",
                "states", "init_state", "initial_state", "memory", "mask", "attention_mask",
                "y", "target", "targets", "label", "labels", "training", "return_hidden"}


@dataclass(frozen=True)
class LengthsSlot:
    """Where a model's forward takes the lengths: a keyword ``name``, or positional ``index``.

    ``required``: the parameter has no default (rnnviz then passes "all T" when no lengths are
    given). ``where`` describes it for messages ("seq_lens", "its second argument").
    """

    name: str | None
    index: int | None
    required: bool
    where: str


def lengths_slot(model: nn.Module, lengths_arg: str | None = None) -> LengthsSlot | None:
    """Which parameter of ``model.forward`` takes the sequence lengths (None: none does).

    In order: the parameter named ``lengths_arg`` when the caller gives one; a parameter named
    ``lengths``, ``lens``, ``seq_lens``, ``seq_lengths``, ``input_lengths``, ``length``, ... (or
    any name ending in ``_lengths``/``_lens``/``_length``, except ``max_*``/``min_*``); the only
    positional parameter after ``x`` when it has no default (or None) and its name does not say
    it is something else (``hidden``, ``h0``, ``state``, ``mask``, ...); ``*args``. Wrappers
    (``nn.DataParallel``) are looked through.
    """
    model = unwrap_model(model)
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    P = inspect.Parameter
    positional = [p for p in params if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    var_pos = any(p.kind == P.VAR_POSITIONAL for p in params)
    var_kw = any(p.kind == P.VAR_KEYWORD for p in params)
    rest = [p for p in params if p.kind != P.VAR_POSITIONAL and p.kind != P.VAR_KEYWORD]
    rest = rest[1:] if positional and rest and rest[0] is positional[0] else rest

    def slot(p: inspect.Parameter) -> LengthsSlot:
        required = p.default is P.empty
        if p.kind == P.POSITIONAL_ONLY:
            return LengthsSlot(None, positional.index(p), required, f"'{p.name}'")
        return LengthsSlot(p.name, None, required, f"'{p.name}'")

    if lengths_arg is not None:
        if not isinstance(lengths_arg, str) or not lengths_arg:
            raise InputError(f"lengths_arg must be the name of a parameter of the model's forward, got {lengths_arg!r}.")
        for p in rest:
            if p.name == lengths_arg:
                return slot(p)
        if var_kw:
            return LengthsSlot(lengths_arg, None, False, f"'{lengths_arg}'")
        names = ", ".join(p.name for p in params) or "nothing rnnviz can read"
        raise InputError(
            f"lengths_arg={lengths_arg!r} is not a parameter of the model's forward (it takes: {names})."
        )
    for p in rest:
        if p.name in _LENGTH_NAMES:
            return slot(p)
    for p in rest:
        name = p.name.lower()
        if re.search(r"(^|_)(lengths?|lens|lengths_\w+)$", name) and not name.startswith(("max", "min")):
            return slot(p)
    extra = [p for p in rest if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)]
    if (len(extra) == 1 and extra[0].name.lower() not in _NOT_LENGTHS and not var_pos
            and not extra[0].name.lower().startswith(("max", "min"))
            and (extra[0].default is P.empty or extra[0].default is None)):
        return slot(extra[0])
    if var_pos and not extra:
        return LengthsSlot(None, 1, False, "its second positional argument (*args)")
    return None


def takes_lengths(model: nn.Module, lengths_arg: str | None = None) -> bool:
    """Whether the model's forward takes the sequence lengths (see :func:`lengths_slot`)."""
    return lengths_slot(model, lengths_arg) is not None


def check_batch_size(batch_size: Any) -> int | None:
    """None, or ``batch_size`` as a positive int; anything else is an InputError."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a positive whole number (or None for automatic), got {batch_size!r}.")
    return int(batch_size)


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def embeddings(model: nn.Module) -> list[tuple[str, nn.Embedding]]:
    """The ``nn.Embedding`` modules of the model, in registration order."""
    return [(n, m) for n, m in unwrap_model(model).named_modules() if isinstance(m, nn.Embedding)]


def default_baseline_token(model: nn.Module) -> int:
    """The token that stands for "no token" in token-id baselines.

    The ``padding_idx`` of the model's first ``nn.Embedding`` that declares one, else 0 (the id
    tokenisers and rnnviz's own text models give to padding).
    """
    for _, m in embeddings(model):
        if m.padding_idx is not None:
            return int(m.padding_idx)
    return 0


def is_tokens(xt: torch.Tensor) -> bool:
    """Whether a prepared ``x`` holds token ids ([N, T] integers) rather than features."""
    return xt.dim() == 2 and not xt.is_floating_point()


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
                "(e.g. x.astype('float32')); text needs turning into token ids first."
            )
        t = torch.as_tensor(arr)
    if t.dtype == torch.bool or t.is_complex():
        raise InputError(f"x must hold real numbers, but its type is {t.dtype}. Convert it to float32.")
    if t.dim() == 2 and not t.is_floating_point():  # token ids [N, T]: kept as integers
        if min(t.shape) == 0:
            raise InputError(f"x is empty (shape {tuple(t.shape)}): it needs at least one sequence and one step.")
        return t.to(torch.int64)
    if t.dim() != 3:
        raise InputError(
            f"x must have three dimensions [sequences, steps, features], but its shape is {tuple(t.shape)}. "
            "For a single sequence use x[None]; for a single feature use x[..., None]; "
            "token ids are an integer array [sequences, steps]."
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
    return _length_mask(lengths, t, device=device if device is not None else lengths.device)


def prepare(
    model: nn.Module,
    x: Any,
    lengths: Any = None,
    device: str | torch.device | None = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate ``x`` and ``lengths`` [N] and return them as tensors.

    ``x`` is either features [N, T, F] (returned in the model's float dtype) or token ids
    [N, T] (an integer array, returned as int64 and never cast to float). Returns ``(xt, lt)``:
    ``xt`` on ``device`` (a new tensor whenever a value had to change; the caller's ``x`` is
    never modified), ``lt`` an int64 CPU tensor or None. NaN or infinite values on real steps
    are an error; on padding they become 0. Whether x has the number of features the model
    expects is found by running it (see :class:`ModelView`), not guessed from its layers.
    """
    find_recurrent(model)
    model = unwrap_model(model)
    dev = resolve_device(device) if not isinstance(device, torch.device) else device
    xt = _check_x(x, _model_dtype(model))
    n, t = xt.shape[:2]
    lt = _check_lengths(lengths, n, t)
    if xt.is_floating_point():
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


@dataclass
class EmbedSpec:
    """What the embedding hook does on one run of a token model (caller's row order).

    ``mode="grad"``: the embedding output E of x becomes a leaf tensor to differentiate by.
    ``mode="path"``: it is replaced by the point ``Eb + alpha * (E - Eb)`` of the straight path
    from the baseline embedding ``Eb`` (the embedding of ``base_ids``, or zeros when
    ``base_ids`` is None) to E, with ``Eb = E`` on padding (``valid`` False).
    """

    mode: str                          # "grad" | "path"
    valid: torch.Tensor                # (n, T) bool
    base_ids: torch.Tensor | None = None
    alphas: torch.Tensor | None = None  # (n,), or (n, T): one point per step (masks)


class _Session:
    """Per-call state shared by the proxies of one view: what to record and what was recorded."""

    def __init__(self, recurrence: str, record: bool = False, probe_name: str | None = None):
        self.recurrence = recurrence  # "fused" | "fast" | "stepwise" (recurrence.RECURRENCES)
        self.record = record
        self.probe_name = probe_name
        self.probe: torch.Tensor | None = None
        self.records: dict[str, dict[str, torch.Tensor]] = {}
        self.perm: torch.Tensor | None = None   # rows as the model sees them (sorted), or None
        self.inv: torch.Tensor | None = None
        self.embed: EmbedSpec | None = None
        self.embed_shape: tuple[int, ...] | None = None
        self.embed_leaf: torch.Tensor | None = None
        self.embed_delta: torch.Tensor | None = None
        self.embed_mod: nn.Module | None = None      # the embedding that reads the ids (runs by length)
        self.group: tuple[torch.Tensor, torch.Tensor, int] | None = None  # (all ids, rows, steps) of one length
        # optional stand-in for run_module (unrolled recurrences): runner(name, info, weights, x, hx, mask,
        # record) -> run_module's tuple, or None to run the recurrence as usual (see rnnviz_core.restart)
        self.runner: Callable | None = None
        # optional callable(proxy, input, hx) -> the fused module's result, or None to run it
        # as usual (used by rnnviz_core.resume to restart a recurrence from cached states)
        self.fused_hook: Callable | None = None


_FORWARD_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                       "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs")
_BACKWARD_HOOK_DICTS = ("_backward_hooks", "_backward_pre_hooks")


def _plain_rnn_class(m: nn.RNNBase) -> type:
    """The module's own class, below the one torch.nn.utils.parametrize injects."""
    from torch.nn.utils import parametrize

    cls = type(m)
    return cls.__bases__[0] if parametrize.is_parametrized(m) else cls


def _called_twice(name: str) -> ModelError:
    return ModelError(
        f"The model runs its recurrent module '{name}' more than once in one forward pass (on two "
        "inputs, or in a loop). rnnviz shows one call's states per module and cannot tell which call "
        "to show, so it does not trace this model. Give each call its own module, or trace a model "
        "whose forward runs each recurrent module once."
    )


class _RecurrentProxy(nn.Module):
    """Stands in for one nn.RNN/GRU/LSTM inside the private view; same inputs, same outputs.

    The user's forward hooks and pre-hooks registered on the recurrent module run here, on
    every engine, exactly once per call (the fused copy inside has none).
    """

    def __init__(self, name: str, orig: nn.RNNBase, session: _Session, device, dtype):
        super().__init__()
        object.__setattr__(self, "_orig", orig)
        for key in _FORWARD_HOOK_DICTS:
            if hasattr(orig, key):
                self.__dict__[key] = getattr(orig, key)
        self.rv_name = name
        self.rv_info = _info(name, orig)
        self.rv_session = session
        if session.recurrence == "fused":
            fused = object.__new__(_plain_rnn_class(orig))  # no copy.copy: parametrized modules refuse it
            fused.__dict__.update(orig.__dict__)
            fused.__dict__["_parameters"] = {
                wn: getattr(orig, wn).detach().to(device=device, dtype=dtype) for wn in orig._flat_weights_names
            }
            fused.__dict__["_modules"] = OrderedDict()
            fused.__dict__["training"] = False
            for key in _FORWARD_HOOK_DICTS + _BACKWARD_HOOK_DICTS:
                if key in fused.__dict__:
                    fused.__dict__[key] = OrderedDict()
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
        if self.rv_name in session.records:
            raise _called_twice(self.rv_name)
        if session.recurrence == "fused":
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
        if x.shape[-1] != info.input_size:  # PyTorch's own words, so failures read the same on every path
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {info.input_size}, got {x.shape[-1]}")
        probe = session.probe if session.probe_name == self.rv_name else None
        if probe is not None and probe.shape[:2] != x.shape[:2]:
            probe = probe[:, : x.shape[1]]
        mask = None if lengths is None else valid_mask(lengths, x.shape[0], x.shape[1], x.device)
        done = None
        if session.runner is not None and probe is None:
            done = session.runner(self.rv_name, info, self.rv_weights, x, hx, mask, session.record)
        output, h_n, c_n, recs = done if done is not None else run_module(
            info, self.rv_weights, x, hx, mask, probe=probe, record=session.record, recurrence=session.recurrence
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
        hook = self.rv_session.fused_hook
        result = hook(self, input, hx) if hook is not None else None
        if result is None:
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


def _embedding_leaf(mod: nn.Module, E: torch.Tensor, spec: EmbedSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The leaf to differentiate by and its delta, for the embedding output ``E`` (caller's rows)."""
    if spec.mode == "grad":
        return E.clone().requires_grad_(True), E
    if spec.base_ids is None:
        Eb = torch.zeros_like(E)
    else:
        Eb = mod.forward(spec.base_ids.to(E.device)).detach().to(E.dtype)  # no hooks
    Eb = torch.where(spec.valid.to(E.device)[..., None], Eb, E)
    delta = E - Eb
    a = spec.alphas.to(device=E.device, dtype=E.dtype)      # (n,) or per step (n, T)
    a = a[:, None, None] if a.dim() == 1 else a[..., None]
    leaf = (Eb + a * delta).requires_grad_(True)
    return leaf, delta


def _embedding_hook(session: _Session):
    """Forward hook for the view's copies of nn.Embedding: see :class:`EmbedSpec`."""

    def hook(mod, args, out):
        spec = session.embed
        if spec is None or not args:
            return None
        ids = args[0]
        if not (isinstance(ids, torch.Tensor) and not ids.is_floating_point()
                and tuple(ids.shape) == session.embed_shape and out.dim() == 3):
            return None
        group = session.group  # (full ids, rows, steps) when the batch runs one length at a time
        if group is not None and (session.embed_mod is None or session.embed_mod is mod):
            full_ids, rows, steps = group
            if session.embed_leaf is None:  # one leaf for the whole batch; each length reads its slice
                E = mod.forward(full_ids.to(out.device)).detach().to(out.dtype)  # no hooks
                session.embed_leaf, session.embed_delta = _embedding_leaf(mod, E, spec)
                session.embed_mod = mod
            return session.embed_leaf.index_select(0, rows.to(out.device))[:, :steps]
        if session.embed_leaf is not None:
            raise ModelError(
                "Two embeddings of the model read the token ids, so rnnviz cannot tell which one's output "
                "to attribute to. Use grad_norm or grad_x_state, which attribute to the recurrent states."
            )
        E = out.detach()
        if session.inv is not None:
            E = E.index_select(0, session.inv.to(E.device))   # caller's row order
        leaf, delta = _embedding_leaf(mod, E, spec)
        session.embed_leaf, session.embed_delta = leaf, delta
        return leaf if session.perm is None else leaf.index_select(0, session.perm.to(leaf.device))

    return hook


def _copy_tree(module: nn.Module, prefix: str, session: _Session, device, dtype, memo: dict) -> nn.Module:
    key = id(module)
    if key in memo:
        return memo[key]
    if isinstance(module, nn.RNNBase):
        new = _RecurrentProxy(prefix, module, session, device, dtype)
    else:
        new = object.__new__(type(module))  # no copy.copy: parametrized modules refuse to be copied
        d = new.__dict__
        d.update(module.__dict__)
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
        for k in _BACKWARD_HOOK_DICTS:  # rnnviz's gradients are the forward's own derivative
            if k in d:
                d[k] = OrderedDict()
        if isinstance(module, nn.Embedding):
            d["_forward_hooks"] = OrderedDict(module._forward_hooks)  # the user's first, then rnnviz's
            d["_forward_hooks"][-1] = _embedding_hook(session)
    memo[key] = new
    return new


# Shape errors from the first layer that reads x, in PyTorch's words: (pattern, group of the
# size expected, group of the size given).
_SHAPE_ERRORS = (
    (re.compile(r"input\.size\(-1\) must be equal to input_size\. Expected (\d+), got (\d+)"), 1, 2),
    (re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)"), 3, 2),
    (re.compile(r"expected input\[[^\]]*\] to have (\d+) channels, but got (\d+) channels"), 1, 2),
    (re.compile(r"normalized_shape=\[(\d+)\], expected input with shape \[\*, (\d+)\]"), 1, 2),
)


def _describe_tensor(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"{str(v.dtype).replace('torch.', '')} {list(v.shape)}"
    if isinstance(v, (tuple, list)):
        return f"{type(v).__name__} of {len(v)}"
    return type(v).__name__


def _explain_failure(exc: Exception, model: nn.Module, xt: torch.Tensor, given: torch.Tensor | None,
                     passed: torch.Tensor | None, slot: LengthsSlot | None) -> RnnvizError:
    """A message for a failed forward that names its real cause (features, tokens, lengths, ...)."""
    msg = f"{type(exc).__name__}: {exc}".strip()
    low = str(exc).lower()
    tokens = is_tokens(xt)
    call = f"x ({_describe_tensor(xt)})"
    if passed is not None:
        call += f" and the lengths as {slot.where}"
    head = f"Running the model on these sequences failed ({msg}). rnnviz called its forward with {call}. "
    embs = embeddings(model)
    # --- token ids
    if tokens and "index out of range" in low and embs:
        n_emb = embs[0][1].num_embeddings
        lo, hi = int(xt.min()), int(xt.max())
        return MismatchError(
            f"x holds token ids from {lo} to {hi}, but the model's embedding has {n_emb} entries "
            f"(ids 0 to {n_emb - 1}). Check that the data was encoded with the model's vocabulary.",
            code="token_range", field="x")
    if tokens and not embs:
        return MismatchError(
            "x is an integer array [sequences, steps], which rnnviz reads as token ids, but the model has "
            "no nn.Embedding to read them and its forward failed on them. Pass features as a float array "
            f"[sequences, steps, features] (e.g. x[..., None].astype('float32')). ({msg})",
            code="dtype", field="x")
    if not tokens and embs and ("indices" in low or "long, int" in low or "scalar type long" in low):
        return MismatchError(
            "The model embeds token ids (it has an nn.Embedding), but x holds floats. Pass the token ids "
            f"as an integer array [sequences, steps]. ({msg})", code="dtype", field="x")
    # --- feature count
    for pattern, ge, gg in _SHAPE_ERRORS:
        m = pattern.search(str(exc))
        if m:
            expected, got = int(m.group(ge)), int(m.group(gg))
            if not tokens and got == xt.shape[-1] and expected != got:
                return MismatchError(
                    f"Running the model on these sequences failed: the model expects {expected} feature(s) "
                    f"per step, but the data has {got}. Check that the data has the feature columns the "
                    "model was trained on, in the same order.", code="feature_count", field="x")
            return ModelError(head + f"A layer inside the model expects inputs of size {expected} but got "
                              f"{got}; the data has {xt.shape[-1] if not tokens else 'one token'} per step.")
    # --- lengths and sorting
    if "sorted in decreasing order" in low or "enforce_sorted" in low:
        return ModelError(head + "The model packs its sequences with enforce_sorted=True, but they did not reach "
                          "it sorted by length. rnnviz sorts each batch when it passes the lengths to the "
                          "forward; if the model takes them under another name, pass lengths_arg='<name>'.",
                          code="lengths", field="lengths")
    missing = re.search(r"missing (\d+ )?required (positional |keyword-only )?arguments?: '(\w+)'", str(exc))
    if isinstance(exc, TypeError) and missing:
        name = missing.group(3)
        return ModelError(
            f"The model's forward needs an argument '{name}' that rnnviz does not know how to give ({msg}). "
            f"If '{name}' is the sequence lengths, pass lengths_arg='{name}' (and lengths=); rnnviz calls the "
            "forward with x and the lengths only.", code="lengths", field="lengths")
    if passed is None and slot is not None and given is None and (
            "none" in low or "len" in low or "pack" in low):
        return ModelError(head + f"The forward takes the lengths as {slot.where} but none were given, so it ran "
                          "with its default. Pass lengths= (one per sequence).", code="lengths", field="lengths")
    if given is not None and slot is None and ("len" in low or "pack" in low):
        return ModelError(head + "Lengths were given but the forward has no parameter rnnviz recognises for them; "
                          "pass lengths_arg='<name of the parameter>'.", code="lengths", field="lengths")
    if "length" in low or "pack" in low:
        return ModelError(head + "The error is about the sequence lengths: check that lengths holds one whole "
                          "number per sequence, between 1 and the padded length.", code="lengths", field="lengths")
    if "dtype" in low or "scalar type" in low or "expected both" in low:
        return ModelError(head + f"The error is about number types: x was passed as {xt.dtype}, the model's "
                          f"weights are {_model_dtype(model)}.", code="dtype", field="x")
    return ModelError(head + "Check that the data is what the model was trained on (features, their order, "
                      "lengths).")


class ModelView:
    """A private, eval-mode view of ``model`` on ``device`` with recording proxies.

    Build it once per call and reuse it across batches; ``run`` returns the model's output and
    leaves what the proxies recorded in ``self.records``.

    How the model is called: ``forward(x)``, plus the lengths in the parameter
    :func:`lengths_slot` finds (or ``lengths_arg``); when the model takes lengths, each batch
    reaches it sorted by length, longest first (``pack_padded_sequence``'s default
    ``enforce_sorted=True`` needs it), and everything comes back in the caller's order. When
    the forward returns a tuple or list, the output is the one element shaped [N, C] or [N]
    (``output=`` an index, a key or a function picks it otherwise). The user's forward hooks and
    pre-hooks run as in the user's own call (whichever way the recurrences run); backward hooks do not run.
    ``runner`` (unrolled recurrences only) may stand in for the recurrence of any module:
    ``runner(name, info, weights, x, hx, mask, record)`` returns what ``run_module`` returns,
    or None to run it as usual (:mod:`rnnviz_core.whatif` restarts it from kept states).
    """

    def __init__(self, model: nn.Module, device: torch.device, recurrence: str = "fused", record: bool = False,
                 probe_name: str | None = None, *, lengths_arg: str | None = None,
                 output: int | str | Callable | None = None, runner: Callable | None = None,
                 engine: str | None = None):
        recurrence = pick_recurrence(recurrence, engine)   # engine=: the keyword's old name
        model = unwrap_model(model)
        self.model = model
        self.infos = find_recurrent(model)
        self.last = self.infos[-1]
        self.dtype = _model_dtype(model)
        self.device = device
        self.session = _Session(recurrence, record=record, probe_name=probe_name)
        if runner is not None and recurrence == "fused":
            raise InputError("internal: a recurrence runner needs an unrolled recurrence ('fast' or 'stepwise').")
        self.session.runner = runner
        self.module = _copy_tree(model, "", self.session, device, self.dtype, {})
        self.slot = lengths_slot(model, lengths_arg)
        self.takes_lengths = self.slot is not None
        if output is not None and not (callable(output) or isinstance(output, (int, str))) or isinstance(output, bool):
            raise InputError(f"output= must be an index, a key or a function picking the logits, got {output!r}.")
        self.output = output

    @property
    def records(self) -> dict[str, dict[str, torch.Tensor]]:
        return self.session.records

    def _select_output(self, out: Any, n: int) -> torch.Tensor:
        sel = self.output
        if sel is not None:
            try:
                out = sel(out) if callable(sel) else out[sel]
            except Exception as exc:
                raise InputError(
                    f"output={sel!r} could not pick the logits from what the model returned "
                    f"({_describe_tensor(out)}): {type(exc).__name__}: {exc}.") from exc
        elif isinstance(out, dict):
            out = out["logits"] if "logits" in out else tuple(out.values())
        if isinstance(out, (tuple, list)):
            cands = [i for i, o in enumerate(out)
                     if isinstance(o, torch.Tensor) and o.dim() in (1, 2) and o.shape[0] == n]
            shapes = ", ".join(_describe_tensor(o) for o in out)
            if len(cands) != 1:
                what = ("none of which is one output per sequence ([N, classes] or [N])" if not cands else
                        f"{len(cands)} of which could each be the output (elements {cands})")
                raise ModelError(
                    f"The model's forward returned a {type(out).__name__} ({shapes}), {what}; rnnviz will "
                    f"not guess. Pass output=<index> (e.g. output={cands[-1] if cands else 0}) or "
                    "output=<function returning the logits>.", code="output", field="output")
            out = out[cands[0]]
        if not isinstance(out, torch.Tensor):
            raise ModelError(
                f"The model's forward returned {type(out).__name__}, not a tensor of outputs. "
                "rnnviz needs one output per sequence: logits [N, classes] or a value [N]; pass output= to pick it."
            )
        if out.dim() == 0 or out.shape[0] != n or out.dim() > 2:
            raise ModelError(
                f"The model returned an output of shape {tuple(out.shape)} for {n} sequences; "
                "rnnviz needs one output per sequence: [N, classes], [N] or [N, 1]."
            )
        return out

    def by_length(self, xt: torch.Tensor, lt: torch.Tensor | None) -> bool:
        """Whether :meth:`run` runs ``xt`` one length at a time: the forward takes no lengths, and
        some sequence is shorter than the padded batch (run padded, the model would read the padding)."""
        return self.slot is None and lt is not None and bool((lt < xt.shape[1]).any())

    def run(self, xt: torch.Tensor, lt: torch.Tensor | None, probe: torch.Tensor | None = None,
            embed: EmbedSpec | None = None, unsort_records: bool = True) -> torch.Tensor:
        """The model's output for ``xt`` (caller's row order); records in ``self.records``.

        The records come back in the caller's row order too, unless ``unsort_records=False``:
        then row i of every record is caller row ``self.session.perm[i]`` when the batch was
        sorted for the model (``perm`` None: not sorted).

        A model whose forward takes no lengths runs each sequence at its own length (one forward
        per distinct length, see :meth:`by_length`), so every output and state is the sequence's
        own, as if it ran alone; records are zero past each length.
        """
        sess = self.session
        sess.embed_mod, sess.group = None, None
        if not self.by_length(xt, lt):
            sess.embed_leaf, sess.embed_delta = None, None
            return self.run_batch(xt, lt, probe, embed, unsort_records)
        from .lengthwise import run_by_length
        sess.embed_leaf, sess.embed_delta = None, None
        return run_by_length(self, xt, lt, probe, embed)

    def run_batch(self, xt: torch.Tensor, lt: torch.Tensor | None, probe: torch.Tensor | None,
                  embed: EmbedSpec | None, unsort_records: bool, keep_embed: bool = False) -> torch.Tensor:
        """One call of the model's forward on the whole batch ``xt`` (see :meth:`run`, which also
        runs a model without lengths one length at a time). ``keep_embed``: keep the embedding
        leaf of an earlier call (one leaf shared by every length of a batch)."""
        sess = self.session
        n, t = xt.shape[:2]
        sess.records, sess.perm, sess.inv = {}, None, None
        sess.embed, sess.embed_shape = embed, (n, t)
        if not keep_embed:
            sess.embed_leaf, sess.embed_delta = None, None
        passed = None
        if self.slot is not None:
            passed = lt if lt is not None else (
                torch.full((n,), t, dtype=torch.int64) if self.slot.required else None)
        x_run, p_run = xt, probe
        if passed is not None and n > 1 and bool((passed[1:] > passed[:-1]).any()):
            perm = torch.argsort(passed, descending=True, stable=True)
            inv = torch.empty_like(perm)
            inv[perm] = torch.arange(n)
            sess.perm, sess.inv = perm, inv
            x_run = xt.index_select(0, perm.to(xt.device))
            passed = passed.index_select(0, perm)
            if probe is not None:
                p_run = probe.index_select(0, perm.to(probe.device))
        args, kwargs = (x_run,), {}
        if passed is not None:
            if self.slot.name is not None:
                kwargs[self.slot.name] = passed
            else:
                args = (x_run, passed)
        sess.probe = p_run
        try:
            out = self.module(*args, **kwargs)
        except RnnvizError:
            raise
        except Exception as exc:
            raise _explain_failure(exc, self.model, xt, lt, passed, self.slot) from exc
        finally:
            sess.probe = None
        out = self._select_output(out, n)
        if sess.inv is not None:
            inv = sess.inv
            out = out.index_select(0, inv.to(out.device))
            for rec in (sess.records.values() if unsort_records else ()):
                for k, v in rec.items():
                    if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == n:
                        rec[k] = v.index_select(0, inv.to(v.device))
        if self.last.name not in sess.records:
            raise ModelError(
                f"The model's forward never ran its recurrent module '{self.last.name}', so it has no states to show."
            )
        for name, rec in sess.records.items():
            steps = rec["out"].shape[1]
            if steps < t and rec.get("lengths") is not None:  # packed: padded only to this batch's longest
                for k, v in rec.items():
                    if isinstance(v, torch.Tensor) and v.dim() == 3:
                        rec[k] = F_.pad(v, (0, 0, 0, t - steps))
            elif steps != t:
                raise ModelError(
                    f"The recurrent module '{name}' reads {steps} steps while x has {t}, so its states cannot "
                    "be lined up with the input steps (a front end such as a strided or unpadded Conv1d "
                    "changes the number of steps). rnnviz needs one recurrent step per input step."
                )
        return out


def fused_forward(
    model: nn.Module,
    xt: torch.Tensor,
    lt: torch.Tensor | None,
    *,
    batch_size: int | None = None,
    device: torch.device | None = None,
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
) -> torch.Tensor:
    """The model's own output for a prepared batch, without gradients (eval mode, model untouched).

    Rows stream through one private view in chunks of ``batch_size`` (default: all at once), each
    chunk moved to ``device`` (default: where ``xt`` is); the outputs stay on that device.
    ``lengths_arg`` and ``output`` are as in :class:`ModelView`.
    """
    view = ModelView(model, device or xt.device, recurrence="fused", lengths_arg=lengths_arg, output=output)
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
    recurrence: str = "fast",
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
    engine: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model with every recurrent module recomputed by rnnviz (differentiable).

    ``recurrence="fast"`` (default) back-propagates with the hand-written BPTT of
    :mod:`.recurrence`; ``"stepwise"`` lets autograd record every step (the reference). A probe with non-zero values always uses ``"stepwise"``
    (the fast forward treats the probe as zero). ``engine=`` is the old name of ``recurrence=``.

    Parameters
    ----------
    xt, lt : the output of :func:`prepare` (xt may require grad).
    probe : optional tensor (N, T, H_out), normally zeros with ``requires_grad=True``, added to the
        last recurrent module's last-layer state at every real step inside the recurrence, so that
        ``torch.autograd.grad(out, probe)`` is d out / d h_t (forward half then backward half of
        H_out for a bidirectional layer).
    lengths_arg, output : as in :class:`ModelView`.

    Returns
    -------
    logits : the model's output, as it returns it.
    h_last : (N, T, H_out) the last recurrent module's per-step output (zeros on padding when the
        model packs its input), still attached to the graph.
    """
    logits, h_last, _, _ = run_unrolled(model, xt, lt, probe, recurrence=pick_recurrence(recurrence, engine),
                                          lengths_arg=lengths_arg, output=output)
    return logits, h_last


def run_unrolled(
    model: nn.Module,
    xt: torch.Tensor,
    lt: torch.Tensor | None,
    probe: torch.Tensor | None = None,
    *,
    recurrence: str = "fast",
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
    embed: EmbedSpec | None = None,
    engine: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """:func:`unrolled_forward`, plus the embedding leaf and its delta for token models.

    With ``embed`` (token ids only), the output of the ``nn.Embedding`` that reads x becomes a
    leaf tensor ``E_leaf`` [N, T, D] (see :class:`EmbedSpec`), so ``autograd.grad(out,
    E_leaf)`` is the gradient with respect to the embedding output; ``delta`` is E itself
    (``mode="grad"``) or ``E - Eb`` (``mode="path"``). Both in the caller's row order.
    """
    recurrence = pick_recurrence(recurrence, engine)
    if recurrence not in ("fast", "stepwise"):
        raise InputError(f"recurrence must be 'fast' or 'stepwise', not {recurrence!r}.")
    if probe is not None and recurrence == "fast" and bool((probe.detach() != 0).any()):
        recurrence = "stepwise"
    view = ModelView(model, xt.device, recurrence=recurrence, probe_name=find_recurrent(model)[-1].name,
                     lengths_arg=lengths_arg, output=output)
    if probe is not None:
        expected = (xt.shape[0], xt.shape[1], view.last.output_size)
        if tuple(probe.shape) != expected:
            raise InputError(f"probe must have shape {expected}, got {tuple(probe.shape)}.")
    logits = view.run(xt, lt, probe=probe, embed=embed)
    leaf, delta = view.session.embed_leaf, view.session.embed_delta
    if embed is not None and leaf is None:
        raise ModelError(
            "x holds token ids, but no nn.Embedding of the model read them as given ([sequences, steps]), "
            "so there is no embedding output to attribute to. grad_norm and grad_x_state, which attribute "
            "to the recurrent states, work on any model."
        )
    return logits, view.records[view.last.name]["out"], leaf, delta
