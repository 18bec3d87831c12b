"""Every size limit of the data readers, and reading a path, bytes or an upload within a limit."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError

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


def check_size(n: int, t: int, f: int) -> None:
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


def too_big(msg: str) -> DataError:
    return DataError(msg, code="too_big", field="file")


def table_limits(label: str, rows: int, cols: int, more: bool = False) -> None:
    """Refuse a table by its row and column counts, before any per-column work."""
    if cols > MAX_COLUMNS:
        raise too_big(f"{label} has {cols:,} columns; rnnviz reads at most {MAX_COLUMNS:,} (up to "
                       f"{MAX_FEATURES:,} features). Keep only the columns the model needs.")
    if rows > MAX_ROWS:
        raise too_big(f"{label} has {'more than ' if more else ''}{MAX_ROWS if more else rows:,} rows; rnnviz "
                       f"handles at most {MAX_ROWS:,}. Upload a sample of the sequences.")
    if rows * cols > MAX_TABLE_CELLS:
        raise too_big(f"{label} has {rows:,} rows of {cols:,} columns ({rows * cols:,} values); rnnviz reads "
                       f"at most {MAX_TABLE_CELLS:,}. Upload fewer rows or leave out unused columns.")


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


#: Most arrays in an NPZ archive.
MAX_NPZ_ARRAYS = 256


#: Most tokens in a vocabulary, and the largest vocabulary file (bytes).
MAX_VOCABULARY = 1_000_000
MAX_VOCABULARY_BYTES = 50 * 1024 * 1024


#: Most characters in one text cell (a sequence's words), checked before it is split.
MAX_TEXT_CHARS = 1_000_000
