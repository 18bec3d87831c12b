"""Sequence data in: one :class:`SequenceDataset` from CSV/Parquet (long form), NPZ or UCR/UEA ``.ts``.

Long form means one row per sequence step::

    dog_id, race_no, position, time, weight, box, days_since, track, grade, label
    d0001,  1,       3,        30.1, 31.2,   4,   0,          Sandown, 5, place (2-3)
    d0001,  2,       ...

with a sequence id column, an order column, numeric feature columns, an optional label
column (constant within a sequence) and optional extra per-sequence columns (grouping).
Columns are inferred where that is unambiguous and can always be named with keyword
arguments (:func:`inspect_columns` reports the guesses and the candidates for each role
without refusing anything). Every problem raises :class:`~rnnviz_core.errors.DataError` with a
message that says what is wrong and what to do, and a ``code``/``field`` naming the choice to
change.

Also read: token data (a text column plus a vocabulary, or integer ids: ``X`` int64 [N, T]),
the class order a file declares (:func:`class_order_candidates`), and untrusted files within
bounded memory: sizes are refused from counts (rows, columns, a case's commas, an array's
``.npy`` header, Parquet metadata) before anything is expanded.
"""
from __future__ import annotations

import difflib
import io
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = [
    "SequenceDataset", "load_data", "check_against_model", "from_long_frame", "from_arrays",
    "ColumnGuess", "inspect_columns", "class_order_candidates", "load_vocabulary",
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
#: Most columns in a CSV/Parquet table (checked from its header, before anything is parsed).
MAX_COLUMNS = MAX_FEATURES + 100
#: Most values (rows x columns) in a CSV/Parquet table, checked before it is parsed.
MAX_TABLE_CELLS = 50_000_000
#: Most bytes a Parquet table or an NPZ archive may unpack to (an NPZ at most 2 x MAX_DATA_BYTES).
MAX_DECODED_BYTES = 512 * 1024 * 1024
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
    class_names : list[str] (classification) or None; ``y`` indexes into it. Every label string
        of the file is kept here, so any other class order can be applied
        (:meth:`with_class_order`, :func:`class_order_candidates`).
    name : where it came from (file name or demo key).
    declared_classes : list[str] or None: the class order the file itself declares (the ``.ts``
        ``@classLabel`` line, an NPZ ``class_names`` array).
    vocabulary : list[str] or None: for token data, the token of each id (``vocabulary[i]`` is
        id ``i``).

    Token data (:attr:`is_tokens`) has ``X`` int64 [N, T] of token ids, one feature named
    ``"token"``; steps past a sequence's length hold :attr:`pad_id`.
    """

    X: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None
    ids: np.ndarray
    groups: pd.DataFrame
    feature_names: list[str]
    class_names: list[str] | None = None
    name: str = ""
    declared_classes: list[str] | None = None
    vocabulary: list[str] | None = None

    def __post_init__(self) -> None:
        X = np.asarray(self.X)
        if X.ndim == 2 and (np.issubdtype(X.dtype, np.integer) or self.vocabulary is not None):
            self.X = np.ascontiguousarray(X, dtype=np.int64)                  # token ids (N, T)
        else:
            self.X = np.ascontiguousarray(X, dtype=np.float32)
        if self.vocabulary is not None:
            self.vocabulary = [str(v) for v in self.vocabulary]
        if self.declared_classes is not None:
            self.declared_classes = [str(c) for c in self.declared_classes]
        self.lengths = np.asarray(self.lengths, dtype=np.int64).reshape(-1)
        self.ids = np.asarray([str(i) for i in self.ids], dtype=object)
        self.feature_names = [str(f) for f in self.feature_names]
        if self.groups is None:
            self.groups = pd.DataFrame(index=pd.RangeIndex(len(self.lengths)))
        self.groups = self.groups.reset_index(drop=True)
        if self.is_tokens:
            n, t = self.X.shape
            f = 1
            if self.vocabulary is not None and self.X.size and \
                    (self.X.min() < 0 or self.X.max() >= len(self.vocabulary)):
                raise DataError(f"Token ids must run from 0 to {len(self.vocabulary) - 1} (one per word of "
                                f"the vocabulary).", code="bad_token_id", field="vocabulary")
        elif self.X.ndim != 3:
            raise DataError(f"The sequences must form a 3-D array [sequences, steps, features], "
                            f"not shape {list(self.X.shape)}.")
        else:
            n, t, f = self.X.shape
        if n == 0:
            raise DataError("The data holds no sequences; check the file has rows.", code='no_sequences', field=None)
        if len(self.lengths) != n or len(self.ids) != n or len(self.groups) != n:
            raise DataError("The sequences, lengths, ids and group rows must all have one entry per sequence.", code='shape', field=None)
        if len(self.feature_names) != f:
            raise DataError(f"There are {f} features but {len(self.feature_names)} feature names.", code='shape', field=None)
        if self.lengths.min() < 1 or self.lengths.max() > t:
            raise DataError(f"Every sequence length must be between 1 and {t}.", code='lengths', field=None)
        if len(set(self.ids)) != n:
            dup = pd.Series(self.ids).loc[pd.Series(self.ids).duplicated()].iloc[0]
            raise DataError(f"Sequence ids must be unique, but '{dup}' appears more than once.", code='duplicate_id', field='id')
        if self.y is not None:
            self.y = np.asarray(self.y).reshape(n, *np.shape(self.y)[1:])
            if self.class_names is not None:
                self.class_names = [str(c) for c in self.class_names]
                self.y = self.y.astype(np.int64)
                if len(self.y) and (self.y.min() < 0 or self.y.max() >= len(self.class_names)):
                    raise DataError("Some labels are not valid class numbers for the class names given.", code='bad_labels', field='label')
            elif np.issubdtype(self.y.dtype, np.integer):
                self.y = self.y.astype(np.int64)
            else:
                self.y = self.y.astype(np.float32)

    # ------------------------------------------------------------------ helpers
    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def is_tokens(self) -> bool:
        """True for token data: ``X`` holds int64 token ids [N, T]."""
        return self.X.ndim == 2

    @property
    def pad_id(self) -> int:
        """The id written past each sequence's length: the vocabulary's ``<pad>`` if it has one, else 0."""
        return _special_id(self.vocabulary, _PAD_TOKENS) if self.vocabulary else 0

    @property
    def n_features(self) -> int:
        return 1 if self.is_tokens else int(self.X.shape[2])

    def tokens(self, i: int) -> list[str]:
        """The tokens of sequence ``i`` (its valid steps), or their ids as text without a vocabulary."""
        ids = self.X[i, : int(self.lengths[i])] if self.is_tokens else self.X[i, : int(self.lengths[i]), 0]
        if self.vocabulary is None:
            return [str(int(v)) for v in ids]
        return [self.vocabulary[int(v)] for v in ids]

    def with_class_order(self, class_names: Sequence[str]) -> "SequenceDataset":
        """The same data with ``y`` re-indexed into ``class_names`` (matched by name).

        Every label present in the data must be among ``class_names``; extra names (classes the
        data does not hold) are allowed.
        """
        if self.class_names is None or self.y is None:
            raise DataError("The data has no class labels, so there is no class order to choose.",
                            code="no_classes", field="class_order")
        names = [str(c) for c in class_names]
        if len(set(names)) != len(names):
            dup = pd.Series(names)[pd.Series(names).duplicated()].iloc[0]
            raise DataError(f"The class '{dup}' is named twice in the class order; name each class once.",
                            code="bad_class_order", field="class_order")
        present = [self.class_names[i] for i in np.unique(self.y)]
        unknown = [p for p in present if p not in names]
        if unknown:
            raise DataError(f"The class order leaves out labels the data has "
                            f"({', '.join(map(repr, unknown[:5]))}); name every class.",
                            code="bad_class_order", field="class_order")
        remap = np.array([names.index(c) if c in names else -1 for c in self.class_names], dtype=np.int64)
        return replace(self, y=remap[self.y], class_names=names)

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
        return replace(self, X=self.X[idx, :t], lengths=lengths, y=None if self.y is None else self.y[idx],
                       ids=self.ids[idx], groups=self.groups.iloc[idx].reset_index(drop=True),
                       feature_names=list(self.feature_names))

    def to_frame(self, id_col: str = "id", order_col: str = "step", label_col: str = "label") -> pd.DataFrame:
        """The long form: one row per valid step (id, step 1.., features, extras, label)."""
        rows = np.concatenate([np.full(l, i) for i, l in enumerate(self.lengths)])
        steps = np.concatenate([np.arange(1, l + 1) for l in self.lengths])
        df = pd.DataFrame({id_col: self.ids[rows], order_col: steps})
        feats = self.X[rows, steps - 1]
        if self.is_tokens:                                              # the word, else its id
            if self.vocabulary is not None:
                df["token"] = np.asarray(self.vocabulary, dtype=object)[feats]
            else:
                df["token_id"] = feats
        else:
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
                name: str = "", missing: str = "error", task: str | None = None,
                _copy: bool = True) -> SequenceDataset:
    """Build a validated dataset from arrays (what the NPZ and ``.ts`` loaders use).

    ``y`` may hold class indices (with ``class_names``), strings (mapped to sorted class names,
    or to ``class_names`` when given) or floats (regression). ``X`` is copied (the caller's
    array is left untouched) unless the private ``_copy=False`` says the loader owns it.
    """
    X = np.asarray(X)
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise DataError(f"X must have 3 dimensions [sequences, steps, features]; it has shape {list(X.shape)}.", code='shape', field=None)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError("The data holds no sequences (or no steps); check the file.", code='no_sequences', field=None)
    if not np.issubdtype(X.dtype, np.number) and X.dtype != bool:
        raise DataError("X must hold numbers; it holds text or objects. Convert the features to numbers first.", code='not_numbers', field=None)
    _check_size(*X.shape)
    n, t, f = X.shape
    if lengths is None:
        lengths = np.full(n, t, dtype=np.int64)
    lengths = np.asarray(lengths).reshape(-1)
    if len(lengths) != n:
        raise DataError(f"There are {n} sequences but {len(lengths)} lengths.", code='shape', field=None)
    if not np.issubdtype(lengths.dtype, np.integer):
        if not np.issubdtype(lengths.dtype, np.number) or not np.all(np.equal(np.mod(lengths, 1), 0)):
            raise DataError("Sequence lengths must be whole numbers.", code='lengths', field=None)
    lengths = lengths.astype(np.int64)
    if lengths.min() < 1 or lengths.max() > t:
        raise DataError(f"Every sequence length must be between 1 and the number of steps ({t}).", code='lengths', field=None)
    ids = np.asarray([str(i) for i in (ids if ids is not None else range(n))], dtype=object)
    if len(ids) != n:
        raise DataError(f"There are {n} sequences but {len(ids)} ids.", code='shape', field=None)
    feature_names = list(feature_names) if feature_names is not None else [f"feature {j}" for j in range(f)]
    X = X.astype(np.float32, copy=_copy)
    if not X.flags.c_contiguous or not X.flags.writeable:
        X = np.ascontiguousarray(X) if X.flags.writeable else X.copy()
    valid = np.arange(t)[None, :] < lengths[:, None]                     # (N, T)
    X[~valid] = 0.0
    X, lengths, keep = _handle_missing(X, lengths, valid, ids, feature_names, missing)
    ids = ids[keep]
    if groups is not None:
        groups = groups.reset_index(drop=True).iloc[keep].reset_index(drop=True)
    y_arr, class_names = _encode_labels(None if y is None else np.asarray(y)[keep], class_names, task)
    return SequenceDataset(X=X, lengths=lengths, y=y_arr, ids=ids, groups=groups,
                           feature_names=feature_names, class_names=class_names, name=name)


def _check_size(n: int, t: int, f: int) -> None:
    if n > MAX_SEQUENCES:
        raise DataError(f"The data has {n:,} sequences; rnnviz handles at most {MAX_SEQUENCES:,}. "
                        f"Upload a sample of them.", code='too_big', field=None)
    if t > MAX_STEPS:
        raise DataError(f"The longest sequence has {t:,} steps; rnnviz handles at most {MAX_STEPS:,}. "
                        f"Shorten the sequences (for example keep the last {MAX_STEPS:,} steps).", code='too_big', field=None)
    if f > MAX_FEATURES:
        raise DataError(f"The data has {f:,} features per step; rnnviz handles at most {MAX_FEATURES:,}.", code='too_big', field='features')
    if n * t * f > MAX_CELLS:
        raise DataError(f"The padded data would hold {n * t * f:,} values; rnnviz handles at most "
                        f"{MAX_CELLS:,}. Upload fewer or shorter sequences.", code='too_big', field=None)


def _handle_missing(X, lengths, valid, ids, feature_names, missing):
    """Apply the NaN/inf policy to the valid steps of X. Returns (X, lengths, kept sequence index).

    Works through the sequences in blocks so no [N, T, F] temporary is made.
    """
    if missing not in ("error", "fill", "drop"):
        raise DataError("The missing-value option must be 'error', 'fill' or 'drop'.", code='bad_option', field='missing')
    n = X.shape[0]
    step = max(1, 4_000_000 // max(1, X.shape[1] * X.shape[2]))
    seq_bad = np.zeros(n, dtype=bool)
    for a in range(0, n, step):
        nf = ~np.isfinite(X[a:a + step])                                 # (b, T, F)
        nf &= valid[a:a + step, :, None]
        seq_bad[a:a + step] = nf.any(axis=(1, 2))
    keep = np.arange(n)
    if not seq_bad.any():
        return X, lengths, keep
    bad_seqs = np.flatnonzero(seq_bad)
    if missing == "error":
        where, count = [], 0
        for s in bad_seqs:
            st, c = np.nonzero(~np.isfinite(X[s, : int(lengths[s])]))
            count += len(st)
            if len(where) < 3:
                where += [f"sequence '{ids[s]}' step {a + 1} column '{feature_names[b]}'"
                          for a, b in zip(st[:3], c[:3])]
        more = f" and {count - 3} more" if count > 3 else ""
        raise DataError(f"The data has {count} missing or infinite values ({'; '.join(where[:3])}{more}). Fix them in "
                        f"the file, or choose to fill them (carry the last value forward) or drop those sequences.",
                        code='missing_values', field='missing')
    if missing == "drop":
        keep = np.flatnonzero(~seq_bad)
        if len(keep) == 0:
            raise DataError("Every sequence has a missing or infinite value, so dropping them leaves nothing; "
                            "choose to fill them instead.", code='missing_values', field='missing')
        t = int(lengths[keep].max())
        return X[keep, :t], lengths[keep], keep
    # fill: carry the last finite value forward within each sequence, then back-fill, else 0
    for s in bad_seqs:
        L = int(lengths[s])
        seq = X[s, :L]
        seq[~np.isfinite(seq)] = np.nan
        X[s, :L] = pd.DataFrame(seq).ffill().bfill().fillna(0.0).to_numpy(np.float32)
    return X, lengths, keep


#: Whole-number labels with more distinct values than this are read as regression targets.
MAX_CLASSES_GUESSED = 50


def _encode_labels(y: np.ndarray | None, class_names: Sequence[str] | None, task: str | None = None):
    """Map labels to (y array, class names or None).

    Text becomes class indices (in ``class_names`` order when given, else sorted). Whole numbers
    are classes (0..K-1 used as indices; other values become names) unless ``task="regression"``
    or they have more than ``MAX_CLASSES_GUESSED`` distinct values; other numbers are
    regression targets.
    """
    if y is None:
        return None, None
    if task not in (None, "classification", "regression"):
        raise DataError("The task must be 'classification' or 'regression'.", code='bad_option', field='label')
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError("Labels must be one value per sequence.", code='bad_labels', field='label')
    if y.dtype.kind in "OUS":
        s = pd.Series(y)
        if s.isna().any():
            raise DataError("Some sequences have no label; fill them in or remove the label column.", code='missing_label', field='label')
        lcodes, luniq = pd.factorize(s)                     # text -> numbers once per distinct label
        nums = pd.Series(pd.to_numeric(pd.Series(np.asarray(luniq, dtype=object)), errors="coerce")
                         .to_numpy()[lcodes])
        if not nums.isna().any() and (task == "regression" or (class_names is None and task is None
                                                              and not np.all(np.mod(nums, 1) == 0))):
            y = nums.to_numpy(np.float64)                 # numbers stored as text
        else:
            if task == "regression":
                raise DataError("The labels are text, so they cannot be regression targets; choose the "
                                "column with the numbers to predict.", code='task', field='label')
            labels = s.astype(str).to_numpy()
            if class_names is None:
                if not nums.isna().any():
                    uniq = sorted(set(nums.astype(np.int64)))
                    class_names = [str(u) for u in uniq]
                    labels = nums.astype(np.int64).astype(str).to_numpy()
                else:
                    class_names = sorted(set(labels))
            return _map_names(labels, class_names), list(class_names)
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.all(np.isfinite(y.astype(np.float64))):
        raise DataError("Some labels are missing or infinite; fill them in or remove those sequences.", code='missing_label', field='label')
    whole = bool(np.all(np.mod(y, 1) == 0))
    if task == "regression" or (task is None and class_names is None and
                                (not whole or len(np.unique(y)) > MAX_CLASSES_GUESSED)):
        if class_names is not None:
            raise DataError("Class names were given but the labels are read as regression targets.", code='task', field='label')
        return y.astype(np.float32), None
    if not whole:
        raise DataError("Labels must be whole class numbers (or class names) for a classification model.", code='task', field='label')
    y = y.astype(np.int64)
    if class_names is not None:
        names = [str(c) for c in class_names]
        as_text = y.astype(str)
        if all(n.lstrip("-").isdigit() for n in names) and set(as_text) <= set(names):
            return _map_names(as_text, names), names        # numbered classes: match by name
        if y.min() < 0 or y.max() >= len(names):
            raise DataError(f"Label numbers must run from 0 to {len(names) - 1} (one per class: "
                            f"{', '.join(names[:10])}); found {int(y.min())} to {int(y.max())}.", code='bad_labels', field='class_order')
        return y, names
    uniq = np.unique(y)
    if uniq.min() == 0:
        return y, [str(i) for i in range(int(uniq.max()) + 1)]
    names = [str(u) for u in uniq]
    return _map_names(y.astype(str), names), names


def _map_names(labels: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    index = {str(c): i for i, c in enumerate(class_names)}
    unknown = sorted(set(map(str, labels)) - set(index))
    if unknown:
        raise DataError(f"Some labels are not among the classes {list(class_names)}: "
                        f"{', '.join(repr(u) for u in unknown[:5])}. Check the label column matches the model.", code='unknown_labels', field='class_order')
    return np.asarray([index[str(l)] for l in labels], dtype=np.int64)


# ================================================================================= loading
def load_data(path_or_bytes: str | os.PathLike | bytes | BinaryIO, name: str | None = None, *,
              id_col: str | None = None, order_col: str | None = None, label_col: str | None = None,
              feature_cols: Sequence[str] | None = None, group_cols: Sequence[str] | None = None,
              class_names: Sequence[str] | None = None, missing: str = "error",
              task: str | None = None, text_col: str | None = None,
              vocabulary: Sequence[str] | None = None) -> SequenceDataset:
    """Read a data file into a validated :class:`SequenceDataset`.

    Parameters
    ----------
    path_or_bytes : a path, the file's bytes or a binary file-like object (a Streamlit upload).
    name : original file name (its ending and, in messages, its name).
    id_col, order_col, label_col, feature_cols, group_cols : long-form (CSV/Parquet) columns;
        inferred when not given (see :func:`from_long_frame`). ``label_col=""`` means no labels.
    class_names : class order to map text labels onto (normally the model's ``class_names``).
    missing : "error" (default), "fill" (carry the last value forward within the sequence) or
        "drop" (remove sequences with a missing or infinite feature value).
    task : "classification" or "regression" to say how to read the labels; None guesses (text and
        up to ``MAX_CLASSES_GUESSED`` whole numbers are classes, other numbers regression targets).
    text_col, vocabulary : token data for a model with an embedding layer. With a
        ``vocabulary`` (``vocabulary[i]`` is token id ``i``: the model's ``model.vocabulary``, or
        :func:`load_vocabulary` of a ``.json``/``.txt`` file), a table with a text column
        (``text_col``, else one named like ``text``/``review``/``sentence`` or holding words
        separated by spaces) gives one sequence per row, its words split on whitespace (lower-cased
        when the vocabulary has no capital letters); a long-form table with one whole-number
        feature column, or an NPZ with ``X`` int [N, T], gives the ids as they are. Words not in the
        vocabulary become its ``<unk>`` token (or ``[UNK]``, ``<oov>``) when it has one, else the
        file is refused naming a few of them. The result has ``X`` int64 [N, T]; steps past a
        sequence's length hold :attr:`SequenceDataset.pad_id` (the ``<pad>`` token's id, else 0).

    Formats (decided by content; the ending must be one of ``DATA_EXTENSIONS``): CSV and
    Parquet long form, NPZ (``X`` [N, T, F], optional ``lengths``, ``y``, ``ids``,
    ``class_names``, ``feature_names`` and any other [N] arrays as group columns; read with
    ``allow_pickle=False``), and the UCR/UEA ``.ts`` format.
    """
    data, name, label, kind = _open_data(path_or_bytes, name)
    long_kw = dict(id_col=id_col, order_col=order_col, label_col=label_col, feature_cols=feature_cols,
                   group_cols=group_cols, class_names=class_names, missing=missing, name=name or "", task=task)
    vocab = None if vocabulary is None else _check_vocabulary(vocabulary)
    if kind == "npz":
        ds = _load_npz(data, label, name or "", class_names, missing, task)
        return ds if vocab is None else _as_tokens(ds, vocab, label)
    if kind == "ts":
        return _load_ts(data, label, name or "", class_names, missing, task)
    df = _read_table(data, kind, label)
    del data
    df.columns = [str(c).strip() for c in df.columns]
    if text_col is None and vocab is not None and feature_cols is None:
        found = [c for c in _text_columns(df) if c not in (id_col, label_col)]
        text_col = found[0] if len(found) == 1 else None
        if len(found) > 1:
            raise DataError(f"Several columns could be the text ({', '.join(found)}); say which one with "
                            f"text_col=...",
                            code="ambiguous_column", field="text")
    if vocab is not None and not text_col and feature_cols is None:
        words = [c for c in df.columns if re.fullmatch(r"(token|word)s?", c, re.I)
                 and not pd.api.types.is_numeric_dtype(df[c]) and c not in (id_col, label_col)]
        if len(words) == 1:                                              # long form, one word per row
            c = words[0]
            where = [f"row {i + 2}" for i in range(len(df))]
            col = df[c].fillna("").astype(str)
            ids, _ = _encode_tokens(col.str.lower() if _lowercase(vocab) else col, vocab, label, where, single=True)
            df[c] = ids[:, 0]
    if text_col:
        if vocab is None:
            raise _vocabulary_needed(label, text_col)
        return _from_text_frame(df, text_col, vocab, id_col=id_col, label_col=label_col, group_cols=group_cols,
                                class_names=class_names, name=name or "", task=task, label=label)
    try:
        ds = from_long_frame(df, **long_kw)
    except DataError as e:
        texts = _text_columns(df)
        if vocab is None and texts and e.code in ("unknown_column", "no_features", "text_feature"):
            raise _vocabulary_needed(label, texts[0]) from None
        raise
    return ds if vocab is None else _as_tokens(ds, vocab, label)


def _open_data(path_or_bytes, name) -> tuple[bytes, str | None, str, str]:
    """(content, file name, how messages name the file, kind: csv/parquet/npz/ts)."""
    data, name = read_bytes(path_or_bytes, name, MAX_DATA_BYTES, DataError, "data")
    label = f"'{name}'" if name else "The data file"
    ext = Path(name).suffix.lower() if name else ""
    if name and ext not in DATA_EXTENSIONS:
        raise DataError(f"{label} has the ending '{ext or '(none)'}', which rnnviz does not read; "
                        f"use a .csv, .parquet, .npz or .ts file.", code="file_type", field="file")
    if len(data) == 0:
        raise DataError(f"{label} is empty; upload the data file again.", code="empty_file", field="file")
    kind = _sniff_data(data, ext)
    if kind == "unknown":
        raise DataError(f"{label} is not a CSV, Parquet, NPZ or .ts data file rnnviz can read.",
                        code="unreadable", field="file")
    return data, name, label, kind


def _too_big(msg: str) -> DataError:
    return DataError(msg, code="too_big", field="file")


def _table_limits(label: str, rows: int, cols: int, more: bool = False) -> None:
    """Refuse a table by its row and column counts, before any per-column work."""
    if cols > MAX_COLUMNS:
        raise _too_big(f"{label} has {cols:,} columns; rnnviz reads at most {MAX_COLUMNS:,} (up to "
                       f"{MAX_FEATURES:,} features). Keep only the columns the model needs.")
    if rows > MAX_ROWS:
        raise _too_big(f"{label} has {'more than ' if more else ''}{MAX_ROWS if more else rows:,} rows; rnnviz "
                       f"handles at most {MAX_ROWS:,}. Upload a sample of the sequences.")
    if rows * cols > MAX_TABLE_CELLS:
        raise _too_big(f"{label} has {rows:,} rows of {cols:,} columns ({rows * cols:,} values); rnnviz reads "
                       f"at most {MAX_TABLE_CELLS:,}. Upload fewer rows or leave out unused columns.")


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


#: Bytes scanned per step when counting lines: ``bytes.count`` holds the GIL, so a 200 MB file
#: counted in one call stalls every other session's script for ~0.4 s; 4 MB steps take a few ms.
_COUNT_CHUNK = 4 << 20


def _count_lines(data: bytes) -> int:
    """Lines, with line breaks of every kind (\\n, \\r\\n and a lone \\r) counted once each.

    Counted in ``_COUNT_CHUNK`` steps so other threads (other sessions' reruns) get the GIL in
    between; a ``\\r\\n`` split across two steps is counted once."""
    breaks = 0
    for i in range(0, len(data), _COUNT_CHUNK):
        j = min(i + _COUNT_CHUNK, len(data))
        breaks += data.count(b"\n", i, j)
        if data.find(b"\r", i, j) >= 0:                                   # \r or \r\n endings: two more scans
            breaks += data.count(b"\r", i, j) - data.count(b"\r\n", i, j)
            if data[j - 1:j] == b"\r" and data[j:j + 1] == b"\n":
                breaks -= 1                                              # its \n is counted in the next step
    return breaks + (0 if data.endswith((b"\n", b"\r")) else 1)


def _read_table(data: bytes, kind: str, label: str) -> pd.DataFrame:
    """A CSV or Parquet table, with its size refused from counts before it is parsed."""
    if kind == "parquet":
        return _read_parquet(data, label)
    if b"\x00" in data[:4096]:
        raise DataError(f"{label} is not a text CSV file (it holds binary data); export it as CSV again.",
                        code="unreadable", field="file")
    rows = _count_lines(data) - 1                                     # minus the header
    if rows > MAX_ROWS:
        _table_limits(label, rows, 1, more=True)
    m = _LINE_BREAK.search(data)
    first = data[: m.start() if m else len(data)].lstrip(b"\xef\xbb\xbf")
    sep = b"," if b"," in first else next((d for d in (b";", b"\t", b"|") if d in first), b",")
    _table_limits(label, rows, first.count(sep) + 1)                   # quoted separators only over-count
    for enc in (None, "latin-1"):                                      # None: UTF-8 read as bytes (BOM skipped)
        try:
            return pd.read_csv(io.BytesIO(data), sep=sep.decode(), low_memory=True, encoding=enc)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
            raise DataError(f"{label} could not be read as CSV ({' '.join(str(e).split())[:150]}). "
                            f"Check it has one header row and the same number of commas on every line.",
                            code="unreadable", field="file") from None
    raise DataError(f"{label} is not a text file.", code="unreadable", field="file")  # pragma: no cover


def _arrow_width(t) -> int:
    """Bytes per row of an Arrow type once decoded (16 for text and other variable-width types)."""
    try:
        return max(1, int(t.bit_width) // 8)
    except ValueError:
        return 16


def _parquet_index(schema, frames: list[pd.DataFrame], rows: int) -> pd.Index | None:
    """The index pandas would give the whole table (None: the default 0..rows-1), from batches."""
    meta = (schema.pandas_metadata or {}).get("index_columns") or []
    if len(meta) == 1 and isinstance(meta[0], dict) and meta[0].get("kind") == "range":
        r = meta[0]
        idx = pd.RangeIndex(r.get("start", 0), r.get("stop", rows), r.get("step", 1), name=r.get("name"))
        return idx if len(idx) == rows else None
    if not meta or all(isinstance(f.index, pd.RangeIndex) for f in frames):
        return None
    return frames[0].index.append([f.index for f in frames[1:]]).set_names(frames[0].index.names)


#: Values per Parquet batch (rows x columns) read and turned into pandas at a time.
_PARQUET_BATCH_VALUES = 4_000_000


def _read_parquet(data: bytes, label: str) -> pd.DataFrame:
    """Parquet: counts and decoded size from the metadata first, then read in batches, measured."""
    unreadable = DataError(f"{label} is not a readable Parquet file; it may be damaged. Export it again.",
                           code="unreadable", field="file")
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(io.BytesIO(data))
        meta = pf.metadata
        rows, cols = int(meta.num_rows), int(meta.num_columns)
        schema = pf.schema_arrow
        stored = sum(int(meta.row_group(i).total_byte_size) for i in range(meta.num_row_groups))
        # decoded size: fixed-width columns take rows x width whatever their encoding (a column of
        # zeros encodes to almost nothing); text takes a pointer per row plus its stored bytes
        width = sum(_arrow_width(f.type) for f in schema)
        decoded = rows * width + stored
    except Exception:
        raise unreadable from None
    _table_limits(label, rows, cols)
    if decoded > MAX_DECODED_BYTES:
        raise _too_big(f"{label} unpacks to {decoded / 2**20:,.0f} MB; rnnviz reads at most "
                       f"{MAX_DECODED_BYTES // 2**20:,} MB of table. Upload fewer rows or columns.")
    text_cols = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    batch_rows = max(1024, _PARQUET_BATCH_VALUES // max(cols, 1))
    # Each batch is turned into pandas columns as it comes and then dropped: memory stays about
    # one table, and no single conversion holds the GIL for long (one call on a whole 5M-row
    # table blocks every other session's script for over a second).
    frames: list[pd.DataFrame] = []
    seen, nbytes = 0, 0
    try:
        pf = pq.ParquetFile(io.BytesIO(data), read_dictionary=text_cols)   # text stays dictionary-encoded
        for b in pf.iter_batches(batch_size=batch_rows):
            seen += b.num_rows
            nbytes += b.nbytes
            if seen > MAX_ROWS or nbytes > MAX_DECODED_BYTES:
                raise _too_big(f"{label} holds more than its header says (over {MAX_ROWS:,} rows or "
                               f"{MAX_DECODED_BYTES // 2**20:,} MB); rnnviz stopped reading it. Export it again.")
            t = pa.Table.from_batches([b])
            del b
            for i, fld in enumerate(t.schema):                         # dictionary text -> plain text, in Arrow
                if pa.types.is_dictionary(fld.type) and fld.name in text_cols:
                    t = t.set_column(i, fld.name, pc.cast(t.column(i), fld.type.value_type))
            frames.append(t.to_pandas(self_destruct=True, split_blocks=True))
            del t
        if len(frames) <= 1:
            return frames[0] if frames else schema.empty_table().to_pandas()
        names = frames[0].columns
        index = _parquet_index(schema, frames, seen)
        for f in frames:
            f.columns = pd.RangeIndex(len(names))
        cols = {}
        for j in range(len(names)):                                    # one column at a time, freed as it goes
            cols[j] = pd.concat([f[j] for f in frames], ignore_index=True)
            for f in frames:
                del f[j]
        df = pd.DataFrame(cols, copy=False)
        df.columns = names
        if index is not None:
            df.index = index
    except DataError:
        raise
    except Exception:
        raise unreadable from None
    return df


def read_bytes(src, name, limit: int, err: type, what: str) -> tuple[bytes, str | None]:
    """Return (content, file name) from a path, bytes or file-like, enforcing the size limit."""
    mb = limit // (1024 * 1024)
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        p = Path(src)
        name = name or p.name
        if not p.is_file():
            raise err(f"There is no {what} file at '{p}'; check the path.")
        if p.stat().st_size > limit:
            raise err(f"'{p.name}' is larger than the {mb} MB rnnviz accepts for a {what} file.")
        data = p.read_bytes()
    elif hasattr(src, "read"):
        name = name or getattr(src, "name", None)
        if hasattr(src, "getvalue"):
            data = src.getvalue()
        else:
            data = src.read(limit + 1)
        data = bytes(data)
    else:
        raise err(f"Give the {what} file as a path, bytes or an open file, not {type(src).__name__}.")
    if len(data) > limit:
        raise err(f"The {what} file is larger than the {mb} MB rnnviz accepts.")
    if name is not None:
        name = Path(str(name)).name
    return data, name


def _sniff_data(data: bytes, ext: str) -> str:
    if data[:4] == b"PAR1":
        return "parquet"
    if data[:4] == b"PK\x03\x04":
        return "npz"
    head = data[:65536]
    if b"\x00" in head:
        return "unknown"
    try:
        text = head.decode("utf-8-sig", errors="replace")
    except Exception:  # pragma: no cover
        return "unknown"
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        return "ts" if s.startswith("@") else "csv"
    return "csv"


# -------------------------------------------------------------------------- long form
_ID_RE = re.compile(r"^(?!(?:token|word|vocab|char|term)[_\s]?id$)"          # a token's id is not a sequence id
                    r"(?:(?:.*[_\s])?id|id[_\s].*|(?:sequence|seq|series|sample|case|subject|entity)"
                    r"(?:[_\s]?(?:id|no|key|name))?)$", re.I)
_ORDER_RE = re.compile(r"^(step|steps|t|timestep|time_step|time_idx|order|seq_no|step_no|index|idx|position_in_sequence|"
                       r"date|datetime|timestamp|race_no|race_number|step_number)$|(_no|_num|_number|_step|_index|_date)$", re.I)
_LABEL_RE = re.compile(r"^(label|labels|y|target|targets|class|classes|outcome|category|sentiment|sentiments|"
                       r"polarity|emotion|stance|verdict)$|^(label|target|class|sentiment|polarity)[_\s]|^next[_\s]|"
                       r"[_\s](label|target|class|sentiment|polarity)$", re.I)
#: names taken as the label only when no column has one of the names above (a "score" column
#: beside a "label" column is a feature, not a second label)
_LABEL_WEAK_RE = re.compile(r"^(rating|ratings|score|scores|stars|grade|y_true|true_y|response|answer)$|"
                            r"^(rating|score|stars)[_\s]|[_\s](rating|score|stars)$", re.I)
_LABEL_TIERS = (_LABEL_RE, _LABEL_WEAK_RE)


def _suggest(name: str, columns: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in columns], n=2, cutoff=0.7)
    if not close:
        lowered = {str(c).lower(): str(c) for c in columns}
        if str(name).lower() in lowered:
            close = [lowered[str(name).lower()]]
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


#: the field (choice in the app) of each column role, as carried by errors
_ROLE_FIELD = {"sequence id column": "id", "order column": "order", "label column": "label",
               "feature column": "features", "group column": "groups", "text column": "text",
               "sequence id": "id", "step order": "order", "label": "label", "text": "text"}


def _need_column(df: pd.DataFrame, col: str, role: str) -> str:
    if col not in df.columns:
        cols = ", ".join(map(str, list(df.columns)[:20]))
        raise DataError(f"There is no column '{col}' (given as the {role}).{_suggest(col, df.columns)} "
                        f"The columns are: {cols}.", code="missing_column", field=_ROLE_FIELD.get(role))
    return col


def _order_like_feature(ds) -> str | None:
    """The first feature column that counts up (whole numbers, strictly increasing) within every
    sequence of two or more steps: a step order read as a feature. None when there is none."""
    X, lengths = np.asarray(ds.X), np.asarray(ds.lengths)
    if X.ndim != 3 or not (lengths >= 2).any():
        return None
    steps = np.arange(X.shape[1])[None, :, None]
    real = (steps[:, 1:] < lengths[:, None, None])                     # [N, T-1, 1] pairs inside a sequence
    with np.errstate(invalid="ignore"):
        up = (np.diff(X, axis=1) > 0) | ~real                          # [N, T-1, F]
        whole = (X == np.round(X)) | (steps >= lengths[:, None, None])  # [N, T, F]
    ok = up.all(axis=(0, 1)) & whole.all(axis=(0, 1))
    idx = np.flatnonzero(ok)
    return str(ds.feature_names[idx[0]]) if len(idx) else None


def _role_column(df: pd.DataFrame, given: str | None, pattern: re.Pattern, what: str, arg: str,
                 label: str, used: set) -> str | None:
    """The optional column for one role: the one given (checked), else the one its name gives away,
    else None; the column found is added to ``used``."""
    col = given if given is not None else _pick(df, pattern, what, arg, used, required=False)
    if col:
        used.add(_need_column(df, col, label))
    return col


def _tier_hits(cands: Iterable[str], pattern: re.Pattern | tuple) -> list[str]:
    """The candidates whose name matches the first tier of ``pattern`` (a pattern or a tuple of
    patterns, strongest first) that any candidate matches."""
    cands = list(cands)
    for pat in (pattern if isinstance(pattern, tuple) else (pattern,)):
        hits = [c for c in cands if pat.search(str(c))]
        if hits:
            return hits
    return []


def _weak_label(df: pd.DataFrame, id_col: str | None, used: set) -> str | None:
    """A long-form table's label among the weaker names ("rating", "score", ...): only a single such
    column that holds one value per sequence (a per-step score is a feature); added to ``used``."""
    hits = _tier_hits([c for c in df.columns if c not in used], (_LABEL_WEAK_RE,))
    if len(hits) != 1:
        return None
    col = hits[0]
    if id_col is not None and int(df.groupby(id_col, sort=False)[col].nunique(dropna=False).max()) > 1:
        return None
    used.add(col)
    return col


def _pick(df: pd.DataFrame, pattern: re.Pattern | tuple, role: str, kwarg: str, exclude: set,
          required: bool) -> str | None:
    cands = _tier_hits([c for c in df.columns if c not in exclude], pattern)
    if len(cands) == 1:
        return cands[0]
    cols = ", ".join(map(str, list(df.columns)[:20]))
    if len(cands) > 1:
        raise DataError(f"Several columns could be the {role} ({', '.join(map(str, cands))}); "
                        f"say which one with {kwarg}=...",
                        code="ambiguous_column", field=_ROLE_FIELD.get(role))
    if required:
        raise DataError(f"Could not tell which column is the {role}; name it with {kwarg}='...'. "
                        f"The columns are: {cols}.",
                        code="unknown_column", field=_ROLE_FIELD.get(role))
    return None


def from_long_frame(df: pd.DataFrame, *, id_col: str | None = None, order_col: str | None = None,
                    label_col: str | None = None, feature_cols: Sequence[str] | None = None,
                    group_cols: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                    missing: str = "error", name: str = "", task: str | None = None) -> SequenceDataset:
    """Turn a long-form table (one row per step) into a :class:`SequenceDataset`.

    Inference when a column is not named: the id column is the one column whose name looks
    like an id (``id``, ``dog_id``, ``sequence``, ...); the order column one named like a step
    or date (``step``, ``t``, ``race_no``, ``date``, ...), else the row order in the file; the
    label column one named ``label``/``target``/``y``/``class``/``next_...`` (none: no labels).
    Other columns that hold one value per sequence (text, or numbers constant within every
    sequence) become group columns; the remaining numeric columns are the features, in file
    order. Sequences keep the order in which their ids first appear.
    """
    if not isinstance(df, pd.DataFrame) or len(df) == 0 or len(df.columns) == 0:
        raise DataError("The table has no rows, so there are no sequences; check the file is not just a header.", code='no_sequences', field='file')
    if len(df) > MAX_ROWS:
        raise DataError(f"The table has {len(df):,} rows; rnnviz handles at most {MAX_ROWS:,}. "
                        f"Upload a sample of the sequences.", code='too_big', field=None)
    df = df.copy(deep=False)                                            # the caller's frame keeps its names
    df.columns = [str(c).strip() for c in df.columns]
    if len(set(df.columns)) != len(df.columns):
        dup = pd.Series(df.columns)[pd.Series(df.columns).duplicated()].iloc[0]
        raise DataError(f"The column name '{dup}' appears twice; give every column a different name.", code='duplicate_column', field='file')
    used: set = set()
    if id_col is None:
        id_col = _pick(df, _ID_RE, "sequence id", "id_col", used, required=True)
    used.add(_need_column(df, id_col, "sequence id column"))
    order_col = _role_column(df, order_col, _ORDER_RE, "step order", "order_col", "order column", used)
    if label_col is None:
        label_col = _role_column(df, None, _LABEL_RE, "label", "label_col", "label column", used) or \
            _weak_label(df, id_col, used)
    else:
        label_col = _role_column(df, label_col, _LABEL_TIERS, "label", "label_col", "label column", used)
    for c in list(feature_cols or []) + list(group_cols or []):
        _need_column(df, c, "feature column" if c in (feature_cols or []) else "group column")
        if c in used:
            raise DataError(f"The column '{c}' is already the sequence id, order or label column, so it "
                            f"cannot also be a feature or group column.", code='column_twice', field='features')

    if df[id_col].isna().any():
        row = int(np.flatnonzero(df[id_col].isna().to_numpy())[0])
        raise DataError(f"The id column '{id_col}' is empty in row {row + 2} of the file; every row needs a sequence id.", code='empty_id', field='id')
    ids_str = df[id_col].astype(str)
    codes, uniques = pd.factorize(ids_str, sort=False)                 # first-appearance order
    # order within each sequence
    if order_col:
        okey = df[order_col]
        if not pd.api.types.is_numeric_dtype(okey):
            parsed = pd.to_datetime(okey, errors="coerce")
            if parsed.isna().any():
                num = pd.to_numeric(okey, errors="coerce")
                if num.isna().any():
                    bad = okey[parsed.isna() & num.isna()].iloc[0]
                    raise DataError(f"The order column '{order_col}' must hold numbers or dates, but has "
                                    f"{bad!r}; fix it or name another column with order_col=...", code='bad_order', field='order')
                parsed = num
            okey = parsed
        if okey.isna().any():
            row = int(np.flatnonzero(okey.isna().to_numpy())[0])
            raise DataError(f"The order column '{order_col}' is empty in row {row + 2}; every step needs its position.", code='bad_order', field='order')
        okeys = okey.to_numpy()
        order = np.lexsort((okeys, codes))
        cs, ks = codes[order], okeys[order]
        dup = np.flatnonzero((cs[1:] == cs[:-1]) & (ks[1:] == ks[:-1]))
        if len(dup):
            r = int(order[dup[0] + 1])
            step = df[order_col].iloc[r]
            step = step.item() if hasattr(step, "item") else step
            raise DataError(f"Sequence '{ids_str.iloc[r]}' has step {step} more than once "
                            f"(column '{order_col}'); remove the duplicate rows or check the order column.", code='duplicate_step', field='order')
    else:
        order = np.argsort(codes, kind="stable")
    n = len(uniques)
    lengths = np.bincount(codes, minlength=n).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.empty(len(codes), dtype=np.int64)                          # each row's step within its sequence
    pos[order] = np.arange(len(codes)) - starts[codes[order]]           # (the table itself is never re-sorted)
    multi = lengths[codes] > 1                                          # rows of sequences with >1 step

    # per-sequence columns vs features
    candidates = [c for c in df.columns if c not in used]
    if feature_cols is not None:
        feature_cols = list(feature_cols)
        if not feature_cols:
            raise DataError("No feature columns were given; name at least one.", code='no_features', field='features')
        rest = [c for c in candidates if c not in feature_cols]
        group_cols = list(group_cols) if group_cols is not None else \
            [c for c in rest if _constant_per_seq(df[c], codes, n)]
    else:
        group_cols = list(group_cols) if group_cols is not None else []
        feature_cols = []
        for c in candidates:
            if c in group_cols:
                continue
            col = df[c]
            numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
            if _constant_per_seq(col, codes, n) and (not numeric or multi.any()):
                group_cols.append(c)
            elif numeric:
                feature_cols.append(c)
            else:
                _raise_non_numeric(df, c, df[id_col].astype(str))
        if not feature_cols:
            raise DataError("No numeric feature columns were found (every other column holds text or one value "
                            "per sequence); name them with feature_cols=[...].", code='no_features', field='features')
    for c in group_cols:
        if not _constant_per_seq(df[c], codes, n):
            first = df.groupby(codes, sort=False)[c].nunique(dropna=False)
            bad = uniques[int(np.flatnonzero(first.to_numpy() > 1)[0])]
            raise DataError(f"The group column '{c}' changes within sequence '{bad}'; a group column needs one "
                            f"value per sequence. Use it as a feature instead, or fix the rows.", code='group_changes', field='groups')
    _check_size(n, int(lengths.max()), len(feature_cols))
    T = int(lengths.max())
    X = np.zeros((n, T, len(feature_cols)), dtype=np.float32)
    for j, c in enumerate(feature_cols):                                 # one column at a time: no (rows, F) copy
        col = df[c]
        if pd.api.types.is_bool_dtype(col):
            col = col.astype(np.float32)
        if not pd.api.types.is_numeric_dtype(col):
            conv = pd.to_numeric(col, errors="coerce")
            if (conv.isna() & col.notna()).any():
                _raise_non_numeric(df, c, df[id_col].astype(str))
            col = conv
        X[codes, pos, j] = col.to_numpy(dtype=np.float32)                # (rows,) -> (N, T)

    firsts = np.flatnonzero(pos == 0)                                   # first step of each sequence
    firsts = firsts[np.argsort(codes[firsts])]                          # in sequence order
    groups = df.iloc[firsts][group_cols].reset_index(drop=True) if group_cols else pd.DataFrame(index=pd.RangeIndex(n))
    y = None
    if label_col:
        lab = df[label_col]
        lcodes, luniq = pd.factorize(lab)                               # missing -> -1; no groupby over the rows
        valid = lcodes >= 0
        lo, hi = np.full(n, len(luniq), np.int64), np.full(n, -1, np.int64)
        np.minimum.at(lo, codes[valid], lcodes[valid])
        np.maximum.at(hi, codes[valid], lcodes[valid])
        nun = np.where(hi < 0, 0, np.where(lo == hi, 1, 2))           # distinct labels per sequence (2: more)
        if (nun > 1).any():
            bad = uniques[int(np.flatnonzero(nun > 1)[0])]
            raise DataError(f"The label column '{label_col}' changes within sequence '{bad}'; it must hold one "
                            f"label for the whole sequence (the same on each of its rows, or only on one row).", code='label_changes', field='label')
        if (nun == 0).any():
            bad = uniques[int(np.flatnonzero(nun == 0)[0])]
            raise DataError(f"Sequence '{bad}' has no label in column '{label_col}'; fill it in, or remove "
                            f"the label column to look at unlabelled data.", code='missing_label', field='label')
        y = np.asarray(luniq)[lo]                                         # each sequence's one label
    return from_arrays(X, lengths, y=y, ids=np.asarray(uniques, dtype=object), groups=groups,
                       feature_names=feature_cols, class_names=class_names, name=name, missing=missing,
                       task=task, _copy=False)


_TEXT_RE = re.compile(r"^(text|texts|review|reviews|sentence|sentences|document|doc|tokens|words|comment|comments|"
                      r"content|body|utterance|phrase|tweet|message)$", re.I)


@dataclass
class ColumnGuess:
    """What :func:`load_data` would infer for a table, so an app can prefill its column choices.

    Attributes
    ----------
    kind : "table" (long-form CSV/Parquet), "npz" or "ts" (nothing to choose for the last two).
    columns : every column, in file order.
    numeric : the columns holding numbers (candidates for features).
    id_col, order_col, label_col, text_col : the inferred column for each role, or None.
    feature_cols, group_cols : the inferred features (file order) and per-sequence group columns.
    candidates : role -> columns that could fill it, likeliest first, for ``"id"``, ``"order"``,
        ``"label"``, ``"text"``, ``"features"``, ``"groups"``.
    missing : feature column -> how many missing or infinite values it holds (when > 0).
    problems : plain sentences (no code) on what could not be inferred.
    n_rows : rows in the table.
    """

    kind: str
    columns: list[str]
    numeric: list[str]
    id_col: str | None = None
    order_col: str | None = None
    label_col: str | None = None
    text_col: str | None = None
    feature_cols: list[str] | None = None
    group_cols: list[str] | None = None
    candidates: dict[str, list[str]] | None = None
    missing: dict[str, int] | None = None
    problems: list[str] | None = None
    n_rows: int = 0

    def choices(self) -> dict[str, Any]:
        """The guesses as keyword arguments of :func:`load_data` (roles left unguessed are left out)."""
        out: dict[str, Any] = {}
        for k in ("id_col", "order_col", "text_col"):
            if getattr(self, k):
                out[k] = getattr(self, k)
        if self.kind == "table":
            out["label_col"] = self.label_col or ""
            if self.feature_cols and not self.text_col:
                out["feature_cols"] = list(self.feature_cols)
            if self.group_cols is not None:
                out["group_cols"] = list(self.group_cols)
        return out


def inspect_columns(source: str | os.PathLike | bytes | BinaryIO | pd.DataFrame,
                    name: str | None = None) -> ColumnGuess:
    """Guess the role of each column of a data file without refusing it for what cannot be guessed.

    Parameters
    ----------
    source : a path, bytes, an upload, or a DataFrame already read.
    name : the file name when ``source`` is bytes.

    Returns
    -------
    ColumnGuess : the inferred id/order/label/text/feature/group columns (None where unclear),
        the candidate columns for each role, the numeric columns and the problems found, in
        plain sentences. ``load_data(source, **guess.choices())`` reads what was guessed.
        Files too big or unreadable raise :class:`DataError` as :func:`load_data` does.
    """
    if isinstance(source, pd.DataFrame):
        df = source
    else:
        data, name, label, kind = _open_data(source, name)
        if kind in ("npz", "ts"):
            return ColumnGuess(kind=kind, columns=[], numeric=[], candidates={}, missing={}, problems=[],
                               feature_cols=[], group_cols=[])
        df = _read_table(data, kind, label)
        del data
    df = df.rename(columns=lambda c: str(c).strip())
    cols = list(df.columns)
    problems: list[str] = []
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    g = ColumnGuess(kind="table", columns=cols, numeric=numeric, candidates={}, missing={}, problems=problems,
                    n_rows=len(df))
    if len(set(cols)) != len(cols):
        dup = pd.Series(cols)[pd.Series(cols).duplicated()].iloc[0]
        problems.append(f"The column name '{dup}' appears twice; give every column a different name.")
        return g
    if len(df) == 0:
        problems.append("The table has no rows, so there are no sequences.")
        return g

    def likely(pattern: re.Pattern | tuple, used: set, others: list[str]) -> list[str]:
        pats = pattern if isinstance(pattern, tuple) else (pattern,)
        first = [c for pat in pats for c in cols if c not in used and pat.search(c)]
        first = list(dict.fromkeys(first))
        return first + [c for c in others if c not in used and c not in first]

    def textual(c: str) -> bool:
        col = df[c]
        if c in numeric:
            return False
        vals = col.dropna().astype(str).head(200)
        return bool(len(vals)) and float(vals.str.contains(r"\s", regex=True).mean()) >= 0.5

    def one(role: str, cands: list[str], pattern: re.Pattern | tuple, required: bool) -> str | None:
        hits = _tier_hits(cands, pattern)
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            problems.append(f"Several columns could be the {role} ({', '.join(hits)}); choose one.")
        elif required:
            problems.append(f"Could not tell which column is the {role}; choose it.")
        return None

    floats = [c for c in numeric if pd.api.types.is_float_dtype(df[c])]
    text_like = [c for c in cols if textual(c)]
    g.candidates["id"] = likely(_ID_RE, set(), [c for c in cols if c not in floats and c not in text_like])
    used: set = set()
    g.text_col = one("text", [c for c in cols if _TEXT_RE.search(c) or c in text_like],
                     re.compile(".*") if len(text_like) == 1 else _TEXT_RE, False)
    g.candidates["text"] = likely(_TEXT_RE, set(), text_like)
    if g.text_col:
        used.add(g.text_col)
    g.id_col = one("sequence id", [c for c in cols if c not in used], _ID_RE, required=not g.text_col)
    if g.id_col:
        used.add(g.id_col)
    g.candidates["order"] = likely(_ORDER_RE, used, [c for c in numeric if c not in used])
    g.order_col = one("step order", [c for c in cols if c not in used], _ORDER_RE, False)
    if g.order_col:
        used.add(g.order_col)
    g.candidates["label"] = likely(_LABEL_TIERS, used, [c for c in cols if c not in used and c not in text_like])
    g.label_col = one("label", [c for c in cols if c not in used], _LABEL_RE, False)
    if g.label_col is None and not any(_LABEL_RE.search(c) for c in cols if c not in used):
        g.label_col = _weak_label(df, None if g.text_col else g.id_col, set(used))
    if g.label_col:
        used.add(g.label_col)
    rest = [c for c in cols if c not in used]
    g.candidates["features"] = [c for c in numeric if c not in used]
    g.feature_cols, g.group_cols = [], []
    if g.id_col is None and not g.text_col:
        g.candidates["groups"] = [c for c in rest if c not in numeric]
        g.feature_cols = list(g.candidates["features"])
        return g
    codes = pd.factorize(df[g.id_col].astype(str), sort=False)[0] if g.id_col else np.arange(len(df))
    n = int(codes.max()) + 1 if len(codes) else 0
    multi = bool((np.bincount(codes, minlength=n) > 1).any()) if n else False
    for c in rest:
        isnum = c in numeric
        if _constant_per_seq(df[c], codes, n) and (not isnum or multi or g.text_col):
            g.group_cols.append(c)
        elif isnum:
            g.feature_cols.append(c)
        else:
            problems.append(f"The column '{c}' holds text that changes within a sequence, so it can be neither a "
                            f"feature nor a group; it is left out.")
    g.candidates["groups"] = [c for c in rest if _constant_per_seq(df[c], codes, n)]
    if not g.feature_cols and not g.text_col:
        problems.append("No numeric feature columns were found; choose the feature columns.")
    for c in g.feature_cols:
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        bad = int((~np.isfinite(v)).sum())
        if bad:
            g.missing[c] = bad
    if g.missing:
        total = sum(g.missing.values())
        problems.append(f"The features hold {total:,} missing or infinite values (in "
                        f"{', '.join(list(g.missing)[:5])}); choose whether to refuse them, fill them forward "
                        f"or drop those sequences.")
    return g


def _constant_per_seq(col: pd.Series, codes: np.ndarray, n: int) -> bool:
    """Whether ``col`` holds one value per sequence (missing values count as a value)."""
    if len(codes) == 0:
        return True
    first = np.empty(n, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)              # each sequence's first row
    vals = col.to_numpy()
    ref = vals[first[codes]]                                            # (rows,) its sequence's first value
    missing = pd.isna(vals)
    same = missing == pd.isna(ref)
    with np.errstate(invalid="ignore"):
        eq = np.asarray(vals == ref, dtype=bool) if vals.dtype != object else \
            np.fromiter((a == b for a, b in zip(vals, ref)), dtype=bool, count=len(vals))
    return bool(np.all(same & (missing | eq)))


def _raise_non_numeric(df: pd.DataFrame, c: str, ids: pd.Series) -> None:
    conv = pd.to_numeric(df[c], errors="coerce")
    bad = np.flatnonzero((conv.isna() & df[c].notna()).to_numpy())
    r = int(bad[0]) if len(bad) else 0
    raise DataError(f"The column '{c}' holds text (for example {df[c].iloc[r]!r} in sequence '{ids.iloc[r]}'), "
                    f"but features must be numbers. Convert it to numbers, or leave it out with feature_cols=[...].", code='text_feature', field='features')


# -------------------------------------------------------------------------------- NPZ
_NPZ_RESERVED = {"X", "lengths", "y", "ids", "class_names", "feature_names"}


def _load_npz(data: bytes, label: str, name: str, class_names, missing: str, task=None) -> SequenceDataset:
    arrays = _read_npz_arrays(data, label)
    keys = list(arrays)
    if "X" not in keys:
        raise DataError(f"{label} has no array named 'X' (the sequences, shaped [N, T, F]).{_suggest('X', keys)} "
                        f"It holds: {', '.join(keys) or 'nothing'}.", code="missing_array", field="file")
    X = arrays["X"]
    n = X.shape[0] if X.ndim >= 1 else 0
    names = arrays.get("class_names")
    fnames = arrays.get("feature_names")
    extra = {k: v for k, v in arrays.items() if k not in _NPZ_RESERVED and v.ndim == 1 and len(v) == n}
    groups = pd.DataFrame({k: (v.astype(str) if v.dtype.kind in "US" else v) for k, v in extra.items()}) \
        if extra else None
    cn = class_names if class_names is not None else (None if names is None else [str(s) for s in names])
    ds = from_arrays(X, arrays.get("lengths"), y=arrays.get("y"), ids=arrays.get("ids"), groups=groups,
                     feature_names=None if fnames is None else [str(s) for s in fnames],
                     class_names=cn, name=name, missing=missing, task=task, _copy=False)
    if names is not None and ds.class_names is not None:
        ds.declared_classes = [str(s) for s in names]
    return ds


#: Most arrays in an NPZ archive.
MAX_NPZ_ARRAYS = 256


def _read_npz_arrays(data: bytes, label: str) -> dict[str, np.ndarray]:
    """Read an NPZ's arrays without trusting its headers.

    Each array's ``.npy`` header (dtype, shape) is checked against the limits before anything is
    allocated; the content is then read into that array in chunks and the bytes actually
    unpacked are counted, so a zip entry whose sizes understate (or overstate) its content is
    refused as damaged instead of being unpacked. Object arrays are refused (they need pickle).
    """
    import zipfile

    from numpy.lib import format as npf

    damaged = DataError(f"{label} is not a readable NPZ archive; save it again with np.savez.",
                        code="unreadable", field="file")
    limit = min(MAX_DECODED_BYTES, 2 * MAX_DATA_BYTES)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception:
        if data[:6] == b"\x93NUMPY":
            raise DataError(f"{label} holds a single array, not an NPZ archive; save it with np.savez(..., X=X).",
                            code="unreadable", field="file") from None
        raise damaged from None
    if len(infos) > MAX_NPZ_ARRAYS:
        raise _too_big(f"{label} holds {len(infos):,} files; an NPZ for rnnviz holds at most {MAX_NPZ_ARRAYS}.")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        try:
            with zf.open(info) as f:
                version = npf.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = npf.read_array_header_1_0(f, max_header_size=10_000)
                else:
                    shape, fortran, dtype = npf.read_array_header_2_0(f, max_header_size=10_000)
                if dtype.hasobject:
                    raise DataError(f"The array '{key}' in {label} holds Python objects, which rnnviz does not open "
                                    f"(they could run code). Save text as plain strings, e.g. "
                                    f"np.array(ids, dtype=str).", code="unsafe", field="file")
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                nbytes = count * dtype.itemsize
                if count < 0 or total + nbytes > limit:
                    raise _too_big(f"{label} unpacks to more than {limit // 2**20:,} MB of arrays ('{key}' alone "
                                   f"is {nbytes / 2**20:,.0f} MB); rnnviz handles at most that much. Upload fewer "
                                   f"or shorter sequences (or save X as float32).")
                if key == "X" and len(shape) in (2, 3):
                    _check_size(*(tuple(shape) + (1,))[:3])
                elif len(shape) >= 1 and key != "X" and shape[0] > MAX_SEQUENCES and key not in (
                        "class_names", "feature_names"):
                    _check_size(shape[0], 1, 1)
                arr = np.empty(count, dtype=dtype)
                buf = memoryview(arr.view(np.uint8).reshape(-1)) if nbytes else memoryview(b"")
                got = 0
                while got < nbytes:
                    k = f.readinto(buf[got: got + (1 << 24)])
                    if not k:
                        break
                    got += k
                if got != nbytes or f.read(1):                   # content measured, not the headers
                    raise damaged
                total += nbytes
        except DataError:
            raise
        except Exception:
            raise damaged from None
        arrays[key] = arr.reshape(shape, order="F" if fortran else "C")
    return arrays


# --------------------------------------------------------------------------------- .ts
def _load_ts(data: bytes, label: str, name: str, class_names, missing: str, task=None) -> SequenceDataset:
    """Read the UCR/UEA ``.ts`` format (as written by sktime/aeon), line by line.

    Each case's size (channels from its colons, steps from its commas) is checked against the
    limits before the line is parsed, and the running total of values before it is stored.
    """
    header: dict[str, str] = {}
    cases: list[np.ndarray] = []                                       # each (T_i, C) float32
    labels: list[str] = []
    in_data = False
    class_list: list[str] | None = None
    has_label = False
    total = 0
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    for lineno, (a, b) in enumerate(_lines(data, start), start=1):
        while a < b and data[a] in b" \t":
            a += 1
        if a == b or data[a] == ord("#"):
            continue
        if not in_data:
            if b - a > 1_000_000:
                raise _too_big(f"{label}: line {lineno} is a header line of {b - a:,} bytes; check the file.")
            line = data[a:b].decode("utf-8", errors="replace").strip()
            if not line.startswith("@"):
                raise DataError(f"{label}: line {lineno} comes before '@data' but is not a header line; "
                                f"check the file is in the .ts format.", code="unreadable", field="file")
            key, _, val = line[1:].partition(" ")
            key = key.lower()
            header[key] = val.strip()
            if key == "classlabel":
                parts = val.split()
                has_label = bool(parts) and parts[0].lower() == "true"
                class_list = parts[1:] if has_label else None
            elif key == "targetlabel":
                has_label = val.split()[:1] == ["true"]
            elif key == "timestamps" and val.strip().lower() == "true":
                raise DataError(f"{label} uses time stamps, which rnnviz does not read yet; export it "
                                f"without time stamps or as a long-form CSV.", code="unreadable", field="file")
            elif key == "data":
                in_data = True
            continue
        if len(cases) >= MAX_SEQUENCES:
            _check_size(len(cases) + 1, 1, 1)
        channels = data.count(b":", a, b) + 1 - has_label
        values = data.count(b",", a, b) + max(channels, 1)
        if channels > MAX_FEATURES:
            _check_size(1, 1, channels)
        if channels >= 1 and values // channels > MAX_STEPS:
            raise _too_big(f"{label}: case {len(cases) + 1} (line {lineno}) has about {values // channels:,} steps; "
                           f"rnnviz handles at most {MAX_STEPS:,}. Shorten the sequences (for example keep the "
                           f"last {MAX_STEPS:,} steps).")
        total += values
        if total > MAX_CELLS:
            raise _too_big(f"{label} holds more than {MAX_CELLS:,} values; rnnviz handles at most that many. "
                           f"Upload fewer or shorter sequences.")
        parts = data[a:b].split(b":")
        if has_label:
            labels.append(parts[-1].strip().decode("utf-8", errors="replace"))
            parts = parts[:-1]
        if not parts:
            raise DataError(f"{label}: line {lineno} has no values.", code="unreadable", field="file")
        dims = [_ts_values(p, label, lineno) for p in parts]
        if cases and len(dims) != cases[0].shape[1]:
            raise DataError(f"{label}: line {lineno} has {len(dims)} channels but the first case has "
                            f"{cases[0].shape[1]}; every case needs the same channels.", code="unreadable",
                            field="file")
        if len({len(d) for d in dims}) != 1:
            raise DataError(f"{label}: the channels on line {lineno} have different lengths; rnnviz needs "
                            f"all channels of a case to have the same number of steps.", code="unreadable",
                            field="file")
        cases.append(np.stack(dims, axis=1).astype(np.float32))
    if not in_data:
        raise DataError(f"{label} has no '@data' line, so it is not a complete .ts file.", code="unreadable",
                        field="file")
    if not cases:
        raise DataError(f"{label} has no cases after '@data', so there are no sequences.", code="no_sequences",
                        field="file")
    f = cases[0].shape[1]
    lengths = np.array([len(c) for c in cases], dtype=np.int64)
    if lengths.min() < 1:
        raise DataError(f"{label} has a case with no values.", code="unreadable", field="file")
    _check_size(len(cases), int(lengths.max()), f)
    X = np.zeros((len(cases), int(lengths.max()), f), dtype=np.float32)
    for i in range(len(cases)):
        X[i, : lengths[i]] = cases[i]
        cases[i] = None                                                # free as we go
    del cases
    y = None
    if has_label:
        if "classlabel" in header:
            cn = list(class_names) if class_names is not None else class_list
            y = np.asarray(labels, dtype=object)
            if cn:
                unknown = sorted(set(labels) - set(cn))
                if unknown and class_names is None:
                    raise DataError(f"{label} has labels not declared in its @classLabel line: "
                                    f"{', '.join(unknown[:5])}.", code="unknown_labels", field="label")
        else:
            cn = None
            try:
                y = np.asarray([float(v) for v in labels], dtype=np.float32)
            except ValueError:
                raise DataError(f"{label} declares numeric targets but has a non-numeric one.", code="bad_labels",
                                field="label") from None
    else:
        cn = None
    problem = header.get("problemname", "")
    dim_names = [f"dim {j}" for j in range(f)] if f > 1 else [problem or "value"]
    ds = from_arrays(X, lengths, y=y, ids=[f"case{i:05d}" for i in range(len(lengths))], groups=None,
                     feature_names=dim_names, class_names=cn, name=name, missing=missing,
                     task=task or ("classification" if "classlabel" in header else "regression"), _copy=False)
    if class_list and ds.class_names is not None:
        ds.declared_classes = list(class_list)
    return ds


def _lines(data: bytes, start: int = 0) -> Iterable[tuple[int, int]]:
    """(start, end) of each line of ``data``, for line breaks of every kind (\\n, \\r\\n, a lone \\r)."""
    pos = start
    for m in _LINE_BREAK.finditer(data, start):
        yield pos, m.start()
        pos = m.end()
    if pos < len(data):
        yield pos, len(data)


def _ts_values(part: bytes, label: str, lineno: int) -> np.ndarray:
    """One channel of a ``.ts`` case: comma-separated numbers, ``?`` for a missing value."""
    vals = part.replace(b"?", b"nan").split(b",")
    if vals and not vals[-1].strip():
        vals = vals[:-1]                                               # a trailing comma
    try:
        return np.array(vals, dtype=bytes).astype(np.float64)
    except ValueError:
        bad = next((v.strip().decode("utf-8", "replace") for v in vals
                    if not _is_float(v.strip().decode("utf-8", "replace").replace("nan", "?").replace("?", "0"))),
                   "")
        bad = bad.replace("nan", "?")
        raise DataError(f"{label}: line {lineno} has the value {bad!r}, which is not a number.", code="unreadable",
                        field="file") from None


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


# ============================================================================ tokens
#: Vocabulary entries read as the padding and the unknown-word token (first one found wins).
_PAD_TOKENS = ("<pad>", "<PAD>", "[PAD]", "<blank>")
_UNK_TOKENS = ("<unk>", "<UNK>", "[UNK]", "<oov>", "<OOV>")


def _special_id(vocabulary: Sequence[str] | None, tokens: Sequence[str], default: int | None = 0) -> int | None:
    """Index of the first of ``tokens`` in ``vocabulary``, else ``default``."""
    for t in tokens:
        if vocabulary and t in vocabulary:
            return list(vocabulary).index(t)
    return default


#: Most tokens in a vocabulary, and the largest vocabulary file (bytes).
MAX_VOCABULARY = 1_000_000
MAX_VOCABULARY_BYTES = 50 * 1024 * 1024


def load_vocabulary(path_or_bytes: str | os.PathLike | bytes | BinaryIO, name: str | None = None) -> list[str]:
    """Read a vocabulary file: token ``i`` of the list is token id ``i``.

    Parameters
    ----------
    path_or_bytes : a path, bytes or an upload of a ``.json`` file holding a list of tokens
        (``json.dump(itos, f)``) or a token -> id object (``json.dump(stoi, f)``), or a ``.txt``
        file with one token per line (line ``i``, counted from 0, is id ``i``).
    name : the file name when giving bytes.

    Returns
    -------
    list[str] of length V.
    """
    data, name = read_bytes(path_or_bytes, name, MAX_VOCABULARY_BYTES, DataError, "vocabulary")
    label = f"'{name}'" if name else "The vocabulary file"
    ext = Path(name).suffix.lower() if name else ""
    if ext not in ("", ".json", ".txt", ".vocab"):
        raise DataError(f"{label} has the ending '{ext}'; a vocabulary is a .json list or a .txt file with one "
                        f"token per line.", code="file_type", field="vocabulary")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{label} is not UTF-8 text; save the vocabulary as UTF-8.", code="unreadable",
                        field="vocabulary") from None
    if "\x00" in text:
        raise DataError(f"{label} holds binary data, not a vocabulary.", code="unreadable", field="vocabulary")
    stripped = text.lstrip()
    if ext == ".json" or (ext == "" and stripped[:1] in ("[", "{")):
        import json

        try:
            obj = json.loads(text)
        except ValueError:
            raise DataError(f"{label} is not valid JSON; save the vocabulary with json.dump(list_of_tokens, f).",
                            code="unreadable", field="vocabulary") from None
        if isinstance(obj, dict):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in obj.values()):
                raise DataError(f"{label} is a JSON object whose values are not all token ids (whole numbers); "
                                f"save a list of tokens or a token -> id object.", code="unreadable",
                                field="vocabulary")
            if sorted(obj.values()) != list(range(len(obj))):
                raise DataError(f"{label} gives token ids that are not 0 to {len(obj) - 1}, each once; rnnviz "
                                f"needs one token per id.", code="unreadable", field="vocabulary")
            vocab = [""] * len(obj)
            for t, i in obj.items():
                vocab[i] = t
            obj = vocab
        if not isinstance(obj, list) or not all(isinstance(t, str) for t in obj):
            raise DataError(f"{label} must hold a JSON list of tokens (text), id 0 first.", code="unreadable",
                            field="vocabulary")
        return _check_vocabulary(obj, label)
    lines = text.splitlines()
    return _check_vocabulary([ln.strip() for ln in lines], label)


def _check_vocabulary(vocab: Sequence[str], label: str = "The vocabulary") -> list[str]:
    if isinstance(vocab, (str, bytes)) or not hasattr(vocab, "__len__"):
        raise DataError("Give the vocabulary as a list of tokens (id 0 first); read a file with load_vocabulary(path).",
                        code="vocabulary", field="vocabulary")
    vocab = [str(t) for t in vocab]
    if not vocab:
        raise DataError(f"{label} holds no tokens.", code="vocabulary", field="vocabulary")
    if len(vocab) > MAX_VOCABULARY:
        raise DataError(f"{label} holds {len(vocab):,} tokens; rnnviz reads at most {MAX_VOCABULARY:,}.",
                        code="too_big", field="vocabulary")
    seen: set = set()
    for t in vocab:
        if t in seen and t != "":
            raise DataError(f"{label} lists the token {t!r} twice; each token must have one id.",
                            code="vocabulary", field="vocabulary")
        seen.add(t)
    return vocab


def _text_columns(df: pd.DataFrame) -> list[str]:
    """Columns holding words: named like text, or text with spaces in most rows."""
    out = []
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        vals = col.dropna().astype(str).head(200)
        if _TEXT_RE.search(str(c)) or (len(vals) and float(vals.str.contains(r"\s", regex=True).mean()) >= 0.5):
            out.append(str(c))
    return out


def _vocabulary_needed(label: str, col: str) -> DataError:
    return DataError(f"{label} has a text column ('{col}'); reading its words needs the model's vocabulary. "
                     f"Pass vocabulary=[...] (or load_vocabulary(path)), or use a model file that holds its "
                     f"vocabulary (saved with rv.save_model).", code="vocabulary_needed", field="vocabulary")


def _lowercase(vocab: Sequence[str]) -> bool:
    """Whether text should be lower-cased: the vocabulary has no capital letters (special tokens aside)."""
    specials = set(_PAD_TOKENS) | set(_UNK_TOKENS)
    return not any(t != t.lower() for t in vocab if t not in specials)


#: Most characters in one text cell (a sequence's words), checked before it is split.
MAX_TEXT_CHARS = 1_000_000


def _encode_tokens(texts: Iterable[str], vocab: list[str], label: str, where: Sequence[str],
                   single: bool = False) -> tuple:
    """Texts -> (X int64 [N, T] padded with the pad id, lengths [N]), one text at a time.

    With ``single`` each text is one token (a long-form word column): X is [N, 1].

    Each text's size is checked before it is split, each sequence's length and the running
    total of tokens as they come, and the padded array's size before it is allocated.
    """
    index = {t: i for i, t in enumerate(vocab) if t != "" or i == 0}
    unk = _special_id(vocab, _UNK_TOKENS, default=None)
    pad = _special_id(vocab, _PAD_TOKENS)
    rows: list[np.ndarray] = []
    unknown: dict[str, int] = {}
    total = 0
    for i, text in enumerate(texts):
        if len(text) > MAX_TEXT_CHARS:
            raise _too_big(f"{label}: {where[i]} has {len(text):,} characters of text; rnnviz reads at most "
                           f"{MAX_TEXT_CHARS:,} per sequence. Shorten the texts.")
        words = [text.strip()] if single and text.strip() else text.split()
        if len(words) > 1 and single:
            raise DataError(f"{label}: {where[i]} holds {len(words)} words in one step; put one word per row.",
                            code="text", field="features")
        if not words:
            raise DataError(f"{label}: {where[i]} has no words; remove it or fill in its text.",
                            code="empty_text", field="text")
        if len(words) > MAX_STEPS:
            _check_size(1, len(words), 1)
        total += len(words)
        if total > MAX_CELLS // 2:
            raise _too_big(f"{label} holds more than {MAX_CELLS // 2:,} words; rnnviz handles at most that many. "
                           f"Upload fewer or shorter texts.")
        ids = [index.get(t, -1) for t in words]
        if -1 in ids:
            for t, v in zip(words, ids):
                if v == -1:
                    unknown[t] = unknown.get(t, 0) + 1
            if unk is not None:
                ids = [unk if v == -1 else v for v in ids]
        rows.append(np.asarray(ids, dtype=np.int32))
    if unknown and unk is None:
        top = sorted(unknown, key=lambda t: -unknown[t])[:5]
        raise DataError(f"{label} has {len(unknown):,} words the vocabulary does not hold (for example "
                        f"{', '.join(map(repr, top))}) and the vocabulary has no <unk> token for them. Use the "
                        f"vocabulary the model was trained with.", code="unknown_tokens", field="vocabulary")
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    t = int(lengths.max()) if len(rows) else 1
    _check_size(len(rows), t, 1)
    if len(rows) * t > MAX_CELLS // 2:                                 # int64 ids: twice a float32 value
        raise _too_big(f"The padded token ids would hold {len(rows) * t:,} values; rnnviz handles at most "
                       f"{MAX_CELLS // 2:,}. Upload fewer or shorter texts.")
    X = np.full((len(rows), t), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        X[i, : len(r)] = r
    return X, lengths


def _from_text_frame(df: pd.DataFrame, text_col: str, vocab: list[str], *, id_col, label_col, group_cols,
                     class_names, name: str, task, label: str) -> SequenceDataset:
    """One sequence per row: the words of ``text_col`` split on whitespace."""
    _need_column(df, text_col, "text column")
    used = {text_col}
    id_col = _role_column(df, id_col, _ID_RE, "sequence id", "id_col", "sequence id column", used)
    label_col = _role_column(df, label_col, _LABEL_TIERS, "label", "label_col", "label column", used)
    for c in group_cols or []:
        _need_column(df, c, "group column")
    if len(df) > MAX_SEQUENCES:
        _check_size(len(df), 1, 1)
    text = df[text_col].fillna("").astype(str)
    if _lowercase(vocab):
        text = text.str.lower()
    ids = df[id_col].astype(str).to_numpy() if id_col else np.arange(1, len(df) + 1).astype(str)
    where = [f"sequence '{i}'" for i in ids] if id_col else [f"row {i + 2}" for i in range(len(df))]
    X, lengths = _encode_tokens(text, vocab, label, where)
    groups = df[[c for c in (group_cols if group_cols is not None else df.columns) if c not in used]]
    y, cn = _encode_labels(None if not label_col else df[label_col].to_numpy(), class_names, task)
    return SequenceDataset(X=X, lengths=lengths, y=y, ids=ids, groups=groups.reset_index(drop=True),
                           feature_names=["token"], class_names=cn, name=name, vocabulary=vocab)


def _as_tokens(ds: SequenceDataset, vocab: list[str], label: str) -> SequenceDataset:
    """Integer ids read as numbers (one feature column, or NPZ ``X`` [N, T]) -> token data."""
    if ds.is_tokens:
        return replace(ds, vocabulary=vocab)
    if ds.n_features != 1:
        raise DataError(f"{label} has {ds.n_features} feature columns; token ids need exactly one (the id of each "
                        f"step's token), or a text column.", code="tokens_vs_numbers", field="features")
    x = ds.X[:, :, 0]
    valid = np.arange(ds.max_len)[None, :] < ds.lengths[:, None]
    v = x[valid]
    if len(v) and (not np.all(np.mod(v, 1) == 0) or v.min() < 0 or v.max() >= len(vocab)):
        bad = v[(np.mod(v, 1) != 0) | (v < 0) | (v >= len(vocab))][0]
        raise DataError(f"{label} has the token id {bad:g}, but the vocabulary's ids run from 0 to {len(vocab) - 1}; "
                        f"use the vocabulary the ids were made with.", code="vocabulary", field="vocabulary")
    X = np.where(valid, x, _special_id(vocab, _PAD_TOKENS)).astype(np.int64)
    return replace(ds, X=X, feature_names=["token"], vocabulary=vocab)


# ======================================================================== class order
def _is_int_text(s: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", s.strip()))


def class_order_candidates(ds: SequenceDataset) -> list[tuple[str, str, list[str]]]:
    """The class orders a model's outputs may follow, for a choice with each one's accuracy.

    A state dict does not say which output is which class; the usual answers are the order the
    data file declares, sorted labels (what scikit-learn's ``LabelEncoder``, ``np.unique`` and
    pandas categories give) and the order of first appearance. Never pick one by accuracy
    silently: show them all.

    Parameters
    ----------
    ds : a classification dataset (its ``class_names`` hold every label string of the file).

    Returns
    -------
    list of ``(key, label, names)``: ``key`` in ``"declared"`` (only when the file declares an
    order: the ``.ts`` ``@classLabel`` line, an NPZ ``class_names`` array), ``"sorted"``,
    ``"sorted_text"`` (only for whole-number labels whose text order differs from their number
    order: ``"1", "10", "2"`` is what ``LabelEncoder`` gives for labels read as text), ``"first"``
    (first appearance in the data; classes the file declares but does not use follow in their
    declared order); ``label`` a plain sentence naming it; ``names`` the class names, output 0
    first. Orders equal to an earlier one are kept (the label says so), so keys are stable. Empty
    for regression targets or unlabelled data.
    """
    if ds.y is None or ds.class_names is None:
        return []
    names = list(ds.class_names)
    if ds.declared_classes:
        names += [c for c in ds.declared_classes if c not in names]
    out: list[tuple[str, str, list[str]]] = []

    def add(key: str, label: str, order: list[str]) -> None:
        same = next((lab for _, lab, o in out if o == order), None)
        out.append((key, label + (f" (the same as: {same.split(' (')[0].lower()})" if same else ""), order))

    if ds.declared_classes:
        add("declared", "The order the data file declares", list(ds.declared_classes) +
            [c for c in names if c not in ds.declared_classes])
    if all(_is_int_text(c) for c in names):
        add("sorted", "Sorted by number", sorted(names, key=lambda c: int(c)))
        if sorted(names) != sorted(names, key=lambda c: int(c)):
            add("sorted_text", "Sorted as text, as labels read from a text file sort", sorted(names))
    else:
        add("sorted", "Sorted A to Z", sorted(names))
    first = [ds.class_names[i] for i in pd.unique(ds.y)]
    rest = ds.declared_classes or names
    add("first", "Order of first appearance in the data", first + [c for c in rest if c not in first])
    return out


def _placeholder_classes(names: Sequence[str] | None) -> bool:
    """True for the numbered names an inferred state dict gets ("class 0", "class 1", ...)."""
    return bool(names) and list(names) == [f"class {i}" for i in range(len(names))]


# ====================================================================== data vs model
def check_against_model(ds: SequenceDataset, model: Any, *,
                        class_names: Sequence[str] | None = None) -> SequenceDataset:
    """Check (and where safe, align) a dataset to a model; return the aligned dataset.

    - feature count must match ``model.config.input_size`` (or, for other models, whatever their
      first recurrent layer reads is not checked here);
    - when both carry real feature names (not ``feature 0`` ...), they must be the same names;
      the same names in another order are re-ordered to the model's order;
    - token data goes with a model with an embedding encoder (ids below its vocabulary size;
      when both carry a vocabulary, ids are re-mapped by token);
    - labels are aligned by name onto the model's classes (``class_names`` when given: the
      names of the model's outputs, output 0 first, for example one of
      :func:`class_order_candidates`; else ``model.class_names``). A model whose file does not
      name its classes (an inferred state dict: ``class 0``, ``class 1``, ...) and data with
      real class names raise an error that asks for the class order; labels the model does not
      know raise. Regression targets need no mapping.
    """
    cfg = getattr(model, "config", None)
    mnames = list(getattr(model, "feature_names", None) or [])
    n_model = getattr(cfg, "input_size", None) or (len(mnames) or None)
    default = lambda names: all(re.fullmatch(r"feature \d+|dim \d+|value|token", n) for n in names)  # noqa: E731
    embedding = getattr(cfg, "encoder", None) == "embedding"
    if ds.is_tokens or embedding:
        ds = _check_tokens(ds, model, cfg, embedding)
    elif mnames and not default(mnames) and not default(ds.feature_names) and ds.feature_names != mnames:
        missing_ = [m for m in mnames if m not in ds.feature_names]
        if not missing_ and len(ds.feature_names) >= len(mnames):
            idx = [ds.feature_names.index(m) for m in mnames]
            ds = replace(ds, X=ds.X[:, :, idx], feature_names=list(mnames))
        else:
            hint = "; ".join(f"'{m}'{_suggest(m, ds.feature_names)}" for m in missing_[:3])
            raise DataError(f"The model reads the features {', '.join(mnames)}, but the data lacks {hint}. "
                            f"Rename the data's columns to the model's feature names, or choose the feature "
                            f"columns in the model's order (feature_cols=[...]).",
                            code="feature_names", field="features")
    if n_model is not None and ds.n_features != n_model:
        head = (f"The model reads {n_model} features per step but the data has {ds.n_features} "
                f"({', '.join(ds.feature_names[:8])}).")
        order = _order_like_feature(ds) if ds.n_features > n_model else None
        if order is not None:
            raise DataError(f"{head} The column '{order}' counts up within every sequence, like a step order, "
                            f"so it is probably not a feature; make it the order column with order_col='{order}'.",
                            code="feature_count", field="order")
        raise DataError(f"{head} Choose the matching data file or feature columns.",
                        code="feature_count", field="features")
    task = getattr(cfg, "task", None)
    mclasses = getattr(model, "class_names", None)
    if class_names is not None:
        mclasses = [str(c) for c in class_names]
        n_out = getattr(cfg, "num_outputs", None)
        if n_out is not None and task != "regression" and len(mclasses) != n_out:
            raise DataError(f"The class order names {len(mclasses)} classes but the model has {n_out} outputs; "
                            f"name one class per output.", code="bad_class_order", field="class_order")
    if ds.y is not None and task == "regression" and ds.class_names is not None:
        names = pd.to_numeric(pd.Series(ds.class_names), errors="coerce")
        if names.isna().any():
            raise DataError("The model predicts numbers (regression) but the data's labels are classes; "
                            "choose the matching label column or model.", code="task", field="label")
        ds = replace(ds, y=names.to_numpy(np.float32)[ds.y], class_names=None, declared_classes=None)
    if ds.y is not None and mclasses and task != "regression":
        if ds.class_names is None:
            if not np.issubdtype(ds.y.dtype, np.integer):
                raise DataError("The model predicts classes but the data's labels are not whole class numbers "
                                "or class names; check the label column.", code="task", field="label")
            ds_names = [str(i) for i in range(int(ds.y.max()) + 1)]
        else:
            ds_names = ds.class_names
        present = [ds_names[i] for i in np.unique(ds.y)]
        if all(p in mclasses for p in present):
            remap = np.array([mclasses.index(c) if c in mclasses else -1 for c in ds_names])
            y = remap[ds.y]
        elif class_names is None and all(p.isdigit() and int(p) < len(mclasses) for p in present):
            y = np.array([int(ds_names[i]) for i in ds.y], dtype=np.int64)   # class numbers
        elif class_names is None and _placeholder_classes(mclasses):
            shown = ", ".join(map(repr, present[:5])) + (" ..." if len(present) > 5 else "")
            raise DataError(f"The model's file does not name its classes (its {len(mclasses)} outputs are numbered "
                            f"'class 0' to 'class {len(mclasses) - 1}'), so rnnviz cannot tell which output stands "
                            f"for which of the data's labels ({shown}). Choose the class order the model was "
                            f"trained with (for example class_names=[...] in the order of class_order_candidates"
                            f"(ds), or models.with_class_names(model, names)).",
                            code="class_order_needed", field="class_order")
        else:
            unknown = [p for p in present if p not in mclasses]
            raise DataError(f"The data has labels the model does not know ({', '.join(map(repr, unknown[:5]))}); "
                            f"the model's classes are {', '.join(map(repr, mclasses))}.",
                            code="unknown_labels", field="class_order" if class_names is not None else "label")
        ds = replace(ds, y=y, class_names=list(mclasses))
    return ds


def _check_tokens(ds: SequenceDataset, model: Any, cfg: Any, embedding: bool) -> SequenceDataset:
    """Token data against a model: both must be about token ids; ids below the vocabulary size."""
    if cfg is None:
        return ds
    if not embedding:
        raise DataError("The data holds words (token ids) but the model reads numbers per step; choose a "
                        "model with an embedding layer, or a data file of numeric features.",
                        code="tokens_vs_numbers", field="file")
    if not ds.is_tokens:
        raise DataError("The model reads words (token ids, through an embedding layer) but the data holds "
                        "numeric features; choose a data file with a text column or token ids.",
                        code="tokens_vs_numbers", field="file")
    mvocab = getattr(model, "vocabulary", None)
    if mvocab and ds.vocabulary and list(mvocab) != list(ds.vocabulary):
        index = {t: i for i, t in enumerate(mvocab)}
        lost = [t for t in ds.vocabulary if t not in index]
        unk = _special_id(list(mvocab), _UNK_TOKENS, default=None)
        if lost and unk is None:
            raise DataError(f"The data's vocabulary has words the model's does not ({', '.join(map(repr, lost[:5]))}); "
                            f"use the model's own vocabulary for the data.", code="vocabulary", field="vocabulary")
        table = np.array([index.get(t, unk if unk is not None else 0) for t in ds.vocabulary], dtype=np.int64)
        X = table[ds.X]
        X[np.arange(ds.max_len)[None, :] >= ds.lengths[:, None]] = _special_id(list(mvocab), _PAD_TOKENS)
        ds = replace(ds, X=X, vocabulary=list(mvocab))
    vocab_size = int(getattr(cfg, "vocab_size", 0) or 0)
    if vocab_size:
        valid = np.arange(ds.max_len)[None, :] < ds.lengths[:, None]
        top = int(ds.X[valid].max()) if valid.any() else 0
        if top >= vocab_size or int(ds.X[valid].min()) < 0:
            raise DataError(f"The data has token id {top}, but the model knows {vocab_size} tokens (ids 0 to "
                            f"{vocab_size - 1}); use the vocabulary the model was trained with.",
                            code="vocabulary", field="vocabulary")
    return ds
