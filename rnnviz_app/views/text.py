"""Text from files shown as text: Markdown escaping for names inside app sentences, and CSV
exports whose cells cannot run as spreadsheet formulas (OWASP CSV-injection rule)."""
from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'^])")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# GitHub-flavoured Markdown turns bare addresses into links even when their punctuation is
# escaped (https://..., www...., name@host); an invisible word joiner breaks each pattern.
_WJ = "\u2060"
_AUTOLINK = re.compile(r"(?i)(https?|ftp|mailto|www)(?=\\[:.])|(?<=\w)(@)")


def md_escape(text: object, max_len: int = 300) -> str:
    """``text`` safe to place inside Markdown: every Markdown/HTML character backslash-escaped,
    bare web and mail addresses broken by an invisible word joiner (U+2060) so they do not become
    links, line breaks flattened, cut to ``max_len`` characters. Renders as the literal text."""
    s = " ".join(str(text).split())
    if len(s) > max_len:
        s = s[: max_len - 1] + "…"
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return _AUTOLINK.sub(lambda m: (m.group(1) or "") + _WJ + (m.group(2) or ""), s)


def safe_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: strings starting with ``= + - @``, tab or carriage
    return get a leading apostrophe (numbers are left as they are)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def safe_csv(df: pd.DataFrame) -> bytes:
    """CSV bytes of ``df`` with formula-leading text cells and column names neutralised."""
    out = df.copy()
    out.columns = [safe_cell(str(c)) for c in out.columns]
    for c in out.columns:
        col = out[c]
        if col.dtype == object or pd.api.types.is_string_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
            out[c] = col.astype(object).map(safe_cell)
    # text quoted: a carriage return or a separator inside a cell cannot start a new cell or row
    return out.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode()


def format_accuracy(acc: float) -> str:
    """A share as a percentage with one decimal (``"91.3%"``), or two when it lands exactly on a
    half of the last digit (146/160: ``"91.25%"``), which rounds differently by convention."""
    tenths = float(acc) * 1000
    return f"{acc:.2%}" if abs(abs(tenths - np.floor(tenths)) - 0.5) < 1e-6 else f"{acc:.1%}"
