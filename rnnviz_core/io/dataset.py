"""SequenceDataset: padded sequences with lengths, labels, ids, groups and names; from arrays."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..arrays import valid_mask
from ..errors import DataError
from .limits import check_size


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
        return special_id(self.vocabulary, PAD_TOKENS) if self.vocabulary else 0

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
    check_size(*X.shape)
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
    valid = valid_mask(lengths, t)                     # (N, T)
    X[~valid] = 0.0
    X, lengths, keep = _handle_missing(X, lengths, valid, ids, feature_names, missing)
    ids = ids[keep]
    if groups is not None:
        groups = groups.reset_index(drop=True).iloc[keep].reset_index(drop=True)
    y_arr, class_names = encode_labels(None if y is None else np.asarray(y)[keep], class_names, task)
    return SequenceDataset(X=X, lengths=lengths, y=y_arr, ids=ids, groups=groups,
                           feature_names=feature_names, class_names=class_names, name=name)


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


def encode_labels(y: np.ndarray | None, class_names: Sequence[str] | None, task: str | None = None):
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


# ============================================================================ tokens
#: Vocabulary entries read as the padding and the unknown-word token (first one found wins).
PAD_TOKENS = ("<pad>", "<PAD>", "[PAD]", "<blank>")
UNK_TOKENS = ("<unk>", "<UNK>", "[UNK]", "<oov>", "<OOV>")


def special_id(vocabulary: Sequence[str] | None, tokens: Sequence[str], default: int | None = 0) -> int | None:
    """Index of the first of ``tokens`` in ``vocabulary``, else ``default``."""
    for t in tokens:
        if vocabulary and t in vocabulary:
            return list(vocabulary).index(t)
    return default
