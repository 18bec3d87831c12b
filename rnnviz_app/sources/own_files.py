"""The user's own model and data: uploaded as a pair, validated together (never against a
demo's other half), with the choices the weights cannot tell (how the head reads the sequence,
the class order, the data's columns, missing values) made in the sidebar and kept in the URL.

Flow: an upload is parsed alone in the uploader's callback; a file that cannot be read is
refused (not stored, the view stays as it was), otherwise it is stored and the sidebar switches
to "My own files". Until both halves are there the page says which file is still needed and
what it must look like. Once both are there they are checked as a pair.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from rnnviz_app.sources.context import Loaded
from rnnviz_app.sources.own_labels import (  # noqa: F401 - the choices' words, also used as own_files.<name>
    OPTION_CHARS,
    ORDER_SHORT,
    READOUT_OPTION,
    READOUT_SHORT,
    TYPED,
    choice_figure,
    fit_option,
    keep_figures_current,
    order_help,
    order_label,
    readout_label,
)
from rnnviz_app.sources.uploads import (
    data_by_hash,
    data_from_bytes,
    model_from_bytes,
    session_owner,
    stored,
    upload_store,
)
from rnnviz_app.state.state_url import remember, view, widget_key
from rnnviz_app.views.messages import CONTROLS, app_message
from rnnviz_app.views.text import format_accuracy, md_escape  # noqa: F401 - also used by the start page

OWN = "own"
OWN_LABEL = "My own files"
KINDS = ("model", "data")
MODEL_HELP = ("Your trained model: a .safetensors file saved with rnnviz, or a PyTorch state dict "
              "(.pt or .pth, saved with torch.save(model.state_dict(), path)) of a GRU, LSTM or RNN "
              "with an optional Linear or Embedding layer before it and one or two Linear layers after it.")
DATA_HELP = ("Your sequences: CSV or Parquet (one row per step), NPZ, or a UCR/UEA .ts file; "
             "a text CSV with a text column for models that read words.")
#: URL parameters of the data file's reading options (reset when another data file comes)
DATA_PARAMS = ("idc", "ordc", "labc", "textc", "featc", "grpc", "miss", "clsorder", "clsnames")
#: URL parameters of the model's reading options (reset when another model comes)
MODEL_PARAMS = ("readout", "clsorder", "clsnames")
AUTO = "(found automatically)"
NO_LABELS = "(no labels)"
MISSING = {"error": "Refuse the file", "fill": "Fill forward from the step before", "drop": "Drop those sequences"}
#: bytes the traced arrays of one pair may take; a larger file is traced as a stratified sample
TRACE_BUDGET_BYTES = int(os.environ.get("RNNVIZ_TRACE_BUDGET_BYTES", 512 << 20))
COLUMN_FIELDS = {"id", "id_col", "order", "order_col", "label", "label_col", "features", "feature_cols",
                 "feature", "group", "groups", "group_cols", "missing"}


# ------------------------------------------------------------------------------ reading alone
def _columns_of(data: bytes, name: str) -> list[str] | None:
    """Column names of a long-form (CSV/Parquet) file from its header alone; None otherwise."""
    import pandas as pd
    low = (name or "").lower()
    try:
        if low.endswith((".parquet", ".pq")) or data[:4] == b"PAR1":
            import pyarrow.parquet as pq
            return [str(c) for c in pq.ParquetFile(io.BytesIO(data)).schema_arrow.names][:2000]
        if low.endswith(".csv"):
            head = data[:65536].decode("utf-8-sig", errors="replace").splitlines()[0]
            sep = "," if "," in head else next((d for d in (";", "\t", "|") if d in head), ",")
            return [str(c) for c in pd.read_csv(io.StringIO(head), sep=sep, nrows=0).columns][:2000]
    except Exception:  # noqa: BLE001 - not a table: None
        return None
    return None


def _data_options(v: dict) -> dict:
    """load_data keyword options from the view (validated later against the file's columns)."""
    opts: dict[str, Any] = {}
    for param, kw in (("idc", "id_col"), ("ordc", "order_col"), ("labc", "label_col"), ("textc", "text_col")):
        val = v.get(param)
        if val == NO_LABELS and kw == "label_col":
            opts[kw] = ""
        elif val and val != AUTO:
            opts[kw] = val
    for param, kw in (("featc", "feature_cols"), ("grpc", "group_cols")):
        cols = _json_list(v.get(param))
        if cols:
            opts[kw] = cols
    if v.get("miss") in MISSING:
        opts["missing"] = v["miss"]
    return opts


def _json_list(raw: Any) -> list[str]:
    if not raw:
        return []
    try:
        val = json.loads(raw)
    except (TypeError, ValueError):
        return []
    return [str(x) for x in val][:2000] if isinstance(val, list) else []


def check_alone(kind: str, data: bytes, name: str) -> None:
    """Raise when ``data`` is not a readable model (``kind="model"``) or data file.

    A long-form table whose columns cannot be inferred is accepted: its columns are chosen in
    the sidebar.
    """
    if kind == "model":
        model_from_bytes(data, name)
        return
    try:
        data_from_bytes(data, name)
    except Exception:
        if _columns_of(data, name) is None:
            raise


# ------------------------------------------------------------------------------ callbacks
def on_upload(kind: str) -> None:
    """Callback of the ``kind`` uploader (runs before the script): keep a readable file and
    switch to own files; record why an unreadable one is refused (it is not stored)."""
    up = st.session_state.get("up_" + kind)
    v = view()
    errors = st.session_state.setdefault("_upload_errors", {})
    errors.pop(kind, None)
    if up is None:  # the user removed the file from the uploader
        v.pop(kind, None)
        return
    data, name = up.getvalue(), up.name
    try:
        check_alone(kind, data, name)
        dig = upload_store().put(data, name=name, owner=session_owner())
    except Exception as exc:  # noqa: BLE001 - refused: a plain sentence under the uploader
        errors[kind] = (up.file_id, app_message(exc, kind))
        return
    if v.get("demo") != OWN:
        st.session_state["_last_demo"] = v.get("demo")
        if v.get("demo") is not None:  # a demo was on screen: its halves are not part of the pair
            for other in KINDS:
                if other != kind:
                    v.pop(other, None)
    if v.get(kind) != dig:
        for p in (DATA_PARAMS if kind == "data" else MODEL_PARAMS):
            v.pop(p, None)
            st.session_state.pop("w_" + p, None)
    v[kind] = dig
    v["demo"] = OWN
    st.session_state["w_demo"] = OWN


def back_to_demo() -> None:
    """Button callback: the demo that was on screen before own files (files stay in the uploaders)."""
    v = view()
    demo = st.session_state.get("_last_demo") or None
    for k in KINDS:
        v.pop(k, None)
    if demo:
        v["demo"] = demo
        st.session_state["w_demo"] = demo
    else:
        v.pop("demo", None)
        st.session_state.pop("w_demo", None)


def on_source_change() -> None:
    """Demo selectbox callback: a demo shows its own files; "My own files" takes back the files
    still sitting in the uploaders."""
    choice = st.session_state.get("w_demo")
    v = view()
    if choice == OWN:
        for kind in KINDS:
            up = st.session_state.get("up_" + kind)
            if up is not None and not v.get(kind):
                try:
                    v[kind] = upload_store().put(up.getvalue(), name=up.name, owner=session_owner())
                except Exception:  # noqa: BLE001 - the uploader shows nothing new; the page says what is missing
                    pass
    else:
        st.session_state["_last_demo"] = choice
        for kind in KINDS:
            v.pop(kind, None)


# ------------------------------------------------------------------------------ the pair
@dataclass
class OwnState:
    """What the sidebar and the pages need to know about the user's files."""
    model: Any = None
    data: Any = None
    model_name: str = ""
    data_name: str = ""
    columns: list[str] | None = None          # the data file's columns (long form)
    problems: dict = field(default_factory=dict)  # "model"/"data"/"pair" -> (sentence, field or None)
    readouts: Any = None                      # DataFrame[readout, description, accuracy] or None
    orders: Any = None                        # DataFrame[key, label, names, accuracy] or None
    order_keys: list[str] = field(default_factory=list)
    order_labels: dict = field(default_factory=dict)  # class-order key -> its plain label
    needs_vocabulary: bool = False            # a text model/data pair without a vocabulary yet
    text_model: bool = False                  # the model reads token ids (an embedding first)
    inferred: bool = False                    # the model was built from a plain state dict
    waiting: str = ""                         # what the page says while a half is missing


@st.cache_resource(max_entries=8, show_spinner="Reading the data…")
def _data_with(dig: str, name: str, opts_key: str, _data: bytes, _opts: dict):
    from rnnviz_core.data import load_data
    return load_data(_data, name=name, **_opts)


def _vocabulary(state: OwnState, v: dict) -> list[str] | None:
    """The vocabulary for text data: an uploaded vocabulary file, else the model's own."""
    dig = v.get("vocab")
    if dig:
        try:
            raw, name = stored(dig)
            return _vocab_from(dig, name, raw)
        except Exception as exc:  # noqa: BLE001
            v.pop("vocab", None)
            state.problems["vocabulary"] = (app_message(exc, "data"), "vocabulary")
    voc = getattr(state.model, "vocabulary", None)
    return list(voc) if voc else None


@st.cache_resource(max_entries=8, show_spinner=False)
def _vocab_from(dig: str, name: str, _raw: bytes) -> list[str]:
    from rnnviz_core.data import load_vocabulary
    return load_vocabulary(_raw, name=name)


def on_vocabulary() -> None:
    """Callback of the vocabulary uploader: keep a readable vocabulary file (else say why)."""
    up = st.session_state.get("up_vocab")
    v = view()
    errors = st.session_state.setdefault("_upload_errors", {})
    errors.pop("vocab", None)
    if up is None:
        v.pop("vocab", None)
        return
    try:
        from rnnviz_core.data import load_vocabulary
        load_vocabulary(up.getvalue(), name=up.name)
        v["vocab"] = upload_store().put(up.getvalue(), name=up.name, owner=session_owner())
    except Exception as exc:  # noqa: BLE001
        errors["vocab"] = (up.file_id, app_message(exc, "data"))


def _load_half(kind: str, dig: str, state: OwnState, v: dict):
    try:
        raw, name = stored(dig)
    except KeyError:
        v.pop(kind, None)
        state.problems[kind] = (f"The {kind} file this link refers to is no longer kept on this server; "
                                f"upload it again under '{CONTROLS[kind]}'.", kind)
        return None
    if kind == "model":
        state.model_name = name or "uploaded model"
        try:
            return model_from_bytes(raw, name)
        except Exception as exc:  # noqa: BLE001
            state.problems[kind] = (app_message(exc, kind), getattr(exc, "field", None))
            return None
    state.data_name = name or "uploaded data"
    state.columns = _columns_of(raw, name)
    opts = _column_choices(state.columns, v)
    vocab = _vocabulary(state, v)
    if vocab:
        opts["vocabulary"] = vocab
    try:
        if not opts:  # the file read as it is: the parse its upload already cached
            return data_by_hash(dig, name, raw)
        return _data_with(dig, name, repr(sorted((k, o) for k, o in opts.items() if k != "vocabulary"))
                          + repr(v.get("vocab")) + repr(len(vocab or [])), raw, opts)
    except Exception as exc:  # noqa: BLE001
        if getattr(exc, "field", None) == "vocabulary":
            state.needs_vocabulary = True
            if not v.get("vocab"):
                return None   # not a problem: the next file (the model, or its vocabulary) is still to come
        state.problems[kind] = (app_message(exc, kind), getattr(exc, "field", None))
        return None


def _column_choices(columns: list[str] | None, v: dict) -> dict:
    """Register the column widgets' keys (values from the URL, checked against the file's
    columns) and return the load_data options they give."""
    if columns:
        widget_key("idc", AUTO, [AUTO, *columns])
        widget_key("ordc", AUTO, [AUTO, *columns])
        widget_key("labc", AUTO, [AUTO, NO_LABELS, *columns])
        widget_key("textc", AUTO, [AUTO, *columns])
        for name in ("featc", "grpc"):
            key = "w_" + name
            cur = st.session_state.get(key)
            if cur is None or not set(cur) <= set(columns):
                st.session_state[key] = [c for c in _json_list(v.get(name)) if c in columns]
        for name in ("idc", "ordc", "labc", "textc"):
            remember(name, None if st.session_state["w_" + name] == AUTO else st.session_state["w_" + name])
        for name in ("featc", "grpc"):
            sel = st.session_state["w_" + name]
            remember(name, json.dumps(sel) if sel else None)
    widget_key("miss", "error", list(MISSING))
    remember("miss", None if st.session_state["w_miss"] == "error" else st.session_state["w_miss"])
    return _data_options(v)


def _is_inferred(model) -> bool:
    """Built from a plain state dict: what the weights cannot tell is chosen in the sidebar."""
    return bool(getattr(model, "inferred", False))


def _apply_choices(model, ds, state: OwnState, v: dict):
    """Head reading and class order as chosen; returns (model, data aligned to it)."""
    from rnnviz_core import data as dm
    from rnnviz_core import models as mm
    from rnnviz_core.data import check_against_model
    inferred = _is_inferred(model)
    state.inferred = inferred
    if inferred:
        key = widget_key("readout", "last", list(mm.READOUTS))
        remember("readout", st.session_state[key])
        model = mm.with_readout(model, st.session_state[key])
    classify = ds.y is not None and ds.class_names is not None and \
        getattr(getattr(model, "config", None), "task", "classification") != "regression"
    if inferred and classify:
        cands = dm.class_order_candidates(ds)
        if cands:
            keys = [k for k, _, _ in cands] + [TYPED]
            default = "declared" if "declared" in keys else ("sorted" if "sorted" in keys else keys[0])
            okey = widget_key("clsorder", default, keys)
            choice = st.session_state[okey]
            remember("clsorder", choice)
            if choice == TYPED:
                tkey = widget_key("clsnames", ", ".join(cands[0][2]))
                remember("clsnames", st.session_state[tkey])
                names = [s.strip() for s in str(st.session_state[tkey]).split(",") if s.strip()]
            else:
                names = list(next(n for k, _, n in cands if k == choice))
            state.order_keys = keys
            state.order_labels = {k: lab for k, lab, _ in cands}
            try:
                state.orders = _table("order", model, ds, cands)
            except Exception:  # noqa: BLE001 - the accuracies are a help, not a requirement
                state.orders = None
            try:
                model = mm.with_class_names(model, names)
            except Exception as exc:  # noqa: BLE001 - a typed order with the wrong count
                exc.field = getattr(exc, "field", None) or "class_order"
                raise
    if inferred:
        try:
            state.readouts = _table("readout", model, ds, None)
        except Exception:  # noqa: BLE001
            state.readouts = None
    return model, check_against_model(ds, model)


@st.cache_data(max_entries=8, show_spinner="Trying each choice on your data…")
def _outputs(key: str, _model, _ds):
    """The model's outputs under every head reading, from one run of its recurrence (cached under
    the files' hashes and reading options; the head reading itself does not change the run)."""
    import dataclasses

    from rnnviz_core.data import check_against_model
    from rnnviz_core.outputs import outputs_by_readout
    features = check_against_model(dataclasses.replace(_ds, y=None, class_names=None), _model)
    return outputs_by_readout(_model, features.X, features.lengths)


@st.cache_data(max_entries=32, show_spinner="Trying each choice on your data…")
def _choice_table(what: str, key: str, _model, _ds, _cands, _outs):
    from rnnviz_core import pairing
    if what == "order":
        return pairing.class_order_choices(_model, _ds, _cands, outputs=_outs)
    return pairing.readout_choices(_model, _ds, outputs=_outs)


def _table(what: str, model, ds, cands):
    """The accuracy of each choice (cached under the files' hashes and the other choice)."""
    other = getattr(getattr(model, "config", None), "readout", None) if what == "order" else \
        list(getattr(model, "class_names", None) or [])
    v = view()
    outs = _outputs(repr([v.get(k) for k in ("model", "data", "vocab", *DATA_PARAMS)]), model, ds)
    return _choice_table(what, v_key() + repr(other), model, ds, cands, outs)


def v_key() -> str:
    """The part of the view that decides the pair (files and their reading options)."""
    v = view()
    return repr([v.get(k) for k in ("model", "data", "vocab", *DATA_PARAMS, "readout")])


def describe_needed(state: OwnState) -> str:
    """What the page says while a file is missing: which one and what it must look like."""
    data_uploaded = bool(state.data_name) and state.data is None
    if state.model is None and data_uploaded and state.needs_vocabulary and "data" not in state.problems:
        return (f"The data '{state.data_name}' is text: its words are read with the model's vocabulary. Now "
                f"upload the model that reads it under 'Model file' in the sidebar; a model saved with rnnviz "
                f"brings its vocabulary, and for any other model add the word list under 'Vocabulary file'.")
    if state.model is None and data_uploaded:
        return "Then upload the model that reads it under 'Model file' in the sidebar."
    if data_uploaded and state.needs_vocabulary and "data" not in state.problems:
        return (f"The data '{state.data_name}' is text and the model '{state.model_name}' holds no vocabulary. Now "
                "upload the words the model knows under 'Vocabulary file' in the sidebar: a .json list or a .txt "
                "file with one word per line, in id order (the list the training script built).")
    if data_uploaded:
        return ""   # the data file's problem says which control to use
    if state.model is None and state.data is None:
        return ("Upload your model file and your data file in the sidebar, under 'Model file' and "
                "'Data file'. They are checked together as a pair.")
    if state.data is None:
        m = state.model
        cfg = getattr(m, "config", None)
        if getattr(cfg, "encoder", None) == "embedding":
            what = ("a data file of words: a CSV with a text column (words separated by spaces) or "
                    "token ids, one per step")
        else:
            f = getattr(cfg, "input_size", None)
            what = f"a data file with {f} feature{'s' if f != 1 else ''} per step" if f else "a data file"
        names = getattr(m, "class_names", None)
        if _is_inferred(m) and getattr(cfg, "task", None) == "classification":
            what += f", labelled with its {cfg.num_outputs} classes"
        elif names:
            what += f", labelled with the model's classes ({', '.join(map(str, names[:6]))}{', …' if len(names) > 6 else ''})"
        return (f"The model '{state.model_name}' is loaded. Now upload the data it reads under 'Data file' "
                f"in the sidebar: {what}.")
    ds = state.data
    f = ds.n_features
    task = ("gives one of {} classes".format(len(ds.class_names)) if ds.class_names
            else "gives one number" if ds.y is not None else "reads it")
    return (f"The data '{state.data_name}' is loaded ({len(ds)} sequences, {f} feature{'s' if f != 1 else ''} per "
            f"step). Now upload the model that reads it under 'Model file' in the sidebar: a model that reads "
            f"{f} feature{'s' if f != 1 else ''} per step and {task}, as a .safetensors file or a PyTorch state "
            f"dict (.pt or .pth).")


def resolve_own() -> tuple[Loaded | None, OwnState]:
    """The user's pair, loaded and checked; ``(None, state)`` while it is incomplete or refused."""
    from rnnviz_core.device import device_label, resolve_device
    v = view()
    state = OwnState()
    mdig, ddig = v.get("model"), v.get("data")
    remember("vocab", v.get("vocab"))
    model = _load_half("model", mdig, state, v) if mdig else None
    state.model = model
    state.text_model = getattr(getattr(model, "config", None), "encoder", None) == "embedding"
    ds = _load_half("data", ddig, state, v) if ddig else None
    state.model, state.data = model, ds
    if model is None or ds is None:
        state.waiting = describe_needed(state)
        return None, state
    try:
        model, ds = _apply_choices(model, ds, state, v)
    except Exception as exc:  # noqa: BLE001
        state.problems["pair"] = (app_message(exc), getattr(exc, "field", None))
        return None, state
    model_key, data_key = _key(mdig, v, "model"), _key(ddig, v, "data")
    try:
        ds, plan = _within_budget(model_key, data_key, TRACE_BUDGET_BYTES, model, ds)
    except Exception as exc:  # noqa: BLE001 - not even one sequence fits
        state.problems["pair"] = (_too_big(exc), None)
        return None, state
    if plan.sampled:
        data_key += f":n{len(ds)}"
    dev = resolve_device("auto")
    ctx = Loaded(model=model, data=ds, model_key=model_key, data_key=data_key,
                 model_name=state.model_name, data_name=state.data_name, demo=None, device=str(dev),
                 device_label=device_label(dev))
    ctx.extra.update(model_upload=mdig, data_upload=ddig, own=True, assumptions=assumptions(model, ds, v))
    if plan.message:
        ctx.extra["budget_note"] = plan.message
    return ctx, state


@st.cache_resource(max_entries=8, show_spinner=False)
def _within_budget(mkey: str, dkey: str, max_bytes: int, _model, _ds):
    """``(data, plan)``: the data itself, or a stratified sample when tracing all of it with the
    model would take more than ``max_bytes`` (cached under the halves' keys)."""
    from rnnviz_core import budget
    return budget.fit(_ds, _model, max_bytes=max_bytes)


def _too_big(exc: Exception) -> str:
    """The refusal when not one sequence fits in the trace budget, with what to upload instead."""
    first = str(exc).split(". Use ")[0].rstrip(".")
    return (f"{first}. Upload a data file of shorter sequences under 'Data file', or a smaller model "
            f"under 'Model file'.")


def _key(dig: str, v: dict, kind: str) -> str:
    """Cache key of a half: its content hash plus the choices that change what it computes."""
    from rnnviz_app.state.hashing import digest
    params = ("readout", "clsorder", "clsnames") if kind == "model" else (*DATA_PARAMS, "vocab")
    extra = [v.get(p) for p in params]
    return dig if not any(extra) else digest(dig, extra)


def assumptions(model, ds, v: dict) -> list[dict]:
    """What was assumed for a state dict, each with where to change it (a control on screen)."""
    from rnnviz_app.views.messages import CODE_LIKE
    from rnnviz_core import models as mm
    if not _is_inferred(model):
        return []
    try:
        out = [dict(a) for a in mm.assumptions(model)]
    except Exception:  # noqa: BLE001
        out = []
    where = {"readout": CONTROLS["readout"], "class_order": CONTROLS["class_order"]}
    for a in out:
        if a.get("key") == "readout":   # the sidebar's words, not the setting's name
            a["value"] = READOUT_SHORT.get(str(a.get("value")), a.get("value"))
        if a.get("key") == "vocabulary" and getattr(ds, "vocabulary", None):
            name = _vocab_name(v)
            a["what"] = (f"The model file holds no vocabulary, so the words are read with the uploaded one "
                         f"({len(ds.vocabulary)} words, id 0 first).")
            a["value"] = f"{name} ({len(ds.vocabulary)} words)" if name else f"{len(ds.vocabulary)} words"
            a["how_to_change"] = "upload another under 'Vocabulary file' in the sidebar"
            continue
        ctl = where.get(a.get("key"))
        if a.get("key") == "class_order" and not (ds.class_names and ds.y is not None):
            a["how_to_change"] = ("the data has no class labels to check it against; choose its label column under "
                                  "'Reading the data file' in the sidebar, then pick the order under 'Class order'")
        elif ctl:
            a["how_to_change"] = f"change it under '{ctl}' in the sidebar"
        elif not a.get("how_to_change") or CODE_LIKE.search(str(a["how_to_change"])):
            a["how_to_change"] = ("the weights alone cannot tell; if this is wrong, upload the model saved with "
                                  "its settings (a .safetensors file written by rnnviz) under 'Model file'")
    return out


def _vocab_name(v: dict) -> str:
    """The uploaded vocabulary file's name ("" when none is kept)."""
    dig = v.get("vocab")
    if not dig:
        return ""
    try:
        return stored(dig)[1] or ""
    except KeyError:
        return ""
