"""Analysis bundles: the numbers the app shows, computed where the model lives, shipped as data.

A bundle holds **only data** (JSON, Parquet tables, safetensors arrays; nothing is ever
unpickled), so a colleague's app can browse the analyses of a model it could never load (your own
model class, custom layers) or of more sequences than one process can trace::

    import rnnviz_core as rv
    from rnnviz_core import bundle
    bundle.build(model, dataset, "run.rnnviz", methods=["grad_norm", "integrated_gradients"])
    b = bundle.open("run.rnnviz")          # checks the manifest, refuses anything else
    b.sequences                             # one row per sequence (outcome, confidence, loss, ...)
    b.scores("grad_norm")                   # float32 [N, T], NaN past each length
    b.paths()                               # PCA paths of every sequence in one shared basis

Layout (format version 1), as a directory or as one uncompressed zip of that directory::

    manifest.json                     what was computed, from what (hashes), and every file's size + SHA-256
    sequences/part-00000.parquet ...  one row per sequence: ids, outcomes, saturation shares, plateau,
                                      data columns, and per-step list columns ("step:*", "score:*")
    pca.safetensors                   the shared PCA basis: mean [H], components [k, H], variances [k]
    saturation.safetensors            per grouping: count / sum / sum of squares [K, T] of the share of
                                      saturated units per step (saturation over time by group)
    samples.safetensors               full traces (h, c, every gate, every layer) of a sample of
                                      sequences chosen to cover every class x outcome cell
    aggregates.safetensors            mean |score| by step and class, histograms of confidence and
                                      saturation shares (:mod:`rnnviz_core.bundle_aggregates`)

What is analysed: the last recurrent module's last layer, forward direction (the pages' default
view), with the pages' default thresholds unless given.

**PCA (decided for both engines):** every sequence is traced once. The basis is fitted first, on
the driver, on the valid steps of whole sequences drawn at random (seed 0) until they hold 20,000
steps -- every step when the data holds fewer, and then it is the exact PCA of every point, equal
to scikit-learn's ``PCA`` (``StatePCA(max_points=None)``; signs as scikit-learn fixes them) --
from float64 moments and one eigen-decomposition (:mod:`rnnviz_core.bundle_fit`). It does not
depend on how the data is cut into blocks, so a bundle built locally and one built on Ray agree;
every step of every sequence is then placed on it exactly. The manifest records the points
fitted and the points in all (``analysis.pca``).

**Engines:** ``engine="local"`` runs blocks one after another in this process; ``engine="ray"``
runs the same per-block code in Ray Data actors that load the model once (``map_batches`` with a
callable class, a fixed batch size, one GPU per actor when the cluster has GPUs) and write
partitioned Parquet. Both read the input in blocks, so memory follows the block size, not the
number of sequences (see :func:`write_sequences` for the on-disk input form).

**Reading** (:func:`open`) checks the bundle once, before anything large is read (every file's
hash; the manifest, safetensors headers and Parquet footers against each other; the memory the
reads take against ``max_memory``: :mod:`rnnviz_core.bundle_check`), then reads the sequence table
whole and checks its values: a reader's memory follows the bundle (about 3.6 kB per sequence at 100
steps and two methods), so very large bundles are for building and archiving (``read=False`` checks
one without reading its table); the app opens bundles up to its size and memory limits.
:meth:`Bundle.lazy` reads only the rows and columns asked for (:mod:`rnnviz_core.bundle_lazy`), and
:meth:`Bundle.mean_abs_score` / :meth:`Bundle.histogram` read the build-time aggregates, so a
bundle opened with ``read=False`` serves those views at any size.

**Progress and resuming** (local engine): :mod:`rnnviz_core.bundle_progress`.
"""
from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from . import bundle_check as _check
from . import bundle_horizons  # hz22
from .bundle_files import MAX_FILES, BundleFiles  # noqa: F401 - MAX_FILES: the old name here
from .bundle_json import loads as _loads_json
from .errors import BundleError, InputError

__all__ = [
    "FORMAT", "FORMAT_VERSION", "DEFAULT_METHODS", "BundleError", "Bundle",
    "build", "open", "write_sequences", "model_hash",
]

FORMAT = "rnnviz-bundle"
FORMAT_VERSION = 1
#: cheap methods (one backward pass each); pass ``methods=`` for more
DEFAULT_METHODS = ("grad_norm", "input_x_grad")
DEFAULT_BATCH = 256
DEFAULT_SAMPLE = 64
#: read limits (bundles may be uploaded): the whole bundle, the manifest, the number of files
DEFAULT_MAX_BYTES = 2 * 1024**3
MAX_MANIFEST_BYTES = 8 * 1024**2
_SAFE_NAME = re.compile(r"^(sequences/)?[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
_STEP_PREFIX = "step:"
_SCORE_PREFIX = "score:"
_N_GROUP_VALUES = 20   # data columns with at most this many values get precomputed saturation curves


# ============================================================================ hashing
def model_hash(model: Any) -> str:
    """SHA-256 of a model's parameters and buffers (names, dtypes, shapes, values), hex.

    The same weights give the same hash whatever file format they were saved in.
    """
    import torch

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _row_hash_sum(rows: np.ndarray, ids: np.ndarray, lens: np.ndarray, X: np.ndarray, y: np.ndarray | None) -> int:
    """Sum modulo 2**256 of the SHA-256 of each sequence (row, id, length, values, label).

    A sum of per-sequence hashes does not depend on how the data is cut into blocks, so every
    engine reports the same data hash.
    """
    total = 0
    for i in range(len(rows)):
        h = hashlib.sha256()
        h.update(f"{int(rows[i])}|{ids[i]}|{int(lens[i])}|".encode())
        h.update(np.ascontiguousarray(X[i, : int(lens[i])]).tobytes())
        if y is not None:
            h.update(b"|" + np.ascontiguousarray(y[i]).tobytes())
        total = (total + int.from_bytes(h.digest(), "big")) % (1 << 256)
    return total


def _file_sha256(path: Path, limit: int | None = None) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with builtins.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            size += len(chunk)
            if limit is not None and size > limit:
                raise BundleError(f"'{path.name}' is larger than its manifest entry says; the bundle is damaged. "
                                  f"Build it again.")
            h.update(chunk)
    return h.hexdigest(), size


# ============================================================================ input in blocks
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


class _Source:
    """The input, read block by block: an in-memory SequenceDataset or a :func:`write_sequences` file."""

    def __init__(self, dataset: Any, block_size: int):
        self.block_size = int(block_size)
        self.path: Path | None = None
        self.ds = None
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

    def tables(self, columns: Sequence[str] | None = None) -> Iterator[Any]:
        """Arrow tables of about ``block_size`` sequences each, in row order."""
        if self.ds is not None:
            for start in range(0, len(self.ds), self.block_size):
                tbl = _block_table(self.ds, start, min(start + self.block_size, len(self.ds)), self._gschema)
                yield tbl if columns is None else tbl.select(list(columns))
        else:
            import pyarrow.parquet as pq

            # pre_buffer=False: with pyarrow's default, iter_batches buffers every row group of the
            # file up front (measured: memory grew with the file, 438 MB held for a 421 MB file)
            pf = pq.ParquetFile(self.path, pre_buffer=False)
            for batch in pf.iter_batches(batch_size=self.block_size, columns=columns):
                import pyarrow as pa
                yield pa.Table.from_batches([batch])

    def ray_dataset(self, tmpdir: Path) -> Any:
        import ray.data

        path = self.path
        if path is None:
            path = write_sequences(self.ds, tmpdir / "input.parquet", block_size=self.block_size)
        # one read task per bundle block (row groups of about block_size sequences): Ray Data's
        # read_parquet splits by file, so one file was one block, which one actor analysed while
        # the others waited (measured: 1 of 2 actors, on 1 of 2 nodes, had work)
        import pyarrow.parquet as pq

        md = pq.ParquetFile(path).metadata
        groups, cur, rows = [], [], 0
        for i in range(md.num_row_groups):
            cur.append(i)
            rows += md.row_group(i).num_rows
            if rows >= self.block_size:
                groups.append(cur)
                cur, rows = [], 0
        if cur:
            groups.append(cur)
        items = [{"path": str(path.resolve()), "groups": json.dumps(g)} for g in groups]
        return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _read_row_groups, batch_size=1, batch_format="pyarrow", num_cpus=0.25)


def _read_row_groups(item: Any) -> Any:
    """Ray Data read task: the row groups one item names, from a file every node can reach."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parts = [pq.ParquetFile(p, pre_buffer=False).read_row_groups(json.loads(g))
             for p, g in zip(item["path"].to_pylist(), item["groups"].to_pylist())]
    return pa.concat_tables(parts)


def _block_arrays(tbl: Any, meta: Mapping) -> dict:
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


def _decision_tolerance(model: Any, src: "_Source", device: Any, batch_size: int) -> tuple[float, int] | None:
    """A one-output model's decision tolerance (:func:`rnnviz_core.horizon_findings.regression_tolerance`)
    over the final outputs of the whole data, so every block uses the same one, as the live page
    does over every loaded sequence: all sequences up to ``bundle_horizons.TOL_SEQUENCES``, evenly
    spaced blocks beyond. (tolerance, sequences used), or None for a model with several outputs
    (one block's forward pass tells)."""
    from .horizon_findings import regression_tolerance
    from .trace import predict

    every = bundle_horizons.tolerance_block_step(src.n, src.block_size)
    finals, used = [], 0
    for i, tbl in enumerate(src.tables(columns=["row", "id", "length", "x"])):
        if i % every:
            continue
        b = _block_arrays(tbl, src.meta)
        out = np.asarray(predict(model, b["X"], b["lengths"], device=device, batch_size=batch_size))
        if out.reshape(len(out), -1).shape[1] != 1:
            return None
        finals.append(out.reshape(-1))
        used += len(out)
    return (regression_tolerance(np.concatenate(finals)), used) if finals else None


# ============================================================================ per-block work
class _Worker:
    """The per-block work both engines run: load the model once, then analyse blocks.

    Ray Data calls an instance once per batch (``map_batches`` with this class); the local engine
    calls the same methods in a loop, so the two engines compute the same numbers.
    """

    def __init__(self, model: Any, opts: Mapping, meta: Mapping, pca: Mapping | None = None):
        self.model = model
        self.opts = dict(opts)
        self.meta = dict(meta)
        self.pca = None
        if pca is not None:
            self.pca = _fitted_pca(pca)

    def _trace(self, b: dict, gates: bool) -> Any:
        from .trace import trace

        return trace(self.model, b["X"], b["lengths"], gates=gates, device=self.opts["device"],
                     batch_size=self.opts["batch_size"])

    def __call__(self, tbl: Any) -> Any:
        """Analyse one block; returns an Arrow table, one row per sequence (a bundle part)."""
        import pyarrow as pa

        from . import saturation as sa
        from . import trajectories as tj
        from .contributions import contributions
        from .groups import sequence_table

        o = self.opts
        b = _block_arrays(tbl, self.meta)
        self.last_hash = _row_hash_sum(b["rows"], b["ids"], b["lengths"], b["X"], b["y"])   # the data hash's part
        lens, n = b["lengths"], len(b["rows"])
        tr = self._trace(b, gates=True)
        h = tr.get("h", layer=-1, direction="fwd")
        gates = sa.trace_gates(tr, layer=-1, direction="fwd") or None
        # the saturation page's table (app_support._sat_table) with the bundle's thresholds: the
        # outcomes from sequence_table, the saturation shares (states and gates) computed once
        table = sequence_table(tr.logits, b["y"], states=h, lengths=lens, gates=gates, columns=b["groups"],
                               class_names=self.meta["class_names"], threshold=o["threshold"], low=o["low"],
                               high=o["high"], levels=o["levels"])
        gnames = [] if b["groups"] is None else list(b["groups"].columns)
        # sequence_table appends the data's columns last, renamed "<name>_data" on a clash
        data_cols = dict(zip(table.columns[len(table.columns) - len(gnames):], gnames)) if gnames else {}
        mask = tj.valid_mask(lens, h.shape[1])
        sum_abs, _, change = tj.norm_arrays(h, lens)
        table["plateau_step"] = tj.plateau_steps(sum_abs, lens)
        # the share of saturated units at each valid step (saturation.saturation_by_step)
        per_step = (np.abs(h[mask]) >= o["threshold"]).sum(axis=1) / h.shape[2]
        table = table.drop(columns=["seq"])
        out = {"row": pa.array(b["rows"].astype(np.int64)), "id": pa.array(list(b["ids"]), type=pa.string())}
        for col in table.columns:
            if col == "length":
                continue
            s = table[col]
            if col in data_cols:   # the data's own column, passed through with its Arrow type
                out[f"data:{data_cols[col]}"] = tbl[f"group:{data_cols[col]}"]
                continue
            if col == "correct" and s.dtype.kind == "f":   # a number model: right/wrong does not apply
                out[col] = pa.nulls(n, type=pa.bool_())
                continue
            if isinstance(s.dtype, pd.CategoricalDtype):
                s = s.astype(object).where(s.notna(), None)
            out[col] = pa.array(s.to_numpy() if s.dtype != object else s.tolist())
        out["length"] = pa.array(lens.astype(np.int64))
        logits = np.asarray(tr.logits, dtype=np.float32).reshape(n, -1)
        out["logits"] = pa.FixedSizeListArray.from_arrays(pa.array(logits.reshape(-1)), logits.shape[1])
        offsets = pa.array(np.concatenate([[0], np.cumsum(lens)]).astype(np.int32))

        def steps(values: np.ndarray) -> Any:
            return pa.ListArray.from_arrays(offsets, pa.array(np.asarray(values, dtype=np.float32)))

        out["step:sum_abs"] = steps(sum_abs[mask])
        out["step:step_change"] = steps(change[mask])
        out["step:frac_saturated"] = steps(per_step)
        # the PCA projection (StatePCA.transform) of the valid steps only, in float32 like the stored
        # values (a float64 product of every state took 10x longer for a difference below 1e-6)
        proj = (h[mask] - self.pca.mean_.astype(np.float32)) @ self.pca.components_.T.astype(np.float32)
        for j in range(proj.shape[1]):
            out[f"step:pc{j + 1}"] = steps(proj[:, j])
        hz_scores = {}   # hz22: the horizon columns (rnnviz_core.bundle_horizons) from these scores
        for method in o["methods"]:
            sc, info = contributions(self.model, b["X"], method, lens, device=o["device"],
                                     batch_size=o["batch_size"], return_info=True,
                                     **o["method_options"].get(method, {}))
            hz_scores[method] = sc   # hz22
            out[f"score:{method}"] = steps(sc[:, : h.shape[1]][mask])
            if "completeness_error" in info:
                out[f"{method}:completeness_error"] = pa.array(np.asarray(info["completeness_error"], np.float64))
        out.update(bundle_horizons.columns(self.model, b["X"], lens, hz_scores, o))   # hz22
        return pa.table(out)


def _fitted_pca(state: Mapping) -> Any:
    from .trajectories import StatePCA

    pca = StatePCA(n_components=int(np.asarray(state["components"]).shape[0]), max_points=None)
    pca.mean_ = np.asarray(state["mean"], dtype=np.float64)
    pca.components_ = np.asarray(state["components"], dtype=np.float64)
    pca.explained_variance_ = np.asarray(state["explained_variance"], dtype=np.float64)
    pca.explained_variance_ratio_ = np.asarray(state["explained_variance_ratio"], dtype=np.float64)
    pca.n_samples_ = int(np.asarray(state["n_samples"]).reshape(-1)[0])
    return pca


def _pca_from_moments(n: int, mean: np.ndarray, m2: np.ndarray, k: int) -> dict:
    """Exact PCA from merged moments, with scikit-learn's sign rule (largest |loading| positive)."""
    if n < 2:
        raise InputError("The PCA needs at least two valid steps in the data.")
    import torch

    cov = m2 / (n - 1)
    vals, vecs = (v.numpy() for v in torch.linalg.eigh(torch.from_numpy(np.ascontiguousarray(cov, np.float64))))
    order = np.argsort(vals)[::-1]
    vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order]
    comps = vecs[:, :k].T.copy()                                      # (k, H)
    signs = np.sign(comps[np.arange(k), np.argmax(np.abs(comps), axis=1)])
    comps *= np.where(signs == 0, 1.0, signs)[:, None]
    total = float(np.trace(cov))
    return {"mean": mean, "components": comps, "explained_variance": vals[:k],
            "explained_variance_ratio": vals[:k] / total if total > 0 else np.zeros(k),
            "n_samples": np.array([n], dtype=np.int64)}


# ============================================================================ the builder
def _check_methods(methods: Sequence[str] | str) -> list[str]:
    from .contributions import METHODS

    if isinstance(methods, str):
        methods = [methods]
    methods = list(dict.fromkeys(methods))
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise InputError(f"Unknown contribution method(s) {', '.join(map(repr, bad))}; choose from "
                         f"{', '.join(METHODS)}.")
    return methods


def _run_local(src: _Source, worker: _Worker, parts_dir: Path, folder: Path | None = None,
               progress: Any = None) -> dict:
    """One pass block by block, every sequence traced once, after the PCA basis is fitted on a
    bounded sample (:mod:`rnnviz_core.bundle_fit`); with a build ``folder``, each finished block is
    kept there (:mod:`rnnviz_core.bundle_progress`) and blocks finished by an earlier run are kept."""
    from . import bundle_fit as bf
    from . import bundle_progress as bp

    fitted = bf.fit(src, worker, _block_arrays, _pca_from_moments)
    worker.pca = _fitted_pca(fitted["pca"])
    hsum = 0
    bar = bp.bar(src.n, "rnnviz: analyses", progress)
    for k, tbl in enumerate(src.tables()):
        part = parts_dir / f"part-{k:05d}.parquet"
        if folder is None or not bp.part_done(part):
            bp.write_part(worker(tbl), part)
            h = worker.last_hash
        else:   # a block an earlier run finished: its hash part without a trace
            h = bf.block_hash(tbl, src.meta, _block_arrays, _row_hash_sum)
        hsum = (hsum + h) % (1 << 256)
        bar.update(tbl.num_rows)
    bar.close()
    return {"pca": fitted["pca"], "hash": hsum, "first": fitted["first"],
            "fit": {k: fitted[k] for k in ("rule", "fitted_points", "points")}}


def _run_ray(src: _Source, model: Any, opts: dict, parts_dir: Path, tmp: Path, concurrency: int | None,
             num_gpus: float | None) -> dict:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InputError("engine='ray' needs Ray Data: pip install 'rnnviz[ray]' (or pip install 'ray[data]'), "
                         "or use engine='local'.") from None
    import pyarrow.parquet as pq

    started = False
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
        started = True
    try:
        if num_gpus is None:
            num_gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        if concurrency is None:
            # one actor per GPU, or per CPU but one (Ray Data's read tasks need a CPU too: actors
            # holding every CPU would leave the reads waiting for ever)
            res = ray.cluster_resources()
            concurrency = max(1, int(res.get("GPU", 0)) if num_gpus else int(res.get("CPU", 1)) - 1)
        rds = src.ray_dataset(tmp)
        # Ray Data places actors with its default strategy, SPREAD: on as many nodes as there are
        kw = dict(batch_size=src.block_size, batch_format="pyarrow", zero_copy_batch=True, num_cpus=1,
                  compute=ray.data.ActorPoolStrategy(size=int(concurrency)))
        if num_gpus:
            kw["num_gpus"] = num_gpus
        model_ref = ray.put(model)

        hsum, nodes, gpu_blocks, n_blocks = 0, set(), 0, 0
        # the data hash block by block (no trace), on the actors: where the blocks ran is recorded
        hashes = rds.map_batches(_RayHash, fn_constructor_kwargs={"model": model_ref, "opts": opts,
                                                                 "meta": src.meta}, **kw)
        for tbl in hashes.iter_batches(batch_size=None, batch_format="pyarrow"):
            for i in range(tbl.num_rows):
                hsum = (hsum + int(tbl["hash"][i].as_py(), 16)) % (1 << 256)
                nodes.add(tbl["node"][i].as_py())
                gpu_blocks += int(tbl["gpus"][i].as_py() > 0)
                n_blocks += 1
        from . import bundle_fit as bf

        fitted = bf.fit(src, _Worker(model, opts, src.meta), _block_arrays, _pca_from_moments)
        pca, first = fitted["pca"], fitted["first"]

        out = rds.map_batches(_RayAnalyse, fn_constructor_kwargs={"model": model_ref, "opts": opts, "meta": src.meta,
                                                               "pca": pca}, **kw)
        raw = tmp / "ray-out"
        out.write_parquet(str(raw))
        # tidy names: part-00000... in row order (Ray names files by task)
        files = sorted(raw.glob("*.parquet"),
                       key=lambda p: pq.read_table(p, columns=["row"])["row"].to_numpy().min()
                       if pq.ParquetFile(p).metadata.num_rows else -1)
        k = 0
        for f in files:
            if pq.ParquetFile(f).metadata.num_rows:
                shutil.move(str(f), parts_dir / f"part-{k:05d}.parquet")
                k += 1
        return {"pca": pca, "hash": hsum, "first": first,
                "fit": {k: fitted[k] for k in ("rule", "fitted_points", "points")},
                "placement": {"ray_nodes": len(nodes), "ray_actors": int(concurrency),
                              "ray_gpus_per_actor": float(num_gpus or 0),
                              "ray_blocks_on_gpu_actors": f"{gpu_blocks} of {n_blocks}"}}
    finally:
        if started:
            ray.shutdown()


class _RayActor:
    """Base of the Ray Data actors: builds the shared worker once per actor (model loaded once)."""

    def __init__(self, model: Any, opts: Mapping, meta: Mapping, pca: Mapping | None = None):
        import torch

        if not isinstance(model, torch.nn.Module):  # an ObjectRef that Ray did not resolve
            import ray
            model = ray.get(model)
        self.worker = _Worker(model, opts, meta, pca)


class _RayHash(_RayActor):
    def __call__(self, tbl: Any) -> Any:
        import pyarrow as pa
        import ray

        from . import bundle_fit as bf

        # where the block ran (the node, the GPUs Ray gave the actor): the build records how
        # many nodes and GPU actors took part
        ctx = ray.get_runtime_context()
        h = bf.block_hash(tbl, self.worker.meta, _block_arrays, _row_hash_sum)
        return pa.table({"hash": [format(h, "064x")], "node": [ctx.get_node_id()],
                         "gpus": [len(ray.get_gpu_ids())]})


class _RayAnalyse(_RayActor):
    def __call__(self, tbl: Any) -> Any:
        return self.worker(tbl)


def _read_parts(parts_dir: Path, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    for p in sorted(parts_dir.glob("*.parquet")):
        yield pq.read_table(p, columns=list(columns)).to_pandas()


def _groupings(parts_dir: Path, meta: Mapping, t_max: int) -> tuple[dict, dict]:
    """Per grouping: count / sum / sum of squares [K, T] of the per-step saturated share, streamed."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(next(iter(sorted(parts_dir.glob("*.parquet")))))
    names = [c for c in ("true_class", "predicted_class", "outcome", "saturation") if c in schema.names]
    names += [c for c in schema.names if c.startswith("data:")]
    labels: dict[str, dict[str, int]] = {g: {} for g in names}
    sums: dict[str, list] = {g: [] for g in names}
    for p in sorted(parts_dir.glob("*.parquet")):
        tbl = pq.read_table(p, columns=names + ["length", "step:frac_saturated"])
        lens = tbl["length"].to_numpy()
        t = int(lens.max())
        vals = tbl["step:frac_saturated"].combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(np.float64)
        from .trajectories import valid_mask

        mask = valid_mask(lens, t)
        per = np.zeros(mask.shape)
        per[mask] = vals
        for g in names:
            uniq, inv = np.unique(np.asarray([str(v) for v in tbl[g].to_pylist()], dtype=str), return_inverse=True)
            # codes in order of first appearance, as the labels dictionary numbers them
            first = np.full(len(uniq), len(inv), dtype=np.int64)
            np.minimum.at(first, inv, np.arange(len(inv)))
            code = np.empty(len(uniq), dtype=np.int64)
            for j in np.argsort(first, kind="stable"):
                code[j] = labels[g].setdefault(str(uniq[j]), len(labels[g]))
            idx = code[inv]
            if len(labels[g]) > _N_GROUP_VALUES and g.startswith("data:"):
                continue
            k = len(labels[g])
            while len(sums[g]) < 3:
                sums[g].append(np.zeros((0, t_max)))
            for j, arr in enumerate((mask.astype(float), per, per ** 2)):
                acc = sums[g][j]
                if acc.shape[0] < k:
                    acc = np.vstack([acc, np.zeros((k - acc.shape[0], t_max))])
                if k <= 64:   # a few groups: one masked sum each (np.add.at is slow per row)
                    for gi in np.unique(idx):
                        acc[gi, :t] += arr[idx == gi].sum(axis=0)
                else:
                    np.add.at(acc[:, :t], idx, arr)
                sums[g][j] = acc
    arrays, listed = {}, {}
    for g in names:
        if len(labels[g]) > _N_GROUP_VALUES and g.startswith("data:"):
            continue
        # groups in sorted order, not in order of first appearance: that order depends on how the
        # rows were split into parts (Ray's parts differ from a local build's), the numbers do not
        names_g = list(labels[g])
        order = sorted(range(len(names_g)), key=lambda i: names_g[i])
        for j, what in enumerate(("count", "sum", "sumsq")):
            arrays[f"{g}.{what}"] = np.ascontiguousarray(sums[g][j][order])
        listed[g] = [names_g[i] for i in order]
    return arrays, listed


def _choose_sample(parts_dir: Path, size: int, seed: int = 0) -> np.ndarray:
    """Rows covering every (true class, outcome) cell (or predicted class without labels), round robin."""
    import pyarrow.parquet as pq

    schema = pq.read_schema(next(iter(sorted(parts_dir.glob("*.parquet")))))
    keys = [c for c in ("true_class", "outcome") if c in schema.names] or \
           [c for c in ("predicted_class",) if c in schema.names]
    frames = list(_read_parts(parts_dir, ["row"] + keys))
    df = pd.concat(frames, ignore_index=True).sort_values("row", kind="stable")
    if size >= len(df):
        return df["row"].to_numpy(np.int64)
    rng = np.random.default_rng(seed)
    cell = pd.Series("all", index=df.index)
    if keys:
        cell = df[keys[0]].astype(str)
        for k in keys[1:]:
            cell = cell + "|" + df[k].astype(str)
    pools = [rng.permutation(g["row"].to_numpy()) for _, g in df.groupby(cell.to_numpy(), sort=True)]
    picked: list[int] = []
    i = 0
    while len(picked) < size:
        for pool in pools:
            if i < len(pool) and len(picked) < size:
                picked.append(int(pool[i]))
        i += 1
    return np.sort(np.asarray(picked, dtype=np.int64))


def _sample_arrays(src: _Source, model: Any, rows: np.ndarray, opts: Mapping) -> dict:
    from .trace import trace

    wanted = set(int(r) for r in rows)
    blocks = []
    for tbl in src.tables():
        r = tbl["row"].to_numpy()
        keep = np.flatnonzero(np.isin(r, rows))
        if keep.size:
            blocks.append(_block_arrays(tbl.take(keep), src.meta))
        wanted -= set(int(v) for v in r[keep])
        if not wanted:
            break
    t = max(int(b["lengths"].max()) for b in blocks)
    X = np.concatenate([np.pad(b["X"], [(0, 0), (0, t - b["X"].shape[1])] + [(0, 0)] * (b["X"].ndim - 2))
                        for b in blocks])
    lens = np.concatenate([b["lengths"] for b in blocks])
    tr = trace(model, X, lens, gates=True, device=opts["device"], batch_size=opts["batch_size"])
    out = {"rows": np.concatenate([b["rows"] for b in blocks]).astype(np.int64), "lengths": lens.astype(np.int64),
           "x": np.ascontiguousarray(X), "logits": np.ascontiguousarray(tr.logits, dtype=np.float32),
           "hidden": np.ascontiguousarray(tr.hidden)}
    for name, arr in tr.arrays.items():
        out[f"trace:{name}"] = np.ascontiguousarray(arr, dtype=np.float32)
    return out


def _save_st(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))


def build(
    model: Any,
    dataset: Any,
    path: str | os.PathLike,
    *,
    methods: Sequence[str] | str = DEFAULT_METHODS,
    method_options: Mapping[str, Mapping[str, Any]] | None = None,
    engine: str = "local",
    batch_size: int = DEFAULT_BATCH,
    sample: int = DEFAULT_SAMPLE,
    threshold: float = 0.9,
    low: float = 0.1,
    high: float = 0.9,
    levels: Sequence[float] = (0.1, 0.5),
    device: str = "auto",
    single_file: bool | None = None,
    overwrite: bool = False,
    concurrency: int | None = None,
    num_gpus: float | None = None,
    provenance: Mapping[str, Any] | None = None,
    progress: Any = None,
    resume: bool = False,
) -> Path:
    """Compute every analysis the pages show and write them as a bundle (data only).

    Parameters
    ----------
    model : torch.nn.Module
        Any model rnnviz can trace (your own class too: the bundle carries only numbers).
    dataset : SequenceDataset or path
        An rnnviz dataset (``rv.load_data``), or a Parquet file written by :func:`write_sequences`
        (streamed block by block, so memory follows ``batch_size``, not the number of sequences).
    path : where to write: a directory, or one file when ``single_file`` (default: a path ending
        in ``.rnnviz`` or ``.zip`` is one file, anything else a directory).
    methods : contribution methods to score (names of ``rv.METHODS``); ``method_options`` maps a
        method to its keyword options (e.g. ``{"integrated_gradients": {"steps": 64}}``).
    engine : "local" (this process, block after block) or "ray" (Ray Data actors; needs
        ``pip install 'rnnviz[ray]'``; uses the running Ray cluster, or starts a local one).
    batch_size : sequences per block (the unit of reading, scoring and memory).
    sample : how many sequences get full traces (h, c, every gate of every layer), chosen to
        cover every class x outcome cell.
    threshold, low, high, levels : saturation thresholds (as in :mod:`rnnviz_core.saturation`
        and :func:`rnnviz_core.groups.sequence_table`).
    concurrency, num_gpus : Ray only: actors (default: one per CPU, or per GPU when the cluster
        has GPUs) and GPUs per actor (default 1 when the cluster has GPUs).
    provenance : extra facts for the manifest (the CLI records file names and file hashes).
    progress : True for a progress bar on stderr (sequences done, rate, time left; one bar per
        pass), or a callable ``progress(done, total, what)``; None for none.
    resume : local engine: reuse the blocks an earlier run of this same build (same model, data
        and options) finished before it stopped; they are kept in ``.<name>.rnnviz-build`` beside
        ``path`` until the bundle is written (:mod:`rnnviz_core.bundle_progress`).

    Returns
    -------
    Path of the bundle.
    """
    from . import __version__
    from .contributions import METHODS

    methods = _check_methods(methods)
    method_options = {k: dict(v) for k, v in (method_options or {}).items()}
    unknown = sorted(set(method_options) - set(methods))
    if unknown:
        raise InputError(f"method_options names {', '.join(unknown)}, which is not in methods; add it to methods.")
    if engine not in ("local", "ray"):
        raise InputError(f"engine must be 'local' or 'ray'; got {engine!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 0:
        raise InputError(f"sample must be a whole number >= 0; got {sample!r}.")
    if sample > _check.MAX_SAMPLE:
        raise InputError(f"sample must be at most {_check.MAX_SAMPLE} (the sequences whose full traces the pages "
                         f"offer); got {sample}.")
    path = Path(path)
    if single_file is None:
        single_file = path.suffix.lower() in (".rnnviz", ".zip")
    if path.exists() and not overwrite:
        raise InputError(f"'{path}' already exists; choose another path or pass overwrite=True.")
    if not isinstance(dataset, (str, os.PathLike)):
        from .data import check_against_model
        dataset = check_against_model(dataset, model)
    src = _Source(dataset, batch_size)
    opts = {"methods": methods, "method_options": method_options, "threshold": float(threshold),
            "low": float(low), "high": float(high), "levels": [float(v) for v in levels],
            "device": device, "batch_size": int(batch_size)}
    tol = _decision_tolerance(model, src, device, int(batch_size))   # one output: over the whole data
    if tol is not None:
        opts["decision_tol"], opts["decision_tol_sequences"] = tol
    from . import bundle_progress as bp

    parent = path.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    if engine == "local":   # a build folder kept until the bundle is written: a stopped build resumes
        tmp = bp.work_dir(path)
        key = bp.build_key(model_hash(model), src.meta, opts, src.path if src.path is not None else src.ds)
        bp.prepare(tmp, key, bool(resume))
    else:
        tmp = Path(tempfile.mkdtemp(prefix=".rnnviz-build-", dir=parent))
    done = False
    try:
        stage = tmp / "bundle"
        parts = stage / "sequences"
        parts.mkdir(parents=True, exist_ok=True)
        if engine == "local":
            res = _run_local(src, _Worker(model, opts, src.meta), parts, tmp, progress)
        else:
            res = _run_ray(src, model, opts, parts, tmp, concurrency, num_gpus)
        _save_st({k: np.asarray(v) for k, v in res["pca"].items()}, stage / "pca.safetensors")
        sat_arrays, sat_groups = _groupings(parts, src.meta, int(src.meta["max_length"]))
        _save_st(sat_arrays or {"none": np.zeros(1)}, stage / "saturation.safetensors")
        from . import bundle_aggregates as ba

        agg_arrays, agg_entry = ba.compute(parts, int(src.meta["max_length"]), methods)
        _save_st(agg_arrays, stage / ba.FILE)
        sample_rows = _choose_sample(parts, int(sample)) if sample else np.zeros(0, np.int64)
        if sample_rows.size:
            _save_st(_sample_arrays(src, model, sample_rows, opts), stage / "samples.safetensors")
        first = res["first"]
        mods = first["modules"]
        last = mods[-1]
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "rnnviz_version": __version__,
            "model": {
                "sha256": model_hash(model),
                "class": f"{type(model).__module__}.{type(model).__qualname__}",
                "recurrent_modules": mods,
                "output_shape": first["logit_shape"],
                "class_names": src.meta["class_names"] or (list(getattr(model, "class_names", None) or []) or None),
            },
            "data": {
                "content_hash": "sha256-sum:" + format(res["hash"], "064x"),
                "content_hash_rule": "sum modulo 2**256 of the SHA-256 of each sequence's row number, id, length, "
                                     "values and label",
                "name": src.meta["name"], "n_sequences": src.n, "max_length": int(src.meta["max_length"]),
                "n_features": int(src.meta["n_features"]), "feature_names": src.meta["feature_names"],
                "class_names": src.meta["class_names"], "group_columns": src.meta["group_columns"],
                "labelled": bool(src.meta["has_y"]),
            },
            "analysis": {
                "state": f"{last['name']}.l{last['num_layers'] - 1}.fwd.h", "units": first["units"],
                "methods": {m: METHODS[m] for m in methods}, "method_options": method_options,
                "target": "the predicted class (or the single output)",
                "threshold": opts["threshold"], "gate_low": opts["low"], "gate_high": opts["high"],
                "levels": opts["levels"],
                "pca": {"n_components": int(np.asarray(res["pca"]["components"]).shape[0]),
                        **res.get("fit", {"rule": "exact PCA of every valid step (moments merged over blocks)"})},
                "saturation_groupings": sat_groups,
                "aggregates": agg_entry,
                "horizons": bundle_horizons.manifest_entry(methods, first["logit_shape"], batch_size,
                                                           opts.get("decision_tol"), opts.get("decision_tol_sequences"),
                                                           src.n),
                "sample": {"size": int(sample_rows.size),
                           "rule": "round robin over the (true class, outcome) cells, seeded"},
                "not_included": ["resilience to noise and missing steps", "deletion (faithfulness) checks",
                                 "contribution methods not listed above", "other thresholds",
                                 "full traces beyond the sample"],
            },
            "build": {"engine": engine, "batch_size": int(batch_size), **res.get("placement", {}),
                      **dict(provenance or {})},
        }
        files = {}
        for p in sorted(stage.rglob("*")):
            if p.is_file():
                digest, size = _file_sha256(p)
                files[p.relative_to(stage).as_posix()] = {"bytes": size, "sha256": digest}
        manifest["files"] = files
        with builtins.open(stage / "manifest.json", "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        if single_file:
            tmpzip = tmp / "bundle.zip"
            with zipfile.ZipFile(tmpzip, "w", compression=zipfile.ZIP_STORED) as zf:
                for name in ["manifest.json"] + sorted(files):
                    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_STORED
                    with builtins.open(stage / name, "rb") as src_f, zf.open(info, "w") as dst:
                        shutil.copyfileobj(src_f, dst, 1 << 20)
            os.replace(tmpzip, path)
        else:
            os.replace(stage, path)
        done = True
    finally:
        if done or engine != "local":
            shutil.rmtree(tmp, ignore_errors=True)
    return path


# ============================================================================ the reader
_refuse = _check.refuse


def open(path: str | os.PathLike | bytes | Any, *, max_bytes: int = DEFAULT_MAX_BYTES,  # noqa: A001
         max_memory: int = _check.DEFAULT_MAX_MEMORY, read: bool = True) -> "Bundle":
    """Open a bundle (a folder, a ``.rnnviz`` file, its bytes, or a binary file object) after checking it.

    One check, before anything large is read (:mod:`rnnviz_core.bundle_check`): the manifest must
    name this format and version and pass its schema; it must list every file of the bundle once
    (no file missing, none extra or unknown), each file's size and SHA-256 matching; the
    safetensors headers and Parquet footers must agree with it; the memory the pages' reads take,
    computed from those, must be within ``max_memory``; the whole bundle may hold at most
    ``max_bytes``. With ``read`` (the default) the table and arrays are then read and their values
    checked, so that every page can read what passed. Anything else is refused with a sentence
    saying what is wrong.
    """
    from .contributions import METHODS

    files = BundleFiles(path, max_bytes)
    names = files.names()
    if "manifest.json" not in names:
        raise BundleError("This is not an rnnviz bundle: it has no manifest.json. Choose a bundle written by "
                          "`rnnviz precompute` or rnnviz_core.bundle.build.")
    msize = files.size("manifest.json")
    if msize > MAX_MANIFEST_BYTES:
        raise _refuse(f"Its manifest.json is {msize / 1e6:.1f} MB, far more than a manifest needs.")
    manifest = _loads_json(files.read("manifest.json", msize), "Its manifest.json", _refuse)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("This manifest is not an rnnviz bundle's (its 'format' is not 'rnnviz-bundle').")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise BundleError(f"This bundle has format version {_check.show(version)}, and this rnnviz reads version "
                          f"{FORMAT_VERSION} only. Build the bundle again with this rnnviz "
                          f"(`rnnviz precompute`), or open it with the rnnviz that wrote it.")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not listed:
        raise _refuse("Its manifest lists no files.")
    for name, entry in listed.items():
        if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
            raise _refuse(f"Its manifest names a file '{str(name)[:80]}' that no bundle holds.")
        if not isinstance(entry, dict) or isinstance(entry.get("bytes"), bool) \
                or not isinstance(entry.get("bytes"), int) or entry["bytes"] < 0 \
                or not isinstance(entry.get("sha256"), str):
            raise _refuse(f"Its manifest entry for '{name}' lacks a size or hash.")
    present = set(names) - {"manifest.json"}
    missing = sorted(set(listed) - present)
    extra = sorted(present - set(listed))
    if missing:
        raise _refuse(f"The bundle is incomplete: {', '.join(missing[:5])} "
                      f"{'is' if len(missing) == 1 else 'are'} missing.")
    if extra:
        quoted = ", ".join(f"'{x[:80]}'" for x in extra[:5])
        raise _refuse(f"The bundle holds files its manifest does not list ({quoted}); "
                      f"a bundle holds exactly the files its manifest lists.")
    parts = _check.check_names(listed)
    total = msize + sum(int(e["bytes"]) for e in listed.values())
    if total > max_bytes:
        raise BundleError(f"This bundle holds {total / 1e6:.0f} MB, more than the {max_bytes / 1e6:.0f} MB this "
                          f"reader accepts.")
    for name, entry in listed.items():
        if files.size(name) != entry["bytes"]:
            raise _refuse(f"'{name}' is not the size its manifest entry says; the bundle is damaged.")
        if files.sha256(name, entry["bytes"]) != entry["sha256"]:
            raise _refuse(f"'{name}' does not match the hash in the manifest; the bundle was changed or damaged.")
    facts = _check.check_manifest(manifest, METHODS)
    headers = {n: _check.st_header(lambda a, k, n=n: files.read_range(n, a, k), n, listed[n]["bytes"])
               for n in _check.ARRAYS if n in listed}
    array_bytes = _check.check_arrays(headers, facts)
    metas = {n: _check.parquet_meta(lambda a, k, n=n: files.read_range(n, a, k), n, listed[n]["bytes"])
             for n in parts}
    table_bytes = _check.check_tables(metas, facts)
    n_steps = 3 + facts.k + len(facts.methods)
    need = _check.memory_needed(facts, table_bytes, array_bytes, n_steps)
    _check.check_memory(need, max_memory, facts, n_steps)
    from . import bundle_aggregates as ba

    if ba.FILE in headers or "aggregates" in manifest.get("analysis", {}):
        if ba.FILE not in headers:
            raise _refuse(f"Its manifest describes aggregates, but the bundle has no {ba.FILE}.")
        ba.check(headers[ba.FILE], manifest["analysis"].get("aggregates"), facts.methods, facts.max_length, _refuse)
    b = Bundle(manifest, files)
    b._facts = facts
    b._part_metas = metas   # the parts' footers, read once by the check: the lazy reader starts from them
    b.memory_bytes = need
    b._text_budget = max(max_memory - need, 0) + 16 * facts.n + 1024**2
    if read:
        b._load()
        sample = b._arrays("samples.safetensors") if "samples.safetensors" in listed else None
        _check.check_content(b._frame, b._logits, sample, facts)
    return b


class Bundle:
    """An opened, checked bundle. Tables and arrays are read on first use.

    Attributes
    ----------
    manifest : dict, what was computed and from what.
    n_sequences, max_length : sizes.
    methods : list of the contribution methods the bundle holds.
    """

    def __init__(self, manifest: dict, files: BundleFiles):
        self.manifest = manifest
        self._files = files
        self._frame: pd.DataFrame | None = None
        self._steps: dict[str, np.ndarray] = {}
        self._st: dict[str, dict[str, np.ndarray]] = {}
        data = manifest.get("data", {})
        self.n_sequences = int(data.get("n_sequences", 0))
        self.max_length = int(data.get("max_length", 0))
        self.methods = list(manifest.get("analysis", {}).get("methods", {}))
        #: bytes the reads of the pages take for this bundle, as the open check computed them
        self.memory_bytes = 0
        self._facts = None
        self._text_budget = 256 * 1024**2   # bytes of decoded text the table may hold (open sets it)

    def __repr__(self) -> str:
        return (f"Bundle({self.n_sequences} sequences, up to {self.max_length} steps; methods "
                f"{', '.join(self.methods) or 'none'})")

    # ------------------------------------------------------------------ raw access
    def _bytes(self, name: str) -> bytes:
        return self._files.read(name, int(self.manifest["files"][name]["bytes"]))

    def _arrays(self, name: str) -> dict[str, np.ndarray]:
        if name not in self._st:
            if name not in self.manifest["files"]:
                raise BundleError(f"This bundle has no {name}.")
            from safetensors.numpy import load

            try:
                self._st[name] = load(self._bytes(name))
            except Exception:
                raise _refuse(f"'{name}' could not be read as safetensors.") from None
        return self._st[name]

    def _table(self) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = sorted(n for n in self.manifest["files"] if n.startswith("sequences/"))
        shape = self.manifest.get("model", {}).get("output_shape", [])
        per_row = max(self.max_length, int(np.prod(shape, dtype=np.int64)) if shape else 1, 1)
        # decoded size is checked from the Parquet metadata before anything is decoded: a small
        # file must not unpack into more values than the manifest's sizes allow (a Parquet "bomb")
        budget = 16 * sum(int(e["bytes"]) for e in self.manifest["files"].values()) + 64 * 1024**2
        rows = cells = 0
        tables = []
        text_left = self._text_budget
        for name in parts:
            data = self._bytes(name)
            try:
                md = pq.ParquetFile(pa.BufferReader(data)).metadata
            except Exception:
                raise _refuse(f"'{name}' could not be read as Parquet.") from None
            rows += md.num_rows
            for i in range(md.num_row_groups):
                g = md.row_group(i)
                for j in range(g.num_columns):
                    nv = g.column(j).num_values
                    if nv > g.num_rows * per_row:
                        raise _refuse(f"'{name}' holds more values per sequence than its manifest allows.")
                    cells += nv
            if rows > self.n_sequences or cells * 8 > budget:
                raise _refuse(f"'{name}' unpacks to more data than the bundle's manifest and size allow.")
            texts = [f.name for f in pq.ParquetFile(pa.BufferReader(data)).schema_arrow
                     if _check.kind(f.type) == "text"]
            try:   # text columns read as dictionaries: their decoded size is counted before decoding
                part = pq.read_table(pa.BufferReader(data), read_dictionary=texts)
            except Exception:
                raise _refuse(f"'{name}' could not be read as Parquet.") from None
            part, used = _check.decode_texts(part, texts, name, text_left)
            text_left -= used
            tables.append(part)
        try:
            tbl = pa.concat_tables(tables, promote_options="permissive")
        except Exception:
            raise _refuse("The bundle's sequence tables do not share one layout.") from None
        rows = tbl["row"].to_numpy()
        order = np.argsort(rows, kind="stable")
        if len(rows) != self.n_sequences or not np.array_equal(rows[order], np.arange(self.n_sequences)):
            raise _refuse(f"The bundle's sequence table does not hold rows 0..{self.n_sequences - 1} once each.")
        tbl = tbl.take(pa.array(order))
        lens = tbl["length"].to_numpy()
        if lens.min() < 1 or lens.max() != self.max_length:
            raise _refuse(f"The bundle's sequence lengths are not from 1 to its stated longest, {self.max_length}.")
        return tbl

    def _load(self) -> None:
        if self._frame is not None:
            return
        tbl = self._table()
        lens = tbl["length"].to_numpy().astype(np.int64)
        step_cols = [c for c in tbl.column_names if c.startswith((_STEP_PREFIX, _SCORE_PREFIX))]
        from .trajectories import valid_mask

        mask = valid_mask(lens, self.max_length)
        total = int(lens.sum())
        for c in step_cols:
            col = tbl[c].combine_chunks()
            vals = col.flatten().to_numpy(zero_copy_only=False)
            counts = np.diff(col.offsets.to_numpy())
            if vals.size != total or not np.array_equal(counts, lens):
                raise _refuse(f"The per-step column '{c}' does not hold one value per step of each sequence.")
            arr = np.full((len(lens), self.max_length), np.nan, dtype=np.float32)
            arr[mask] = vals
            self._steps[c] = arr
        logits = tbl["logits"].combine_chunks().flatten().to_numpy(zero_copy_only=False)
        shape = [int(v) for v in self.manifest.get("model", {}).get("output_shape", [])]
        if logits.size != len(lens) * int(np.prod(shape, dtype=np.int64)):
            raise _refuse("The bundle's model outputs do not match the output shape in its manifest.")
        self._logits = logits.reshape(len(lens), *shape).astype(np.float32)
        frame = tbl.drop_columns(step_cols + ["logits"]).to_pandas()
        # the data's own columns under their names, or with "_data" where the table has that name
        # (as groups.sequence_table names them)
        renamed = {c: c[len("data:"):] + ("_data" if c[len("data:"):] in frame.columns or c == "data:seq" else "")
                   for c in frame.columns if c.startswith("data:")}
        self._data_cols = {c[len("data:"):]: new for c, new in renamed.items()}
        frame = frame.rename(columns=renamed)
        names = self.class_names
        for col in ("true_class", "predicted_class"):
            if col in frame and names:
                frame[col] = pd.Categorical(frame[col], categories=names)
        if "outcome" in frame:
            frame["outcome"] = pd.Categorical(frame["outcome"], categories=["correct", "wrong"])
        if "saturation" in frame:
            from .groups import SATURATION_LEVELS
            frame["saturation"] = pd.Categorical(frame["saturation"], categories=list(SATURATION_LEVELS),
                                                 ordered=True)
        frame.insert(0, "seq", frame.pop("row"))
        self._frame = frame

    # ------------------------------------------------------------------ what the pages read
    @property
    def class_names(self) -> list[str] | None:
        """The class names the table's class columns use (the data's, aligned to the model's)."""
        return self.manifest.get("data", {}).get("class_names")

    @property
    def sequences(self) -> pd.DataFrame:
        """One row per sequence (``seq`` = row number): ``id``, ``pred``, ``confidence``, ``true``,
        ``correct``, ``loss``, ``true_class``/``predicted_class``, ``outcome``, ``length``,
        ``frac_saturated``, ``frac_saturated_final``, per-gate shares, ``saturation``,
        ``plateau_step`` and the data's own columns — the columns of
        :func:`rnnviz_core.groups.sequence_table`."""
        self._load()
        return self._frame

    @property
    def data_columns(self) -> pd.DataFrame:
        """The data's own per-sequence columns under their own names (``SequenceDataset.groups``)."""
        self._load()
        return pd.DataFrame({name: self._frame[col].to_numpy() for name, col in self._data_cols.items()})

    @property
    def logits(self) -> np.ndarray:
        """The model's own output for every sequence, float32 ([N, C], or [N] / [N, 1] as the model gave it)."""
        self._load()
        return self._logits

    @property
    def lengths(self) -> np.ndarray:
        return self.sequences["length"].to_numpy(np.int64)

    @property
    def ids(self) -> np.ndarray:
        return self.sequences["id"].to_numpy(object)

    def steps(self, name: str) -> np.ndarray:
        """A per-step quantity as float32 [N, T] (NaN past each length): ``sum_abs``, ``step_change``,
        ``frac_saturated``, ``pc1``, ``pc2``."""
        self._load()
        key = _STEP_PREFIX + name
        if key not in self._steps:
            have = [k[len(_STEP_PREFIX):] for k in self._steps if k.startswith(_STEP_PREFIX)]
            raise BundleError(f"This bundle has no per-step '{name}'; it has {', '.join(have)}.")
        return self._steps[key]

    def scores(self, method: str) -> np.ndarray:
        """Contribution scores of one method, float32 [N, T], NaN past each length."""
        self._load()
        key = _SCORE_PREFIX + method
        if key not in self._steps:
            raise BundleError(f"This bundle holds the scores of {', '.join(self.methods) or 'no method'} only; "
                              f"'{method}' needs the model, which a bundle does not include. Build the bundle "
                              f"again with methods=[..., '{method}'].")
        return self._steps[key]

    @property
    def pca(self) -> Any:
        """The shared basis as a fitted :class:`rnnviz_core.trajectories.StatePCA`."""
        return _fitted_pca(self._arrays("pca.safetensors"))

    def paths(self) -> pd.DataFrame:
        """PCA paths of every sequence (columns ``seq, step, pc1 .. pck``; ``seq`` = the ids), as
        :func:`rnnviz_core.trajectories.pca_paths` gives them, with the explained variance ratios
        in ``attrs``."""
        from .trajectories import valid_mask

        k = int(self._arrays("pca.safetensors")["components"].shape[0])
        lens = self.lengths
        s_idx, t_idx = np.nonzero(valid_mask(lens, self.max_length))
        data = {"seq": self.ids[s_idx], "step": t_idx}
        for j in range(k):
            data[f"pc{j + 1}"] = self.steps(f"pc{j + 1}")[s_idx, t_idx].astype(np.float64)
        frame = pd.DataFrame(data)
        frame.attrs["explained_variance_ratio"] = [
            float(v) for v in self._arrays("pca.safetensors")["explained_variance_ratio"]]
        fit = self.manifest.get("analysis", {}).get("pca", {})
        if all(type(fit.get(k)) is int for k in ("fitted_points", "points")) \
                and 0 < fit["fitted_points"] <= fit["points"]:
            frame.attrs["fitted_points"], frame.attrs["points"] = fit["fitted_points"], fit["points"]
        return frame

    def norms(self) -> pd.DataFrame:
        """|h| over time as :func:`rnnviz_core.trajectories.state_norms` gives it (``seq`` = the ids)."""
        from .trajectories import valid_mask

        lens = self.lengths
        s_idx, t_idx = np.nonzero(valid_mask(lens, self.max_length))
        sum_abs = self.steps("sum_abs")[s_idx, t_idx].astype(np.float64)
        units = int(self.manifest["analysis"]["units"])
        return pd.DataFrame({
            "seq": self.ids[s_idx], "step": t_idx, "sum_abs": sum_abs, "mean_abs": sum_abs / units,
            "step_change": self.steps("step_change")[s_idx, t_idx].astype(np.float64),
            "plateau_step": self.sequences["plateau_step"].to_numpy()[s_idx], "length": lens[s_idx],
        })

    def saturation_over_time(self, by: str | Sequence[Any] | None = None) -> pd.DataFrame:
        """Mean share of saturated units per step and group, as
        :func:`rnnviz_core.saturation.saturation_over_time` gives it at the bundle's threshold.

        ``by``: a precomputed grouping (``true_class``, ``predicted_class``, ``outcome``,
        ``saturation`` or a data column with few values), one label per sequence, or None for one
        group "all".
        """
        from .saturation import group_time_mean as _group_time_mean
        from .trajectories import valid_mask

        groupings = self.manifest["analysis"].get("saturation_groupings", {})
        key = by if isinstance(by, str) and by in groupings else (f"data:{by}" if isinstance(by, str) and
                                                                  f"data:{by}" in groupings else None)
        if key is not None:
            arr = self._arrays("saturation.safetensors")
            cnt, s1, s2 = (arr[f"{key}.{w}"].astype(np.float64) for w in ("count", "sum", "sumsq"))
            labels = np.asarray(groupings[key], dtype=object)
            order = np.argsort(labels.astype(str), kind="stable")
            cnt, s1, s2, labels = cnt[order], s1[order], s2[order], labels[order]
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = s1 / cnt
                var = np.maximum(s2 / cnt - mean**2, 0.0) * cnt / np.maximum(cnt - 1, 1)
                sem = np.sqrt(var / cnt)
            gi, si = np.nonzero(cnt > 0)
            return pd.DataFrame({"group": labels[gi], "step": si, "frac_saturated": mean[gi, si],
                                 "sem": np.where(cnt[gi, si] > 1, sem[gi, si], np.nan),
                                 "n_sequences": cnt[gi, si].astype(np.int64)})
        if isinstance(by, str):
            if by not in self.sequences:
                raise BundleError(f"This bundle has no column '{by}' to group by.")
            by = self.sequences[by].astype(str).to_numpy()
        per = np.nan_to_num(self.steps("frac_saturated").astype(np.float64))
        return _group_time_mean(per, valid_mask(self.lengths, self.max_length), by)

    # ------------------------------------------------------------------ lazy reading, aggregates
    def lazy(self) -> Any:
        """The sequence table read lazily (:class:`rnnviz_core.bundle_lazy.LazyTable`): id search,
        given rows and columns, one column; memory follows one row group, not the bundle."""
        from .bundle_lazy import LazyTable

        return LazyTable(self)

    def _aggregate(self, key: str, by: str) -> tuple[np.ndarray, list[str]]:
        from . import bundle_aggregates as ba

        entry = self.manifest.get("analysis", {}).get("aggregates")
        if not entry:
            raise BundleError("This bundle was built without dataset aggregates; build it again with this rnnviz.")
        if by not in entry["groupings"]:
            raise BundleError(f"This bundle's aggregates are grouped by {', '.join(entry['groupings'])}; "
                              f"not by '{by}'.")
        return self._arrays(ba.FILE)[f"{key}.{by}"], list(entry["groupings"][by])

    def mean_abs_score(self, method: str, by: str = "all") -> pd.DataFrame:
        """Mean |score| of ``method`` by step and group (``all``, ``predicted_class``, ``true_class``),
        from the aggregates computed at build time: columns ``group, step, mean_abs, n_sequences``."""
        if method not in self.methods:
            raise BundleError(f"This bundle holds the scores of {', '.join(self.methods) or 'no method'} only.")
        s, labels = self._aggregate(f"score_abs.{method}", by)
        cnt, _ = self._aggregate("count", by)
        gi, si = np.nonzero(cnt > 0)
        return pd.DataFrame({"group": np.asarray(labels, dtype=object)[gi], "step": si,
                             "mean_abs": s[gi, si] / cnt[gi, si], "n_sequences": cnt[gi, si].astype(np.int64)})

    def histogram(self, column: str, by: str = "all") -> pd.DataFrame:
        """How many sequences have ``column`` (``confidence``, ``frac_saturated``,
        ``frac_saturated_final``) in each of the build's equal bins of [0, 1], per group:
        columns ``group, lo, hi, count``."""
        from . import bundle_aggregates as ba

        entry = self.manifest.get("analysis", {}).get("aggregates") or {}
        if column not in entry.get("hist_columns", []):
            raise BundleError(f"This bundle has histograms of {', '.join(entry.get('hist_columns', [])) or 'nothing'}"
                              f"; not of '{column}'.")
        h, labels = self._aggregate(f"hist.{column}", by)
        k, nb = h.shape
        edges = np.linspace(0.0, 1.0, ba.BINS + 1)
        return pd.DataFrame({"group": np.repeat(np.asarray(labels, dtype=object), nb),
                             "lo": np.tile(edges[:-1], k), "hi": np.tile(edges[1:], k),
                             "count": h.reshape(-1).astype(np.int64)})

    # ------------------------------------------------------------------ sampled full traces
    @property
    def sample_rows(self) -> np.ndarray:
        """Row numbers of the sequences whose full traces the bundle holds."""
        if "samples.safetensors" not in self.manifest["files"]:
            return np.zeros(0, dtype=np.int64)
        return self._arrays("samples.safetensors")["rows"]

    def sample_trace(self) -> Any:
        """The sampled sequences' full traces as a :class:`rnnviz_core.Trace` (h, c, every gate, every
        layer; rows in :attr:`sample_rows` order) — the same object ``rv.trace`` returns."""
        from .engine import RecurrentInfo
        from .trace import Trace

        if not self.sample_rows.size:
            raise BundleError("This bundle holds no full traces; build it with sample > 0.")
        a = self._arrays("samples.safetensors")
        try:
            mods = [RecurrentInfo(**m) for m in self.manifest["model"]["recurrent_modules"]]
        except TypeError:
            raise _refuse("The manifest's description of the recurrent modules is not one this rnnviz reads.") from None
        arrays = {k[len("trace:"):]: v for k, v in a.items() if k.startswith("trace:")}
        return Trace(a["hidden"], a["logits"], a["lengths"], mods, arrays=arrays)

    def sample_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """(x [S, T, F], lengths [S]) of the sampled sequences."""
        a = self._arrays("samples.safetensors")
        return a["x"], a["lengths"]

    def not_included(self) -> list[str]:
        """Views that need the model itself, which a bundle does not include (plain phrases)."""
        return list(self.manifest.get("analysis", {}).get("not_included", []))
