"""Text data: a vocabulary file, words encoded as token ids, and token datasets."""
from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Iterable, Sequence

import numpy as np
import pandas as pd

from ..arrays import valid_mask
from . import limits as _limits  # read at call time: a limit set on the module holds
from ..errors import DataError
from .columns import ID_RE, LABEL_TIERS, need_column, role_column
from .dataset import PAD_TOKENS, SequenceDataset, UNK_TOKENS, encode_labels, special_id
from .limits import check_size, read_bytes, too_big


TEXT_RE = re.compile(r"^(text|texts|review|reviews|sentence|sentences|document|doc|tokens|words|comment|comments|"
                      r"content|body|utterance|phrase|tweet|message)$", re.I)


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
    data, name = read_bytes(path_or_bytes, name, _limits.MAX_VOCABULARY_BYTES, DataError, "vocabulary")
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
        return check_vocabulary(obj, label)
    lines = text.splitlines()
    return check_vocabulary([ln.strip() for ln in lines], label)


def check_vocabulary(vocab: Sequence[str], label: str = "The vocabulary") -> list[str]:
    if isinstance(vocab, (str, bytes)) or not hasattr(vocab, "__len__"):
        raise DataError("Give the vocabulary as a list of tokens (id 0 first); read a file with load_vocabulary(path).",
                        code="vocabulary", field="vocabulary")
    vocab = [str(t) for t in vocab]
    if not vocab:
        raise DataError(f"{label} holds no tokens.", code="vocabulary", field="vocabulary")
    if len(vocab) > _limits.MAX_VOCABULARY:
        raise DataError(f"{label} holds {len(vocab):,} tokens; rnnviz reads at most {_limits.MAX_VOCABULARY:,}.",
                        code="too_big", field="vocabulary")
    seen: set = set()
    for t in vocab:
        if t in seen and t != "":
            raise DataError(f"{label} lists the token {t!r} twice; each token must have one id.",
                            code="vocabulary", field="vocabulary")
        seen.add(t)
    return vocab


def text_columns(df: pd.DataFrame) -> list[str]:
    """Columns holding words: named like text, or text with spaces in most rows."""
    out = []
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            continue
        vals = col.dropna().astype(str).head(200)
        if TEXT_RE.search(str(c)) or (len(vals) and float(vals.str.contains(r"\s", regex=True).mean()) >= 0.5):
            out.append(str(c))
    return out


def vocabulary_needed(label: str, col: str) -> DataError:
    return DataError(f"{label} has a text column ('{col}'); reading its words needs the model's vocabulary. "
                     f"Pass vocabulary=[...] (or load_vocabulary(path)), or use a model file that holds its "
                     f"vocabulary (saved with rv.save_model).", code="vocabulary_needed", field="vocabulary")


def is_lowercase_vocabulary(vocab: Sequence[str]) -> bool:
    """Whether text should be lower-cased: the vocabulary has no capital letters (special tokens aside)."""
    specials = set(PAD_TOKENS) | set(UNK_TOKENS)
    return not any(t != t.lower() for t in vocab if t not in specials)


def encode_tokens(texts: Iterable[str], vocab: list[str], label: str, where: Sequence[str],
                   single: bool = False) -> tuple:
    """Texts -> (X int64 [N, T] padded with the pad id, lengths [N]), one text at a time.

    With ``single`` each text is one token (a long-form word column): X is [N, 1].

    Each text's size is checked before it is split, each sequence's length and the running
    total of tokens as they come, and the padded array's size before it is allocated.
    """
    index = {t: i for i, t in enumerate(vocab) if t != "" or i == 0}
    unk = special_id(vocab, UNK_TOKENS, default=None)
    pad = special_id(vocab, PAD_TOKENS)
    rows: list[np.ndarray] = []
    unknown: dict[str, int] = {}
    total = 0
    for i, text in enumerate(texts):
        if len(text) > _limits.MAX_TEXT_CHARS:
            raise too_big(f"{label}: {where[i]} has {len(text):,} characters of text; rnnviz reads at most "
                           f"{_limits.MAX_TEXT_CHARS:,} per sequence. Shorten the texts.")
        words = [text.strip()] if single and text.strip() else text.split()
        if len(words) > 1 and single:
            raise DataError(f"{label}: {where[i]} holds {len(words)} words in one step; put one word per row.",
                            code="text", field="features")
        if not words:
            raise DataError(f"{label}: {where[i]} has no words; remove it or fill in its text.",
                            code="empty_text", field="text")
        if len(words) > _limits.MAX_STEPS:
            check_size(1, len(words), 1)
        total += len(words)
        if total > _limits.MAX_CELLS // 2:
            raise too_big(f"{label} holds more than {_limits.MAX_CELLS // 2:,} words; rnnviz handles at most that many. "
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
    check_size(len(rows), t, 1)
    if len(rows) * t > _limits.MAX_CELLS // 2:                                 # int64 ids: twice a float32 value
        raise too_big(f"The padded token ids would hold {len(rows) * t:,} values; rnnviz handles at most "
                       f"{_limits.MAX_CELLS // 2:,}. Upload fewer or shorter texts.")
    X = np.full((len(rows), t), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        X[i, : len(r)] = r
    return X, lengths


def from_text_frame(df: pd.DataFrame, text_col: str, vocab: list[str], *, id_col, label_col, group_cols,
                     class_names, name: str, task, label: str) -> SequenceDataset:
    """One sequence per row: the words of ``text_col`` split on whitespace."""
    need_column(df, text_col, "text column")
    used = {text_col}
    id_col = role_column(df, id_col, ID_RE, "sequence id", "id_col", "sequence id column", used)
    label_col = role_column(df, label_col, LABEL_TIERS, "label", "label_col", "label column", used)
    for c in group_cols or []:
        need_column(df, c, "group column")
    if len(df) > _limits.MAX_SEQUENCES:
        check_size(len(df), 1, 1)
    text = df[text_col].fillna("").astype(str)
    if is_lowercase_vocabulary(vocab):
        text = text.str.lower()
    ids = df[id_col].astype(str).to_numpy() if id_col else np.arange(1, len(df) + 1).astype(str)
    where = [f"sequence '{i}'" for i in ids] if id_col else [f"row {i + 2}" for i in range(len(df))]
    X, lengths = encode_tokens(text, vocab, label, where)
    groups = df[[c for c in (group_cols if group_cols is not None else df.columns) if c not in used]]
    y, cn = encode_labels(None if not label_col else df[label_col].to_numpy(), class_names, task)
    return SequenceDataset(X=X, lengths=lengths, y=y, ids=ids, groups=groups.reset_index(drop=True),
                           feature_names=["token"], class_names=cn, name=name, vocabulary=vocab)


def as_tokens(ds: SequenceDataset, vocab: list[str], label: str) -> SequenceDataset:
    """Integer ids read as numbers (one feature column, or NPZ ``X`` [N, T]) -> token data."""
    if ds.is_tokens:
        return replace(ds, vocabulary=vocab)
    if ds.n_features != 1:
        raise DataError(f"{label} has {ds.n_features} feature columns; token ids need exactly one (the id of each "
                        f"step's token), or a text column.", code="tokens_vs_numbers", field="features")
    x = ds.X[:, :, 0]
    valid = valid_mask(ds.lengths, ds.max_len)
    v = x[valid]
    if len(v) and (not np.all(np.mod(v, 1) == 0) or v.min() < 0 or v.max() >= len(vocab)):
        bad = v[(np.mod(v, 1) != 0) | (v < 0) | (v >= len(vocab))][0]
        raise DataError(f"{label} has the token id {bad:g}, but the vocabulary's ids run from 0 to {len(vocab) - 1}; "
                        f"use the vocabulary the ids were made with.", code="vocabulary", field="vocabulary")
    X = np.where(valid, x, special_id(vocab, PAD_TOKENS)).astype(np.int64)
    return replace(ds, X=X, feature_names=["token"], vocabulary=vocab)


# ======================================================================== class order
def is_int_text(s: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", s.strip()))
