"""Old path of the data readers (split by concern in issue 20; kept for one release).

Sequence data now lives in :mod:`rnnviz_core.io`: :mod:`~rnnviz_core.io.limits` (every size
limit, reading within one), :mod:`~rnnviz_core.io.dataset` (:class:`SequenceDataset`),
:mod:`~rnnviz_core.io.tables` (CSV, Parquet), :mod:`~rnnviz_core.io.columns` (long tables),
:mod:`~rnnviz_core.io.guess` (:func:`inspect_columns`), :mod:`~rnnviz_core.io.npz`,
:mod:`~rnnviz_core.io.ts`, :mod:`~rnnviz_core.io.tokens` (text and vocabularies),
:mod:`~rnnviz_core.io.classes` (class orders) and :mod:`~rnnviz_core.io.load` (:func:`load_data`);
the data-vs-model check is :mod:`rnnviz_core.model.check`. Every public name this module had is
re-exported here.
"""
from __future__ import annotations

import sys as _sys
import types as _types

import numpy as np  # noqa: F401  (names the old module had)
import pandas as pd  # noqa: F401

from .io.classes import class_order_candidates
from .io.columns import from_long_frame
from .io.dataset import MAX_CLASSES_GUESSED, SequenceDataset, from_arrays
from .io.guess import ColumnGuess, inspect_columns
from .io.limits import (DATA_EXTENSIONS, MAX_CELLS, MAX_COLUMNS, MAX_DATA_BYTES, MAX_DECODED_BYTES, MAX_FEATURES,
                        MAX_NPZ_ARRAYS, MAX_ROWS, MAX_SEQUENCES, MAX_STEPS, MAX_TABLE_CELLS, MAX_TEXT_CHARS,
                        MAX_VOCABULARY, MAX_VOCABULARY_BYTES, read_bytes)
from .io.load import load_data
from .io.tokens import load_vocabulary
from .errors import DataError  # noqa: F401  (the old module's error, as before)
from .io import limits as _io_limits
from .model.check import check_against_model

__all__ = [
    "SequenceDataset", "load_data", "check_against_model", "from_long_frame", "from_arrays",
    "ColumnGuess", "inspect_columns", "class_order_candidates", "load_vocabulary",
    "MAX_DATA_BYTES", "MAX_ROWS", "MAX_SEQUENCES", "MAX_STEPS", "MAX_FEATURES", "MAX_CELLS",
    "DATA_EXTENSIONS", "read_bytes",
]

class _OldPath(_types.ModuleType):
    """Setting a limit on this old path sets it where the readers look it up (rnnviz_core.io.limits)."""

    def __setattr__(self, name, value):
        if name in _FORWARDED:
            setattr(_io_limits, name, value)
        super().__setattr__(name, value)


_FORWARDED = {n for n in dir(_io_limits) if n.isupper()}
_sys.modules[__name__].__class__ = _OldPath
