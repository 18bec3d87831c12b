"""Trajectories: how the hidden state evolves, and where sequence A and B part ways."""
import streamlit as st

from rnnviz_app import compute as cp
from rnnviz_app import context as cx
from rnnviz_app import messages as msg
from rnnviz_app import sequences as sq
from rnnviz_app import state_url as su
from rnnviz_app import widgets as wg
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import trajectories as tc

ctx = cx.loaded()
ds = ctx.data
st.title("Trajectories")
st.caption("Follow the network's memory step by step for two sequences, A and B, and see where they drift apart.")

layers, dirs, kinds = msg.guarded(sq.layer_options, ctx)
c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
MODES = ["By id", "By class", "Most different pair"]
c1.radio("Choose A and B", MODES, horizontal=True, key=su.widget_key("pick", MODES[0], MODES))
c2.selectbox("What to show", list(kinds), format_func=kinds.get, key=su.widget_key("kind", "h", list(kinds)),
             help="The hidden state h, or (gated cells) each gate and the LSTM cell state, unit by unit.")
c3.selectbox("Layer", layers, key=su.widget_key("layer", layers[-1], layers, int))
c4.selectbox("Direction", dirs, key=su.widget_key("dir", "fwd", dirs),
             format_func={"fwd": "forward", "bwd": "backward"}.get)
mode, kind, layer, direction = su.value("pick"), su.value("kind"), su.value("layer"), su.value("dir")

labels = msg.guarded(sq.sequence_labels, ctx)
ids = list(labels)
rows = sq.row_of(ctx)
if mode == "Most different pair":
    a, b, note = msg.guarded(sq.most_different_pair, ctx, kind, layer, direction)
    st.info(f"**A** = {labels[ids[a]]}, **B** = {labels[ids[b]]}. {note}")
else:
    y, names = sq.labels_of(ctx)
    picks = []
    cols = st.columns(2)
    for i, side in enumerate("ab"):
        pool = ids
        if mode == "By class" and y is not None:
            classes = list(range(len(names)))
            cols[i].selectbox(f"Class of {side.upper()}", classes, format_func=names.__getitem__,
                              key=su.widget_key("c" + side, min(i, len(classes) - 1), classes, int))
            pool = sq.ids_of_class(ctx, su.value("c" + side)) or ids
        cols[i].selectbox(f"Sequence {side.upper()}", pool, format_func=labels.get,
                          key=su.widget_key(side, pool[min(i, len(pool) - 1)], pool))
        picks.append(rows[su.value(side)])
    a, b = picks

H = msg.guarded(sq.states, ctx, kind, layer, direction)
lens = ds.lengths
ia, ib = ids[a], ids[b]
what = f"{kinds[kind].lower()}, layer {layer}, {'forward' if direction == 'fwd' else 'backward'}"


def show(build, *args, csv, name: str, key: tuple, **kw) -> None:
    """Chart (spec cached by content hash), its plain caption, and the data behind it as CSV."""
    st.caption(wg.chart(build, *args, key=(kind, layer, direction, name) + key, **kw))
    wg.csv_button(csv, "Download the data of this view (CSV)", f"{name}.csv", f"dl_{name}")


st.subheader("Units over time")
hm = msg.guarded(cp.compute, tj.heatmap_data, H, lens, seqs=[a, b], ids=ids, key=(kind, layer, direction, a, b))
show(tc.pair_heatmaps_chart, hm, ia, ib, titles=(f"A: {ia}", f"B: {ib}"), height=max(120, min(360, 8 * H.shape[2])),
     width=380, csv=hm.frame, name="heatmaps", key=(a, b))
st.caption(f"Showing: {what}. Drag the step slider under the chart to move the black frame through both sequences.")

st.subheader("Paths in one shared picture")
paths, _ = msg.guarded(cp.compute, tj.pca_paths, H, lens, ids=ids, key=("pca", kind, layer, direction))
show(tc.pca_paths_chart, paths, [ia, ib], width=640, height=380, csv=paths[paths["seq"].isin([ia, ib])], name="paths",
     key=(a, b))

st.subheader("How big the state is, and how fast it moves")
norms = msg.guarded(cp.compute, tj.state_norms, H, lens, ids=ids, key=("norms", kind, layer, direction))
show(tc.norms_chart, norms, [ia, ib], width=640, csv=norms[norms["seq"].isin([ia, ib])], name="norms", key=(a, b))

@st.fragment
def parting_view() -> None:
    """Its own fragment: changing the alignment reruns only this part of the page."""
    st.subheader("Where A and B part ways")
    st.radio("Line the two sequences up at their", ["start", "end"], horizontal=True,
             key=su.widget_key("align", "start", ["start", "end"]))
    align = su.value("align")
    dist = msg.guarded(cp.compute, tj.pair_distance, H[a], H[b], int(lens[a]), int(lens[b]), align=align,
                       key=("dist", kind, layer, direction, a, b))
    part = tj.parting_step(dist)
    show(tc.distance_chart, dist, part, rel_threshold=0.25, width=640, csv=dist, name="distance", key=(a, b, align))
    su.sync_url()


parting_view()
