"""Building a bundle (split from :mod:`rnnviz_core.bundle`, issue 20): :func:`build` checks its
options, runs an engine (:mod:`rnnviz_core.bundle_engines`), then writes the saturation groupings,
the aggregates, the sample's full traces and the manifest, as a folder or one zip."""
from __future__ import annotations

import builtins
import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import bundle_check as _check
from . import bundle_horizons
from .bundle_blocks import Source, block_arrays
from .bundle_engines import Worker, run_local, run_ray
from .bundle_format import (DEFAULT_BATCH, DEFAULT_METHODS, DEFAULT_SAMPLE, FORMAT, FORMAT_VERSION, file_sha256,
                            model_hash)
from .errors import InputError

_N_GROUP_VALUES = 20   # data columns with at most this many values get precomputed saturation curves


def _decision_tolerance(model: Any, src: "Source", device: Any, batch_size: int) -> tuple[float, int] | None:
    """A one-output model's decision tolerance (:func:`rnnviz_core.horizon_findings.regression_tolerance`)
    over the final outputs of the whole data, so every block uses the same one, as the live page
    does over every loaded sequence: all sequences up to ``bundle_horizons.TOL_SEQUENCES``, evenly
    spaced blocks beyond. (tolerance, sequences used), or None for a model with several outputs
    (one sequence's forward pass tells)."""
    from .horizon_findings import regression_tolerance
    from .trace import predict

    every = bundle_horizons.tolerance_block_step(src.n, src.block_size)
    finals, used = [], 0
    for i, tbl in enumerate(src.tables(columns=["row", "id", "length", "x"])):
        if i % every:
            continue
        if i == 0:   # one sequence tells a model with several outputs (before: a whole block's forward)
            one = block_arrays(tbl.slice(0, 1), src.meta)
            if np.asarray(predict(model, one["X"], one["lengths"], device=device, batch_size=1)).reshape(1, -1).shape[1] != 1:
                return None
        b = block_arrays(tbl, src.meta)
        out = np.asarray(predict(model, b["X"], b["lengths"], device=device, batch_size=batch_size))
        if out.reshape(len(out), -1).shape[1] != 1:
            return None
        finals.append(out.reshape(-1))
        used += len(out)
    return (regression_tolerance(np.concatenate(finals)), used) if finals else None


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


class _Groupings:
    """Per grouping: count / sum / sum of squares [K, T] of the per-step saturated share, one part
    at a time (:meth:`add`, with the part's ``columns``), then :meth:`finish` -> (arrays, groups)."""

    def __init__(self, schema_names: Sequence[str], t_max: int):
        names = [c for c in ("true_class", "predicted_class", "outcome", "saturation") if c in schema_names]
        self.names = names + [c for c in schema_names if c.startswith("data:")]
        self.columns = self.names + ["length", "step:frac_saturated"]
        self.t_max = t_max
        self.labels: dict[str, dict[str, int]] = {g: {} for g in self.names}
        self.sums: dict[str, list] = {g: [] for g in self.names}

    def add(self, tbl: Any) -> None:
        from . import bundle_aggregates as ba
        from .trajectories import valid_mask

        names, labels, sums, t_max = self.names, self.labels, self.sums, self.t_max
        lens = tbl["length"].to_numpy()
        t = int(lens.max())
        vals = tbl["step:frac_saturated"].combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(np.float64)
        mask = valid_mask(lens, t)
        per = np.zeros(mask.shape)
        per[mask] = vals
        for g in names:
            uniq, inv = ba.text_codes(tbl[g])
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

    def finish(self) -> tuple[dict, dict]:
        arrays, listed = {}, {}
        for g in self.names:
            if len(self.labels[g]) > _N_GROUP_VALUES and g.startswith("data:"):
                continue
            # groups in sorted order, not in order of first appearance: that order depends on how the
            # rows were split into parts (Ray's parts differ from a local build's), the numbers do not
            names_g = list(self.labels[g])
            order = sorted(range(len(names_g)), key=lambda i: names_g[i])
            for j, what in enumerate(("count", "sum", "sumsq")):
                arrays[f"{g}.{what}"] = np.ascontiguousarray(self.sums[g][j][order])
            listed[g] = [names_g[i] for i in order]
        return arrays, listed


#: the columns the sample's choice reads, when the parts have them (:func:`_choose_sample`)
SAMPLE_KEYS = ("true_class", "outcome", "predicted_class")


def _choose_sample(tbl: Any, size: int, seed: int = 0) -> np.ndarray:
    """Rows covering every (true class, outcome) cell (or predicted class without labels), round
    robin; ``tbl`` holds every sequence's ``row`` and the parts' :data:`SAMPLE_KEYS`."""
    import pyarrow as pa

    from . import bundle_aggregates as ba

    keys = [c for c in ("true_class", "outcome") if c in tbl.column_names] or \
           [c for c in ("predicted_class",) if c in tbl.column_names]
    rows = tbl["row"].to_numpy()
    order = np.argsort(rows, kind="stable")
    if size >= len(rows):
        return rows[order].astype(np.int64)
    rng = np.random.default_rng(seed)
    # each row's cell as text ("true class|outcome"), the cells in sorted order, each cell's rows in
    # row order, shuffled once per cell in that order
    cell = np.full(len(rows), "all", dtype=object)
    for j, k in enumerate(keys):
        uniq, inv = ba.text_codes(tbl[k].combine_chunks().take(pa.array(order)))
        words = uniq.astype(object)[inv]
        cell = words if j == 0 else cell + "|" + words
    names, which = np.unique(cell.astype(str), return_inverse=True)
    sorted_rows = rows[order]
    pools = [rng.permutation(sorted_rows[which.reshape(-1) == c]) for c in range(len(names))]
    picked: list[int] = []
    i = 0
    while len(picked) < size:
        for pool in pools:
            if i < len(pool) and len(picked) < size:
                picked.append(int(pool[i]))
        i += 1
    return np.sort(np.asarray(picked, dtype=np.int64))


class _AfterPass:
    """Everything computed from the parts after the analyses, fed each part once (the local engine:
    the PCA fit's blocks first, then the others in order; the per-sequence columns are put back in
    part order): the saturation curves per grouping and the aggregates (both summed part by part), and the
    per-sequence columns the group comparisons, the horizon tables and the sample's choice read
    (a few numbers and labels of every sequence). The local engine feeds each part's table as it
    finishes it (``add(table, path)``): the curves and aggregates are summed from it, with no read
    back of the step columns, and its per-sequence columns are read from its file after the pass
    (holding them through the pass raised the peak memory: 1,027 MB against 821 MB at 300,000
    sequences, the tables held between the pass's large arrays). A part from an earlier run, or
    from Ray's actors, is read from its file (``add(path)``, only the columns needed). Before, each
    of those consumers read every part again."""

    def __init__(self, t_max: int, methods: Sequence[str]):
        self.t_max, self.methods = int(t_max), list(methods)
        self.groupings = self.aggregates = None
        self.kept: list = []     # per part: its per-sequence columns, or the path to read them from
        self.dropped: set = set()

    def _start(self, names: list[str]) -> None:
        from . import bundle_aggregates as ba
        from . import bundle_compare as bc
        from . import bundle_horizon_tables as bht

        self.groupings = _Groupings(names, self.t_max)
        self.aggregates = ba.Aggregates(names, self.t_max, self.methods)
        scalar = ["row", "length"] + [c for c in (*bc.COLUMNS, *bht.METRICS, *bht.table_columns(True, True),
                                                  *bht.table_columns(False, True), *SAMPLE_KEYS,
                                                  *self.groupings.names) if c in names]
        self.scalar = list(dict.fromkeys(scalar))
        self.cols = list(dict.fromkeys(self.scalar + self.groupings.columns + self.aggregates.columns))

    def add(self, part: Any, path: Any = None) -> None:
        """One part: the path of its file, or its Arrow table as the worker gave it and ``path``,
        the file it was written to (its per-sequence columns are read from there in :meth:`finish`)."""
        import pyarrow.parquet as pq

        if isinstance(part, (str, os.PathLike)):
            if self.groupings is None:
                self._start(pq.read_schema(part).names)
            tbl = pq.read_table(part, columns=self.cols)
        else:
            if path is None:
                raise TypeError("_AfterPass.add needs the path a part's table was written to")
            if self.groupings is None:
                self._start(part.schema.names)
            tbl = part.select(self.cols)
        self.groupings.add(tbl)
        self.aggregates.add(tbl)
        # a data column of more than _N_GROUP_VALUES values gets no comparison: not kept
        over = {g for g in self.groupings.names
                if g.startswith("data:") and len(self.groupings.labels[g]) > _N_GROUP_VALUES}
        if over - self.dropped:
            self.kept = [k if isinstance(k, Path) else k.drop_columns(sorted(over - self.dropped))
                         for k in self.kept]
            self.dropped |= over
        self.kept.append(Path(path) if path is not None else
                         tbl.select([c for c in self.scalar if c not in self.dropped]))

    def finish(self) -> tuple:
        """(groupings, aggregates, the per-sequence columns as one Arrow table, in row order)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = [c for c in self.scalar if c not in self.dropped]
        if all(isinstance(k, Path) for k in self.kept):   # in part order, so in row order (the local
            self.kept.sort(key=lambda k: k.name)           # engine finishes the PCA fit's blocks first)
        tables = [pq.read_table(k, columns=cols) if isinstance(k, Path) else k for k in self.kept]
        return self.groupings, self.aggregates, pa.concat_tables(tables)


def _after_pass(parts_dir: Path, t_max: int, methods: Sequence[str]) -> tuple:
    """:class:`_AfterPass` fed every part's file in ``parts_dir``, in part order."""
    after = _AfterPass(t_max, methods)
    for p in sorted(parts_dir.glob("*.parquet")):
        after.add(p)
    return after.finish()


def _sample_arrays(src: Source, model: Any, rows: np.ndarray, opts: Mapping) -> dict:
    from .trace import trace

    b = block_arrays(src.read_rows(rows), src.meta)   # only the input's groups that hold them
    X, lens = b["X"], b["lengths"]
    tr = trace(model, X, lens, gates=True, device=opts["device"], batch_size=opts["batch_size"])
    out = {"rows": b["rows"].astype(np.int64), "lengths": lens.astype(np.int64),
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
    resume : reuse the blocks an earlier run of this same build (same model, data, options and
        engine) finished before it stopped; they are kept in ``.<name>.rnnviz-build`` beside
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
    src = Source(dataset, batch_size)
    opts = {"methods": methods, "method_options": method_options, "threshold": float(threshold),
            "low": float(low), "high": float(high), "levels": [float(v) for v in levels],
            "device": device, "batch_size": int(batch_size)}
    tol = _decision_tolerance(model, src, device, int(batch_size))   # one output: over the whole data
    if tol is not None:
        opts["decision_tol"], opts["decision_tol_sequences"] = tol
    from . import bundle_progress as bp

    parent = path.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    # a build folder kept until the bundle is written: a stopped build resumes (either engine; the
    # engine is part of the key, as the two may cut a sequence file into blocks differently)
    tmp = bp.work_dir(path)
    key = bp.build_key(model_hash(model), src.meta, {**opts, "engine": engine},
                       src.path if src.path is not None else src.ds)
    bp.prepare(tmp, key, bool(resume))
    done = False
    try:
        stage = tmp / "bundle"
        parts = stage / "sequences"
        parts.mkdir(parents=True, exist_ok=True)
        if engine == "local":
            # each part's table feeds the saturation curves, the aggregates and the per-sequence
            # columns of the comparisons, the horizon tables and the sample's choice as it is made
            after = _AfterPass(int(src.meta["max_length"]), methods)
            res = run_local(src, Worker(model, opts, src.meta), parts, tmp, progress, consume=after.add)
            groupings, aggregates, per_seq = after.finish()
        else:
            res = run_ray(src, model, opts, parts, tmp, concurrency, num_gpus, progress)
            # one read of every part, as Ray's actors left them
            groupings, aggregates, per_seq = _after_pass(parts, int(src.meta["max_length"]), methods)
        _save_st({k: np.asarray(v) for k, v in res["pca"].items()}, stage / "pca.safetensors")
        sat_arrays, sat_groups = groupings.finish()
        _save_st(sat_arrays or {"none": np.zeros(1)}, stage / "saturation.safetensors")
        from . import bundle_aggregates as ba

        agg_arrays, agg_entry = aggregates.finish()
        from . import bundle_compare as bc   # the Saturation page's group comparisons, with the aggregates

        cmp_arrays, agg_entry["comparisons"] = bc.compute(per_seq, list(sat_groups))
        agg_arrays.update(cmp_arrays)
        # the Contributions page's horizon tables (summary per predicted class, wrong vs correct)
        from . import bundle_horizon_tables as bht

        class_names = src.meta["class_names"] or (list(getattr(model, "class_names", None) or []) or None)
        hz_arrays, agg_entry["horizon_tables"] = bht.compute(
            per_seq, class_names, int(np.prod(res["first"]["logit_shape"] or [1])) == 1, bool(src.meta["has_y"]),
            bundle_horizons.horizon_method(methods))
        agg_arrays.update(hz_arrays)
        _save_st(agg_arrays, stage / ba.FILE)
        sample_rows = _choose_sample(per_seq, int(sample)) if sample else np.zeros(0, np.int64)
        del per_seq
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
                "class_names": class_names,
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
                digest, size = file_sha256(p)
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
        if done:
            shutil.rmtree(tmp, ignore_errors=True)
    return path
