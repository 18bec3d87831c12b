"""CSV and Parquet tables read within the limits (rows counted before parsing, Parquet in batches)."""
from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd

from . import limits as _limits  # read at call time: a limit set on the module holds
from ..errors import DataError
from .limits import read_bytes, table_limits, too_big


def open_data(path_or_bytes, name) -> tuple[bytes, str | None, str, str]:
    """(content, file name, how messages name the file, kind: csv/parquet/npz/ts)."""
    data, name = read_bytes(path_or_bytes, name, _limits.MAX_DATA_BYTES, DataError, "data")
    label = f"'{name}'" if name else "The data file"
    ext = Path(name).suffix.lower() if name else ""
    if name and ext not in _limits.DATA_EXTENSIONS:
        raise DataError(f"{label} has the ending '{ext or '(none)'}', which rnnviz does not read; "
                        f"use a .csv, .parquet, .npz or .ts file.", code="file_type", field="file")
    if len(data) == 0:
        raise DataError(f"{label} is empty; upload the data file again.", code="empty_file", field="file")
    kind = _sniff_data(data, ext)
    if kind == "unknown":
        raise DataError(f"{label} is not a CSV, Parquet, NPZ or .ts data file rnnviz can read.",
                        code="unreadable", field="file")
    return data, name, label, kind


LINE_BREAK = re.compile(rb"\r\n|\r|\n")


#: Bytes scanned per step when counting lines: ``bytes.count`` holds the GIL, so a 200 MB file
#: counted in one call stalls every other session's script for ~0.4 s; 4 MB steps take a few ms.
_COUNT_CHUNK = 4 << 20


def count_lines(data: bytes) -> int:
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


def read_table(data: bytes, kind: str, label: str) -> pd.DataFrame:
    """A CSV or Parquet table, with its size refused from counts before it is parsed."""
    if kind == "parquet":
        return read_parquet(data, label)
    if b"\x00" in data[:4096]:
        raise DataError(f"{label} is not a text CSV file (it holds binary data); export it as CSV again.",
                        code="unreadable", field="file")
    rows = count_lines(data) - 1                                     # minus the header
    if rows > _limits.MAX_ROWS:
        table_limits(label, rows, 1, more=True)
    m = LINE_BREAK.search(data)
    first = data[: m.start() if m else len(data)].lstrip(b"\xef\xbb\xbf")
    sep = b"," if b"," in first else next((d for d in (b";", b"\t", b"|") if d in first), b",")
    table_limits(label, rows, first.count(sep) + 1)                   # quoted separators only over-count
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


def read_parquet(data: bytes, label: str) -> pd.DataFrame:
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
    table_limits(label, rows, cols)
    if decoded > _limits.MAX_DECODED_BYTES:
        raise too_big(f"{label} unpacks to {decoded / 2**20:,.0f} MB; rnnviz reads at most "
                       f"{_limits.MAX_DECODED_BYTES // 2**20:,} MB of table. Upload fewer rows or columns.")
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
            if seen > _limits.MAX_ROWS or nbytes > _limits.MAX_DECODED_BYTES:
                raise too_big(f"{label} holds more than its header says (over {_limits.MAX_ROWS:,} rows or "
                               f"{_limits.MAX_DECODED_BYTES // 2**20:,} MB); rnnviz stopped reading it. Export it again.")
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
