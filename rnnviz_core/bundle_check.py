"""The one check of an analysis bundle at open: bounded and typed before anything is read.

:func:`rnnviz_core.bundle.open` calls these in order; each refuses with a sentence naming what is
wrong (a :class:`~rnnviz_core.errors.BundleError`):

1. :func:`check_manifest`: the manifest against its schema (types, ranges, list sizes, names;
   counts consistent with each other), giving the :class:`Facts` the rest checks against;
2. :func:`check_names`: only the files a bundle holds (no unknown padding files);
3. :func:`check_arrays`: each safetensors header (header size, tensor count, names, dtypes, shapes)
   against the manifest, reading only the header;
4. :func:`check_tables`: each Parquet footer (size, row groups, rows, column names and types,
   the ``row`` and ``length`` statistics, decoded sizes), reading only the footer;
5. :func:`memory_needed`: the bytes the pages' reads will take, computed from those facts,
   against the reader's memory budget;
6. :func:`check_content`: once the table is read (within that budget), the values the pages
   index with (labels, class names, sample rows, lengths) in range.

What passes can be read by every bundle page without an exception.
"""
from __future__ import annotations

import dataclasses
import re
import struct
from typing import Any, Callable, Mapping

import numpy as np

from .bundle_json import loads
from .errors import BundleError

#: bounds on what a manifest may state (real bundles are far inside them)
MAX_SEQUENCES = 50_000_000
MAX_LENGTH = 1_000_000
MAX_UNITS = 65_536
MAX_FEATURES = 1_000_000
MAX_OUTPUTS = 100_000
MAX_LAYERS = 64
MAX_MODULES = 64
MAX_GROUPINGS = 256
MAX_GROUP_VALUES = 10_000
MAX_GROUP_COLUMNS = 1_000
#: sequences with full traces (the builder's default is 64): the pickers list them all
MAX_SAMPLE = 1_000
MAX_TEXT = 10_000
#: longest text in a table cell (ids, class names, data columns)
MAX_CELL = 10_000
#: a safetensors header (a real samples header is a few kB) and its tensor count
MAX_HEADER_BYTES = 1024 * 1024
MAX_TENSORS = 4_096
#: a Parquet footer (a real part's is a few kB) and row groups over all parts
MAX_FOOTER_BYTES = 4 * 1024 * 1024
MAX_ROW_GROUPS = 100_000
#: memory the reader may take to show a bundle (tables, padded per-step arrays, page frames)
DEFAULT_MAX_MEMORY = 1024**3

BUILTIN_GROUPINGS = ("true_class", "predicted_class", "outcome", "saturation")
MODES = ("GRU", "LSTM", "RNN_TANH", "RNN_RELU")
_PART = re.compile(r"^sequences/part-\d{5}\.parquet$")
ARRAYS = ("pca.safetensors", "saturation.safetensors", "samples.safetensors", "aggregates.safetensors")
_ARRAYS = ARRAYS
_TRACE_NAME = re.compile(r"^trace:[A-Za-z0-9_.]{1,300}$")
_ST_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_GATE_SHARE = re.compile(r"^[a-z]_(left|right)$")


def refuse(msg: str) -> BundleError:
    return BundleError(msg + " Build it again with rnnviz_core.bundle.build or `rnnviz precompute`.")


def show(v: Any) -> str:
    """A short description of a value for a sentence."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        s = repr(v)
        return s if len(s) <= 24 else s[:20] + "…"
    if isinstance(v, str):
        return f"the text '{v[:40]}{'…' if len(v) > 40 else ''}'"
    if v is None:
        return "empty (null)"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


# ============================================================================ the manifest
@dataclasses.dataclass
class Facts:
    """What the manifest states, checked: the numbers everything else is checked against."""
    n: int
    max_length: int
    units: int
    n_features: int
    output_shape: list[int]
    n_outputs: int
    classification: bool
    class_names: list[str] | None
    labelled: bool
    methods: list[str]
    k: int
    groupings: dict[str, list[str]]
    group_columns: list[str]
    sample: int
    modules: list[dict]


def _where(path: str) -> str:
    return f"Its manifest's '{path}'"


def _int(v: Any, path: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise refuse(f"{_where(path)} must be a whole number from {lo:,} to {hi:,}; it is {show(v)}.")
    return v


def _num(v: Any, path: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or not lo <= v <= hi:
        raise refuse(f"{_where(path)} must be a number from {lo:g} to {hi:g}; it is {show(v)}.")
    return float(v)


def _bool(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise refuse(f"{_where(path)} must be true or false; it is {show(v)}.")
    return v


def _text(v: Any, path: str, max_len: int = MAX_TEXT) -> str:
    if not isinstance(v, str) or len(v) > max_len:
        raise refuse(f"{_where(path)} must be a text of at most {max_len:,} characters; it is {show(v)}.")
    return v


def _map(v: Any, path: str) -> dict:
    if not isinstance(v, dict):
        raise refuse(f"{_where(path)} must be a mapping; it is {show(v)}.")
    return v


def _texts(v: Any, path: str, max_items: int, unique: bool = True, max_len: int = 1_000) -> list[str]:
    if not isinstance(v, list) or len(v) > max_items:
        raise refuse(f"{_where(path)} must be a list of at most {max_items:,} texts; it is {show(v)}.")
    for item in v:
        _text(item, path + "[]", max_len)
    if unique and len(set(v)) != len(v):
        dup = next(x for i, x in enumerate(v) if x in v[:i])
        raise refuse(f"{_where(path)} names '{dup[:40]}' twice; each name must be different.")
    return list(v)


def _module(v: Any, path: str) -> dict:
    m = _map(v, path)
    fields = {"name", "mode", "num_layers", "bidirectional", "hidden_size", "proj_size", "input_size", "batch_first"}
    if set(m) != fields:
        raise refuse(f"{_where(path)} must have exactly the fields {', '.join(sorted(fields))}.")
    _text(m["name"], path + ".name", 300)
    if m["mode"] not in MODES:
        raise refuse(f"{_where(path + '.mode')} must be one of {', '.join(MODES)}; it is {show(m['mode'])}.")
    _int(m["num_layers"], path + ".num_layers", 1, MAX_LAYERS)
    _bool(m["bidirectional"], path + ".bidirectional")
    _bool(m["batch_first"], path + ".batch_first")
    hs = _int(m["hidden_size"], path + ".hidden_size", 1, MAX_UNITS)
    _int(m["proj_size"], path + ".proj_size", 0, hs - 1)
    _int(m["input_size"], path + ".input_size", 0, MAX_FEATURES)
    return m


def check_manifest(man: Mapping, known_methods: Mapping) -> Facts:
    """Every field a page or the reader uses, typed and in range; counts consistent with each other."""
    _text(man.get("rnnviz_version", ""), "rnnviz_version", 64)
    model = _map(man.get("model"), "model")
    _text(model.get("sha256", ""), "model.sha256", 128)
    _text(model.get("class", ""), "model.class", 1_000)
    mods = model.get("recurrent_modules")
    if not isinstance(mods, list) or not 1 <= len(mods) <= MAX_MODULES:
        raise refuse(f"{_where('model.recurrent_modules')} must list 1 to {MAX_MODULES} recurrent modules; "
                     f"it is {show(mods)}.")
    mods = [_module(m, f"model.recurrent_modules[{i}]") for i, m in enumerate(mods)]
    shape = model.get("output_shape")
    if not isinstance(shape, list) or len(shape) > 1:
        raise refuse(f"{_where('model.output_shape')} must be a list of at most one number; it is {show(shape)}.")
    shape = [_int(s, "model.output_shape[]", 1, MAX_OUTPUTS) for s in shape]
    n_out = shape[0] if shape else 1
    if model.get("class_names") is not None:
        _texts(model["class_names"], "model.class_names", MAX_OUTPUTS)

    data = _map(man.get("data"), "data")
    n = _int(data.get("n_sequences"), "data.n_sequences", 1, MAX_SEQUENCES)
    t = _int(data.get("max_length"), "data.max_length", 1, MAX_LENGTH)
    f = _int(data.get("n_features"), "data.n_features", 0, MAX_FEATURES)
    _texts(data.get("feature_names", []), "data.feature_names", max(f, 1), unique=False)
    names = data.get("class_names")
    if names is not None:
        names = _texts(names, "data.class_names", MAX_OUTPUTS) or None
    classification = n_out >= 2
    if names is not None and (not classification or len(names) != n_out):
        raise refuse(f"{_where('data.class_names')} names {len(names)} classes, but the model gives "
                     f"{n_out} output{'s' if n_out != 1 else ''}"
                     f"{'' if classification else ' (a number, not classes)'}.")
    gcols = _texts(data.get("group_columns", []), "data.group_columns", MAX_GROUP_COLUMNS)
    labelled = _bool(data.get("labelled", False), "data.labelled")
    _text(data.get("name", ""), "data.name", 1_000)
    _text(data.get("content_hash", ""), "data.content_hash", 200)

    an = _map(man.get("analysis"), "analysis")
    _text(an.get("state", ""), "analysis.state", 1_000)
    last = mods[-1]
    size = last["proj_size"] or last["hidden_size"]
    units = _int(an.get("units"), "analysis.units", 1, MAX_UNITS)
    if units != size:
        raise refuse(f"{_where('analysis.units')} is {units}, but its last recurrent module's state has {size} units.")
    methods = _map(an.get("methods"), "analysis.methods")
    unknown = [m for m in methods if m not in known_methods]
    if unknown:
        raise refuse(f"Its manifest lists a contribution method this rnnviz does not know ('{str(unknown[0])[:40]}'); "
                     f"the methods are {', '.join(known_methods)}.")
    for m, text in methods.items():
        _text(text, f"analysis.methods.{m}", 2_000)
    _map(an.get("method_options", {}), "analysis.method_options")
    _text(an.get("target", ""), "analysis.target", 1_000)
    _num(an.get("threshold"), "analysis.threshold", 0.0, 1e6)
    _num(an.get("gate_low"), "analysis.gate_low", 0.0, 1.0)
    _num(an.get("gate_high"), "analysis.gate_high", 0.0, 1.0)
    levels = an.get("levels", [])
    if not isinstance(levels, list) or len(levels) > 16:
        raise refuse(f"{_where('analysis.levels')} must be a list of at most 16 numbers; it is {show(levels)}.")
    for v in levels:
        _num(v, "analysis.levels[]", 0.0, 1.0)
    pca = _map(an.get("pca"), "analysis.pca")
    k = _int(pca.get("n_components"), "analysis.pca.n_components", 1, min(units, 64))
    groupings = _map(an.get("saturation_groupings", {}), "analysis.saturation_groupings")
    if len(groupings) > MAX_GROUPINGS:
        raise refuse(f"{_where('analysis.saturation_groupings')} holds {len(groupings)} groupings; "
                     f"a bundle holds at most {MAX_GROUPINGS}.")
    for key, labels in groupings.items():
        if key not in BUILTIN_GROUPINGS and not (key.startswith("data:") and key[5:] in gcols):
            raise refuse(f"Its manifest has a saturation grouping '{key[:60]}' that is neither a built-in grouping "
                         f"({', '.join(BUILTIN_GROUPINGS)}) nor one of the data's columns.")
        got = _texts(labels, f"analysis.saturation_groupings.{key}", MAX_GROUP_VALUES)
        if not got:
            raise refuse(f"{_where('analysis.saturation_groupings.' + key)} lists no groups.")
    sample = _map(an.get("sample", {"size": 0}), "analysis.sample")
    s = _int(sample.get("size", 0), "analysis.sample.size", 0, min(MAX_SAMPLE, n))
    _texts(an.get("not_included", []), "analysis.not_included", 64, unique=False)
    build = _map(man.get("build", {}), "build")
    _text(build.get("engine", ""), "build.engine", 64)
    return Facts(n=n, max_length=t, units=units, n_features=f, output_shape=shape, n_outputs=n_out,
                 classification=classification, class_names=names, labelled=labelled, methods=list(methods), k=k,
                 groupings={str(g): list(v) for g, v in groupings.items()}, group_columns=gcols, sample=s,
                 modules=mods)


def check_names(listed: Mapping) -> list[str]:
    """The files a bundle holds, and no others; returns the sequence table's parts in order."""
    for name in listed:
        if name not in _ARRAYS and not _PART.match(name):
            raise refuse(f"Its manifest lists '{name[:80]}', which is not a file an rnnviz bundle holds (a bundle "
                         f"holds pca.safetensors, saturation.safetensors, samples.safetensors, aggregates.safetensors and "
                         f"sequences/part-NNNNN.parquet only).")
    for need in ("pca.safetensors", "saturation.safetensors"):
        if need not in listed:
            raise refuse(f"The bundle lacks {need}.")
    parts = sorted(n for n in listed if n.startswith("sequences/"))
    if not parts:
        raise refuse("The bundle holds no sequence table.")
    return parts


# ============================================================================ safetensors headers
def st_header(read: Callable[[int, int], bytes], name: str, size: int) -> dict[str, tuple[str, tuple]]:
    """``{tensor: (dtype, shape)}`` from a safetensors header, reading the header only; sizes,
    offsets and the tensor count checked against the file's size."""
    if size < 8:
        raise refuse(f"'{name}' is too short to be a safetensors file.")
    (hlen,) = struct.unpack("<Q", read(0, 8))
    if hlen > MAX_HEADER_BYTES or hlen > size - 8:
        raise refuse(f"'{name}' has a header of {hlen:,} bytes; a bundle's safetensors header needs at most "
                     f"{MAX_HEADER_BYTES:,} and must fit in the file.")
    head = loads(read(8, hlen), f"The header of '{name}'", refuse)
    if not isinstance(head, dict):
        raise refuse(f"The header of '{name}' is not a safetensors header.")
    head.pop("__metadata__", None)
    if len(head) > MAX_TENSORS:
        raise refuse(f"'{name}' holds {len(head):,} arrays; a bundle's file holds at most {MAX_TENSORS:,}.")
    out, spans, body = {}, [], size - 8 - hlen
    for key, e in head.items():
        ok = isinstance(e, dict) and e.get("dtype") in _ST_DTYPES and isinstance(e.get("shape"), list) \
            and len(e["shape"]) <= 4 and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d for d in
                                             e["shape"]) \
            and isinstance(e.get("data_offsets"), list) and len(e["data_offsets"]) == 2 \
            and all(isinstance(o, int) and not isinstance(o, bool) for o in e["data_offsets"])
        if not ok:
            raise refuse(f"'{name}' describes its array '{key[:60]}' in a way safetensors does not.")
        b, end = e["data_offsets"]
        need = int(np.prod(e["shape"], dtype=object)) * _ST_DTYPES[e["dtype"]]
        if not 0 <= b <= end <= body or end - b != need:
            raise refuse(f"'{name}' says its array '{key[:60]}' is shaped {tuple(e['shape'])}, which does not fit "
                         f"the bytes the file holds for it.")
        spans.append((b, end))
        out[key] = (e["dtype"], tuple(e["shape"]))
    return out


def _want(hdr: dict, name: str, key: str, shape: tuple, dtypes: tuple = ("F64", "F32")) -> None:
    if key not in hdr:
        raise refuse(f"'{name}' lacks the array '{key[:60]}'.")
    dt, got = hdr[key]
    if dt not in dtypes or len(got) != len(shape) or any(w is not None and g != w for g, w in zip(got, shape)):
        want = "×".join("any" if w is None else str(w) for w in shape)
        raise refuse(f"'{name}' holds '{key[:60]}' shaped {'×'.join(map(str, got)) or 'as one number'} ({dt}); "
                     f"this bundle's manifest needs {want or 'one number'} (float).")


def check_arrays(headers: Mapping[str, dict], facts: Facts) -> int:
    """The arrays against the manifest; returns the bytes they take once read."""
    pca = headers["pca.safetensors"]
    name = "pca.safetensors"
    for key, shape in (("mean", (facts.units,)), ("components", (facts.k, facts.units)),
                       ("explained_variance", (facts.k,)), ("explained_variance_ratio", (facts.k,))):
        _want(pca, name, key, shape)
    _want(pca, name, "n_samples", (1,), ("I64", "I32", "F64"))
    extra = sorted(set(pca) - {"mean", "components", "explained_variance", "explained_variance_ratio", "n_samples"})
    if extra:
        raise refuse(f"'{name}' holds an array '{extra[0][:60]}' that a PCA basis does not have.")
    name = "saturation.safetensors"
    sat = headers[name]
    want = {f"{g}.{w}" for g in facts.groupings for w in ("count", "sum", "sumsq")}
    if not facts.groupings:
        want = {"none"} if "none" in sat else set()
    extra = sorted(set(sat) - want)
    if extra:
        raise refuse(f"'{name}' holds an array '{extra[0][:60]}' that its manifest's groupings do not name.")
    for g, labels in facts.groupings.items():
        for w in ("count", "sum", "sumsq"):
            _want(sat, name, f"{g}.{w}", (len(labels), facts.max_length))
    name = "samples.safetensors"
    smp = headers.get(name)
    if smp is None:
        if facts.sample:
            raise refuse(f"Its manifest says {facts.sample} sequences have full traces, but the bundle has no {name}.")
    else:
        s = facts.sample
        _want(smp, name, "rows", (s,), ("I64",))
        _want(smp, name, "lengths", (s,), ("I64",))
        ts = smp["hidden"][1][1] if "hidden" in smp and len(smp["hidden"][1]) == 3 else None
        if ts is None or not 1 <= ts <= facts.max_length:
            raise refuse(f"'{name}' holds no hidden states [sequences, steps, units] within the bundle's "
                         f"{facts.max_length} steps.")
        width = max(max(m["proj_size"] or m["hidden_size"], m["hidden_size"]) for m in facts.modules)
        last = facts.modules[-1]
        _want(smp, name, "hidden", (s, ts, (last["proj_size"] or last["hidden_size"]) * (2 if last["bidirectional"]
                                                                                        else 1)), ("F32",))
        _want(smp, name, "logits", (s, *facts.output_shape), ("F32",))
        _want(smp, name, "x", (s, ts, facts.n_features) if facts.n_features else (s, ts),
              ("F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"))
        state = f"trace:{last['name']}.l{last['num_layers'] - 1}.fwd.h"   # what the pages draw
        _want(smp, name, state, (s, ts, last["proj_size"] or last["hidden_size"]), ("F32",))
        for key, (dt, shape) in smp.items():
            if key in ("rows", "lengths", "hidden", "logits", "x"):
                continue
            if not _TRACE_NAME.match(key):
                raise refuse(f"'{name}' holds an array '{key[:60]}' that a bundle does not have.")
            if dt != "F32" or len(shape) != 3 or shape[:2] != (s, ts) or not 1 <= shape[2] <= width:
                raise refuse(f"'{name}' holds '{key[:60]}' shaped {'×'.join(map(str, shape))}; a full trace is "
                             f"{s}×{ts}×(at most {width}) float32.")
    total = 0
    for hdr in headers.values():
        for dt, shape in hdr.values():
            total += int(np.prod(shape, dtype=np.int64)) * _ST_DTYPES[dt]
    return total


# ============================================================================ Parquet footers
def parquet_meta(read: Callable[[int, int], bytes], name: str, size: int) -> Any:
    """The Parquet metadata of one part, reading its footer only (its size checked first)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if size < 12 or read(0, 4) != b"PAR1":
        raise refuse(f"'{name}' could not be read as Parquet.")
    tail = read(size - 8, 8)
    (flen,) = struct.unpack("<I", tail[:4])
    if tail[4:] != b"PAR1" or flen > size - 12:
        raise refuse(f"'{name}' could not be read as Parquet.")
    if flen > MAX_FOOTER_BYTES:
        raise refuse(f"'{name}' has {flen / 1e6:.1f} MB of Parquet metadata; a bundle's part needs at most "
                     f"{MAX_FOOTER_BYTES / 1e6:.0f} MB.")
    try:
        return pq.ParquetFile(pa.BufferReader(b"PAR1" + read(size - 8 - flen, flen + 8))).metadata
    except Exception:
        raise refuse(f"'{name}' could not be read as Parquet.") from None


def kind(t: Any) -> str:
    """An Arrow type as the check names it: int, float, bool, text, floats (a list of floats), other."""
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_dictionary(t):
        t = t.value_type
    if pt.is_integer(t):
        return "int"
    if pt.is_floating(t):
        return "float"
    if pt.is_boolean(t):
        return "bool"
    if pt.is_string(t) or pt.is_large_string(t):
        return "text"
    if pt.is_null(t):
        return "null"
    if (pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t)) and pt.is_floating(t.value_type):
        return "floats"
    if pt.is_timestamp(t) or pt.is_date(t):
        return "time"
    return "other" if not isinstance(t, pa.DataType) else "other"


def _column_kinds(facts: Facts) -> dict[str, tuple[str, ...]]:
    num = ("int", "float", "null")
    out = {"row": ("int",), "id": ("text",), "length": ("int",), "logits": ("floats",),
           "pred": num, "confidence": num, "true": num, "loss": num, "abs_error": num, "correct": ("bool", "null"),
           "frac_saturated": num, "frac_saturated_final": num, "plateau_step": num,
           "predicted_class": ("text", "null"), "true_class": ("text", "null"), "outcome": ("text", "null"),
           "saturation": ("text", "null")}
    for s in ("sum_abs", "step_change", "frac_saturated", *(f"pc{j + 1}" for j in range(facts.k))):
        out[f"step:{s}"] = ("floats",)
    for m in facts.methods:
        out[f"score:{m}"] = ("floats",)
        out[f"{m}:completeness_error"] = num
    for c in facts.group_columns:
        out[f"data:{c}"] = ("int", "float", "bool", "text", "null", "time")
    from .bundle_horizons import KINDS  # hz22: the per-sequence horizon columns
    out.update(KINDS)
    return out


def check_tables(metas: Mapping[str, Any], facts: Facts) -> int:
    """The parts' footers against the manifest; returns the bytes the table takes decoded."""
    kinds = _column_kinds(facts)
    required = ["row", "id", "length", "logits", "step:sum_abs", "step:step_change", "step:frac_saturated",
                *(f"step:pc{j + 1}" for j in range(facts.k)), *(f"score:{m}" for m in facts.methods)]
    rows = groups = decoded = 0
    longest = 0
    first = None
    for name, md in metas.items():
        schema = md.schema.to_arrow_schema()
        if first is None:
            first = (name, set(schema.names))
        elif set(schema.names) != first[1]:
            odd = sorted(first[1] ^ set(schema.names))[0]
            raise refuse(f"The bundle's sequence tables do not share one layout: '{odd[:60]}' is a column of one of "
                         f"'{first[0]}' and '{name}' only.")
        for field in schema:
            allowed = kinds.get(field.name)
            if allowed is None and not _GATE_SHARE.match(field.name):
                raise refuse(f"'{name}' has a column '{field.name[:60]}' that a bundle's sequence table does not have.")
            got = kind(field.type)
            if got not in (allowed or ("int", "float", "null")):
                raise refuse(f"'{name}' holds its column '{field.name[:60]}' as {got if got != 'other' else 'nested data'}"
                             f"; a bundle holds it as {' or '.join(a for a in allowed or ('number',))}.")
        lacking = [g for g in facts.groupings if g not in schema.names]
        if lacking:
            raise refuse(f"Its manifest has a saturation grouping '{lacking[0][:60]}' that its table '{name}' lacks.")
        missing = [c for c in required if c not in schema.names]
        if missing:
            raise refuse(f"'{name}' lacks the column '{missing[0]}'.")
        if md.num_row_groups > MAX_ROW_GROUPS or groups + md.num_row_groups > MAX_ROW_GROUPS:
            raise refuse(f"The bundle's table is cut into more than {MAX_ROW_GROUPS:,} row groups.")
        groups += md.num_row_groups
        rows += md.num_rows
        if rows > facts.n:
            raise refuse(f"The bundle's table holds more than the {facts.n:,} sequences its manifest states.")
        idx = {n: i for i, n in enumerate(md.schema.names)}
        for i in range(md.num_row_groups):
            g = md.row_group(i)
            for j in range(g.num_columns):
                c = g.column(j)
                decoded += max(int(c.total_uncompressed_size), 0)
                if c.num_values > g.num_rows * max(facts.max_length, facts.n_outputs, 1):
                    raise refuse(f"'{name}' holds more values per sequence than its manifest allows.")
                # decoded bytes per sequence: a list of at most the longest length of 8-byte
                # numbers, or a text of at most MAX_CELL bytes (a dictionary page of a few huge
                # texts is refused here, before it is decompressed)
                if c.total_uncompressed_size > g.num_rows * (8 * max(facts.max_length, facts.n_outputs) + MAX_CELL
                                                             + 64) + 65_536:
                    raise refuse(f"'{name}' unpacks its column '{c.path_in_schema[:60]}' into "
                                 f"{c.total_uncompressed_size / 1e6:,.1f} MB, more than {g.num_rows} sequences of at "
                                 f"most {facts.max_length:,} steps can hold.")
            for col, lo, hi in (("row", 0, facts.n - 1), ("length", 1, facts.max_length)):
                if g.num_rows == 0:
                    continue
                st = g.column(idx[col]).statistics if col in idx else None
                if st is None or not st.has_min_max:
                    raise refuse(f"'{name}' gives no minimum and maximum of its '{col}' column; a bundle's table "
                                 f"records them.")
                if not (isinstance(st.min, int) and isinstance(st.max, int) and lo <= st.min <= st.max <= hi):
                    raise refuse(f"'{name}' holds '{col}' values from {show(st.min)} to {show(st.max)}, outside "
                                 f"{lo:,}..{hi:,} as its manifest states.")
                if col == "length":
                    longest = max(longest, st.max)
    if rows != facts.n:
        raise refuse(f"The bundle's table holds {rows:,} sequences, and its manifest says {facts.n:,}.")
    if longest != facts.max_length:
        raise refuse(f"Its manifest says the longest sequence has {facts.max_length:,} steps, but the longest in its "
                     f"table has {longest:,}.")
    return decoded


def decode_texts(tbl: Any, names: list[str], part: str, budget: int) -> tuple[Any, int]:
    """The text columns of a part read as dictionaries, decoded once their decoded size is known:
    no text over :data:`MAX_CELL` characters, and no more than ``budget`` bytes in all (a few
    long values repeated by a dictionary would otherwise unpack into gigabytes). Returns
    ``(table, bytes decoded)``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    used = 0
    for c in names:
        col = tbl[c]
        for chunk in col.chunks:
            if not pa.types.is_dictionary(chunk.type):
                used += int(chunk.nbytes)
                continue
            lens = pc.binary_length(chunk.dictionary).to_numpy(zero_copy_only=False)
            if lens.size and lens.max() > MAX_CELL:
                raise refuse(f"'{part}' holds a text of {int(lens.max()):,} bytes in its column '{c[:60]}'; a "
                             f"bundle's texts are at most {MAX_CELL:,}.")
            idx = pc.fill_null(chunk.indices, 0).to_numpy(zero_copy_only=False)
            used += int(lens[idx].sum()) + 8 * len(idx) if lens.size else 0
        if used > budget:
            raise refuse(f"'{part}' unpacks its texts into {used / 1e6:,.0f} MB, more than the "
                         f"{budget / 1e6:,.0f} MB this reader allows.")
        value = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
        tbl = tbl.set_column(tbl.column_names.index(c), c, col.cast(value))
    return tbl, used


def memory_needed(facts: Facts, table_bytes: int, array_bytes: int, n_step_columns: int) -> int:
    """Bytes the reader and the pages take for this bundle: the table as read and as a frame, the
    per-step columns padded to [sequences, longest], the page frames of every valid step (paths,
    |h| curves: about 100 bytes a step) and the arrays."""
    cells = facts.n * facts.max_length
    return 2 * table_bytes + cells * (4 * n_step_columns + 100) + facts.n * 300 + array_bytes


def check_memory(need: int, budget: int, facts: Facts, n_step_columns: int) -> None:
    if need > budget:
        raise BundleError(
            f"Showing this bundle would take about {need / 1e6:,.0f} MB of memory ({facts.n:,} sequences × "
            f"{facts.max_length:,} steps × {n_step_columns} per-step columns, and its tables), more than the "
            f"{budget / 1e6:,.0f} MB this reader allows. Build a bundle of fewer or shorter sequences, or fewer "
            f"methods.")


# ============================================================================ after reading
def check_content(frame: Any, logits: np.ndarray, sample: Mapping[str, np.ndarray] | None, facts: Facts) -> None:
    """The values the pages index with: labels and class names in range, outcomes and levels known,
    the sample's rows and lengths those of the table."""
    import pandas as pd

    n = len(frame)
    need = ["pred", "confidence", "predicted_class"] if facts.classification else ["pred"]
    if facts.labelled:
        need += ["true", "correct", "loss"] + (["true_class", "outcome"] if facts.classification else [])
    lacking = [c for c in need if c not in frame]
    if lacking:
        raise refuse(f"The bundle's table lacks the column '{lacking[0]}', which a "
                     f"{'labelled ' if facts.labelled else ''}{'classifier' if facts.classification else 'model'}'s "
                     f"table has.")
    if facts.classification:
        c = facts.n_outputs
        for col in ("pred",) + (("true",) if facts.labelled and "true" in frame else ()):
            v = frame[col] if col in frame else None
            if v is None or v.isna().any() or not np.all(np.asarray(v, np.float64) == np.floor(np.asarray(v, np.float64))) \
                    or v.min() < 0 or v.max() >= c:
                raise refuse(f"The bundle's table holds a '{col}' class outside 0..{c - 1}, or none, for some sequence.")
        if facts.class_names:
            allowed = set(facts.class_names)
            for col in ("predicted_class", "true_class"):
                if col in frame and not frame[col].dropna().astype(str).isin(allowed).all():
                    raise refuse(f"The bundle's table names a class in '{col}' that its manifest's class names lack.")
    elif facts.labelled and "true" in frame and not pd.api.types.is_numeric_dtype(frame["true"]):
        raise refuse("The bundle's table holds true values that are not numbers.")
    if "outcome" in frame and not frame["outcome"].dropna().isin(["correct", "wrong"]).all():
        raise refuse("The bundle's table holds an outcome other than correct or wrong.")
    if not np.all(np.isfinite(logits)):
        raise refuse("The bundle's table holds model outputs that are not finite numbers.")
    if sample is None:
        return
    rows, lens = np.asarray(sample["rows"]), np.asarray(sample["lengths"])
    if rows.size and (rows.min() < 0 or rows.max() >= n or np.unique(rows).size != rows.size):
        raise refuse(f"'samples.safetensors' names sequences outside rows 0..{n - 1}, or one twice.")
    if rows.size and not np.array_equal(lens, frame["length"].to_numpy()[rows]):
        raise refuse("'samples.safetensors' gives the sampled sequences other lengths than the table does.")
    if rows.size and int(lens.max()) != sample["hidden"].shape[1]:
        raise refuse("'samples.safetensors' holds more or fewer steps than its longest sampled sequence has.")
