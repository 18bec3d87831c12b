"""Saturation from an analysis bundle: shares over time by group and the group comparison."""
import streamlit as st

from rnnviz_app.inputs import bundle_sidebar as bs
from rnnviz_app.inputs.page_widgets import bound
from rnnviz_app.sources import bundle_view as bv
from rnnviz_app.sources.bundle_source import NOT_INCLUDED, threshold_message
from rnnviz_app.state import page_boot
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_saturation as ps
from rnnviz_app.views import widgets as wg
from rnnviz_app.views.page_findings import plain
from rnnviz_core.charts import saturation as sc

page_boot.require_entry_point()
dig, b = bs.current()
st.title("Saturation")
st.caption("A unit is saturated when its value sits at the edge of its range, where it can no longer change "
           "smoothly. Compare two groups of sequences: do the ones whose memory saturates fare worse?")
findings = st.container()  # filled at the end, from the same tables the charts and table show
st.info(msg.guarded(threshold_message, b))
thr = msg.guarded(float, b.manifest["analysis"]["threshold"])
options = bv.groupings(b)
if not options:
    st.info("This analysis bundle holds no grouping of its sequences to compare.")
    st.stop()
g1, g2, g3 = st.columns([2, 1, 1])
by = bound(g1.selectbox, "Group the sequences by", "by", "correct" if "correct" in options else next(iter(options)),
           list(options), format_func=options.get)
table = bv.group_table(b, by)   # one-value columns of every sequence; never the per-step lists
labels = table["_group"]
present = sorted(labels.unique(), key=str)
if len(present) < 2:
    st.warning(f"Grouping by '{plain(options[by])}' puts every sequence in one group; choose another grouping under "
               "'Group the sequences by'.")
    st.stop()
ga = bound(g2.selectbox, "Group A", "ga", present[0], present)
gb = bound(g3.selectbox, "Group B", "gb", present[-1], present)
if ga == gb:
    st.warning("Group A and group B are the same group; choose another one under 'Group B'.")
na, nb = int((labels == ga).sum()), int((labels == gb).sum())
st.caption(f"Grouped by {plain(options[by])}. Group A: **{plain(ga)}** ({na} sequences) · "
           f"Group B: **{plain(gb)}** ({nb} sequences)")

over = cmp = None  # the findings read what the sections drew
st.subheader("Saturation over time")
with msg.section("Saturation over time"):
    over = b.saturation_over_time(bv.stored_grouping(b, by))
    over = over[over["group"].astype(str).isin([ga, gb])].reset_index(drop=True)
    st.caption(wg.chart(sc.saturation_time_chart, over, threshold=thr, width=480, key=("over", by, ga, gb)))
    wg.csv_button(over, "Download the data of this view (CSV)", "over_time.csv", "dl_over_time")

st.subheader("Group A vs group B")
try:
    cmp = (built if (built := b.group_comparison(bv.stored_grouping(b, by), ga, gb)) is not None   # build-time table
           else ps.compare(table, "_group", ga, gb))
except Exception:  # noqa: BLE001 - a comparison that cannot be made is said, not raised
    st.info("These two groups cannot be compared here; choose other groups under 'Group A' and 'Group B'.")
else:
    st.dataframe(ps.comparison_view(cmp), hide_index=True, width="stretch")
    st.caption("One row per measure: the mean in group A and in group B, their difference, and whether the "
               "difference could be chance (a small p-value says it is unlikely to be; read how big the difference "
               "is first).")
    wg.csv_button(cmp, "Download the comparison (CSV)", "comparison.csv", "dl_cmp")
st.info(NOT_INCLUDED["resilience"])
with msg.section("The findings"):
    if over is not None:
        pf.show_findings(findings, "saturation_findings", cmp, over_time=over, by=by)
with st.expander("Compare with a second trained model (reproducibility)"):
    st.info(NOT_INCLUDED["second_model"])
