"""Reading a bundle's sequence table lazily: only the rows and columns a view asks for.

:class:`LazyTable` reads the Parquet parts through the bundle's own file access (a folder or one
``.rnnviz`` file; :class:`rnnviz_core.bundle_files.BundleFiles`) with range reads: the footer of
each part, then only the column chunks of the row groups a query needs (projection), skipping row
groups by the ``row`` column's statistics (filters). Memory follows one row group, whatever the
bundle's size::

    b = bundle.open("big.rnnviz", read=False)     # checked, nothing large read
    t = b.lazy()
    t.find_ids("s12", limit=20)                   # ids containing "s12": [seq, id], stops at 20
    t.rows([5, 70_000], columns=["id", "confidence"])
    t.steps([5, 70_000], "score:grad_norm")       # float32 [2, T], NaN past each length
    t.column("confidence")                        # one column of every sequence (N values)

Dataset-level views read the aggregates computed at build time
(:mod:`rnnviz_core.bundle_aggregates`) instead of scanning rows.
"""
from __future__ import annotations

import io
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from .errors import BundleError


class _RangeFile(io.RawIOBase):
    """A read-only, seekable file over ``BundleFiles.read_range`` (what pyarrow reads from)."""

    def __init__(self, files: Any, name: str, size: int):
        self._files, self._name, self._size, self._pos = files, name, int(size), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, min(self._size, base + int(offset)))
        return self._pos

    def readinto(self, buf: Any) -> int:
        n = min(len(buf), self._size - self._pos)
        if n <= 0:
            return 0
        data = self._files.read_range(self._name, self._pos, n)
        buf[: len(data)] = data
        self._pos += len(data)
        return len(data)


class LazyTable:
    """The sequence table of an opened bundle, read part by part and row group by row group."""

    def __init__(self, bundle: Any):
        self._b = bundle
        self._parts = sorted(n for n in bundle.manifest["files"] if n.startswith("sequences/"))
        self._meta: dict[str, Any] = {}

    def _md(self, name: str) -> Any:
        """A part's footer: the one the open check read, or read now (its footer only)."""
        metas = getattr(self._b, "_part_metas", None) or {}
        if name not in metas:
            from .bundle_check import parquet_meta

            size = int(self._b.manifest["files"][name]["bytes"])
            metas[name] = parquet_meta(lambda a, k: self._b._files.read_range(name, a, k), name, size)
            self._b._part_metas = metas
        return metas[name]

    def _file(self, name: str) -> Any:
        import pyarrow.parquet as pq

        size = int(self._b.manifest["files"][name]["bytes"])
        return pq.ParquetFile(_RangeFile(self._b._files, name, size), metadata=self._md(name), pre_buffer=False)

    def _row_ranges(self, name: str) -> list[tuple[int, int]]:
        """(min row, max row) of each row group of a part, from its footer's statistics."""
        if name not in self._meta:
            md = self._md(name)
            col = md.schema.to_arrow_schema().get_field_index("row")
            out = []
            for i in range(md.num_row_groups):
                st = md.row_group(i).column(col).statistics
                out.append((int(st.min), int(st.max)) if st is not None and st.has_min_max else (0, 2**62))
            self._meta[name] = out
        return self._meta[name]

    def _groups(self, columns: Sequence[str], rows: np.ndarray | None = None) -> Iterator[Any]:
        for name in self._parts:
            ranges = self._row_ranges(name)
            keep = list(range(len(ranges)))
            if rows is not None:
                keep = [i for i, (lo, hi) in enumerate(ranges)
                        if np.any((rows >= lo) & (rows <= hi))]
            if not keep:
                continue
            f = self._file(name)
            for i in keep:
                yield f.read_row_group(i, columns=list(columns))

    def schema(self) -> Any:
        """The table's Arrow schema (from a part's footer: nothing else read)."""
        return self._md(self._parts[0]).schema.to_arrow_schema()

    def names(self) -> list[str]:
        """The table's column names."""
        return list(self.schema().names)

    def _check_columns(self, columns: Sequence[str]) -> None:
        have = set(self.names())
        bad = [c for c in columns if c not in have]
        if bad:
            raise BundleError(f"This bundle's table has no column {', '.join(map(repr, bad))}.")

    def find_ids(self, text: str, limit: int = 50) -> pd.DataFrame:
        """Sequences whose id contains ``text`` (case-insensitive), in row order, at most ``limit``:
        columns ``seq`` (row number) and ``id``. Reads the ``row`` and ``id`` columns only, and stops
        once ``limit`` are found."""
        import pyarrow.compute as pc

        found = []
        n = 0
        for g in self._groups(["row", "id"]):
            hit = pc.match_substring(g["id"], str(text), ignore_case=True)
            sel = g.filter(hit)
            if sel.num_rows:
                found.append(sel.slice(0, limit - n))
                n += min(sel.num_rows, limit - n)
            if n >= limit:
                break
        if not found:
            return pd.DataFrame({"seq": np.zeros(0, np.int64), "id": np.zeros(0, object)})
        frame = pd.concat([t.to_pandas() for t in found], ignore_index=True)
        return frame.rename(columns={"row": "seq"}).sort_values("seq", kind="stable").reset_index(drop=True)

    def rows(self, rows: Sequence[int], columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The per-sequence columns of the given rows (row numbers), in the order asked; reads only
        the row groups that hold them."""
        import pyarrow as pa
        import pyarrow.compute as pc

        want = np.asarray(rows, dtype=np.int64)
        if want.size and (want.min() < 0 or want.max() >= self._b.n_sequences):
            raise BundleError(f"Row numbers run from 0 to {self._b.n_sequences - 1}.")
        cols = ["row"] + [c for c in (columns or ["id"]) if c != "row"]
        self._check_columns(cols)
        got = [g.filter(pc.is_in(g["row"], value_set=pa.array(want))) for g in self._groups(cols, want)]
        frame = pa.concat_tables(got).to_pandas() if got else pd.DataFrame(columns=cols)
        frame = frame.set_index("row").reindex(want)
        return frame.reset_index(names="seq")

    def steps(self, rows: Sequence[int], column: str) -> np.ndarray:
        """A per-step column (``score:<method>``, ``step:<name>``) of the given rows as float32
        [len(rows), T], NaN past each length."""
        frame = self.rows(rows, [column, "length"])
        out = np.full((len(frame), self._b.max_length), np.nan, dtype=np.float32)
        for i, vals in enumerate(frame[column]):
            if vals is not None:
                v = np.asarray(vals, dtype=np.float32)
                out[i, : v.size] = v
        return out

    def column(self, name: str) -> np.ndarray:
        """One per-sequence column of every sequence, in row order (reads that column only); a
        fixed-size list column (``logits``) comes as a 2-D array [N, k]."""
        import pyarrow as pa

        self._check_columns(["row", name])
        out = None
        for g in self._groups(["row", name]):
            r = g["row"].to_numpy()
            col = g[name].combine_chunks()
            if pa.types.is_fixed_size_list(col.type):   # the outputs: float [N, k], not N small arrays
                v = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), col.type.list_size)
            else:
                v = col.to_numpy(zero_copy_only=False)
            if out is None:
                out = np.empty((self._b.n_sequences,) + v.shape[1:],
                               dtype=v.dtype if v.dtype.kind in "fiub" else object)
            out[r] = v
        return out
