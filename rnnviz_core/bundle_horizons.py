"""Decision step and memory horizon of every sequence, kept in an analysis bundle.

Build side (:func:`columns`, called by the bundle worker once per block): the columns of
:func:`rnnviz_core.horizons.horizon` (``rv.horizon``) — ``decision_step``,
``steps_after_decision``, ``horizon_50``, ``horizon_90`` — computed from the scores the block
already has, of the bundle's trusted method (:func:`horizon_method`: integrated gradients when
the bundle scores it, else its first method), so no contribution is computed twice. The decision
step costs one run of :func:`rnnviz_core.restart.prefix_outputs` per block.

Read side (:func:`read`): those columns of an opened bundle as the frame ``rv.horizon`` returns
(``seq``, ``length``, the four metrics, ``method``), read column by column (never the whole
table); None for a bundle built before they were kept. The values are checked against each
sequence's length before anything uses them.

Regression (one output): "decided" means within a tolerance of the final output: 5% of the
standard deviation of the final outputs over the whole data (every sequence up to
:data:`TOL_SEQUENCES`, evenly spaced blocks beyond), computed once before the blocks
(``decision_tol`` in the build options), so every block uses the live page's rule; the manifest
says which.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .errors import BundleError

__all__ = ["COLUMNS", "columns", "horizon_method", "manifest_entry", "read"]

#: the per-sequence columns a bundle's table holds (``horizons.HORIZON_METRICS``, as ``rv.horizon``
#: names them; written out so that opening a bundle does not import torch)
COLUMNS = ("decision_step", "steps_after_decision", "horizon_50", "horizon_90")
#: ``horizons.DEFAULT_HORIZON_METHOD``
TRUSTED_METHOD = "integrated_gradients"
#: the Arrow kinds the open check accepts for them (NaN horizons: no contribution mass)
KINDS = {"decision_step": ("int",), "steps_after_decision": ("int",),
         "horizon_50": ("float", "int", "null"), "horizon_90": ("float", "int", "null")}


def horizon_method(methods: Sequence[str]) -> str:
    """The method whose scores give the horizons: integrated gradients when among ``methods``
    (its scores add up to the output's change), else the first of ``methods``."""
    methods = list(methods)
    if not methods:
        raise ValueError("a bundle scores at least one method")
    return TRUSTED_METHOD if TRUSTED_METHOD in methods else methods[0]


def columns(model: Any, x: Any, lengths: Any, scores: Mapping[str, np.ndarray], opts: Mapping,
            states: Any = None) -> dict:
    """The four horizon columns of one block as Arrow arrays (one value per sequence).

    ``x`` [n, T, F] (or token ids [n, T]) and ``lengths`` [n] the block's; ``scores`` maps each
    method the block scored (in the bundle's order) to its scores [n, >= T]; ``opts`` the build
    options (``device``, ``batch_size``, optional ``decision_tol``); ``states`` the block trace's
    last-layer states (a built-in model's prefix outputs then need no second run).
    """
    import pyarrow as pa

    from .horizons import horizon_arrays

    method = horizon_method(list(scores))
    T = np.shape(x)[1]
    sc = np.asarray(scores[method])[:, :T]
    hz = horizon_arrays(model, x, lengths, scores=sc, tol=opts.get("decision_tol"), device=opts["device"],
                        batch_size=opts["batch_size"], states=states)
    return {"decision_step": pa.array(np.asarray(hz["decision_step"], np.int64)),
            "steps_after_decision": pa.array(np.asarray(hz["steps_after_decision"], np.int64)),
            "horizon_50": pa.array(np.asarray(hz["horizon_50"], np.float64)),
            "horizon_90": pa.array(np.asarray(hz["horizon_90"], np.float64))}


#: a one-output model's decision tolerance is computed over every sequence up to this many, over
#: evenly spaced blocks of them beyond (the standard deviation of 20,000 outputs is within about 1%)
TOL_SEQUENCES = 20_000


def tolerance_block_step(n: int, block_size: int) -> int:
    """Every how many blocks the tolerance reads one: 1 (all) up to :data:`TOL_SEQUENCES` sequences."""
    n_blocks = -(-int(n) // max(1, int(block_size)))
    want = max(1, -(-TOL_SEQUENCES // max(1, int(block_size))))
    return max(1, -(-n_blocks // want))


def manifest_entry(methods: Sequence[str], output_shape: Sequence[int], batch_size: int,
                   tol: float | None = None, tol_sequences: int | None = None, n: int | None = None) -> dict:
    """What the manifest records of the horizon columns: the method and the rules."""
    regression = (int(np.prod(output_shape)) if len(output_shape) else 1) == 1
    entry = {"method": horizon_method(methods), "columns": list(COLUMNS),
             "rule": "rv.horizon with the method's stored scores: decision_step = first step from which the "
                     "prefix answer equals the final one and stays; horizon_q = steps back from the last real "
                     "step holding q of the absolute contribution mass"}
    if regression:
        if tol is None:
            entry["decision_tolerance"] = (f"5% of the standard deviation of the final outputs of each block of "
                                           f"{int(batch_size)} sequences")
        elif tol_sequences is None:
            entry["decision_tolerance"] = f"{tol:g}"
        else:
            over = ("every sequence" if n is not None and tol_sequences >= n else
                    f"{int(tol_sequences)} sequences in evenly spaced blocks")
            entry["decision_tolerance"] = (f"{tol:g}: 5% of the standard deviation of the final outputs over {over}, "
                                           f"the same for every block")
    return entry


def read(b: Any) -> pd.DataFrame | None:
    """The bundle's horizon columns as ``rv.horizon``'s frame, or None when the bundle has none
    (built before they were kept: its manifest has no ``analysis.horizons``). Raises BundleError when a value cannot be a horizon of its
    sequence (a decision step outside the sequence, a horizon longer than it)."""
    entry = b.manifest.get("analysis", {}).get("horizons")
    if not entry:
        return None
    if not isinstance(entry, dict):
        raise BundleError("Its manifest's 'analysis.horizons' is not a mapping; the bundle is damaged.")
    lazy = b.lazy()
    length = np.asarray(lazy.column("length"), dtype=np.int64)
    vals = {c: lazy.column(c) for c in COLUMNS}
    dec = np.asarray(vals["decision_step"], dtype=np.int64)
    after = np.asarray(vals["steps_after_decision"], dtype=np.int64)
    h50 = np.asarray(vals["horizon_50"], dtype=np.float64)
    h90 = np.asarray(vals["horizon_90"], dtype=np.float64)
    bad = (dec < 0) | (dec >= length) | (after != length - 1 - dec)
    for h in (h50, h90):
        bad |= ~np.isnan(h) & ((h < 1) | (h > length) | (h != np.round(h)))
    bad |= ~np.isnan(h50) & ~np.isnan(h90) & (h50 > h90)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise BundleError(f"The bundle's horizon columns hold values that no sequence of its length can have "
                          f"(row {r}: length {length[r]}, decision step {dec[r]}); the bundle is damaged.")
    method = entry.get("method") if isinstance(entry.get("method"), str) else None
    return pd.DataFrame({"seq": np.arange(len(length)), "length": length, "decision_step": dec,
                         "steps_after_decision": after, "horizon_50": h50, "horizon_90": h90,
                         "method": method if method in getattr(b, "methods", []) else "unknown"})
