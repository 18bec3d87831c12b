"""What goes into a model: x (features or token ids) and lengths checked, the forward parameter that
takes the lengths, batch sizes, embeddings and their baseline token."""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..arrays import valid_mask as _length_mask
from ..device import resolve_device
from ..errors import InputError
from .discovery import find_recurrent, unwrap_model


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


def model_dtype(model: nn.Module) -> torch.dtype:
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
    xt = _check_x(x, model_dtype(model))
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
