"""The bundle's per-block work and its two engines (split from :mod:`rnnviz_core.bundle`, issue 20):
:class:`Worker` (one block in, one bundle part out), :func:`run_local` (this process, block after
block, resumable) and :func:`run_ray` (Ray Data actors running the same worker)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import bundle_horizons
from .bundle_blocks import BLOCK_COLUMN, Source, block_arrays
from .bundle_format import fitted_pca, row_hash_sum
from .errors import InputError


# ============================================================================ per-block work
class Worker:
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
            self.pca = fitted_pca(pca)

    def _trace(self, b: dict, gates: bool) -> Any:
        from .trace import trace

        return trace(self.model, b["X"], b["lengths"], gates=gates, device=self.opts["device"],
                     batch_size=self.opts["batch_size"])

    def __call__(self, tbl: Any) -> Any:
        """Analyse one block; returns an Arrow table, one row per sequence (a bundle part)."""
        return self.complete(self.analyse(tbl))

    def analyse(self, tbl: Any) -> dict:
        """One block's analyses but the PCA columns, which need the basis (:meth:`complete` adds
        them): ``{"out": the part's columns (the PCA ones None), "hv": the valid steps' states,
        "offsets": each sequence's first step in hv, then their number, "rows", "first": the
        model's modules, output shape and units}``. The data hash's part is in ``last_hash``."""
        import pyarrow as pa

        from . import saturation as sa
        from . import trajectories as tj
        from .contributions import contributions_many
        from .analyses.outcomes import Coded, sequence_columns

        o = self.opts
        b = block_arrays(tbl, self.meta)
        self.last_hash = row_hash_sum(b["rows"], b["ids"], b["lengths"], b["X"], b["y"])   # the data hash's part
        lens, n = b["lengths"], len(b["rows"])
        # the scores and the trace (every gate) from one forward pass: the gradient methods share
        # one forward and backward pass, which records the trace as it goes (contributions_many)
        scored, tr = contributions_many(self.model, b["X"], o["methods"], lens, device=o["device"],
                                        batch_size=o["batch_size"], return_info=True,
                                        method_options=o["method_options"], trace="last")
        h = tr.get("h", layer=-1, direction="fwd")
        gates = sa.trace_gates(tr, layer=-1, direction="fwd") or None
        # the saturation page's table (app_support._sat_table) with the bundle's thresholds: the
        # columns of sequence_table, computed without its frame (sequence_columns), and the count
        # of saturated units per step once, for the shares per sequence and per step
        counts: list = []
        cols = sequence_columns(tr.logits, b["y"], states=h, lengths=lens, gates=gates,
                                class_names=self.meta["class_names"], threshold=o["threshold"], low=o["low"],
                                high=o["high"], levels=o["levels"], counts=counts, coded=True)
        mask = tj.valid_mask(lens, h.shape[1])
        full = bool(mask.all())   # every sequence as long as the block: the valid steps are every step

        def valid(a: np.ndarray) -> np.ndarray:
            """a[mask]: the valid steps, step by step within each sequence (a view when every step is)."""
            return a.reshape(-1, *a.shape[2:]) if full else a[mask]

        sum_abs, _, change = tj.norm_arrays(h, lens)
        # the share of saturated units at each valid step (saturation.saturation_by_step)
        per_step = valid(counts[0]) / h.shape[2]
        hv = valid(h)   # the valid steps' states [steps, H], for the projection
        out = {"row": pa.array(b["rows"].astype(np.int64)), "id": pa.array(list(b["ids"]), type=pa.string())}
        regression = "correct" in cols and cols["correct"].dtype.kind == "f"
        for col, v in cols.items():
            if col == "length":
                continue
            if col == "correct" and regression:   # a number model: right/wrong does not apply
                out[col] = pa.nulls(n, type=pa.bool_())
            elif isinstance(v, Coded):   # the names as text, as the table's values
                out[col] = pa.array(np.asarray(v.categories, dtype=object)[v.codes], type=pa.string(),
                                    mask=np.asarray(v.codes) < 0)
            else:
                out[col] = pa.array(v)
        for name in ([] if b["groups"] is None else list(b["groups"].columns)):
            out[f"data:{name}"] = tbl[f"group:{name}"]   # the data's own column, with its Arrow type
        out["plateau_step"] = pa.array(tj.plateau_steps(sum_abs, lens))
        out["length"] = pa.array(lens.astype(np.int64))
        logits = np.asarray(tr.logits, dtype=np.float32).reshape(n, -1)
        out["logits"] = pa.FixedSizeListArray.from_arrays(pa.array(logits.reshape(-1)), logits.shape[1])
        offsets = pa.array(np.concatenate([[0], np.cumsum(lens)]).astype(np.int32))

        def steps(values: np.ndarray) -> Any:
            return pa.ListArray.from_arrays(offsets, pa.array(np.asarray(values, dtype=np.float32)))

        out["step:sum_abs"] = steps(valid(sum_abs))
        out["step:step_change"] = steps(valid(change))
        out["step:frac_saturated"] = steps(per_step)
        for j in range(min(2, h.shape[2])):   # the PCA columns' places (pca_from_moments keeps <= 2)
            out[f"step:pc{j + 1}"] = None
        hz_scores = {}   # hz22: the horizon columns (rnnviz_core.bundle_horizons) from these scores
        for method in o["methods"]:
            sc, info = scored[method]
            hz_scores[method] = sc   # hz22
            out[f"score:{method}"] = steps(valid(sc[:, : h.shape[1]]))
            if "completeness_error" in info:
                out[f"{method}:completeness_error"] = pa.array(np.asarray(info["completeness_error"], np.float64))
        out.update(bundle_horizons.columns(self.model, b["X"], lens, hz_scores, o, states=h))   # hz22
        from .bundle_fit import model_facts

        return {"out": out, "hv": hv, "offsets": np.concatenate([[0], np.cumsum(lens)]).astype(np.int64),
                "rows": np.asarray(b["rows"], dtype=np.int64), "first": model_facts(tr)}

    def complete(self, done: Mapping) -> Any:
        """The part (an Arrow table) of a block :meth:`analyse` analysed, with its PCA columns:
        the projection (StatePCA.transform) of its valid steps on the basis ``self.pca``."""
        import warnings

        import pyarrow as pa
        import torch

        out, hv, offsets = dict(done["out"]), done["hv"], pa.array(done["offsets"].astype(np.int32))
        # in float32 like the stored values (a float64 product of every state took 10x longer for a
        # difference below 1e-6), with torch, under its thread setting (numpy's product woke
        # OpenBLAS's helper threads, which then spun on the CPU through the scores that follow;
        # measured 0.15-0.25 s per 1,000 sequences of another thread's CPU on two cores); as
        # components @ h - components @ mean: one component per contiguous row, and no centred copy
        # of every state (8x sooner; components @ mean in float64, so no less exact)
        comps = np.asarray(self.pca.components_, dtype=np.float64)
        with warnings.catch_warnings():   # a trace's arrays are read-only; the product only reads them
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            states = torch.from_numpy(hv).to(torch.float32)
        proj = (torch.from_numpy(np.ascontiguousarray(comps, dtype=np.float32)) @ states.T).numpy()
        proj -= (comps @ np.asarray(self.pca.mean_, dtype=np.float64)).astype(np.float32)[:, None]
        if [c for c in out if c.startswith("step:pc")] != [f"step:pc{j + 1}" for j in range(proj.shape[0])]:
            raise RuntimeError("the PCA basis has another number of components than the part has places for")
        for j in range(proj.shape[0]):
            out[f"step:pc{j + 1}"] = pa.ListArray.from_arrays(offsets, pa.array(proj[j]))
        return pa.table(out)


def pca_from_moments(n: int, mean: np.ndarray, m2: np.ndarray, k: int) -> dict:
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


#: the blocks that hold the PCA fit's rows are analysed first and held (their parts wait for the
#: basis) when their states take at most this many bytes: the basis is then fitted on those rows'
#: states from the pass itself, with no trace of their own; above it, the fit rows are traced first
HOLD_BYTES = 64 << 20


def run_local(src: Source, worker: Worker, parts_dir: Path, folder: Path | None = None,
               progress: Any = None, consume: Any = None) -> dict:
    """One pass block by block, every sequence traced once, with the PCA basis fitted on a bounded
    sample of whole sequences (:mod:`rnnviz_core.bundle_fit`): from the pass's own states of the
    blocks that hold them, analysed first and held until the basis is fitted (:data:`HOLD_BYTES`),
    or traced before the pass. With a build ``folder``, each finished block is kept there
    (:mod:`rnnviz_core.bundle_progress`) and blocks finished by an earlier run are kept.
    ``consume``: called with each part: its table as just made and the path it was written to, or,
    for a block an earlier run finished, the path of its file (the held blocks first, then the
    others in order)."""
    from . import bundle_fit as bf
    from . import bundle_progress as bp
    from .engine import find_recurrent

    def part_of(k: int) -> Path:
        return parts_dir / f"part-{k:05d}.parquet"

    def finish(k: int, done: Mapping, h: int) -> None:
        made = worker.complete(done)
        bp.write_part(made, part_of(k))
        if consume is not None:
            consume(made, part_of(k))
        hashes[k] = h
        bar.update(made.num_rows)

    hashes: dict[int, int] = {}
    bar = bp.bar(src.n, "rnnviz: analyses", progress)
    # held per sequence-step: the states (float32) and the part's per-step columns (|h|, its change,
    # the saturated share and each method's scores)
    per_step = 4 * (find_recurrent(worker.model)[-1].output_size + 3 + len(worker.opts["methods"]))
    lengths = bf.source_lengths(src)   # read once: the fit's rows are drawn from them
    plan = bf.held_groups(src, lengths, per_step, HOLD_BYTES)
    if plan is not None and any(folder is not None and bp.part_done(part_of(int(k))) for k in plan[1]):
        plan = None   # an earlier run finished one of them: its states are not here to fit on
    if plan is None:
        fitted = bf.fit(src, worker, block_arrays, pca_from_moments, lengths=lengths)
        worker.pca = fitted_pca(fitted["pca"])
    else:
        rows, groups = plan
        held = {}
        for k in (int(g) for g in groups):
            held[k] = worker.analyse(src.block(k))
            held[k]["hash"] = worker.last_hash
        fitted = bf.fit_from_held(held, rows, lengths, pca_from_moments)
        worker.pca = fitted_pca(fitted["pca"])
        for k in sorted(held):
            done = held.pop(k)
            finish(k, done, done["hash"])
    blocks = enumerate(src.tables(evict=False)) if plan is None else \
        ((k, src.block(k, evict=False)) for k in range(len(src.group_starts()) - 1) if k not in hashes)
    for k, tbl in blocks:
        if folder is None or not bp.part_done(part_of(k)):
            done = worker.analyse(tbl)
            finish(k, done, worker.last_hash)
        else:   # a block an earlier run finished: its hash part without a trace
            hashes[k] = bf.block_hash(tbl, src.meta, block_arrays, row_hash_sum)
            if consume is not None:
                consume(part_of(k))
            bar.update(tbl.num_rows)
    bar.close()
    hsum = sum(hashes.values()) % (1 << 256)
    return {"pca": fitted["pca"], "hash": hsum, "first": fitted["first"],
            "fit": {k: fitted[k] for k in ("rule", "fitted_points", "points")}}


def run_ray(src: Source, model: Any, opts: dict, parts_dir: Path, tmp: Path, concurrency: int | None,
             num_gpus: float | None, progress: Any = None) -> dict:
    """Ray Data actors run :class:`Worker` over the blocks (:meth:`Source.ray_dataset`); the driver
    writes each block's part into ``parts_dir`` (the build folder) as it completes, and skips the
    blocks whose parts an earlier run left there (resume)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise InputError("engine='ray' needs Ray Data: pip install 'rnnviz[ray]' (or pip install 'ray[data]'), "
                         "or use engine='local'.") from None
    started = False
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
        started = True
    # every actor of the pool started before the first block is handed out (Ray Data otherwise
    # starts them as the blocks flow, and the first actor up can take every block of a short run
    # before the others are placed): the blocks go to the least busy actor, on every node
    ctx = ray.data.DataContext.get_current()
    wait_before = ctx.wait_for_min_actors_s
    ctx.wait_for_min_actors_s = WAIT_FOR_ACTORS_S
    try:
        if num_gpus is None:
            num_gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        if concurrency is None:
            # one actor per GPU, or per CPU but one (Ray Data's read tasks need a CPU too: actors
            # holding every CPU would leave the reads waiting for ever)
            res = ray.cluster_resources()
            concurrency = max(1, int(res.get("GPU", 0)) if num_gpus else int(res.get("CPU", 1)) - 1)
        # Ray Data places actors with its default strategy, SPREAD: on as many nodes as there are
        kw = dict(batch_size=src.block_size, batch_format="pyarrow", zero_copy_batch=True, num_cpus=1,
                  # one block in flight per actor: the next block goes to an actor without one, so
                  # the blocks spread over every actor (with several queued per actor, one actor on
                  # one node could take every block of a short run while the other was starting)
                  compute=ray.data.ActorPoolStrategy(size=int(concurrency), max_tasks_in_flight_per_actor=1))
        if num_gpus:
            kw["num_gpus"] = num_gpus
        model_ref = ray.put(model)
        from . import bundle_fit as bf
        from . import bundle_progress as bp

        # the PCA basis first (a bounded sample, traced here), then one pass over the blocks: each
        # actor returns a block's part with its data hash and where it ran (before: a whole pass of
        # its own for the hashes, 10-12 s of actor start-up and a second read of every block)
        fitted = bf.fit(src, Worker(model, opts, src.meta), block_arrays, pca_from_moments)
        pca, first = fitted["pca"], fitted["first"]

        # the analyses of the blocks an earlier run did not finish (resume: the build folder keeps
        # every finished block's part, written here on the driver as soon as all its rows are back);
        # a finished block's hash part is read here without a trace, as the local engine does
        _, blocks = src.ray_blocks(tmp)
        todo = [k for k in range(len(blocks)) if not bp.part_done(parts_dir / f"part-{k:05d}.parquet")]
        hsum, nodes, gpu_blocks = 0, set(), set()
        if len(todo) < len(blocks):
            todo_set = set(todo)
            for k, tbl in enumerate(src.tables()):
                if k not in todo_set:
                    hsum = (hsum + bf.block_hash(tbl, src.meta, block_arrays, row_hash_sum)) % (1 << 256)
        bar = bp.bar(src.n, "rnnviz: analyses", progress)
        bar.update(sum(blocks[k][1] for k in range(len(blocks)) if k not in set(todo)))
        rds_todo = src.ray_dataset(tmp, only=todo) if todo else None
        if rds_todo is not None:
            out = rds_todo.map_batches(_RayAnalyse, fn_constructor_kwargs={"model": model_ref, "opts": opts,
                                                                          "meta": src.meta, "pca": pca}, **kw)
            pieces: dict[int, list] = {}
            try:
                for res_tbl in out.iter_batches(batch_size=None, batch_format="pyarrow"):
                    for i in range(res_tbl.num_rows):
                        k, data = int(res_tbl["block"][i].as_py()), res_tbl["part"][i].as_py()
                        # the data hash is a sum over rows, so a block split over batches adds up
                        hsum = (hsum + int(res_tbl["hash"][i].as_py(), 16)) % (1 << 256)
                        nodes.add(res_tbl["node"][i].as_py())
                        if res_tbl["gpus"][i].as_py() > 0:
                            gpu_blocks.add(k)
                        pieces.setdefault(k, []).append(data)
                        got = _pieces_rows(pieces[k])
                        if got == blocks[k][1]:   # the whole block is back: its part, complete or not at all
                            _write_block(pieces.pop(k), parts_dir / f"part-{k:05d}.parquet")
                            bar.update(got)
            except ray.exceptions.GetTimeoutError:
                raise InputError(f"The Ray cluster did not start the {int(concurrency)} actors this build asked for "
                                 f"within {WAIT_FOR_ACTORS_S} s (each needs 1 CPU"
                                 + (f" and {num_gpus:g} GPU" if num_gpus else "") + "); ask for fewer (concurrency= in "
                                 "Python, --concurrency with rnnviz precompute), or add nodes.") from None
            if pieces:
                raise RuntimeError(f"Ray returned blocks {sorted(pieces)[:5]} incomplete; build again with resume.")
        bar.close()
        # placement: the blocks this run analysed (a resumed run's earlier blocks ran elsewhere)
        return {"pca": pca, "hash": hsum, "first": first,
                "fit": {k: fitted[k] for k in ("rule", "fitted_points", "points")},
                "placement": {"ray_nodes": len(nodes), "ray_actors": int(concurrency),
                              "ray_gpus_per_actor": float(num_gpus or 0),
                              "ray_blocks_on_gpu_actors": f"{len(gpu_blocks)} of {len(todo)}"}}
    finally:
        ctx.wait_for_min_actors_s = wait_before
        if started:
            ray.shutdown()


#: how long a Ray build waits for its actors to start before it hands out blocks
WAIT_FOR_ACTORS_S = 600


class _RayActor:
    """Base of the Ray Data actors: builds the shared worker once per actor (model loaded once)."""

    def __init__(self, model: Any, opts: Mapping, meta: Mapping, pca: Mapping | None = None):
        import torch

        if not isinstance(model, torch.nn.Module):  # an ObjectRef that Ray did not resolve
            import ray
            model = ray.get(model)
        self.worker = Worker(model, opts, meta, pca)


class _RayAnalyse(_RayActor):
    """One result row per block in the batch: its number, its part as Parquet bytes (written where
    the work ran, so the driver only writes bytes), its data hash part and where it ran."""

    def __call__(self, tbl: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from . import bundle_progress as bp

        import ray

        ks, parts, hashes = [], [], []
        col = tbl[BLOCK_COLUMN]
        for k in pc.unique(col).to_pylist():
            sub = tbl.filter(pc.equal(col, k)).drop_columns([BLOCK_COLUMN])
            sink = pa.BufferOutputStream()
            part = self.worker(sub)
            pq.write_table(part, sink, **bp.part_options(part.schema))
            ks.append(int(k))
            parts.append(sink.getvalue().to_pybytes())
            hashes.append(format(self.worker.last_hash, "064x"))
        # where the blocks ran (the node, the GPUs Ray gave this actor): the build records how many
        # nodes and GPU actors took part
        ctx = ray.get_runtime_context()
        return pa.table({"block": pa.array(ks, pa.int64()), "part": pa.array(parts, pa.binary()),
                         "hash": pa.array(hashes, pa.string()), "node": [ctx.get_node_id()] * len(ks),
                         "gpus": [len(ray.get_gpu_ids())] * len(ks)})


def _pieces_rows(pieces: list) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(pa.BufferReader(p)).metadata.num_rows for p in pieces)


def _write_block(pieces: list, path: Path) -> None:
    """A block's part from the piece(s) Ray returned (one, unless a batch split the block)."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from . import bundle_progress as bp

    if len(pieces) == 1:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(pieces[0])
        os.replace(tmp, path)
        return
    tbl = pa.concat_tables([pq.read_table(pa.BufferReader(p)) for p in pieces], promote_options="permissive")
    bp.write_part(tbl.sort_by("row"), path)
