"""inspect_columns: what each column of a table looks like, and the guess for each role."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from .columns import ID_RE, LABEL_RE, LABEL_TIERS, ORDER_RE, constant_per_seq, tier_hits, weak_label
from .tables import open_data, read_table
from .tokens import TEXT_RE


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
        data, name, label, kind = open_data(source, name)
        if kind in ("npz", "ts"):
            return ColumnGuess(kind=kind, columns=[], numeric=[], candidates={}, missing={}, problems=[],
                               feature_cols=[], group_cols=[])
        df = read_table(data, kind, label)
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
        hits = tier_hits(cands, pattern)
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            problems.append(f"Several columns could be the {role} ({', '.join(hits)}); choose one.")
        elif required:
            problems.append(f"Could not tell which column is the {role}; choose it.")
        return None

    floats = [c for c in numeric if pd.api.types.is_float_dtype(df[c])]
    text_like = [c for c in cols if textual(c)]
    g.candidates["id"] = likely(ID_RE, set(), [c for c in cols if c not in floats and c not in text_like])
    used: set = set()
    g.text_col = one("text", [c for c in cols if TEXT_RE.search(c) or c in text_like],
                     re.compile(".*") if len(text_like) == 1 else TEXT_RE, False)
    g.candidates["text"] = likely(TEXT_RE, set(), text_like)
    if g.text_col:
        used.add(g.text_col)
    g.id_col = one("sequence id", [c for c in cols if c not in used], ID_RE, required=not g.text_col)
    if g.id_col:
        used.add(g.id_col)
    g.candidates["order"] = likely(ORDER_RE, used, [c for c in numeric if c not in used])
    g.order_col = one("step order", [c for c in cols if c not in used], ORDER_RE, False)
    if g.order_col:
        used.add(g.order_col)
    g.candidates["label"] = likely(LABEL_TIERS, used, [c for c in cols if c not in used and c not in text_like])
    g.label_col = one("label", [c for c in cols if c not in used], LABEL_RE, False)
    if g.label_col is None and not any(LABEL_RE.search(c) for c in cols if c not in used):
        g.label_col = weak_label(df, None if g.text_col else g.id_col, set(used))
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
        if constant_per_seq(df[c], codes, n) and (not isnum or multi or g.text_col):
            g.group_cols.append(c)
        elif isnum:
            g.feature_cols.append(c)
        else:
            problems.append(f"The column '{c}' holds text that changes within a sequence, so it can be neither a "
                            f"feature nor a group; it is left out.")
    g.candidates["groups"] = [c for c in rest if constant_per_seq(df[c], codes, n)]
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
