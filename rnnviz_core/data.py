"""Sequence data in: one :class:`SequenceDataset` from CSV/Parquet (long form), NPZ or UCR/UEA ``.ts``.

Long form means one row per sequence step::

    dog_id, race_no, position, time, weight, box, days_since, track, grade, label
    d0001,  1,       3,        30.1, 31.2,   4,   0,          Sandown, 5, place (2-3)
    d0001,  2,       ...

with a sequence id column, an order column, numeric feature columns, an optional label
column (constant within a sequence) and optional extra per-sequence columns (grouping).
Columns are inferred where that is unambiguous and can always be named with keyword
arguments. Every problem raises :class:`~rnnviz_core.errors.DataError` with a message that
says what is wrong and what to do.
"""
from __future__ import annotations

import difflib
import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = [
    "SequenceDataset", "load_data", "check_against_model", "from_long_frame", "from_arrays",
    "MAX_DATA_BYTES", "MAX_ROWS", "MAX_SEQUENCES", "MAX_STEPS", "MAX_FEATURES", "MAX_CELLS",
    "DATA_EXTENSIONS",
]

#: Largest data file accepted (bytes).
MAX_DATA_BYTES = 200 * 1024 * 1024
#: Most rows (sequence steps) in a long-form table.
MAX_ROWS = 5_000_000
#: Most sequences, steps per sequence and features per step.
MAX_SEQUENCES = 200_000
MAX_STEPS = 10_000
MAX_FEATURES = 1_000
#: Most values in the padded array X (N * T * F), about 400 MB of float32.
MAX_CELLS = 100_000_000
#: File name endings :func:`load_data` reads.
DATA_EXTENSIONS = (".csv", ".parquet", ".pq", ".npz", ".ts")


@dataclass
class SequenceDataset:
    """Padded sequences with their labels and per-sequence extras.

    Attributes
    ----------
    X : np.ndarray float32 [N, T, F], zero at and past each sequence's length.
    lengths : np.ndarray int64 [N], each in 1..T.
    y : np.ndarray [N] or None: int64 class indices (classification) or float32 (regression).
    ids : np.ndarray of str [N], unique.
    groups : pandas DataFrame, one row per sequence (RangeIndex aligned with X) holding extra
        per-sequence columns usable for grouping (may have no columns).
    feature_names : list[str] of length F.
    class_names : list[str] (classification) or None; ``y`` indexes into it.
    name : where it came from (file name or demo key).
    """

    X: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None
    ids: np.ndarray
    groups: pd.DataFrame
    feature_names: list[str]
    class_names: list[str] | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.X = np.ascontiguousarray(self.X, dtype=np.float32)
        self.lengths = np.asarray(self.lengths, dtype=np.int64).reshape(-1)
        self.ids = np.asarray([str(i) for i in self.ids], dtype=object)
        self.feature_names = [str(f) for f in self.feature_names]
        if self.groups is None:
            self.groups = pd.DataFrame(index=pd.RangeIndex(len(self.lengths)))
        self.groups = self.groups.reset_index(drop=True)
        if self.X.ndim != 3:
            raise DataError(f"The sequences must form a 3-D array [sequences, steps, features], "
                            f"not shape {list(self.X.shape)}.")
        n, t, f = self.X.shape
        if n == 0:
            raise DataError("The data holds no sequences; check the file has rows.")
        if len(self.lengths) != n or len(self.ids) != n or len(self.groups) != n:
            raise DataError("The sequences, lengths, ids and group rows must all have one entry per sequence.")
        if len(self.feature_names) != f:
            raise DataError(f"There are {f} features but {len(self.feature_names)} feature names.")
        if self.lengths.min() < 1 or self.lengths.max() > t:
            raise DataError(f"Every sequence length must be between 1 and {t}.")
        if len(set(self.ids)) != n:
            dup = pd.Series(self.ids).loc[pd.Series(self.ids).duplicated()].iloc[0]
            raise DataError(f"Sequence ids must be unique, but '{dup}' appears more than once.")
        if self.y is not None:
            self.y = np.asarray(self.y).reshape(n, *np.shape(self.y)[1:])
            if self.class_names is not None:
                self.class_names = [str(c) for c in self.class_names]
                self.y = self.y.astype(np.int64)
                if len(self.y) and (self.y.min() < 0 or self.y.max() >= len(self.class_names)):
                    raise DataError("Some labels are not valid class numbers for the class names given.")
            elif np.issubdtype(self.y.dtype, np.integer):
                self.y = self.y.astype(np.int64)
            else:
                self.y = self.y.astype(np.float32)

    # ------------------------------------------------------------------ helpers
    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[2])

    @property
    def max_len(self) -> int:
        return int(self.X.shape[1])

    @property
    def task(self) -> str | None:
        """"classification", "regression" or None when there are no labels."""
        if self.y is None:
            return None
        return "classification" if self.class_names is not None or np.issubdtype(self.y.dtype, np.integer) \
            else "regression"

    @property
    def labels(self) -> np.ndarray | None:
        """Class names per sequence (classification) or the targets (regression)."""
        if self.y is None:
            return None
        if self.class_names is not None:
            return np.asarray(self.class_names, dtype=object)[self.y]
        return self.y

    def subset(self, idx: Sequence[int] | np.ndarray | slice, trim: bool = True) -> "SequenceDataset":
        """A new dataset with the sequences ``idx`` (indices, boolean mask or slice).

        With ``trim`` the step axis is cut to the longest selected sequence.
        """
        idx = np.arange(len(self))[idx] if isinstance(idx, slice) else np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        lengths = self.lengths[idx]
        t = int(lengths.max()) if trim and len(idx) else self.max_len
        return SequenceDataset(
            X=self.X[idx, :t], lengths=lengths, y=None if self.y is None else self.y[idx],
            ids=self.ids[idx], groups=self.groups.iloc[idx].reset_index(drop=True),
            feature_names=list(self.feature_names), class_names=self.class_names, name=self.name)

    def to_frame(self, id_col: str = "id", order_col: str = "step", label_col: str = "label") -> pd.DataFrame:
        """The long form: one row per valid step (id, step 1.., features, extras, label)."""
        rows = np.concatenate([np.full(l, i) for i, l in enumerate(self.lengths)])
        steps = np.concatenate([np.arange(1, l + 1) for l in self.lengths])
        df = pd.DataFrame({id_col: self.ids[rows], order_col: steps})
        feats = self.X[rows, steps - 1]
        for j, f in enumerate(self.feature_names):
            df[f] = feats[:, j]
        for c in self.groups.columns:
            df[c] = self.groups[c].to_numpy()[rows]
        if self.y is not None:
            df[label_col] = self.labels[rows]
        return df


# ============================================================================ construction
def from_arrays(X: np.ndarray, lengths: Sequence[int] | None = None, y: Any = None,
                ids: Sequence[Any] | None = None, groups: pd.DataFrame | None = None,
                feature_names: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                name: str = "", missing: str = "error") -> SequenceDataset:
    """Build a validated dataset from arrays (what the NPZ and ``.ts`` loaders use).

    ``y`` may hold class indices (with ``class_names``), strings (mapped to sorted class names,
    or to ``class_names`` when given) or floats (regression).
    """
    X = np.asarray(X)
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise DataError(f"X must have 3 dimensions [sequences, steps, features]; it has shape {list(X.shape)}.")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError("The data holds no sequences (or no steps); check the file.")
    if not np.issubdtype(X.dtype, np.number) and X.dtype != bool:
        raise DataError("X must hold numbers; it holds text or objects. Convert the features to numbers first.")
    _check_size(*X.shape)
    n, t, f = X.shape
    if lengths is None:
        lengths = np.full(n, t, dtype=np.int64)
    lengths = np.asarray(lengths).reshape(-1)
    if len(lengths) != n:
        raise DataError(f"There are {n} sequences but {len(lengths)} lengths.")
    if not np.issubdtype(lengths.dtype, np.integer):
        if not np.issubdtype(lengths.dtype, np.number) or not np.all(np.equal(np.mod(lengths, 1), 0)):
            raise DataError("Sequence lengths must be whole numbers.")
    lengths = lengths.astype(np.int64)
    if lengths.min() < 1 or lengths.max() > t:
        raise DataError(f"Every sequence length must be between 1 and the number of steps ({t}).")
    ids = np.asarray([str(i) for i in (ids if ids is not None else range(n))], dtype=object)
    if len(ids) != n:
        raise DataError(f"There are {n} sequences but {len(ids)} ids.")
    feature_names = list(feature_names) if feature_names is not None else [f"feature {j}" for j in range(f)]
    X = X.astype(np.float32)
    valid = np.arange(t)[None, :] < lengths[:, None]                     # (N, T)
    X[~valid] = 0.0
    X, lengths, keep = _handle_missing(X, lengths, valid, ids, feature_names, missing)
    ids = ids[keep]
    if groups is not None:
        groups = groups.reset_index(drop=True).iloc[keep].reset_index(drop=True)
    y_arr, class_names = _encode_labels(None if y is None else np.asarray(y)[keep], class_names)
    return SequenceDataset(X=X, lengths=lengths, y=y_arr, ids=ids, groups=groups,
                           feature_names=feature_names, class_names=class_names, name=name)


def _check_size(n: int, t: int, f: int) -> None:
    if n > MAX_SEQUENCES:
        raise DataError(f"The data has {n:,} sequences; rnnviz handles at most {MAX_SEQUENCES:,}. "
                        f"Upload a sample of them.")
    if t > MAX_STEPS:
        raise DataError(f"The longest sequence has {t:,} steps; rnnviz handles at most {MAX_STEPS:,}. "
                        f"Shorten the sequences (for example keep the last {MAX_STEPS:,} steps).")
    if f > MAX_FEATURES:
        raise DataError(f"The data has {f:,} features per step; rnnviz handles at most {MAX_FEATURES:,}.")
    if n * t * f > MAX_CELLS:
        raise DataError(f"The padded data would hold {n * t * f:,} values; rnnviz handles at most "
                        f"{MAX_CELLS:,}. Upload fewer or shorter sequences.")


def _handle_missing(X, lengths, valid, ids, feature_names, missing):
    """Apply the NaN/inf policy to the valid steps of X. Returns (X, lengths, kept sequence index)."""
    if missing not in ("error", "fill", "drop"):
        raise DataError("The missing-value option must be 'error', 'fill' or 'drop'.")
    bad = ~np.isfinite(X) & valid[:, :, None]                            # (N, T, F)
    keep = np.arange(X.shape[0])
    if not bad.any():
        return X, lengths, keep
    if missing == "error":
        seq, step, feat = np.nonzero(bad)
        where = "; ".join(f"sequence '{ids[s]}' step {st + 1} column '{feature_names[c]}'"
                          for s, st, c in list(zip(seq, step, feat))[:3])
        more = f" and {len(seq) - 3} more" if len(seq) > 3 else ""
        raise DataError(f"The data has {len(seq)} missing or infinite values ({where}{more}). Fix them in "
                        f"the file, or choose to fill them (carry the last value forward) or drop those sequences.")
    if missing == "drop":
        keep = np.flatnonzero(~bad.any(axis=(1, 2)))
        if len(keep) == 0:
            raise DataError("Every sequence has a missing or infinite value, so dropping them leaves nothing; "
                            "choose to fill them instead.")
        return X[keep], lengths[keep], keep
    # fill: carry the last finite value forward within each sequence, then back-fill, else 0
    X = X.copy()
    X[bad] = np.nan
    for s in np.flatnonzero(bad.any(axis=(1, 2))):
        L = int(lengths[s])
        X[s, :L] = pd.DataFrame(X[s, :L]).ffill().bfill().fillna(0.0).to_numpy(np.float32)
    return X, lengths, keep


def _encode_labels(y: np.ndarray | None, class_names: Sequence[str] | None):
    """Map labels to (y array, class names). Strings become class indices."""
    if y is None:
        return None, None
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError("Labels must be one value per sequence.")
    if y.dtype.kind in "OUS":
        s = pd.Series(y)
        if s.isna().any():
            raise DataError("Some sequences have no label; fill them in or remove the label column.")
        labels = s.astype(str).to_numpy()
        if class_names is None:
            nums = pd.to_numeric(pd.Series(labels), errors="coerce")
            if not nums.isna().any() and np.all(np.mod(nums, 1) == 0):
                uniq = sorted(set(nums.astype(np.int64)))
                class_names = [str(u) for u in uniq]
                labels = nums.astype(np.int64).astype(str).to_numpy()
            else:
                class_names = sorted(set(labels))
        return _map_names(labels, class_names), list(class_names)
    if y.dtype == bool:
        y = y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)):
            raise DataError("Some labels are missing or infinite; fill them in or remove those sequences.")
        if class_names is None:
            return y.astype(np.float32), None      # regression targets
        if not np.all(np.mod(y, 1) == 0):
            raise DataError("Labels must be whole class numbers for a classification model.")
        y = y.astype(np.int64)
    if class_names is not None:
        if y.min() < 0 or y.max() >= len(class_names):
            raise DataError(f"Label numbers must run from 0 to {len(class_names) - 1} (one per class); "
                            f"found {int(y.min())} to {int(y.max())}.")
        return y.astype(np.int64), list(class_names)
    uniq = np.unique(y)
    if uniq.min() >= 0 and len(uniq) <= max(int(uniq.max()) + 1, 1) and int(uniq.max()) < 1000:
        return y.astype(np.int64), [str(i) for i in range(int(uniq.max()) + 1)]
    return _map_names(y.astype(str), [str(u) for u in uniq]), [str(u) for u in uniq]


def _map_names(labels: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    index = {str(c): i for i, c in enumerate(class_names)}
    unknown = sorted(set(map(str, labels)) - set(index))
    if unknown:
        raise DataError(f"Some labels are not among the classes {list(class_names)}: "
                        f"{', '.join(repr(u) for u in unknown[:5])}. Check the label column matches the model.")
    return np.asarray([index[str(l)] for l in labels], dtype=np.int64)
