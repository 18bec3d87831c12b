"""load_data: one entry for every format (CSV, Parquet, NPZ, UCR/UEA .ts, text with a vocabulary)."""
from __future__ import annotations

import os
import re
from typing import BinaryIO, Sequence

import pandas as pd

from . import limits as _limits  # read at call time: a limit set on the module holds
from ..errors import DataError
from .columns import from_long_frame
from .dataset import SequenceDataset
from .npz import load_npz
from .tables import open_data, read_table
from .tokens import as_tokens, check_vocabulary, encode_tokens, from_text_frame, is_lowercase_vocabulary, text_columns, vocabulary_needed
from .ts import load_ts


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

    Formats (decided by content; the ending must be one of ``_limits.DATA_EXTENSIONS``): CSV and
    Parquet long form, NPZ (``X`` [N, T, F], optional ``lengths``, ``y``, ``ids``,
    ``class_names``, ``feature_names`` and any other [N] arrays as group columns; read with
    ``allow_pickle=False``), and the UCR/UEA ``.ts`` format.
    """
    data, name, label, kind = open_data(path_or_bytes, name)
    long_kw = dict(id_col=id_col, order_col=order_col, label_col=label_col, feature_cols=feature_cols,
                   group_cols=group_cols, class_names=class_names, missing=missing, name=name or "", task=task)
    vocab = None if vocabulary is None else check_vocabulary(vocabulary)
    if kind == "npz":
        ds = load_npz(data, label, name or "", class_names, missing, task)
        return ds if vocab is None else as_tokens(ds, vocab, label)
    if kind == "ts":
        return load_ts(data, label, name or "", class_names, missing, task)
    df = read_table(data, kind, label)
    del data
    df.columns = [str(c).strip() for c in df.columns]
    if text_col is None and vocab is not None and feature_cols is None:
        found = [c for c in text_columns(df) if c not in (id_col, label_col)]
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
            ids, _ = encode_tokens(col.str.lower() if is_lowercase_vocabulary(vocab) else col, vocab, label, where, single=True)
            df[c] = ids[:, 0]
    if text_col:
        if vocab is None:
            raise vocabulary_needed(label, text_col)
        return from_text_frame(df, text_col, vocab, id_col=id_col, label_col=label_col, group_cols=group_cols,
                                class_names=class_names, name=name or "", task=task, label=label)
    try:
        ds = from_long_frame(df, **long_kw)
    except DataError as e:
        texts = text_columns(df)
        if vocab is None and texts and e.code in ("unknown_column", "no_features", "text_feature"):
            raise vocabulary_needed(label, texts[0]) from None
        raise
    return ds if vocab is None else as_tokens(ds, vocab, label)
