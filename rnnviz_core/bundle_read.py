"""Reading a bundle (split from :mod:`rnnviz_core.bundle`, issue 20): :func:`open` checks it
(:mod:`rnnviz_core.bundle_check`) and gives a :class:`Bundle`, whose readers serve the pages."""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import pandas as pd

from . import bundle_check as _check
from .bundle_files import BundleFiles
from .bundle_format import (DEFAULT_MAX_BYTES, FORMAT, FORMAT_VERSION, MAX_MANIFEST_BYTES, SAFE_NAME,
                            SCORE_PREFIX, STEP_PREFIX, fitted_pca)
from .bundle_json import loads as _loads_json
from .errors import BundleError

_refuse = _check.refuse


def categories_of(frame: pd.DataFrame, class_names: Any) -> pd.DataFrame:
    """A bundle table's group columns as the live table has them (in place, returned): the classes
    in the model's order, outcomes "correct"/"wrong", saturation levels ordered."""
    for col in ("true_class", "predicted_class"):
        if col in frame and class_names:
            frame[col] = pd.Categorical(frame[col], categories=class_names)
    if "outcome" in frame:
        frame["outcome"] = pd.Categorical(frame["outcome"], categories=["correct", "wrong"])
    if "saturation" in frame:
        from .groups import SATURATION_LEVELS
        frame["saturation"] = pd.Categorical(frame["saturation"], categories=list(SATURATION_LEVELS), ordered=True)
    return frame


def open(path: str | os.PathLike | bytes | Any, *, max_bytes: int = DEFAULT_MAX_BYTES,  # noqa: A001
         max_memory: int = _check.DEFAULT_MAX_MEMORY, read: bool = True) -> "Bundle":
    """Open a bundle (a folder, a ``.rnnviz`` file, its bytes, a binary file object, or a bundle
    folder's ``file://``, ``http(s)://`` or ``s3://`` URL, :mod:`rnnviz_core.bundle_remote`) after
    checking it.

    One check, before anything large is read (:mod:`rnnviz_core.bundle_check`): the manifest must
    name this format and version and pass its schema; it must list every file of the bundle once
    (no file missing, none extra or unknown), each file's size and SHA-256 matching; the
    safetensors headers and Parquet footers must agree with it; the memory the pages' reads take,
    computed from those, must be within ``max_memory``; the whole bundle may hold at most
    ``max_bytes``. With ``read`` (the default) the table and arrays are then read and their values
    checked, so that every page can read what passed. Anything else is refused with a sentence
    saying what is wrong. A bundle behind an http(s) or s3 URL is read by ranges: its files are
    checked by size, headers and footers, and each against its hash when it is read whole. Without
    ``read`` (a lazy open) the Parquet parts are checked by size and footers the same way, not
    hashed: hashing them means reading every part whole; every other file is still hashed.
    """
    from .bundle_remote import open_files
    from .contributions import METHODS

    files = open_files(path, max_bytes)   # a path, bytes, a file object, or a file://, http(s):// or s3:// URL
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
        if not isinstance(name, str) or not SAFE_NAME.match(name) or ".." in name:
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
    remote = getattr(files, "remote", False)
    if remote:   # read by ranges: a file read whole is checked against its hash as it is read
        files.hashes = {name: entry["sha256"] for name, entry in listed.items()}
    # a lazy open (read=False: a host's bundle, read by ranges as views ask) checks the Parquet parts
    # by size and footers, as a URL's, instead of reading every part whole to hash it (2.5 GB at 1M
    # sequences: 2.4 s of the first page); every other file is hashed whole
    hash_parts, part_set = read and not remote, set(parts)
    for name, entry in listed.items():
        if files.size(name) != entry["bytes"]:
            raise _refuse(f"'{name}' is not the size its manifest entry says; the bundle is damaged.")
        if not remote and (hash_parts or name not in part_set) and files.sha256(name, entry["bytes"]) != entry["sha256"]:
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
        ba.check(headers[ba.FILE], manifest["analysis"].get("aggregates"), facts.methods, facts.max_length, _refuse,
                 manifest["analysis"].get("saturation_groupings"))
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

            data = self._bytes(name)   # a remote file is checked against its hash here
            try:
                self._st[name] = load(data)
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
        step_cols = [c for c in tbl.column_names if c.startswith((STEP_PREFIX, SCORE_PREFIX))]
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
        frame = categories_of(frame, self.class_names)
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
        key = STEP_PREFIX + name
        if key not in self._steps:
            have = [k[len(STEP_PREFIX):] for k in self._steps if k.startswith(STEP_PREFIX)]
            raise BundleError(f"This bundle has no per-step '{name}'; it has {', '.join(have)}.")
        return self._steps[key]

    def scores(self, method: str) -> np.ndarray:
        """Contribution scores of one method, float32 [N, T], NaN past each length."""
        self._load()
        key = SCORE_PREFIX + method
        if key not in self._steps:
            raise BundleError(f"This bundle holds the scores of {', '.join(self.methods) or 'no method'} only; "
                              f"'{method}' needs the model, which a bundle does not include. Build the bundle "
                              f"again with methods=[..., '{method}'].")
        return self._steps[key]

    @property
    def pca(self) -> Any:
        """The shared basis as a fitted :class:`rnnviz_core.trajectories.StatePCA`."""
        return fitted_pca(self._arrays("pca.safetensors"))

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

    def group_comparison(self, by: str, a: Any, b: Any) -> pd.DataFrame | None:
        """The Saturation page's comparison of groups ``a`` and ``b`` (labels as text) under the
        stored grouping ``by`` (a key of ``manifest['analysis']['saturation_groupings']``: ``outcome``,
        ``true_class``, ``data:<name>`` ...), computed when the bundle was built: the frame
        :func:`rnnviz_core.groups.compare_groups` gives, read without scanning any row; None when
        the bundle holds none for them (:mod:`rnnviz_core.bundle_compare`)."""
        from .bundle_compare import frame

        return frame(self, by, a, b)

    def group_sizes(self, by: str) -> dict[str, int] | None:
        """{group label: sequences} of the stored grouping ``by`` from the build-time comparisons,
        without reading any row; None when the bundle holds none for ``by``
        (:func:`rnnviz_core.bundle_compare.group_sizes`)."""
        from .bundle_compare import group_sizes

        return group_sizes(self, by)

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
