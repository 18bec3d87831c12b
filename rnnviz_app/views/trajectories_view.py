"""The Trajectories page's body for any source (a live model or an analysis bundle): the
findings, the layer/kind choice, A and B, the play control, the paths, the state sizes and where A
and B part ways. Drawn by ``pages/1_Trajectories.py`` as one fragment."""
from __future__ import annotations

import streamlit as st

from rnnviz_app.sources import bundle_reads as br
from rnnviz_app.sources import source as so
from rnnviz_app.state import compute as cp
from rnnviz_app.state import state_url as su
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_trajectories as pt
from rnnviz_app.views import page_units as pu
from rnnviz_app.views import widgets as wg
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import trajectories as tc


def body() -> None:
    """Findings, the A/B choice and every view of the pair, from the source (a live model or a bundle)."""
    src = so.current()
    findings = st.container()

    layers, dirs, kinds = msg.guarded(src.layer_options)
    c1, c2, c3 = st.columns([2, 1, 1])
    c1.selectbox("What to show", list(kinds), format_func=kinds.get, key=su.widget_key("kind", "h", list(kinds)),
                 help="The hidden state h, or (gated cells) each gate and the LSTM cell state, unit by unit.")
    c2.selectbox("Layer", layers, key=su.widget_key("layer", layers[-1], layers, int))
    c3.selectbox("Direction", dirs, key=su.widget_key("dir", "fwd", dirs),
                 format_func={"fwd": "forward", "bwd": "backward"}.get)
    kind, layer, direction = su.value("kind"), su.value("layer"), su.value("dir")

    labels = msg.guarded(src.labels)
    a, b = src.pick_pair(labels, kind=kind, layer=layer, direction=direction)
    H = msg.guarded(src.states, kind, layer, direction)
    lens, ids = src.lengths, src.ids
    ia, ib = ids[a], ids[b]
    view_key = (kind, layer, direction)

    window = wg.step_window(int(max(lens[a], lens[b])), "traj")
    words = [src.words_of(a), src.words_of(b)] if src.is_tokens else None  # a text model: tooltips name the word

    def show(build, *args, csv, name: str, key: tuple, win=window, cloud=None, **kw) -> None:
        """Chart (spec cached by content hash), its plain caption, and the data behind it as CSV."""
        st.caption(br.cloud_caption(wg.chart(build, *args, key=view_key + (name, win) + key, window=win, **kw), cloud))
        wg.csv_button(csv, "Download the data of this view (CSV)", f"{name}.csv", f"dl_{name}")

    st.subheader("Units over time")
    with wg.section("The play control"):
        order, top = pt.unit_choice(H.shape[2])
        st.caption(pt.play_view(src, H, a, b, ids, kind, kinds[kind], order, top, key=view_key + (order, top),
                                window=window))
        if layer == layers[-1] and kind in pu.KIND_LABELS and not src.cannot("units"):  # the Units page lists the last layer's units
            pu.unit_link(H.shape[2], "traj", kind=kind, backward=direction == "bwd")
        # the full matrix of A and B (millions of rows on long sequences) is built only when asked for
        wg.csv_button(lambda: tj.heatmap_data(H, lens, seqs=[a, b], ids=ids).frame,
                      "Download the data of this view (CSV)", "heatmaps.csv", "dl_heatmaps")

    st.subheader("Paths in one shared picture")
    why = src.cannot_view(kind, layer, direction)   # a bundle stores every sequence's h, last layer, forward
    if why:
        st.info(why)
    with wg.section("The paths chart"):
        if not why:
            paths, cloud = src.paths(H, view_key, [ia, ib])
            show(tc.pca_paths_chart, paths, [ia, ib], width=470, height=380, csv=paths[paths["seq"].isin([ia, ib])],
                 name="paths", key=(a, b), words=words, cloud=cloud)

    st.subheader("How big the state is, and how fast it moves")
    norms = None
    with wg.section("The state-size chart"):
        if not why:
            norms = src.norms(H, view_key, [a, b])
            show(tc.norms_chart, norms, [ia, ib], names=[f"A: {ia}", f"B: {ib}"], width=480,
                 csv=norms[norms["seq"].isin([ia, ib])], name="norms", key=(a, b), words=words)

    def parting_view() -> None:
        """The distance chart, and the findings at the top of the page computed from the same frame."""
        st.subheader("Where A and B part ways")
        st.radio("Line the two sequences up at their", ["start", "end"], horizontal=True,
                 key=su.widget_key("align", "start", ["start", "end"]))
        align = su.value("align")
        with wg.section("The distance chart"):
            dist = cp.compute(tj.pair_distance, H[a], H[b], int(lens[a]), int(lens[b]), align=align,
                              key=("dist",) + view_key + (a, b))
            # aligned at the end, steps count back from the last one: the window (counted from the start)
            # does not apply, and the whole pair is drawn
            show(tc.distance_chart, dist, None, rel_threshold=0.25, steps=int(lens.max()), width=590, csv=dist,
                 name="distance", key=(a, b, align), win=window if align == "start" else None, words=words)
            pf.show_findings(findings, "trajectory_findings", dist, rel_threshold=0.25, norms=norms, seqs=[ia, ib],
                             words=(src.words_of(a), src.words_of(b)))

    parting_view()
    su.sync_url()
