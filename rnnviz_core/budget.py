"""A memory budget for traced arrays, applied before any tensor is allocated.

Tracing keeps, for every sequence and step, a few arrays of ``units`` values (hidden states,
gates, cell states, scores): ``sequences x steps x units x arrays x 4 bytes`` of float32. A
file within every size limit can still need tens of GB for that (200,000 sequences of 166
steps, 64 units, 6 arrays: 51 GB). :func:`plan` says how many sequences fit, and
:func:`sample` picks them::

    p = budget.plan(len(ds), ds.max_len, units=64, arrays=6, max_bytes=budget.DEFAULT_MAX_BYTES)
    if p.sampled:
        ds = ds.subset(budget.sample(len(ds), p.keep_n, labels=ds.y))   # and show p.message

or, for a model and a dataset in one call, ``ds, p = budget.fit(ds, model)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import DataError

__all__ = ["Plan", "plan", "sample", "traced_size", "fit", "DEFAULT_MAX_BYTES", "BYTES_PER_VALUE", "format_bytes"]

#: A default budget for the traced arrays of one analysis (1 GiB).
DEFAULT_MAX_BYTES = 1 << 30
#: Bytes per traced value (float32).
BYTES_PER_VALUE = 4


@dataclass(frozen=True)
class Plan:
    """How many sequences to trace.

    Attributes
    ----------
    keep_n : sequences to trace (all of them when ``sampled`` is False).
    sampled : True when only a sample of ``keep_n`` fits in the budget.
    message : a plain sentence for the person (empty when nothing was sampled).
    bytes_all : bytes the traced arrays of every sequence would need.
    bytes_kept : bytes the traced arrays of the ``keep_n`` sequences need.
    """

    keep_n: int
    sampled: bool
    message: str
    bytes_all: int = 0
    bytes_kept: int = 0


def format_bytes(n: float) -> str:
    """People's units: ``"512 MB"``, ``"25.3 GB"`` (powers of 1024)."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            v = n / size
            return f"{v:,.1f} {unit}" if v < 100 else f"{v:,.0f} {unit}"
    return f"{int(n)} bytes"


def _whole(name: str, v, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < low:
        raise DataError(f"The budget's {name} must be a whole number of at least {low}, not {v!r}.",
                        code="bad_option", field=None)
    return int(v)


def plan(n: int, t: int, units: int, arrays: int, *, max_bytes: int, min_keep: int = 1) -> Plan:
    """How many of ``n`` sequences can be traced within ``max_bytes``.

    Parameters
    ----------
    n : number of sequences.
    t : steps per sequence (the padded length ``T``).
    units : values per step and array (hidden units, both directions and layers counted).
    arrays : traced arrays per step (for example ``h``, ``c`` and 4 gates: 6).
    max_bytes : the budget, in bytes (see :data:`DEFAULT_MAX_BYTES`).
    min_keep : fewest sequences worth tracing; a budget that fits fewer is refused.

    Returns
    -------
    Plan : ``keep_n == n`` and ``sampled=False`` when ``n x t x units x arrays x 4`` bytes fit;
        else the most sequences that fit, ``sampled=True`` and a sentence saying so.

    Raises
    ------
    DataError : (code ``"too_big_to_trace"``) when not even ``min_keep`` sequences fit.
    """
    n, t, units, arrays = (_whole(k, v, lo) for k, v, lo in
                           (("sequence count", n, 0), ("step count", t, 1), ("unit count", units, 1),
                            ("array count", arrays, 1)))
    max_bytes, min_keep = _whole("byte limit", max_bytes, 1), _whole("smallest sample", min_keep, 1)
    per_seq = t * units * arrays * BYTES_PER_VALUE
    need = n * per_seq
    if need <= max_bytes:
        return Plan(keep_n=n, sampled=False, message="", bytes_all=need, bytes_kept=need)
    keep = max_bytes // per_seq
    if keep < min(min_keep, n):
        what = "One sequence" if min_keep == 1 else f"{min_keep:,} sequences"
        raise DataError(f"{what} of {t:,} steps would need {format_bytes(per_seq * min_keep)} for its traced "
                        f"values ({units:,} units x {arrays} arrays per step), more than the "
                        f"{format_bytes(max_bytes)} allowed. Use shorter sequences or a smaller model.",
                        code="too_big_to_trace", field=None)
    return Plan(keep_n=int(keep), sampled=True,
                message=(f"Showing a sample of {keep:,} of the {n:,} sequences: tracing all of them would need "
                         f"{format_bytes(need)}, more than the {format_bytes(max_bytes)} allowed."),
                bytes_all=need, bytes_kept=int(keep) * per_seq)


def sample(n: int, keep_n: int, *, labels: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Indices of ``keep_n`` of ``n`` sequences, sorted, the same on every call with the same seed.

    With ``labels`` [n] (class indices or any values) each label keeps its share of the sample
    (largest remainders first), so a rare class is not lost to chance.

    Returns
    -------
    np.ndarray int64 [keep_n].
    """
    n, keep_n = _whole("sequence count", n, 0), _whole("sample size", keep_n, 0)
    if keep_n >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n, size=keep_n, replace=False)).astype(np.int64)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n:
        raise DataError(f"Got {len(labels)} labels for {n} sequences.", code="shape", field=None)
    _, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    share = counts * keep_n / n
    take = np.floor(share).astype(np.int64)
    for k in np.argsort(-(share - take), kind="stable")[: keep_n - int(take.sum())]:
        take[k] += 1
    out = [rng.choice(np.flatnonzero(inv == k), size=int(m), replace=False) for k, m in enumerate(take) if m]
    return np.sort(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


def traced_size(model) -> tuple[int, int]:
    """``(units, arrays)`` a full trace of ``model`` keeps per sequence step (an upper bound).

    ``units`` counts every layer and direction of every recurrent module; ``arrays`` is the most
    per-step arrays one of them keeps (``h``, ``c`` and the gates) plus one for the output the
    pages read. A GRU of 64 units: ``(64, 5)``; a 2-layer bidirectional LSTM of 32: ``(128, 7)``.
    """
    from .engine import find_recurrent
    infos = find_recurrent(model)
    units = sum(i.num_layers * i.num_directions * max(i.hidden_size, i.state_size) for i in infos)
    arrays = max(len(i.kinds) for i in infos) + 1
    return int(units), int(arrays)


def fit(ds, model, *, max_bytes: int = DEFAULT_MAX_BYTES, seed: int = 0):
    """``(dataset, plan)``: ``ds`` itself when tracing all of it with ``model`` fits in
    ``max_bytes``, else a sample (sorted; each class keeps its share) and the plan's sentence.

    Decided from sizes alone, before anything is traced or allocated.

    Raises
    ------
    DataError : (code ``"too_big_to_trace"``) when not even one sequence fits.
    """
    units, arrays = traced_size(model)
    p = plan(len(ds), int(ds.max_len), units, arrays, max_bytes=max_bytes)
    if not p.sampled:
        return ds, p
    labels = ds.y if getattr(ds, "class_names", None) and ds.y is not None else None
    return ds.subset(sample(len(ds), p.keep_n, labels=labels, seed=seed)), p
