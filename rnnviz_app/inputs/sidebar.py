"""The shared sidebar: demos or "My own files", the uploaders, the choices a state dict needs
(head reading, class order, columns, missing values), the loaded files' names and the target."""
from __future__ import annotations

import streamlit as st

from rnnviz_app.sources import own_files as own
from rnnviz_app.sources.context import (
    Loaded,
    set_loaded,
    set_waiting,
    target_index,
    target_options,
)
from rnnviz_app.sources.loading import DEFAULT_DEMO, demo_infos, resolve_loaded
from rnnviz_app.state.state_url import remember, value, view, widget_key
from rnnviz_app.views import messages as msg
from rnnviz_app.views.messages import guarded
from rnnviz_app.views.text import md_escape


def _uploader(kind: str, label: str, help_text: str) -> None:
    st.file_uploader(label, key="up_" + kind, help=help_text, on_change=own.on_upload, args=(kind,))
    up = st.session_state.get("up_" + kind)
    rec = st.session_state.get("_upload_errors", {}).get(kind)
    if up is not None and rec and rec[0] == up.file_id:
        msg.error(rec[1])


def source_and_files() -> Loaded | None:
    """Draw the model/data part of the sidebar and resolve what is loaded (None: nothing yet)."""
    from rnnviz_app.state import warm
    warm.start()   # the analysis pages' libraries load in the background while this page is used
    st.subheader("Model and data")
    demos = guarded(demo_infos)
    keys = list(demos)
    if not keys:
        st.error("No shipped demo was found in this installation; reinstall rnnviz.")
        st.stop()
    v = view()
    if (v.get("model") or v.get("data")) and v.get("demo") != own.OWN:
        v["demo"] = own.OWN  # a link made before own files had their own choice
    options = keys + [own.OWN]
    dkey = widget_key("demo", DEFAULT_DEMO if DEFAULT_DEMO in keys else keys[0], options)
    st.selectbox("Demo", options, key=dkey, on_change=own.on_source_change,
                 format_func=lambda k: own.OWN_LABEL if k == own.OWN else demos[k].title,
                 help="A trained model shipped with rnnviz with the data it was tested on, or your own model "
                      "and data files.")
    source = value("demo")
    with st.expander("Use my own files", expanded=source == own.OWN):
        _uploader("model", "Model file", own.MODEL_HELP)
        _uploader("data", "Data file", own.DATA_HELP)
        if source == own.OWN:
            st.button("Back to the demo", on_click=own.back_to_demo, key="btn_back_demo",
                      help="Show the shipped demo again; your files stay in the uploaders.")
    if source != own.OWN:
        for k in own.KINDS:
            view().pop(k, None)
        ctx = resolve_loaded(source)
        set_waiting(None)
        return ctx
    ctx, state = own.resolve_own()
    _own_controls(state)
    if ctx is None:
        set_loaded(None)
        pair = state.problems.get("pair")
        if pair:
            set_waiting("error", pair[0])
        else:
            msgs = [p[0] for k, p in state.problems.items() if k in own.KINDS]
            set_waiting("error" if msgs else "info", " ".join(m for m in msgs + [state.waiting] if m))
        names = [f"**Model:** {md_escape(state.model_name)}" if state.model is not None else "",
                 f"**Data:** {md_escape(state.data_name)}" if state.data is not None else ""]
        if any(names):
            st.caption("  \n".join(n for n in names if n))
        return None
    prev = st.session_state.get("_loaded")
    if prev is not None:
        ctx.target = prev.target
    set_loaded(ctx)
    set_waiting(None)
    return ctx


def _own_controls(state: own.OwnState) -> None:
    """The choices the files cannot tell, each option with its accuracy where labels exist."""
    from rnnviz_core import models as mm
    if state.inferred and "w_readout" in st.session_state:
        opts = list(getattr(mm, "READOUTS", {}))
        own.keep_figures_current("readout", [own.readout_label(k, state.readouts) for k in opts])
        st.selectbox("How the model reads the sequence", opts, key="w_readout",
                     format_func=lambda k: own.readout_label(k, state.readouts),
                     help="The weights cannot tell which step's output the model's last layer reads. Pick the one "
                          "your training script used; the accuracy (for a regression model, the root mean squared "
                          "error) of each choice on the loaded data is shown.  \n"
                          + "  \n".join(f"- {own.READOUT_OPTION.get(k, k)}: {t}"
                                        f"{own.choice_figure(state.readouts, 'readout', k)}" for k, t in
                                        getattr(mm, "READOUTS", {}).items()))
    if state.order_keys:
        own.keep_figures_current("clsorder", [own.order_label(k, state.orders, state.order_labels)
                                              for k in state.order_keys])
        st.selectbox("Class order", state.order_keys, key="w_clsorder",
                     format_func=lambda k: own.order_label(k, state.orders, state.order_labels),
                     help="A state dict does not name its outputs. Pick the order your training script gave the "
                          "classes (output 0 first); the accuracy of each order on the loaded data is shown.  \n"
                          + own.order_help(state.order_labels, state.orders))
        if st.session_state.get("w_clsorder") == own.TYPED:
            st.text_input("Class names in output order, separated by commas", key="w_clsnames")
    if state.columns is not None or state.data is not None or "data" in state.problems:
        bad = {p[1] for p in state.problems.values()} & own.COLUMN_FIELDS
        chosen = any(st.session_state.get("w_" + k) not in (None, own.AUTO, [], "error")
                     for k in ("idc", "ordc", "labc", "textc", "featc", "grpc", "miss"))
        unlabelled = state.data is not None and state.data.y is None
        with st.expander("Reading the data file", expanded=bool(bad) or chosen or unlabelled):
            if state.columns:
                cols = state.columns
                st.selectbox("Sequence id column", [own.AUTO, *cols], key="w_idc")
                st.selectbox("Step order column", [own.AUTO, *cols], key="w_ordc")
                st.selectbox("Label column", [own.AUTO, own.NO_LABELS, *cols], key="w_labc")
                if state.text_model or state.needs_vocabulary:
                    st.selectbox("Text column", [own.AUTO, *cols], key="w_textc",
                                 help="The column holding each sequence's text (words separated by spaces).")
                st.multiselect("Feature columns", cols, key="w_featc",
                               help="Leave empty to use every other numeric column; pick them in the model's order.")
                st.multiselect("Group columns", cols, key="w_grpc",
                               help="Columns that describe each sequence (not a step), for grouping.")
            st.selectbox("Missing values", list(own.MISSING), key="w_miss", format_func=own.MISSING.get,
                         help="What to do with empty or non-numeric feature values.")
    if state.text_model or state.needs_vocabulary or view().get("vocab"):
        st.file_uploader("Vocabulary file", key="up_vocab", on_change=own.on_vocabulary,
                         help="The words your model knows, in id order: a .json list (or word -> id object) or a "
                              ".txt file with one word per line. Not needed when the model file holds its vocabulary.")
        up = st.session_state.get("up_vocab")
        rec = st.session_state.get("_upload_errors", {}).get("vocab")
        if up is not None and rec and rec[0] == up.file_id:
            msg.error(rec[1])


def loaded_caption(ctx: Loaded) -> None:
    """The loaded files' names (text from files: escaped) and the device."""
    st.caption(f"**Model:** {md_escape(ctx.model_name)}  \n**Data:** {md_escape(ctx.data_name)} "
               f"({len(ctx.data.X)} sequences)")
    st.caption(f"**Device in use:** {ctx.device_label}")
    note = ctx.extra.get("budget_note")
    if note:
        st.info(note)


def target_picker(ctx: Loaded) -> None:
    """Which output the contributions explain."""
    targets = target_options(ctx)
    tkey = widget_key("target", "predicted", list(targets))
    st.selectbox("Target output", list(targets), key=tkey, format_func=targets.get,
                 help="Which output the contributions explain. 'Predicted' uses each sequence's own prediction.")
    ctx.target = target_index(value("target"))
    remember("target", st.session_state[tkey])
