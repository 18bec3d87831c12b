"""Trajectories: how the hidden state evolves, and where sequence A and B part ways."""
import altair as alt
import pandas as pd
import streamlit as st

import app_support as sup
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import common as ch

ctx = sup.loaded()
ds = ctx.data
st.title("Trajectories")
st.caption("Follow the network's memory step by step for two sequences, A and B, and see where they drift apart.")

layers, dirs, kinds = sup.guarded(sup.layer_options, ctx)
c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
MODES = ["By id", "By class", "Most different pair"]
c1.radio("Choose A and B", MODES, horizontal=True, key=sup.widget_key("pick", MODES[0], MODES))
c2.selectbox("What to show", list(kinds), format_func=kinds.get, key=sup.widget_key("kind", "h", list(kinds)),
             help="The hidden state h, or (gated cells) each gate and the LSTM cell state, unit by unit.")
c3.selectbox("Layer", layers, key=sup.widget_key("layer", layers[-1], layers, int))
c4.selectbox("Direction", dirs, key=sup.widget_key("dir", "fwd", dirs),
             format_func={"fwd": "forward", "bwd": "backward"}.get)
mode, kind, layer, direction = sup.value("pick"), sup.value("kind"), sup.value("layer"), sup.value("dir")

labels = sup.guarded(sup.sequence_labels, ctx)
ids = list(labels)
rows = sup.row_of(ctx)
if mode == "Most different pair":
    a, b, note = sup.guarded(sup.most_different_pair, ctx, kind, layer, direction)
    st.info(f"**A** = {labels[ids[a]]}, **B** = {labels[ids[b]]}. {note}")
else:
    y, names = sup.labels_of(ctx)
    picks = []
    cols = st.columns(2)
    for i, side in enumerate("ab"):
        pool = ids
        if mode == "By class" and y is not None:
            classes = list(range(len(names)))
            cols[i].selectbox(f"Class of {side.upper()}", classes, format_func=names.__getitem__,
                              key=sup.widget_key("c" + side, min(i, len(classes) - 1), classes, int))
            pool = sup.ids_of_class(ctx, sup.value("c" + side)) or ids
        cols[i].selectbox(f"Sequence {side.upper()}", pool, format_func=labels.get,
                          key=sup.widget_key(side, pool[min(i, len(pool) - 1)], pool))
        picks.append(rows[sup.value(side)])
    a, b = picks

H = sup.guarded(sup.states, ctx, kind, layer, direction)
lens = ds.lengths
name_a, name_b = f"A: {ids[a]}", f"B: {ids[b]}"
pair = [name_a, name_b]

# ---- heatmaps, one colour scale
st.subheader("Units over time")
hm = sup.guarded(sup.compute, tj.heatmap_data, H, lens, seqs=[a, b], ids=ids, key=(kind, layer, direction, a, b))
scrub = ch.time_scrubber(int(max(lens[a], lens[b])))
panels = [ch.heatmap(hm.frame[hm.frame["seq"] == ids[r]], hm.domain, title=t, color_title=kinds[kind],
                     scrub=scrub, height=max(120, min(360, 8 * H.shape[2])), width=420, legend=(r == b))
          for r, t in ((a, name_a), (b, name_b))]
st.altair_chart(alt.hconcat(*panels).resolve_scale(color="shared").add_params(scrub), width="content")
st.caption(f"Each row is one unit of {kinds[kind].lower()} (layer {layer}, {direction}); each column a time step. "
           "Both panels share one colour scale, so the same colour means the same value in A and B. "
           "Drag the time-step slider to move the black line through both sequences.")
sup.csv_button(hm.frame, "Download heatmap data (CSV)", "heatmaps.csv", "dl_hm")

# ---- PCA paths
st.subheader("Paths in a shared picture")
paths, _ = sup.guarded(sup.compute, tj.pca_paths, H, lens, ids=ids, key=("pca", kind, layer, direction))
ev = paths.attrs.get("explained_variance_ratio", [0, 0])
cloud = sup.cloud_sample(paths)
ab = paths[paths["seq"].isin([ids[a], ids[b]])].assign(label=lambda d: d["seq"].map({ids[a]: name_a, ids[b]: name_b}))
base_x, base_y = alt.X("pc1:Q", title=f"PC 1 ({ev[0]:.0%} of variance)"), alt.Y("pc2:Q", title=f"PC 2 ({ev[1]:.0%})")
chart = alt.layer(
    alt.Chart(cloud).mark_circle(size=8, color="#bbbbbb", opacity=0.25).encode(x=base_x, y=base_y),
    alt.Chart(ab).mark_line(strokeWidth=1.5).encode(x=base_x, y=base_y, order="step:Q",
                                                     color=alt.Color("label:N", scale=ch.pair_scale(pair), title=None)),
    alt.Chart(ab).mark_circle(size=45).encode(x=base_x, y=base_y, color=alt.Color("step:Q", scale=alt.Scale(scheme="viridis"), title="step"),
                                               tooltip=["label", "step", alt.Tooltip("pc1", format=".3f"), alt.Tooltip("pc2", format=".3f")]),
).resolve_scale(color="independent").properties(height=380)
st.altair_chart(chart, width="stretch")
st.caption("Every grey dot is one step of one sequence in the data; the two lines are A and B, their dots coloured "
           "from dark (first step) to yellow (last). All sequences share one PCA basis, so positions are comparable.")
sup.csv_button(ab, "Download the A/B paths (CSV)", "paths.csv", "dl_paths")

# ---- size and speed of the state
st.subheader("How big the state is, and how fast it moves")
norms = sup.guarded(sup.compute, tj.state_norms, H, lens, ids=ids, key=("norms", kind, layer, direction))
nab = norms[norms["seq"].isin([ids[a], ids[b]])].assign(label=lambda d: d["seq"].map({ids[a]: name_a, ids[b]: name_b}))
plateaus = nab.groupby("label", as_index=False)["plateau_step"].first().query("plateau_step >= 0")
marks = plateaus.rename(columns={"plateau_step": "step"}).assign(text="plateau")
left, right = st.columns(2)
left.altair_chart(alt.layer(ch.curves_over_time(nab, "sum_abs", y_title="sum of |h| over units", labels=pair),
                            ch.step_rules(marks, labels=pair)), width="stretch")
right.altair_chart(ch.curves_over_time(nab, "step_change", y_title="change from the previous step", labels=pair),
                   width="stretch")
st.caption("Left: the total size of the state at each step; a dashed line marks where it stops changing (its plateau). "
           "Right: how far the state moved since the step before; near zero means the network has settled.")
sup.csv_button(nab, "Download size and speed (CSV)", "norms.csv", "dl_norms")

# ---- A vs B distance
st.subheader("Where A and B part ways")
align = st.radio("Line the sequences up at", ["start", "end"], horizontal=True, key=sup.widget_key("align", "start", ["start", "end"]))
dist = sup.guarded(sup.compute, tj.pair_distance, H[a], H[b], int(lens[a]), int(lens[b]), align=sup.value("align"),
                   key=("dist", kind, layer, direction, a, b))
part = tj.parting_step(dist)
d_marks = pd.DataFrame({"step": [part], "label": ["A vs B"], "text": ["parting"]})[lambda d: d["step"] >= 0]
st.altair_chart(alt.layer(ch.curves_over_time(dist.assign(label="A vs B"), "distance", y_title="distance between A and B"),
                          ch.step_rules(d_marks)), width="stretch")
st.caption(("A and B part at step %d: from there on their states stay clearly apart. " % part if part >= 0 else
            "A and B never clearly part: their states stay close all along. ") +
           "The line is the straight-line distance between the two states at each aligned step.")
sup.csv_button(dist, "Download the distance (CSV)", "distance.csv", "dl_dist")
