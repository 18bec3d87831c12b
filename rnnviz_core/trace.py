"""``rv.trace``: every step's hidden state, cell state and gates, exactly as the model computes them.

Naming scheme (one canonical name per array, as TransformerLens names its hooks)::

    "{module}.l{layer}.{direction}.{kind}"      e.g. "rnn.l0.fwd.z", "encoder.lstm.l1.bwd.c"

``module`` is the recurrent module's qualified name in the model, ``layer`` counts from 0,
``direction`` is "fwd" or "bwd" (bidirectional layers), and ``kind`` is "h" (the state the
layer outputs), "c" (LSTM cell state) or a gate letter as PyTorch names it: GRU "r", "z",
"n"; LSTM "i", "f", "g", "o" (vanilla RNNs have no gates). Every array is float32
[N, T, size], indexed by input position (also for "bwd"), NaN at and past each sequence's
length, and read-only: arrays may share memory (the last layer's "h" is ``hidden``) or view
time-major memory, so copy one (``arr.copy()``) to change it. Shorthand: ``tr["z"]`` is the
last module's last layer, forward direction; ``tr["z", 0]`` layer 0; ``tr["z", 0, "bwd"]``; or
``tr.get(kind, layer, direction, module)``.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from .arrays import valid_mask
from .device import resolve_device
from .engine import (DIRECTIONS, ModelView, RecurrentInfo, check_batch_size, find_recurrent, fused_forward,
                     prepare, unwrap_model)
from .errors import ModelError

__all__ = ["trace", "predict", "Trace", "RecurrentInfo"]

# Elements of intermediate float32 arrays one batch may hold (≈ 64 MB); batches stream through.
_BATCH_BUDGET = 2**24
#: sequences a batch of the recorded (gates) path holds at least, where 4x the budget allows it
_FULL_MIN_BATCH = 32


class Trace:
    """The result of :func:`trace`; reads like a dictionary of per-step arrays.

    Attributes
    ----------
    hidden : float32 [N, T, H_out] per-step output of the last recurrent module as the model sees
        it (directions concatenated), NaN at and past each length.
    logits : float32, the model's own output for x ([N, C], or [N] / [N, 1]).
    lengths : int64 [N] real steps per sequence.
    modules : list of :class:`RecurrentInfo`, in registration order (the last is "the last").
    """

    def __init__(self, hidden, logits, lengths, modules, arrays=None, loader: Callable[[], dict] | None = None):
        self.hidden: np.ndarray = hidden
        self.logits: np.ndarray = logits
        self.lengths: np.ndarray = lengths
        self.modules: list[RecurrentInfo] = modules
        self._arrays: dict[str, np.ndarray] | None = arrays
        self._loader = loader

    # -- shape helpers
    @property
    def n_sequences(self) -> int:
        return self.hidden.shape[0]

    @property
    def n_steps(self) -> int:
        return self.hidden.shape[1]

    @property
    def mask(self) -> np.ndarray:
        """Bool [N, T], True on real steps."""
        return valid_mask(self.lengths, self.n_steps)

    @property
    def last(self) -> RecurrentInfo:
        return self.modules[-1]

    # -- naming
    def _module(self, module: int | str = -1) -> RecurrentInfo:
        if isinstance(module, str):
            for info in self.modules:
                if info.name == module:
                    return info
            raise KeyError(f"No recurrent module named '{module}'. The model has: {[m.name for m in self.modules]}.")
        try:
            return self.modules[module]
        except IndexError:
            raise KeyError(f"Module index {module} is out of range: the model has {len(self.modules)} recurrent module(s).") from None

    def keys(self) -> list[str]:
        """Every canonical name this trace can give."""
        names = []
        for info in self.modules:
            for layer in range(info.num_layers):
                for d in DIRECTIONS[: info.num_directions]:
                    names += [f"{info.name}.l{layer}.{d}.{kind}" for kind in info.kinds]
        return names

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __contains__(self, key) -> bool:
        try:
            self._resolve(key)
            return True
        except KeyError:
            return False

    def gate_kinds(self, module: int | str = -1) -> tuple[str, ...]:
        """Gate letters of a module: ("r","z","n") for GRU, ("i","f","g","o") for LSTM, () for RNN."""
        return self._module(module).gates

    def name(self, kind: str, layer: int = -1, direction: str = "fwd", module: int | str = -1) -> str:
        """Canonical name for a shorthand, checking that it exists."""
        info = self._module(module)
        if kind not in info.kinds:
            raise KeyError(f"'{kind}' is not traced for a {info.mode} module; available: {list(info.kinds)}.")
        nl = info.num_layers
        if not -nl <= layer < nl:
            raise KeyError(f"Layer {layer} is out of range: '{info.name}' has {nl} layer(s).")
        if direction not in DIRECTIONS[: info.num_directions]:
            raise KeyError(
                f"Direction '{direction}' does not exist for '{info.name}'; use "
                f"{' or '.join(repr(d) for d in DIRECTIONS[: info.num_directions])}."
            )
        return f"{info.name}.l{layer % nl}.{direction}.{kind}"

    def _resolve(self, key) -> str:
        if isinstance(key, tuple):
            return self.name(*key)
        if isinstance(key, str):
            if key in set(self.keys()):
                return key
            if "." not in key:
                return self.name(key)
        raise KeyError(f"Unknown trace key {key!r}. Use a name from tr.keys() or a shorthand like tr['h'] / tr['z', 0, 'bwd'].")

    # -- access
    def get(self, kind: str, layer: int = -1, direction: str = "fwd", module: int | str = -1) -> np.ndarray:
        """The float32 [N, T, size] array for one kind, layer, direction and module."""
        return self[self.name(kind, layer, direction, module)]

    def __getitem__(self, key) -> np.ndarray:
        name = self._resolve(key)
        info = self._module(name.rsplit(".", 3)[0])
        _, layer, direction, kind = name.rsplit(".", 3)
        if (
            self._arrays is None
            and kind == "h"
            and info is self.last
            and int(layer[1:]) == info.num_layers - 1
        ):  # the last layer's states are the module output: no recomputation needed
            hs = info.state_size
            d = DIRECTIONS.index(direction)
            return self.hidden[..., d * hs : (d + 1) * hs]
        return self.arrays[name]

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """All per-step arrays by canonical name (computes gates and cell states on first use)."""
        if self._arrays is None:
            with _LOAD_LOCK:  # one computation when several threads ask at once (the app loads them in the background)
                if self._arrays is None:
                    if self._loader is None:  # pragma: no cover - trace() always sets one
                        raise ModelError("This trace holds no gates or cell states.")
                    self._arrays = self._loader()
                    self._loader = None
        return self._arrays

    @property
    def arrays_loaded(self) -> bool:
        """Whether the gates and cell states are computed already (see :attr:`arrays`)."""
        return self._arrays is not None

    def __repr__(self) -> str:
        n, t, h = self.hidden.shape
        mods = ", ".join(f"{m.name}: {m.describe()}" for m in self.modules)
        return f"Trace(N={n}, T={t}, H_out={h}; {mods})"


#: held while a trace computes its gates and cell states on first request
_LOAD_LOCK = threading.RLock()


def auto_batch(n: int, t: int, per_step: int) -> int:
    return int(max(1, min(n, _BATCH_BUDGET // max(1, t * per_step))))


def fused_per_step(infos) -> int:
    """Elements one sequence-step of the fused forward holds: outputs plus the gates' workspace."""
    return sum(info.output_size + 4 * info.hidden_size * info.num_directions for info in infos)


def _nan_past(arr: np.ndarray, lengths: np.ndarray, start: int) -> None:
    """Set arr[i, t] = NaN for t >= lengths[start + i] (in place)."""
    n, t = arr.shape[:2]
    mask = ~valid_mask(lengths[start : start + n], t)
    if mask.any():
        arr[mask] = np.nan


def _fill(dst: np.ndarray, src: torch.Tensor, what: str, order: np.ndarray | None = None) -> None:
    """Copy a recorded (n, T', size) tensor into dst (n, T, size); steps past T' become NaN.

    ``order``: row i of ``src`` goes to row ``order[i]`` of ``dst`` (records of a batch the
    model saw sorted by length; one scatter instead of unsorting, then copying).
    """
    if src.shape[0] != dst.shape[0] or src.shape[2] != dst.shape[2] or src.shape[1] > dst.shape[1]:
        raise ModelError(
            f"The recurrent module returned {what} of shape {tuple(src.shape)} for a batch of shape "
            f"{dst.shape[:2]}; rnnviz expects one state per sequence and step."
        )
    t = src.shape[1]
    if order is None:
        dst[:, :t] = src.detach().to("cpu", torch.float32).numpy()
    else:
        dst[order, :t] = src.detach().to("cpu", torch.float32).numpy()
    if t < dst.shape[1]:
        dst[:, t:] = np.nan


def _adoptable(infos) -> bool:
    """Whether every record of a full trace can be handed over as it is (see ``_adopt``): forward-only
    LSTMs, whose gates and cell states come back in buffers of their own (time-major)."""
    return all(info.mode == "LSTM" and info.num_directions == 1 for info in infos)


def _record_work_per_step(infos) -> int:
    """Work space per sequence-step of an adoptable full trace, beyond the records themselves: the
    fused kernel's output and one gate input ``[x_t, h_{t-1}]`` (the widest layer's)."""
    return sum(info.output_size for info in infos) + max(info.input_size + info.state_size for info in infos)


def _dense(t: torch.Tensor) -> bool:
    """Whether a tensor's elements fill one block of memory exactly (contiguous up to a permutation
    of its axes)."""
    dims = sorted((st, sz) for st, sz in zip(t.stride(), t.shape) if sz != 1)
    expect = 1
    for st, sz in dims:
        if st != expect:
            return False
        expect *= sz
    return True


def _same_view(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or (a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()
                      and a.dtype == b.dtype and a.device == b.device)


def _adopt(src: torch.Tensor, shape: tuple, taken: list) -> bool:
    """True when ``src`` can become a trace array as it is: a float32 CPU tensor of the final shape
    laid out without gaps in some order of its axes (for instance time-major memory seen
    batch-first), whose memory overlaps no array already handed over. Then ``src.numpy()`` shares
    that memory (and keeps it alive)."""
    if not (isinstance(src, torch.Tensor) and src.device.type == "cpu" and src.dtype == torch.float32
            and tuple(src.shape) == tuple(shape) and not src.requires_grad and _dense(src)):
        return False
    lo = src.data_ptr()
    hi = lo + src.numel() * src.element_size()
    if any(lo < b and a < hi for a, b in taken):
        return False
    taken.append((lo, hi))
    return True


def _run(model, xt, lt, device, batch_size, full: bool, recurrence: str = "fast", lengths_arg=None, output=None):
    """Stream the batches through a view; returns (hidden, logits, arrays or None)."""
    infos = find_recurrent(model)
    n, t = xt.shape[:2]
    lengths = lt.numpy() if lt is not None else np.full(n, t, dtype=np.int64)
    if full:
        per_step = sum(
            info.num_layers * info.num_directions * sum(info.kind_size(k) for k in info.kinds) for info in infos
        )  # one batch holds about this many elements per step, plus the loop's small temporaries
        if _adoptable(infos) and n * t * _record_work_per_step(infos) <= _BATCH_BUDGET:
            per_step = 0  # one batch: its records become the arrays (no copy), so only the work space counts
    else:
        per_step = fused_per_step(infos)
    bs = check_batch_size(batch_size) or (n if per_step == 0 else auto_batch(n, t, per_step))
    if full and not batch_size and per_step:
        # the recorded path runs one interpreted iteration per step and batch: on long sequences the
        # per-iteration cost, not the arithmetic, dominated (10,000 steps x GRU 32: 13 sequences a batch
        # took twice as long as 40); batches of up to 32 sequences, within 4x the memory budget
        bs = max(bs, min(n, _FULL_MIN_BATCH, 4 * bs))
    view = ModelView(model, device, recurrence=recurrence if full else "fused", record=full,
                     lengths_arg=lengths_arg, output=output)
    filler = Filler(infos, n, t, lengths, full)
    with torch.inference_mode():
        for s in range(0, n, bs):
            xb = xt[s : s + bs].to(device)
            lb = None if lt is None else lt[s : s + bs]
            out = view.run(xb, lb, unsort_records=False)
            perm = view.session.perm  # records in the order the model saw the rows
            filler.add(s, out, view.records, None if perm is None else perm.numpy())
    hidden, logits, arrays = filler.finish()
    return hidden, logits, lengths, arrays


class Filler:
    """A trace's arrays, filled batch by batch from a view's records (:func:`trace`, and the
    contributions' shared pass, which records as it scores: ``rv.contributions_many(...,
    trace=True)``).

    ``add(s, out, records, order)``: the batch of rows ``s ..`` (``out`` the model's output for
    them, ``records`` the view's, ``order``: row i of the records is batch row ``order[i]``, or
    None). ``finish()`` -> (hidden, logits, arrays or None without ``full``), every array
    read-only, NaN at and past each length. ``last_only``: keep only these record keys of the
    last module (e.g. ``{"l0.fwd.h", "l0.fwd.r", "l0.fwd.z"}``), not every array.
    """

    def __init__(self, infos, n: int, t: int, lengths: np.ndarray, full: bool, last_only: set | None = None):
        self.infos, self.last = infos, infos[-1]
        self.n, self.t, self.lengths, self.full = n, t, lengths, full
        # with full: the last module's record keys ("l0.fwd.z", ...) that are kept, None for every array
        self.last_only = last_only
        self.hidden = None  # handed over from the first batch when it is every row, else filled batch by batch
        self.arrays: dict[str, np.ndarray] = {}
        self.taken: list[tuple[int, int]] = []  # memory ranges already handed over as arrays (never twice)
        self.logits_parts = []

    def add(self, s: int, out: torch.Tensor, records: dict, order: np.ndarray | None) -> None:
        n, t, last, lengths, arrays, taken = self.n, self.t, self.last, self.lengths, self.arrays, self.taken
        self.logits_parts.append(out.detach().to("cpu", torch.float32).numpy())
        rows = out.shape[0]
        whole = s == 0 and rows >= n and order is None  # this batch is every row, in order
        src = records[last.name]["out"]
        if src.requires_grad:   # a pass that records as it differentiates: the values, once it is done
            src = src.detach()
        shared = None  # the tensor hidden was handed over from, if it was
        if whole and _adopt(src, (n, t, last.output_size), taken):
            self.hidden = src.numpy()
            shared = src
        else:
            if self.hidden is None:
                self.hidden = np.empty((n, t, last.output_size), dtype=np.float32)
            _fill(self.hidden[s : s + rows], src, "states", order)
        hidden = self.hidden
        _nan_past(hidden[s : s + rows], lengths, s)
        if not self.full:
            return
        for info in self.infos:
            rec = records.get(info.name)
            if rec is None:
                raise ModelError(f"The model's forward never ran its recurrent module '{info.name}'.")
            for key, val in rec.items():
                if key in ("out", "lengths"):
                    continue
                name = f"{info.name}.{key}"
                if self.last_only is not None and (info is not last or key not in self.last_only):
                    continue
                if shared is not None and _same_view(val, shared):
                    arrays[name] = hidden  # the last layer's states are the module output
                    continue
                if whole and _adopt(val, (n, t, val.shape[-1]), taken):
                    arrays[name] = val.numpy()
                    _nan_past(arrays[name], lengths, 0)
                    continue
                if name not in arrays:
                    arrays[name] = np.empty((n, t, val.shape[-1]), dtype=np.float32)
                _fill(arrays[name][s : s + rows], val, "states", order)
                _nan_past(arrays[name][s : s + rows], lengths, s)

    def finish(self) -> tuple[np.ndarray, np.ndarray, dict | None]:
        logits = np.concatenate(self.logits_parts, 0)
        # Arrays may share memory (the last layer's "h" is ``hidden``) and are handed out to many
        # readers (charts, caches): read-only, so no reader can change what another one sees.
        self.hidden.flags.writeable = False
        for arr in self.arrays.values():
            arr.flags.writeable = False
        return self.hidden, logits, (self.arrays if self.full else None)


def trace(
    model: nn.Module,
    x: Any,
    lengths: Any = None,
    *,
    gates: bool = False,
    device: str | torch.device | None = "auto",
    batch_size: int | None = None,
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
) -> Trace:
    """Trace a many-to-one recurrent model on a padded batch.

    Parameters
    ----------
    model : any ``nn.Module`` containing ``nn.RNN``/``nn.GRU``/``nn.LSTM`` modules whose forward
        takes ``x`` (plus the lengths, see below) and returns logits [N, C] or [N] / [N, 1], or a
        tuple holding them. It is never modified; ``nn.DataParallel`` and
        ``DistributedDataParallel`` wrappers are looked through.
    x : float tensor or ndarray [N, T, F], batch-first, padded; or integer token ids [N, T]
        (never cast to float; the model's embedding reads them as it would).
    lengths : ints [N] (real steps per sequence) or None for "all T". They reach the forward
        parameter named ``lengths``, ``lens``, ``seq_lens``, ``seq_lengths``, ``input_lengths``,
        ``length`` (any name containing "len"), else its only extra positional parameter, else
        ``*args``; ``lengths_arg`` names it outright. When the model takes lengths, each batch
        reaches it sorted longest first (so ``pack_padded_sequence(..., enforce_sorted=True)``
        works) and results come back in your order. With ``lengths=None``, a forward whose
        lengths parameter has no default gets "all T". A forward that takes no lengths runs each
        sequence at its own length (one call per distinct length), so it never reads padding and
        every output is the one the sequence gets alone.
    gates : compute gates and cell states of every layer now (otherwise on first request).
    device : "auto" (CUDA, then MPS, then CPU), or an explicit available device.
    batch_size : sequences per batch (default: sized so intermediates stay around 64 MB); a
        positive whole number.
    lengths_arg : name of the forward parameter that takes the lengths (default: found as above).
    output : which part of what the forward returns holds the logits: an index or key, or a
        function ``f(returned) -> logits``. Default: the returned tensor; for a tuple or list,
        the one element shaped [N, C] or [N] (a tuple with several such elements is refused).

    Notes
    -----
    The model runs as in your own call, in eval mode, with no gradient for its parameters: the
    forward hooks and forward pre-hooks you registered (on any module, recurrent ones included)
    run on every path, the full trace as well as the outputs and the contributions, so a hook
    that changes an output changes rnnviz's numbers exactly as it changes the model's; hooks see
    rnnviz's batches (chunks of x, perturbed copies for some contributions). Backward hooks do
    not run. The traced states are the recurrent module's own outputs (before a hook on it).
    A forward that runs the same recurrent module twice is refused.

    Returns
    -------
    Trace
        ``hidden`` [N, T, H_out], ``logits``, ``lengths`` and every per-step array by name.
    """
    model = unwrap_model(model)
    dev = resolve_device(device)
    batch_size = check_batch_size(batch_size)
    xt, lt = prepare(model, x, lengths, torch.device("cpu"))
    infos = find_recurrent(model)
    hidden, logits, lens, arrays = _run(model, xt, lt, dev, batch_size, full=gates,
                                        lengths_arg=lengths_arg, output=output)
    loader = None
    if arrays is None:
        def loader():
            return _run(model, xt, lt, dev, batch_size, full=True, lengths_arg=lengths_arg, output=output)[3]
    return Trace(hidden, logits, lens, infos, arrays=arrays, loader=loader)


def predict(
    model: nn.Module,
    x: Any,
    lengths: Any = None,
    *,
    device: str | torch.device | None = "auto",
    batch_size: int | None = None,
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
) -> np.ndarray:
    """The model's own output for x as float32 numpy ([N, C], or [N] / [N, 1]); model untouched.

    ``x``, ``lengths``, ``lengths_arg`` and ``output`` are as in :func:`trace`.
    """
    model = unwrap_model(model)
    dev = resolve_device(device)
    batch_size = check_batch_size(batch_size)
    xt, lt = prepare(model, x, lengths, torch.device("cpu"))
    n, t = xt.shape[:2]
    bs = batch_size or auto_batch(n, t, fused_per_step(find_recurrent(model)))
    return fused_forward(model, xt, lt, batch_size=bs, device=dev, lengths_arg=lengths_arg,
                         output=output).to("cpu", torch.float32).numpy()

