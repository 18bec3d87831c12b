"""A long table (one row per step) turned into sequences: the id, order, label and feature columns
found by name or given, checked, and the sequences built."""
from __future__ import annotations

import difflib
import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from . import limits as _limits  # read at call time: a limit set on the module holds
from ..errors import DataError
from .dataset import SequenceDataset, from_arrays
from .limits import check_size


# -------------------------------------------------------------------------- long form
ID_RE = re.compile(r"^(?!(?:token|word|vocab|char|term)[_\s]?id$)"          # a token's id is not a sequence id
                    r"(?:(?:.*[_\s])?id|id[_\s].*|(?:sequence|seq|series|sample|case|subject|entity)"
                    r"(?:[_\s]?(?:id|no|key|name))?)$", re.I)
ORDER_RE = re.compile(r"^(step|steps|t|timestep|time_step|time_idx|order|seq_no|step_no|index|idx|position_in_sequence|"
                       r"date|datetime|timestamp|race_no|race_number|step_number)$|(_no|_num|_number|_step|_index|_date)$", re.I)
LABEL_RE = re.compile(r"^(label|labels|y|target|targets|class|classes|outcome|category|sentiment|sentiments|"
                       r"polarity|emotion|stance|verdict)$|^(label|target|class|sentiment|polarity)[_\s]|^next[_\s]|"
                       r"[_\s](label|target|class|sentiment|polarity)$", re.I)
#: names taken as the label only when no column has one of the names above (a "score" column
#: beside a "label" column is a feature, not a second label)
_LABEL_WEAK_RE = re.compile(r"^(rating|ratings|score|scores|stars|grade|y_true|true_y|response|answer)$|"
                            r"^(rating|score|stars)[_\s]|[_\s](rating|score|stars)$", re.I)
LABEL_TIERS = (LABEL_RE, _LABEL_WEAK_RE)


def suggest_column(name: str, columns: Iterable[str]) -> str:
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


def need_column(df: pd.DataFrame, col: str, role: str) -> str:
    if col not in df.columns:
        cols = ", ".join(map(str, list(df.columns)[:20]))
        raise DataError(f"There is no column '{col}' (given as the {role}).{suggest_column(col, df.columns)} "
                        f"The columns are: {cols}.", code="missing_column", field=_ROLE_FIELD.get(role))
    return col


def order_like_feature(ds) -> str | None:
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


def role_column(df: pd.DataFrame, given: str | None, pattern: re.Pattern, what: str, arg: str,
                 label: str, used: set) -> str | None:
    """The optional column for one role: the one given (checked), else the one its name gives away,
    else None; the column found is added to ``used``."""
    col = given if given is not None else _pick(df, pattern, what, arg, used, required=False)
    if col:
        used.add(need_column(df, col, label))
    return col


def tier_hits(cands: Iterable[str], pattern: re.Pattern | tuple) -> list[str]:
    """The candidates whose name matches the first tier of ``pattern`` (a pattern or a tuple of
    patterns, strongest first) that any candidate matches."""
    cands = list(cands)
    for pat in (pattern if isinstance(pattern, tuple) else (pattern,)):
        hits = [c for c in cands if pat.search(str(c))]
        if hits:
            return hits
    return []


def weak_label(df: pd.DataFrame, id_col: str | None, used: set) -> str | None:
    """A long-form table's label among the weaker names ("rating", "score", ...): only a single such
    column that holds one value per sequence (a per-step score is a feature); added to ``used``."""
    hits = tier_hits([c for c in df.columns if c not in used], (_LABEL_WEAK_RE,))
    if len(hits) != 1:
        return None
    col = hits[0]
    if id_col is not None and int(df.groupby(id_col, sort=False)[col].nunique(dropna=False).max()) > 1:
        return None
    used.add(col)
    return col


def _pick(df: pd.DataFrame, pattern: re.Pattern | tuple, role: str, kwarg: str, exclude: set,
          required: bool) -> str | None:
    cands = tier_hits([c for c in df.columns if c not in exclude], pattern)
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
    if len(df) > _limits.MAX_ROWS:
        raise DataError(f"The table has {len(df):,} rows; rnnviz handles at most {_limits.MAX_ROWS:,}. "
                        f"Upload a sample of the sequences.", code='too_big', field=None)
    df = df.copy(deep=False)                                            # the caller's frame keeps its names
    df.columns = [str(c).strip() for c in df.columns]
    if len(set(df.columns)) != len(df.columns):
        dup = pd.Series(df.columns)[pd.Series(df.columns).duplicated()].iloc[0]
        raise DataError(f"The column name '{dup}' appears twice; give every column a different name.", code='duplicate_column', field='file')
    used: set = set()
    if id_col is None:
        id_col = _pick(df, ID_RE, "sequence id", "id_col", used, required=True)
    used.add(need_column(df, id_col, "sequence id column"))
    order_col = role_column(df, order_col, ORDER_RE, "step order", "order_col", "order column", used)
    if label_col is None:
        label_col = role_column(df, None, LABEL_RE, "label", "label_col", "label column", used) or \
            weak_label(df, id_col, used)
    else:
        label_col = role_column(df, label_col, LABEL_TIERS, "label", "label_col", "label column", used)
    for c in list(feature_cols or []) + list(group_cols or []):
        need_column(df, c, "feature column" if c in (feature_cols or []) else "group column")
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
            [c for c in rest if constant_per_seq(df[c], codes, n)]
    else:
        group_cols = list(group_cols) if group_cols is not None else []
        feature_cols = []
        for c in candidates:
            if c in group_cols:
                continue
            col = df[c]
            numeric = pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
            if constant_per_seq(col, codes, n) and (not numeric or multi.any()):
                group_cols.append(c)
            elif numeric:
                feature_cols.append(c)
            else:
                _raise_non_numeric(df, c, df[id_col].astype(str))
        if not feature_cols:
            raise DataError("No numeric feature columns were found (every other column holds text or one value "
                            "per sequence); name them with feature_cols=[...].", code='no_features', field='features')
    for c in group_cols:
        if not constant_per_seq(df[c], codes, n):
            first = df.groupby(codes, sort=False)[c].nunique(dropna=False)
            bad = uniques[int(np.flatnonzero(first.to_numpy() > 1)[0])]
            raise DataError(f"The group column '{c}' changes within sequence '{bad}'; a group column needs one "
                            f"value per sequence. Use it as a feature instead, or fix the rows.", code='group_changes', field='groups')
    check_size(n, int(lengths.max()), len(feature_cols))
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


def constant_per_seq(col: pd.Series, codes: np.ndarray, n: int) -> bool:
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
