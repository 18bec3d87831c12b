"""Array checks shared by every analysis: states and lengths in, one length mask out.

``valid_mask`` is the one length mask of the core: True at the steps inside each sequence
(step < length). It takes numpy lengths (-> numpy bool [N, T]) or a torch tensor of lengths
(-> torch bool [N, T] on that tensor's device, or ``device=``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["to_numpy", "infer_lengths", "as_states", "check_lengths", "blocks", "valid_mask", "seq_ids",
           "check_positive_int", "check_nonneg", "budget_rows"]


def to_numpy(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise InputError(f"{name} could not be read as an array ({exc}); pass a numpy array.") from None


def infer_lengths(states: np.ndarray) -> np.ndarray:
    n, t = states.shape[:2]
    real = ~np.isnan(states).all(axis=-1)  # [N, T]
    any_real = real.any(axis=1)
    last = t - 1 - np.argmax(real[:, ::-1], axis=1)
    return np.where(any_real, last + 1, 0).astype(np.int64)


def as_states(states: Any, lengths: Any = None, name: str = "states") -> tuple[np.ndarray, np.ndarray]:
    """Return (float states [N, T, H] (float32 kept, else float64), int64 lengths [N]) after checks."""
    if hasattr(states, "hidden") and hasattr(states, "lengths") and not isinstance(states, np.ndarray):
        if lengths is None:
            lengths = states.lengths
        states = states.hidden
    arr = to_numpy(states, name)
    if arr.ndim == 2:
        raise InputError(
            f"{name} has shape {arr.shape}; pass one row per sequence as [N, T, H] "
            f"(use states[None] for a single sequence)."
        )
    if arr.ndim != 3:
        raise InputError(f"{name} must have shape [N, T, H] (sequences, steps, units); got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InputError(f"{name} is empty (shape {arr.shape}); pass at least one sequence, step and unit.")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"{name} must hold real numbers; got dtype {arr.dtype}.")
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    lens = check_lengths(lengths, arr.shape[0], arr.shape[1]) if lengths is not None else infer_lengths(arr)
    if (lens < 1).any():
        bad = int(np.flatnonzero(lens < 1)[0])
        raise InputError(f"Sequence {bad} has no valid steps (all NaN); remove it or pass its length.")
    return arr, lens


def check_lengths(lengths: Any, n: int, t: int) -> np.ndarray:
    lens = to_numpy(lengths, "lengths")
    if lens.ndim != 1 or lens.shape[0] != n:
        raise InputError(f"lengths must hold one length per sequence ({n}); got shape {lens.shape}.")
    if lens.size and not np.issubdtype(lens.dtype, np.integer):
        if not np.all(np.isfinite(lens)) or not np.all(lens == np.round(lens)):
            raise InputError("lengths must be whole numbers of steps.")
    lens = lens.astype(np.int64)
    if lens.size and (lens.min() < 1 or lens.max() > t):
        raise InputError(f"Every length must be between 1 and the number of steps ({t}); got {lens.min()}..{lens.max()}.")
    return lens


def blocks(arr: np.ndarray, cells: int = 1 << 22):
    """Slices of the first axis of ``arr`` [N, ...], each about ``cells`` values (at least one row),
    for computing a whole-array result a block at a time (no full-size temporaries)."""
    per = max(1, cells // max(1, int(np.prod(arr.shape[1:]))))
    return [slice(i, min(i + per, arr.shape[0])) for i in range(0, arr.shape[0], per)]


def valid_mask(lengths: Any, n_steps: int, *, device: Any = None):
    """Boolean [N, T]: True at the steps inside each sequence (step < length).

    ``lengths``: ints [N] (numpy, list) -> numpy bool [N, T]; a torch tensor (or ``device=`` given)
    -> torch bool [N, T] on ``device`` (default: the tensor's own device)."""
    if device is not None or type(lengths).__module__.startswith("torch"):
        import torch  # only when asked for a tensor: the analyses stay numpy-only
        lt = torch.as_tensor(lengths, dtype=torch.int64)
        dev = device if device is not None else lt.device
        return torch.arange(n_steps, device=dev)[None, :] < lt.to(dev)[:, None]
    lens = np.asarray(lengths, dtype=np.int64)
    return np.arange(n_steps)[None, :] < lens[:, None]


def seq_ids(ids: Any, n: int) -> np.ndarray:
    if ids is None:
        return np.arange(n)
    arr = np.asarray(ids)
    if arr.shape != (n,):
        raise InputError(f"ids must hold one id per sequence ({n}); got shape {arr.shape}.")
    return arr


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}; got {value!r}.")
    return int(value)


def check_nonneg(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number; got {value!r}.") from None
    if not np.isfinite(v) or v < 0:
        raise InputError(f"{name} must be a finite number >= 0; got {value!r}.")
    return v


def budget_rows(cost: Any, budget: float, *, minimum: int = 1) -> np.ndarray:
    """Rows [k] (int64, sorted) that fit a work budget: every row when ``cost`` (one number per
    row) adds up to at most ``budget``, else about ``budget / mean(cost)`` evenly spaced rows, first
    and last included, and at least ``minimum`` of them (never more than there are).

    The one rule behind the resilience sweep's rows (``analyses.resilience.sweep_rows``: cost =
    length x the elements one fused step holds) and the Contributions page's group findings
    (``page_horizons.group_rows``: cost = length squared)."""
    c = np.asarray(cost, dtype=np.float64).reshape(-1)
    n = len(c)
    if float(c.sum()) <= budget:
        return np.arange(n)
    k = max(int(minimum), int(budget // max(float(c.mean()), 1.0)))
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(np.int64))
