"""Streamlit glue shared by the entry point and the pages: cached loaders, session keys, the
URL (query parameters) and the upload store. No analysis happens here: every number comes
from ``rnnviz_core``; this module only decides what is cached under which content hash.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st

from rnnviz_core.errors import DataError, RnnvizError
from rnnviz_core.store import UploadStore, content_hash

GENERIC_ERROR = ("Something went wrong while reading or analysing this input. Check that the file is "
                 "the right kind and try again; the previous view is kept.")
MAX_STORE_BYTES = int(os.environ.get("RNNVIZ_UPLOAD_MAX_BYTES", 500 * 1024 * 1024))
DEFAULT_DEMO = "race"
GLOBAL_PARAMS = ("demo", "model", "data", "target")


# ---------------------------------------------------------------- hashing
def digest(*parts: Any) -> str:
    """SHA-256 over every byte of the parts (arrays hashed in full with dtype and shape)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"nd{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        elif hasattr(p, "detach") and hasattr(p, "cpu"):  # torch tensor
            h.update(digest(p.detach().cpu().numpy()).encode())
        elif isinstance(p, (bytes, bytearray, memoryview)):
            h.update(b"b" + bytes(p))
        else:
            h.update(repr(p).encode())
        h.update(b"\x00")
    return h.hexdigest()


# ---------------------------------------------------------------- errors
def show_error(exc: BaseException) -> None:
    """A plain message for the user: the core's own sentence, or a generic one. Never a traceback."""
    if isinstance(exc, RnnvizError):
        st.error(str(exc))
    else:
        st.error(GENERIC_ERROR)


def guarded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``fn``; on failure show the message and stop this page (the sidebar stays usable)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a plain sentence
        show_error(exc)
        st.stop()


# ---------------------------------------------------------------- URL and session state
def init_session() -> None:
    """Once per session: remember the link's query parameters as the starting view."""
    if "_view" not in st.session_state:
        st.session_state["_view"] = {k: st.query_params[k] for k in st.query_params}
    st.session_state["_used"] = list(GLOBAL_PARAMS)


def view() -> dict:
    return st.session_state["_view"]


def widget_key(name: str, default: Any, options: list | None = None,
               cast: Callable[[str], Any] = str) -> str:
    """Key for a widget whose value lives in the URL as ``name``.

    The first time the widget appears, it starts from the link's value when that value is
    valid (castable, and among ``options`` if given), else from ``default``. Returns the key.
    """
    key = "w_" + name
    current = st.session_state.get(key, None)
    if key not in st.session_state or (options is not None and current not in options):
        value = default
        raw = view().get(name)
        if raw is not None:
            try:
                cand = cast(raw)
                if options is None or cand in options:
                    value = cand
            except (TypeError, ValueError):
                pass
        st.session_state[key] = value
    if name not in st.session_state["_used"]:
        st.session_state["_used"].append(name)
    return key


def remember(name: str, value: Any) -> None:
    """Put a view value in the URL (call after reading the widget)."""
    if value is None:
        view().pop(name, None)
    else:
        view()[name] = str(value)
    if name not in st.session_state["_used"]:
        st.session_state["_used"].append(name)


def value(name: str) -> Any:
    """Current value of the widget registered with :func:`widget_key` and mirror it to the URL."""
    v = st.session_state.get("w_" + name)
    remember(name, v)
    return v


def sync_url() -> None:
    """Write the view used on this run to the address bar, so the link reproduces it."""
    v = view()
    wanted = {k: v[k] for k in st.session_state.get("_used", []) if v.get(k) not in (None, "")}
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


# ---------------------------------------------------------------- upload store
@st.cache_resource
def upload_store() -> UploadStore:
    return UploadStore(max_bytes=MAX_STORE_BYTES)


def store_upload(uploaded) -> tuple[str, bytes, str]:
    """Keep an ``UploadedFile`` under its content hash; return ``(digest, bytes, name)``."""
    data = uploaded.getvalue()
    return upload_store().put(data, name=uploaded.name), data, uploaded.name


def stored(dig: str) -> tuple[bytes, str]:
    """Bytes and file name kept under ``dig`` (KeyError when the server no longer has it)."""
    return upload_store().get(dig)


# ---------------------------------------------------------------- cached loaders
@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _model_from_bytes(dig: str, name: str, _data: bytes):
    from rnnviz_core.models import load_model
    return load_model(_data, name=name)


@st.cache_resource(max_entries=8, show_spinner="Reading the data…")
def _data_from_bytes(dig: str, name: str, _data: bytes):
    from rnnviz_core.data import load_data
    return load_data(_data, name=name)


def model_from_bytes(data: bytes, name: str):
    return _model_from_bytes(content_hash(data), name, data)


def data_from_bytes(data: bytes, name: str):
    return _data_from_bytes(content_hash(data), name, data)


@st.cache_data(show_spinner=False)
def demo_infos() -> dict:
    """Shipped demos: key -> DemoInfo, in the package's order."""
    from rnnviz_core.demos import list_demos
    return {d.key: d for d in list_demos()}


@st.cache_data(show_spinner=False)
def _file_digest(path: str, mtime: float) -> str:
    return content_hash(Path(path).read_bytes())


def file_digest(path) -> str:
    p = Path(path)
    return _file_digest(str(p), p.stat().st_mtime)


@st.cache_resource(max_entries=4, show_spinner="Loading the demo…")
def _demo(key: str, model_dig: str, data_dig: str):
    from rnnviz_core.demos import load_demo
    return load_demo(key)


def demo_files(key: str) -> tuple[Path, Path]:
    """Paths of a shipped demo's model file and data file."""
    info = demo_infos()[key]
    return (Path(getattr(info, "model_path", info.model_file)),
            Path(getattr(info, "data_path", info.data_file)))


def demo(key: str):
    """``(model, dataset, model_digest, data_digest)`` for a shipped demo, cached by file hash."""
    mpath, dpath = demo_files(key)
    mdig, ddig = file_digest(mpath), file_digest(dpath)
    model, ds = _demo(key, mdig, ddig)
    return model, ds, mdig, ddig


# ---------------------------------------------------------------- the loaded model and data
@dataclass
class Loaded:
    """What every page works on. Objects are shared by all sessions: never mutate them."""
    model: Any
    data: Any
    model_key: str
    data_key: str
    model_name: str
    data_name: str
    demo: str | None
    device: str = "auto"
    device_label: str = "CPU"
    target: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return digest(self.model_key, self.data_key, self.device)


def set_loaded(ctx: Loaded) -> None:
    st.session_state["_loaded"] = ctx


def _build_loaded(demo_key: str, model_dig: str | None, data_dig: str | None) -> Loaded:
    from rnnviz_core.device import device_label, resolve_device
    from rnnviz_core.errors import InputError
    model, ds, mkey, dkey = demo(demo_key)
    title = demo_infos()[demo_key].title
    mname, dname = f"{title}: shipped model", f"{title}: shipped test data"
    for kind, dig in (("model", model_dig), ("data", data_dig)):
        if not dig:
            continue
        try:
            raw, name = stored(dig)
        except KeyError:
            raise InputError(f"The {kind} file this link refers to is no longer kept on this server; "
                             "upload it again.") from None
        if kind == "model":
            model, mkey, mname = model_from_bytes(raw, name), dig, name or "uploaded model"
        else:
            ds, dkey, dname = data_from_bytes(raw, name), dig, name or "uploaded data"
    if model_dig or data_dig:
        from rnnviz_core.data import check_against_model
        ds = check_against_model(ds, model)  # aligned to the model: feature order, class order
    dev = resolve_device("auto")
    return Loaded(model=model, data=ds, model_key=mkey, data_key=dkey, model_name=mname,
                  data_name=dname, demo=demo_key, device=str(dev), device_label=device_label(dev))


def resolve_loaded(demo_key: str) -> Loaded | None:
    """The model and data to show: the demo plus any uploads named in the view.

    When the wanted combination cannot be loaded, the error is shown, the view falls back to
    what was on screen before, and that previous ``Loaded`` is returned.
    """
    v = view()
    prev = st.session_state.get("_loaded")
    pending = st.session_state.pop("_pending", None)
    try:
        ctx = _build_loaded(demo_key, v.get("model"), v.get("data"))
    except Exception as exc:  # noqa: BLE001
        msg = str(exc) if isinstance(exc, RnnvizError) else GENERIC_ERROR
        if pending:
            st.session_state.setdefault("_upload_errors", {})[pending[0]] = (pending[1], msg)
        st.error(msg)
        if prev is not None:
            v["demo"] = prev.demo
            for kind, key in (("model", prev.model_key), ("data", prev.data_key)):
                kept = prev.extra.get(kind + "_upload")
                if kept:
                    v[kind] = kept
                else:
                    v.pop(kind, None)
            return prev
        v.pop("model", None)
        v.pop("data", None)
        try:  # a link to files this server no longer has: show the demo itself
            ctx = _build_loaded(demo_key, None, None)
        except Exception:  # noqa: BLE001 - the message above already says what is wrong
            return None
    ctx.extra["model_upload"] = v.get("model")
    ctx.extra["data_upload"] = v.get("data")
    if prev is not None:
        ctx.target = prev.target
    set_loaded(ctx)
    return ctx


def upload_error(kind: str, file_id: str) -> str | None:
    """The error recorded for the file still sitting in the ``kind`` uploader, if any."""
    rec = st.session_state.get("_upload_errors", {}).get(kind)
    return rec[1] if rec and rec[0] == file_id else None


def record_upload_error(kind: str, file_id: str, exc: BaseException) -> None:
    msg = str(exc) if isinstance(exc, RnnvizError) else GENERIC_ERROR
    st.session_state.setdefault("_upload_errors", {})[kind] = (file_id, msg)
    st.error(msg)


def target_options(ctx: Loaded) -> dict:
    """Target choices: "predicted" plus one entry per output class."""
    names = list(getattr(ctx.data, "class_names", None) or [])
    opts = {"predicted": "The predicted class" if len(names) > 1 else "The model's output"}
    if len(names) > 1:
        opts.update({str(i): f"Class: {n}" for i, n in enumerate(names)})
    return opts


def target_index(choice: str | None) -> int | None:
    return None if choice in (None, "predicted") else int(choice)


def loaded() -> Loaded:
    ctx = st.session_state.get("_loaded")
    if ctx is None:
        st.info("Choose a model and data in the sidebar to begin.")
        st.stop()
    return ctx


# ---------------------------------------------------------------- cached computation
@st.cache_data(max_entries=48, show_spinner=False)
def _cached_call(name: str, key: str, _fn, _args, _kwargs):
    return _fn(*_args, **_kwargs)


def compute(fn: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` cached under the loaded model/data content hashes.

    Large arguments (model, dataset, trace) are not hashed by Streamlit; the cache key is the
    loaded model's and data's SHA-256, the device, ``key`` (anything else the inputs depend on)
    and the small keyword options.
    """
    ctx = loaded()
    name = f"{fn.__module__}.{fn.__qualname__}"
    k = digest(name, ctx.key, key, sorted((k, repr(v)) for k, v in kwargs.items()))
    return _cached_call(name, k, fn, args, kwargs)


@st.cache_resource(max_entries=12, show_spinner=False)
def _shared_call(name: str, key: str, _fn, _args, _kwargs):
    return _fn(*_args, **_kwargs)


def shared(fn: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> Any:
    """Like :func:`compute` for results that cannot be copied cheaply (a Trace): one shared
    object per content hash, never mutated by the app."""
    ctx = loaded()
    name = f"{fn.__module__}.{fn.__qualname__}"
    k = digest(name, ctx.key, key, sorted((k, repr(v)) for k, v in kwargs.items()))
    return _shared_call(name, k, fn, args, kwargs)


def csv_button(df, label: str, file_name: str, key: str) -> None:
    """Download button for the data behind a view."""
    st.download_button(label, df.to_csv(index=False).encode(), file_name=file_name,
                       mime="text/csv", key=key)


# ---------------------------------------------------------------- start page
def _architecture(model) -> str:
    from rnnviz_core.engine import find_recurrent
    try:
        return "; ".join(info.describe() for info in find_recurrent(model))
    except RnnvizError:
        return "no recurrent module found"


def _predict(model, X, lengths, device):
    from rnnviz_core.trace import predict
    return predict(model, X, lengths, device=device)


def predictions(ctx: Loaded):
    """The model's outputs on every loaded sequence (cached by content hash)."""
    ds = ctx.data
    return compute(_predict, ctx.model, ds.X, ds.lengths, key=("predict",), device=ctx.device)


def model_card(ctx: Loaded) -> dict:
    """Plain facts for the start page: architecture, outputs, data size, accuracy (or error)."""
    model, ds = ctx.model, ctx.data
    names = list(getattr(ds, "class_names", None) or getattr(model, "class_names", None) or [])
    X = ds.X
    card = {
        "architecture": _architecture(model),
        "outputs": (f"{len(names)} classes ({', '.join(map(str, names[:8]))}"
                    f"{', …' if len(names) > 8 else ''})" if len(names) > 1 else "one number (regression)"),
        "data": f"{X.shape[0]} sequences, up to {X.shape[1]} steps, {X.shape[2]} feature(s)",
        "score_name": "Accuracy on the loaded data", "score_value": None,
        "score_help": "The data has no labels, so accuracy cannot be computed.",
        "about": (demo_infos()[ctx.demo].description
                  if ctx.demo in demo_infos() and not (ctx.extra.get("model_upload") or ctx.extra.get("data_upload"))
                  else ""),
    }
    y = getattr(ds, "y", None)
    if y is None:
        return card
    out = np.asarray(predictions(ctx))
    y = np.asarray(y)
    if len(names) > 1 and out.ndim == 2:
        acc = float((out.argmax(1) == y).mean())
        card.update(score_value=f"{acc:.1%}",
                    score_help=f"Share of the {len(y)} loaded sequences whose predicted class is the true one.")
    else:
        err = float(np.sqrt(np.mean((out.reshape(len(y), -1)[:, 0] - y.astype(float)) ** 2)))
        card.update(score_name="Root mean squared error on the loaded data", score_value=f"{err:.3g}",
                    score_help="Typical distance between the model's output and the true value.")
    return card


# ---------------------------------------------------------------- traces and sequence choice
KIND_LABELS = {"h": "Hidden state h", "c": "Cell state c", "r": "Reset gate r", "z": "Update gate z",
               "n": "Candidate n", "i": "Input gate i", "f": "Forget gate f", "g": "Candidate g",
               "o": "Output gate o"}


def _trace_all(model, X, lengths, device):
    from rnnviz_core.trace import trace
    return trace(model, X, lengths, gates=True, device=device)


def full_trace(ctx: Loaded):
    """Trace of every loaded sequence with gates and cell states (one shared object, cached)."""
    with st.spinner("Tracing every sequence through the model…"):
        return shared(_trace_all, ctx.model, ctx.data.X, ctx.data.lengths, key=("trace",),
                      device=ctx.device)


def _pick(tr, kind, layer, direction):
    return np.ascontiguousarray(tr.get(kind, layer=layer, direction=direction))


def states(ctx: Loaded, kind: str = "h", layer: int = -1, direction: str = "fwd") -> np.ndarray:
    """float32 [N, T, H] for one kind / layer / direction of the last recurrent module."""
    tr = full_trace(ctx)
    return compute(_pick, tr, kind, layer, direction, key=("states", kind, layer, direction))


def layer_options(ctx: Loaded) -> tuple[list[int], list[str], dict]:
    """(layers, directions, kind -> label) available in the last recurrent module."""
    info = full_trace(ctx).modules[-1]
    dirs = ["fwd", "bwd"][: info.num_directions]
    return list(range(info.num_layers)), dirs, {k: KIND_LABELS.get(k, k) for k in info.kinds}


def labels_of(ctx: Loaded) -> tuple[np.ndarray | None, list[str]]:
    """True class per sequence (or None) and the class names."""
    ds = ctx.data
    names = list(ds.class_names or [])
    return (np.asarray(ds.y) if ds.y is not None and names else None), names


def most_different_pair(ctx: Loaded, kind: str = "h", layer: int = -1,
                        direction: str = "fwd") -> tuple[int, int, str]:
    """Row indices of the two sequences whose final states are furthest apart, and a sentence."""
    from rnnviz_core.trajectories import similar_pairs
    st_arr = states(ctx, kind, layer, direction)
    y, names = labels_of(ctx)
    mode = "across" if y is not None and len(np.unique(y)) > 1 else "within"
    df = compute(similar_pairs, st_arr, ctx.data.lengths, y, mode=mode, n_pairs=1,
                 ids=np.arange(len(st_arr)), key=("pairs", kind, layer, direction))
    row = df[df["kind"] == "least similar"].iloc[0]
    how = "of different classes " if mode == "across" else ""
    return int(row["seq_a"]), int(row["seq_b"]), (
        f"The two sequences {how}whose final states are furthest apart (distance {row['distance']:.3g}).")


def sequence_labels(ctx: Loaded) -> dict:
    """Sequence id -> "id · true … · predicted …" for pickers."""
    ds = ctx.data
    y, names = labels_of(ctx)
    out = np.asarray(predictions(ctx))
    pred = out.argmax(1) if out.ndim == 2 and out.shape[1] > 1 else None
    labels = {}
    for i, sid in enumerate(ds.ids):
        parts = [str(sid)]
        if y is not None:
            parts.append(f"true {names[int(y[i])]}")
        if pred is not None and names:
            parts.append(f"predicted {names[int(pred[i])]}")
        labels[str(sid)] = " · ".join(parts)
    return labels


def row_of(ctx: Loaded) -> dict:
    """Sequence id -> row index."""
    return {str(s): i for i, s in enumerate(ctx.data.ids)}


def ids_of_class(ctx: Loaded, cls: int) -> list[str]:
    y, _ = labels_of(ctx)
    return [str(s) for s, c in zip(ctx.data.ids, y) if int(c) == cls]


# ---------------------------------------------------------------- charts
def _spec(build: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[dict, str]:
    """Validated Vega-Lite spec with its datasets already in Arrow form (what Streamlit sends)."""
    import pandas as pd
    from streamlit import dataframe_util
    chart = build(*args, **kwargs)
    desc = getattr(chart, "description", None)
    spec = chart.to_dict()
    # Streamlit's default "fit" sizing squeezes the plot when axis labels are long (measured: a
    # bar chart with long vertical labels drew no bars); "pad" keeps the chart's own width/height.
    spec.setdefault("autosize", {"type": "pad"})
    for name, values in spec.get("datasets", {}).items():
        if isinstance(values, list):
            spec["datasets"][name] = dataframe_util.convert_anything_to_arrow_bytes(pd.DataFrame(values))
    return spec, (desc if isinstance(desc, str) else "")


def chart(build: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> str:
    """Draw ``build(*args, **kwargs)`` (an Altair chart) and return its caption.

    Building and validating an Altair spec costs ~0.1 s per chart; the finished Vega-Lite spec is
    cached under the loaded model/data hashes plus ``key`` (what the data depends on) and the
    small keyword options, so a rerun that changes nothing in the chart does not rebuild it.
    """
    name = f"{build.__module__}.{build.__qualname__}"
    spec, caption = compute(_spec, build, args, kwargs,
                            key=("chart", name, repr(sorted(kwargs.items()))) + tuple(key))
    st.vega_lite_chart(spec, width="content", theme=None)
    return caption


# ---------------------------------------------------------------- saturation page
BUILTIN_GROUPINGS = {"true_class": "True class", "predicted_class": "Predicted class",
                     "correct": "Correct vs wrong", "saturation": "Saturation level"}
METRIC_LABELS = {"correct": "accuracy (share correct)", "loss": "loss", "confidence": "confidence",
                 "frac_saturated": "share of unit-steps saturated",
                 "frac_saturated_final": "share of units saturated at the last step"}


def _sat_table(tr, y, columns, class_names, layer, direction, threshold, low, high):
    from rnnviz_core.groups import sequence_table
    from rnnviz_core.saturation import trace_gates
    gates = trace_gates(tr, layer=layer, direction=direction) or None
    table = sequence_table(tr.logits, y, states=tr.get("h", layer=layer, direction=direction),
                           lengths=tr.lengths, columns=columns, class_names=class_names,
                           threshold=threshold)
    if gates:
        from rnnviz_core.saturation import saturation_by_sequence
        sat = saturation_by_sequence(tr.get("h", layer=layer, direction=direction), tr.lengths,
                                     gates=gates, threshold=threshold, low=low, high=high)
        for col in sat.columns.drop("seq"):
            table[col] = sat[col].to_numpy()
    return table


def saturation_table(ctx: Loaded, layer: int, direction: str, threshold: float,
                     low: float, high: float):
    """One row per sequence: outcomes, saturation shares, dataset columns (cached)."""
    tr = full_trace(ctx)
    ds = ctx.data
    return compute(_sat_table, tr, ds.y, ds.groups, ds.class_names, layer, direction, threshold, low, high,
                   key=("sat_table", layer, direction, threshold, low, high))


def groupings(ctx: Loaded, table) -> dict:
    """Grouping choices available for this data: built-in ones plus dataset columns."""
    out = {k: v for k, v in BUILTIN_GROUPINGS.items()
           if {"correct": "outcome"}.get(k, k) in table.columns}
    for col in getattr(ctx.data.groups, "columns", []):
        if col in table.columns or f"{col}_data" in table.columns:
            out[col if col in table.columns else f"{col}_data"] = f"Data column: {col}"
    return out


def group_labels(table, by: str):
    from rnnviz_core.groups import assign_groups
    return assign_groups(table, by).astype(str)


def _resilience(model, X, lengths, device):
    from rnnviz_core.groups import resilience_sweep
    return resilience_sweep(model, X, lengths, device=device)


def resilience_results(ctx: Loaded):
    """Output change per sequence under noise and missing steps (cached; one batched run each)."""
    return compute_status("Damaging the inputs (noise, missing steps) and re-running the model…",
                          _resilience, ctx.model, ctx.data.X, ctx.data.lengths, key=("resilience",),
                          device=ctx.device)


def with_resilience(table, results):
    """``table`` plus one ``change: <condition>`` column per damage condition."""
    out = table.copy()
    for cond, part in results.groupby("condition", sort=False):
        out[f"change: {cond}"] = part.set_index("seq")["output_change"].reindex(out["seq"]).to_numpy()
    return out


def comparison_view(cmp):
    """The two-group test frame as a table a non-programmer can read."""
    import pandas as pd
    label = cmp["metric"].map(lambda m: METRIC_LABELS.get(m, m.replace("change: ", "output change under ")))
    return pd.DataFrame({
        "measure": label, "A": cmp["mean_a"], "B": cmp["mean_b"], "A − B": cmp["mean_a"] - cmp["mean_b"],
        "p-value": cmp["p_value"], "effect size": cmp["effect_size"],
        "test": cmp["test"] + " (" + cmp["effect_name"] + ")", "sizes": cmp["n_a"].astype(str) + " / " + cmp["n_b"].astype(str),
    })


def _repro(tr_a, tr_b, groups):
    from rnnviz_core.groups import reproducibility
    return reproducibility(tr_a, tr_b, groups=groups)


def second_model_view(ctx: Loaded, dig: str, by: str, groups):
    """Reproducibility table of the loaded model against the second model kept under ``dig``."""
    from rnnviz_core.data import check_against_model
    raw, name = stored(dig)
    other = model_from_bytes(raw, name)
    check_against_model(ctx.data, other)
    mine, theirs = list(getattr(ctx.model, "class_names", None) or []), list(getattr(other, "class_names", None) or [])
    if mine and theirs and mine != theirs:
        raise DataError(
            f"The second model's classes ({', '.join(map(str, theirs))}) are not those of the loaded model "
            f"({', '.join(map(str, mine))}), so their predictions cannot be compared. Upload a model of the same task."
        )
    tr_b = shared(_trace_all, other, ctx.data.X, ctx.data.lengths, key=("trace2", dig), device=ctx.device)
    return name, compute(_repro, full_trace(ctx), tr_b, groups,
                         key=("repro", dig, by, digest(np.asarray(groups, dtype=str))))


def _gate_scatter(tr, layer, direction, mask, low, high):
    from rnnviz_core.saturation import gate_saturation, trace_gates
    gates = {k: v[mask] for k, v in trace_gates(tr, layer=layer, direction=direction).items()}
    return gate_saturation(gates, tr.lengths[mask], low=low, high=high)


def gate_scatter_data(ctx: Loaded, layer: int, direction: str, mask, low: float, high: float, key: tuple):
    """Per gate unit: share of steps nearly shut / nearly open, over the sequences in ``mask``."""
    return compute(_gate_scatter, full_trace(ctx), layer, direction, mask, low, high, key=("gates",) + key)


def compare(table, by: str, a: str, b: str):
    """Two-group tests on outcome, saturation and resilience columns."""
    from rnnviz_core.groups import _metric_columns, compare_groups
    metrics = [m for m in _metric_columns(table) if m not in ("output_change", "flipped")]
    metrics += [c for c in table.columns if str(c).startswith("change: ")]
    return compare_groups(table, by, a, b, metrics=metrics)


def resilience_by_group(results, table, labels, a: str, b: str):
    """Resilience per damage condition for groups ``a`` and ``b`` only."""
    from rnnviz_core.groups import resilience_summary
    out = resilience_summary(results, table, labels)
    return out[out["group"].astype(str).isin([a, b])].reset_index(drop=True)


def second_model_section(ctx: Loaded, by: str, labels) -> None:
    """Upload a second model of the same task and show how far the two agree, per group."""
    st.caption("Upload another trained model of the same task (another seed or checkpoint). rnnviz runs both on "
               "the loaded data and reports, per group, how often they give the same answer and whether the same "
               "sequences and the same steps saturate in both.")
    up = st.file_uploader("Second model file", key="up_model2")
    if up is not None and st.session_state.get("_seen_model2") != up.file_id:
        st.session_state["_seen_model2"] = up.file_id
        try:
            view()["model2"] = store_upload(up)[0]
        except Exception as exc:  # noqa: BLE001
            show_error(exc)
    dig = view().get("model2")
    remember("model2", dig)
    if not dig:
        return
    try:
        name, rep = second_model_view(ctx, dig, by, labels.to_numpy())
    except Exception as exc:  # noqa: BLE001
        show_error(exc)
        view().pop("model2", None)
        return
    st.markdown(f"Loaded model vs **{name}**")
    st.dataframe(rep, hide_index=True, width="stretch")
    st.caption("agreement: share of sequences where both models predict the same class; sat_corr_sequences: do the "
               "same sequences saturate in both (1 = exactly, 0 = unrelated); sat_corr_time: does saturation rise and "
               "fall at the same steps.")
    csv_button(rep, "Download the reproducibility table (CSV)", "reproducibility.csv", "dl_repro")


# ---------------------------------------------------------------- contributions page
FAITH_SAMPLE = 100  # sequences in the faithfulness check (it runs the model ~11 x per method)


def _scores(model, X, lengths, method, target, device):
    from rnnviz_core.contributions import contributions
    return contributions(model, X, method, lengths, target, device=device, return_info=True)


def scores(ctx: Loaded, method: str):
    """(scores [N, T], info) of ``method`` for every loaded sequence and the chosen target (cached)."""
    from rnnviz_core.contributions import METHODS
    from rnnviz_core.errors import InputError
    if method not in METHODS:
        raise InputError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    return compute_status(f"Scoring every step of {len(ctx.data.X)} sequences with {method}…",
                          _scores, ctx.model, ctx.data.X, ctx.data.lengths, method, ctx.target, ctx.device,
                          key=("scores", method, ctx.target))


@st.cache_resource
def _seen_keys() -> set:
    return set()


def compute_status(label: str, fn: Callable[..., Any], *args: Any, key: tuple = (), **kwargs: Any) -> Any:
    """:func:`compute`, showing ``label`` in an ``st.status`` box while it is computed for the
    first time in this server (a cached result appears without the box)."""
    ck = digest(f"{fn.__module__}.{fn.__qualname__}", loaded().key, key, sorted((k, repr(v)) for k, v in kwargs.items()))
    if ck in _seen_keys():
        return compute(fn, *args, key=key, **kwargs)
    with st.status(label, expanded=False) as box:
        out = compute(fn, *args, key=key, **kwargs)
        box.update(label=label.rstrip("…") + ": done.", state="complete")
    _seen_keys().add(ck)
    return out


def _faith(model, X, lengths, target, device):
    from rnnviz_core.faithfulness import compare_methods
    rep = compare_methods(model, X, lengths=lengths, target=target, device=device)
    return rep.curves, rep.summary


def faithfulness(ctx: Loaded):
    """Deletion curves and AOPC of the default methods on the first FAITH_SAMPLE sequences."""
    n = min(FAITH_SAMPLE, len(ctx.data.X))
    X, L = ctx.data.X[:n], ctx.data.lengths[:n]
    return compute_status(f"Checking each method on {n} sequences: removing their top steps first…",
                          _faith, ctx.model, X, L, ctx.target, ctx.device, key=("faith", n, ctx.target))


def contribution_views(ctx: Loaded, sc, a: int, b: int, method: str):
    """Tidy frames for the page: per-step scores of A and B, their top steps, positions."""
    from rnnviz_core import rankings as rk
    ids = np.asarray([str(i) for i in ctx.data.ids], dtype=object)
    frame = rk.scores_frame(sc[[a, b]], method=method, ids=ids[[a, b]], lengths=ctx.data.lengths[[a, b]])
    top = rk.top_steps(sc[[a, b]], k=5, ids=ids[[a, b]], lengths=ctx.data.lengths[[a, b]])
    pos = rk.mean_abs_by_position(sc, relative=True, normalize=True, lengths=ctx.data.lengths)
    y, names = labels_of(ctx)
    by_group = None
    if y is not None:
        by_group = rk.mean_abs_by_group(sc, np.asarray(names, dtype=object)[y], lengths=ctx.data.lengths,
                                        name="true class")
    return frame, top, pos, by_group


def all_scores_frame(ctx: Loaded, sc, method: str):
    from rnnviz_core import rankings as rk
    return rk.scores_frame(sc, method=method, ids=[str(i) for i in ctx.data.ids], lengths=ctx.data.lengths)
