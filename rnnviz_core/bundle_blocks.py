"""The bundle's input, read block by block (split from :mod:`rnnviz_core.bundle`, issue 20): the
:func:`write_sequences` file form, :class:`Source` (a dataset or that file, in blocks, or as a Ray
dataset) and an Arrow block as padded arrays."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import InputError


def _x_schema_meta(ds: Any) -> dict:
    X = ds.X
    return {
        "n_features": int(X.shape[2]) if X.ndim == 3 else 0,
        "x_dtype": str(X.dtype),
        "feature_names": list(ds.feature_names),
        "class_names": None if ds.class_names is None else list(ds.class_names),
        "name": str(getattr(ds, "name", "") or ""),
        "has_y": ds.y is not None,
        "y_dtype": None if ds.y is None else str(ds.y.dtype),
        "group_columns": [str(c) for c in ds.groups.columns],
        "n_sequences": len(ds),
        "max_length": int(ds.X.shape[1]),
    }


def _block_table(ds: Any, start: int, stop: int, groups_schema: Any) -> Any:
    """Sequences start..stop-1 of an in-memory dataset as one Arrow table (one row per sequence)."""
    import pyarrow as pa

    from .trajectories import valid_mask

    lens = ds.lengths[start:stop]
    t = int(lens.max())
    X = ds.X[start:stop, :t]
    vals = X[valid_mask(lens, t)].reshape(-1)
    width = X.shape[2] if X.ndim == 3 else 1
    offsets = np.concatenate([[0], np.cumsum(lens * width)]).astype(np.int32)
    cols = {
        "row": pa.array(np.arange(start, stop, dtype=np.int64)),
        "id": pa.array([str(i) for i in ds.ids[start:stop]], type=pa.string()),
        "length": pa.array(lens.astype(np.int64)),
        "x": pa.ListArray.from_arrays(pa.array(offsets), pa.array(vals)),
    }
    if ds.y is not None:
        cols["y"] = pa.array(np.asarray(ds.y[start:stop]))
    tbl = pa.table(cols)
    if len(ds.groups.columns):
        g = pa.Table.from_pandas(ds.groups.iloc[start:stop].reset_index(drop=True), schema=groups_schema,
                                 preserve_index=False)
        for name in g.column_names:
            tbl = tbl.append_column(f"group:{name}", g[name])
    return tbl


def write_sequences(dataset: Any, path: str | os.PathLike, *, block_size: int = 4096) -> Path:
    """Write a dataset in the input form bundles stream from: Parquet, one row per sequence.

    Columns: ``row``, ``id``, ``length``, ``x`` (the sequence's valid values, flattened step by
    step), ``y`` (when labelled) and ``group:<name>`` per data column; the feature and class names
    travel in the file's metadata. Row groups hold ``block_size`` sequences, so a reader (this
    module, or Ray Data) holds one block at a time. Returns the path.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    meta = _x_schema_meta(dataset)
    gschema = pa.Schema.from_pandas(dataset.groups, preserve_index=False) if len(dataset.groups.columns) else None
    writer = None
    try:
        for start in range(0, len(dataset), block_size):
            tbl = _block_table(dataset, start, min(start + block_size, len(dataset)), gschema)
            if writer is None:
                schema = tbl.schema.with_metadata({"rnnviz": json.dumps(meta)})
                writer = pq.ParquetWriter(path, schema)
            writer.write_table(tbl.replace_schema_metadata(writer.schema.metadata), row_group_size=block_size)
    finally:
        if writer is not None:
            writer.close()
    return path


#: decoded row groups of an input file a Source keeps for its next reads, at most (bytes): the
#: build reads the file more than once (the PCA fit's rows, the pass, the sample's rows); a small
#: input is decoded once, a large one keeps its last groups only
CACHE_BYTES = 32 << 20


class Source:
    """The input, read block by block: an in-memory SequenceDataset or a :func:`write_sequences` file."""

    def __init__(self, dataset: Any, block_size: int):
        from collections import OrderedDict

        self.block_size = int(block_size)
        self.path: Path | None = None
        self.ds = None
        self._cache: OrderedDict = OrderedDict()   # row group -> its table (every column), last read last
        self._cached = 0
        if isinstance(dataset, (str, os.PathLike)):
            import pyarrow.parquet as pq

            self.path = Path(dataset)
            try:
                pf = pq.ParquetFile(self.path)
                raw = (pf.schema_arrow.metadata or {}).get(b"rnnviz")
            except Exception as exc:
                raise InputError(f"'{self.path.name}' could not be read as Parquet ({exc}).") from None
            if raw is None:
                raise InputError(f"'{self.path.name}' is not a sequence file written by bundle.write_sequences; "
                                 f"load the data with rv.load_data and pass the dataset, or write it with "
                                 f"rnnviz_core.bundle.write_sequences(dataset, path).")
            self.meta = json.loads(raw)
        else:
            if not all(hasattr(dataset, a) for a in ("X", "lengths", "ids", "groups", "feature_names")):
                raise InputError("dataset must be an rnnviz SequenceDataset (rv.load_data(...)) or the path of a "
                                 "file written by rnnviz_core.bundle.write_sequences.")
            self.ds = dataset
            self.meta = _x_schema_meta(dataset)
            import pyarrow as pa
            self._gschema = (pa.Schema.from_pandas(dataset.groups, preserve_index=False)
                             if len(dataset.groups.columns) else None)

    @property
    def n(self) -> int:
        return int(self.meta["n_sequences"])

    def tables(self, columns: Sequence[str] | None = None, evict: bool = True) -> Iterator[Any]:
        """Arrow tables of about ``block_size`` sequences each, in row order. ``evict=False``: a
        group is added to the cache only while it has room (the pass reads each group once:
        pushing groups out for it would only drop the ones the PCA fit read; a small input still
        ends up whole in the cache for the sample's rows)."""
        if self.ds is not None:
            for start in range(0, len(self.ds), self.block_size):
                tbl = _block_table(self.ds, start, min(start + self.block_size, len(self.ds)), self._gschema)
                yield tbl if columns is None else tbl.select(list(columns))
        else:
            import pyarrow.parquet as pq

            # pre_buffer=False: with pyarrow's default, iter_batches buffers every row group of the
            # file up front (measured: memory grew with the file, 438 MB held for a 421 MB file)
            pf = pq.ParquetFile(self.path, pre_buffer=False)
            md = pf.metadata
            sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
            if all(n == self.block_size for n in sizes[:-1]) and (not sizes or sizes[-1] <= self.block_size):
                # a block is a row group (the file was written with this block size): read through
                # the cache, so that a group the PCA fit decoded is not decoded again
                for g in range(len(sizes)):
                    tbl = self._group(pf, g, evict)
                    yield tbl if columns is None else tbl.select(list(columns))
                return
            for batch in pf.iter_batches(batch_size=self.block_size, columns=columns):
                import pyarrow as pa
                yield pa.Table.from_batches([batch])

    def _group(self, pf: Any, g: int, evict: bool = True) -> Any:
        """Row group ``g`` of the input file, from the cache (:data:`CACHE_BYTES`) or decoded (one
        thread: Arrow's pool would decode the columns on the other cores, which the build's own
        work, or a Ray actor beside it, is using); kept for the next reads (pushing the oldest out, or
        with ``evict=False`` only when there is room)."""
        hit = self._cache.get(g)
        if hit is not None:
            self._cache.move_to_end(g)
            return hit
        tbl = pf.read_row_group(int(g), use_threads=False)
        size = int(tbl.nbytes)
        if size <= CACHE_BYTES and (evict or self._cached + size <= CACHE_BYTES):
            self._cache[g] = tbl
            self._cached += size
            while self._cached > CACHE_BYTES:
                _, old = self._cache.popitem(last=False)
                self._cached -= int(old.nbytes)
        return tbl

    def blocks_are_groups(self) -> bool:
        """Whether :meth:`tables` yields the groups of :meth:`group_starts` one by one (an in-memory
        dataset; a file whose row groups hold ``block_size`` sequences, the last at most that)."""
        if self.ds is not None:
            return True
        sizes = np.diff(self.group_starts())
        return bool(len(sizes) and (sizes[:-1] == self.block_size).all() and sizes[-1] <= self.block_size)

    def block(self, k: int, evict: bool = True) -> Any:
        """Block ``k`` as :meth:`tables` yields it (when :meth:`blocks_are_groups`), through the
        cache of decoded groups (``evict`` as in :meth:`tables`)."""
        if self.ds is not None:
            start = int(k) * self.block_size
            return _block_table(self.ds, start, min(start + self.block_size, len(self.ds)), self._gschema)
        import pyarrow.parquet as pq

        return self._group(pq.ParquetFile(self.path, pre_buffer=False), int(k), evict)

    def group_starts(self) -> np.ndarray:
        """int64 [groups + 1]: the first row of each group the input is stored in (the file's row
        groups; ``block_size`` slices of a dataset), then the number of sequences."""
        if self.ds is not None:
            return np.append(np.arange(0, self.n, self.block_size), self.n).astype(np.int64)
        import pyarrow.parquet as pq

        md = pq.ParquetFile(self.path).metadata
        sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def read_rows(self, rows: Any) -> Any:
        """The sequences ``rows`` (row numbers, sorted, distinct) as one Arrow table, reading only
        the groups that hold them (:meth:`group_starts`), one group at a time (a group's other rows
        are dropped before the next is read, so memory holds one group and the rows taken, beside
        the cache of decoded groups, :data:`CACHE_BYTES`)."""
        import pyarrow as pa

        rows = np.asarray(rows, dtype=np.int64)
        starts = self.group_starts()
        groups = np.unique(np.searchsorted(starts, rows, side="right") - 1)
        pf = None
        if self.ds is None:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(self.path, pre_buffer=False)
        parts = []
        for g in groups:
            if pf is None:
                tbl = _block_table(self.ds, int(starts[g]), int(starts[g + 1]), self._gschema)
            else:
                tbl = self._group(pf, int(g))
            parts.append(tbl.take(np.flatnonzero(np.isin(tbl["row"].to_numpy(), rows))))
        tbl = pa.concat_tables(parts) if parts else None
        if tbl is None or tbl.num_rows != rows.size:
            raise InputError(f"The input holds {0 if tbl is None else tbl.num_rows} of the {rows.size} rows asked "
                             f"for; it changed while it was read.")
        return tbl

    def ray_blocks(self, tmpdir: Path) -> tuple[Path, list[tuple[list[int], int]]]:
        """The input file the Ray engine reads and its blocks: (row groups, sequences) of each, in
        row order (row groups of about ``block_size`` sequences)."""
        path = self.path
        if path is None:
            path = getattr(self, "_ray_input", None)
            if path is None:
                path = self._ray_input = write_sequences(self.ds, tmpdir / "input.parquet", block_size=self.block_size)
        import pyarrow.parquet as pq

        md = pq.ParquetFile(path).metadata
        blocks, cur, rows = [], [], 0
        for i in range(md.num_row_groups):
            cur.append(i)
            rows += md.row_group(i).num_rows
            if rows >= self.block_size:
                blocks.append((cur, rows))
                cur, rows = [], 0
        if cur:
            blocks.append((cur, rows))
        return Path(path), blocks

    def ray_dataset(self, tmpdir: Path, only: Any = None) -> Any:
        """A Ray dataset of the input, one read task per block (of :meth:`ray_blocks`; ``only``:
        those block numbers only, None when that leaves none). Each row carries its block number
        in the column ``BLOCK_COLUMN``."""
        import ray.data

        # one read task per bundle block (row groups of about block_size sequences): Ray Data's
        # read_parquet splits by file, so one file was one block, which one actor analysed while
        # the others waited (measured: 1 of 2 actors, on 1 of 2 nodes, had work)
        path, blocks = self.ray_blocks(tmpdir)
        keep = range(len(blocks)) if only is None else sorted(only)
        items = [{"path": str(path.resolve()), "groups": json.dumps(blocks[k][0]), "block": int(k)} for k in keep]
        if not items:
            return None
        return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _read_row_groups, batch_size=1, batch_format="pyarrow", num_cpus=0.25)


#: the column the Ray engine's read tasks add: each sequence's block number (resume keeps blocks)
BLOCK_COLUMN = "__rnnviz_block"


def _read_row_groups(item: Any) -> Any:
    """Ray Data read task: the row groups one item names, from a file every node can reach."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = []
    for p, g, k in zip(item["path"].to_pylist(), item["groups"].to_pylist(), item["block"].to_pylist()):
        t = pq.ParquetFile(p, pre_buffer=False).read_row_groups(json.loads(g))
        parts.append(t.append_column(BLOCK_COLUMN, pa.array(np.full(t.num_rows, int(k), np.int64))))
    return pa.concat_tables(parts)


def block_arrays(tbl: Any, meta: Mapping) -> dict:
    """An Arrow block (one row per sequence) -> padded arrays and per-sequence columns."""
    import pyarrow as pa

    from .trajectories import valid_mask

    rows = tbl["row"].to_numpy()
    lens = tbl["length"].to_numpy().astype(np.int64)
    t = int(lens.max())
    f = int(meta["n_features"])
    xcol = tbl["x"].combine_chunks() if isinstance(tbl["x"], pa.ChunkedArray) else tbl["x"]
    vals = xcol.flatten().to_numpy(zero_copy_only=False).astype(meta["x_dtype"], copy=False)
    X = np.zeros((len(rows), t, f) if f else (len(rows), t), dtype=meta["x_dtype"])
    X[valid_mask(lens, t)] = vals.reshape(-1, f) if f else vals
    y = tbl["y"].to_numpy(zero_copy_only=False) if "y" in tbl.column_names else None
    gcols = [c for c in tbl.column_names if c.startswith("group:")]
    groups = pd.DataFrame({c[len("group:"):]: tbl[c].to_pandas() for c in gcols}) if gcols else None
    return {"rows": rows, "ids": np.asarray(tbl["id"].to_pylist(), dtype=object), "lengths": lens, "X": X,
            "y": y, "groups": groups}
