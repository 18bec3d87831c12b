"""Trajectories from an analysis bundle: paths and |h| of every sequence, full states of the sample."""
import numpy as np
import streamlit as st

from rnnviz_app.inputs import bundle_sidebar as bs
from rnnviz_app.inputs.page_widgets import bound
from rnnviz_app.sources import bundle_reads as br
from rnnviz_app.sources import bundle_view as bv
from rnnviz_app.state import page_boot
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import widgets as wg
from rnnviz_app.views.play import play_heatmaps, shared_domain
from rnnviz_core import trajectories as tj
from rnnviz_core.charts import trajectories as tc

page_boot.require_entry_point()
dig, b = bs.current()
st.title("Trajectories")
st.caption("Follow the network's memory step by step for two sequences, A and B, and see where they drift apart. "
           "From the analysis bundle: hidden state h, last layer, forward.")
findings = st.container()  # filled at the end, from the same frames the charts draw
a, bb = bv.pick_pair(b)
ids = bv.sample_ids(b)           # the sampled rows only: the table is never read whole
ia, ib = ids[a], ids[bb]
rows = [int(r) for r in b.sample_rows]
H = msg.guarded(bv.sample_states, b)
lens = bv.sample_lengths(b)
sa, sb = rows.index(a), rows.index(bb)

dist = norms = None  # the findings read what the sections drew

st.subheader("Units over time")
with msg.section("The units over time"):
    units = bv.unit_rows(dig, b)
    la, lb = int(lens[a]), int(lens[bb])
    pa, pb = H[sa][:, units], H[sb][:, units]
    st.caption(play_heatmaps(pa, pb, steps_a=la, steps_b=lb, colour_domain=shared_domain(pa, pb, la, lb),
                             key="bundle_play", titles=(f"A: {ia}", f"B: {ib}"), labels=[f"unit {u}" for u in units],
                             legend="hidden state h", rows="unit of the hidden state h"))
    hm = tj.heatmap_data(H, np.asarray([lens[r] for r in rows]), seqs=[sa, sb], ids=[ids[r] for r in rows])
    wg.csv_button(hm.frame, "Download the data of this view (CSV)", "heatmaps.csv", "dl_heatmaps")

st.subheader("Paths in one shared picture")
with msg.section("The paths"):
    cloud, cloud_words = br.cloud_rows(b)   # every sequence of a small bundle, else the sampled ones
    paths = br.paths(b, cloud, br.rows(b, cloud, ["id"])["id"].astype(str).tolist())
    st.caption(br.cloud_caption(wg.chart(tc.pca_paths_chart, paths, [ia, ib], width=470, height=380,
                                         key=("paths", a, bb)), cloud_words))
    wg.csv_button(paths[paths["seq"].isin([ia, ib])], "Download the data of this view (CSV)", "paths.csv",
                  "dl_paths")

st.subheader("How big the state is, and how fast it moves")
with msg.section("The size of the state"):
    norms = br.norms(b, [a, bb], [ia, ib])
    st.caption(wg.chart(tc.norms_chart, norms, [ia, ib], names=[f"A: {ia}", f"B: {ib}"], width=480,
                        key=("norms", a, bb)))
    wg.csv_button(norms[norms["seq"].isin([ia, ib])], "Download the data of this view (CSV)", "norms.csv",
                  "dl_norms")

st.subheader("Where A and B part ways")
align = bound(st.radio, "Line the two sequences up at their", "align", "start", ["start", "end"], horizontal=True)
with msg.section("Where A and B part ways"):
    dist = tj.pair_distance(H[sa], H[sb], int(lens[a]), int(lens[bb]), align=align)
    st.caption(wg.chart(tc.distance_chart, dist, None, rel_threshold=0.25, steps=int(b.max_length), width=590,
                        key=("dist", a, bb, align)))
    wg.csv_button(dist, "Download the data of this view (CSV)", "distance.csv", "dl_distance")
with msg.section("The findings"):
    if dist is not None and norms is not None:
        pf.show_findings(findings, "trajectory_findings", dist, rel_threshold=0.25, norms=norms, seqs=[ia, ib])
