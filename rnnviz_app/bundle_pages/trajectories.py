"""Trajectories from an analysis bundle: paths and |h| of every sequence, full states of the sample."""
import streamlit as st

from rnnviz_app import bundle_sidebar as bs
from rnnviz_app import bundle_view as bv
from rnnviz_app import messages as msg
from rnnviz_app import page_boot
from rnnviz_app import widgets as wg
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import trajectories as tc

page_boot.require_entry_point()
dig, b = bs.current()
st.title("Trajectories")
st.caption("Follow the network's memory step by step for two sequences, A and B, and see where they drift apart. "
           "From the analysis bundle: hidden state h, last layer, forward.")
a, bb = bv.pick_pair(b)
ids = [str(i) for i in b.ids]
ia, ib = ids[a], ids[bb]
rows = [int(r) for r in b.sample_rows]
H = msg.guarded(bv.sample_states, b)
lens = b.lengths
sa, sb = rows.index(a), rows.index(bb)

st.subheader("Units over time")
hm = tj.heatmap_data(H, lens[rows], seqs=[sa, sb], ids=[ids[r] for r in rows])
st.caption(bv.chart(dig, tc.pair_heatmaps_chart, hm, ia, ib, key=("hm", a, bb)))
wg.csv_button(hm.frame, "Download the data of this view (CSV)", "heatmaps.csv", "dl_heatmaps")

st.subheader("Paths in one shared picture")
paths = msg.guarded(b.paths)
st.caption(bv.chart(dig, tc.pca_paths_chart, paths, [ia, ib], width=640, height=380, key=("paths", a, bb)))
wg.csv_button(paths[paths["seq"].isin([ia, ib])], "Download the data of this view (CSV)", "paths.csv", "dl_paths")

st.subheader("How big the state is, and how fast it moves")
norms = msg.guarded(b.norms)
st.caption(bv.chart(dig, tc.norms_chart, norms, [ia, ib], width=640, key=("norms", a, bb)))
wg.csv_button(norms[norms["seq"].isin([ia, ib])], "Download the data of this view (CSV)", "norms.csv", "dl_norms")

st.subheader("Where A and B part ways")
align = st.radio("Line the two sequences up at their", ["start", "end"], horizontal=True, key="bundle_align")
dist = tj.pair_distance(H[sa], H[sb], int(lens[a]), int(lens[bb]), align=align)
st.caption(bv.chart(dig, tc.distance_chart, dist, None, rel_threshold=0.25, width=640, key=("dist", a, bb, align)))
wg.csv_button(dist, "Download the data of this view (CSV)", "distance.csv", "dl_distance")
