"""The Start page's body for any source: the loaded model's card, what a bundle does not hold, what
rnnviz assumed about your model, and the links to the other pages. Drawn by ``pages/0_Start.py``."""
from __future__ import annotations

import streamlit as st

from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_start as pst
from rnnviz_app.views.text import md_escape


def _sentence(text: str) -> str:
    text = md_escape(text)
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else ""


def body(src) -> None:
    """Every section of the page for the source ``src`` (see :mod:`rnnviz_app.sources.source`)."""
    card = msg.guarded(pst.card, src)
    st.subheader("The loaded model")
    left, right = st.columns([3, 2])
    with left:
        name, data_name = card["title"]
        st.markdown(f"**{md_escape(name)}**: the shipped model and its test data" if data_name is None
                    else f"**{md_escape(name)}** on **{md_escape(data_name)}**")
        if card["about"]:
            st.caption(card["about"])
        st.markdown(f"- Architecture: {md_escape(card['architecture'])}\n- Outputs: {md_escape(card['outputs'])}\n"
                    f"- Data: {md_escape(card['data'])}\n- Computing on: {md_escape(card['computing'])}")
        if card["hashes"]:
            st.caption("Content hashes (SHA-256), to check which model and data these numbers come from:")
            st.code(card["hashes"], language=None, wrap_lines=True)
    with right:
        if card.get("metrics"):   # regression: the model's error beside always predicting the mean
            st.markdown("**Error on the loaded data**")
            cols = st.columns(3)
            for i, m in enumerate(card["metrics"][:3]):
                cols[i].metric(m["name"], m["value"], help=m["help"])
            st.caption(card["baseline"])
            cols = st.columns(3)
            for i, m in enumerate(card["metrics"][3:]):
                cols[i].metric(m["name"], m["value"], help=m["help"])
        elif card["score_value"] is not None:
            st.metric(card["score_name"], card["score_value"], help=card["score_help"])
        else:
            st.info(card["score_help"])
    if pst.not_here(src):
        st.subheader("Not in this analysis bundle")
        st.markdown("\n".join(f"- {t}" for t in pst.not_here(src)))

    assumed = [] if src.bundle else src.ctx.extra.get("assumptions") or []


    if assumed:
        st.subheader("What rnnviz assumed about your model")
        st.caption("A PyTorch state dict holds weights only. These choices come from elsewhere; check them "
                   "against your training script.")
        st.markdown("\n".join(f"- {md_escape(a.get('what', ''))} Now: **{md_escape(a.get('value', ''))}**. "
                              f"{_sentence(a.get('how_to_change', ''))}"
                              for a in assumed))

    st.subheader("Explore")
    c1, c2, c3 = st.columns(3)
    with c1:
        st.page_link("pages/1_Trajectories.py", label="Trajectories", icon=":material/timeline:")
        st.caption("How the hidden state moves over time; where sequence A and B drift apart.")
    with c2:
        st.page_link("pages/2_Saturation.py", label="Saturation", icon=":material/thermostat:")
        st.caption("Which units and gates pin at their limits, and whether that goes with mistakes.")
    with c3:
        st.page_link("pages/3_Contributions.py", label="Contributions", icon=":material/bar_chart:")
        st.caption("Which steps drove the final output, ranked, and how much to trust each ranking.")
