"""Saturation: which units and gates pin at their limits, and does it matter?"""
import streamlit as st

from rnnviz_app import compute as cp
from rnnviz_app import context as cx
from rnnviz_app import messages as msg
from rnnviz_app import page_saturation as ps
from rnnviz_app import second_model as m2
from rnnviz_app import sequences as sq
from rnnviz_app import state_url as su
from rnnviz_app import widgets as wg
from rnnviz_core import saturation as sa
from rnnviz_core.charts import saturation as sc

ctx = cx.loaded()
ds = ctx.data
st.title("Saturation")
st.caption("A unit is saturated when its value sits at the edge of its range, where it can no longer change "
           "smoothly. Compare two groups of sequences: do the ones whose memory saturates fare worse?")

layers, dirs, kinds = msg.guarded(sq.layer_options, ctx)
c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
c1.slider("Saturated when |value| is at least", 0.5, 0.99, step=0.01, key=su.widget_key("thr", 0.9, cast=float),
          help="Hidden states of GRU/LSTM/tanh units lie between -1 and 1.")
c2.slider("Gate nearly shut below / nearly open above", 0.0, 1.0, step=0.01,
          key=su.widget_key("gates", (0.1, 0.9), cast=lambda v: tuple(float(x) for x in v.strip("()").split(","))))
c3.selectbox("Layer", layers, key=su.widget_key("layer", layers[-1], layers, int))
c4.selectbox("Direction", dirs, key=su.widget_key("dir", "fwd", dirs), format_func={"fwd": "forward", "bwd": "backward"}.get)
thr, (low, high), layer, direction = su.value("thr"), su.value("gates"), su.value("layer"), su.value("dir")
if not low < high:
    st.warning("The 'nearly shut' limit must be below the 'nearly open' limit; move the two handles apart.")
    st.stop()

table = msg.guarded(ps.saturation_table, ctx, layer, direction, thr, low, high)
options = ps.groupings(ctx, table)
g1, g2, g3 = st.columns([2, 1, 1])
g1.selectbox("Group the sequences by", list(options), format_func=options.get,
             key=su.widget_key("by", next(k for k in ("correct", *options) if k in options), list(options)))
by = su.value("by")
labels = msg.guarded(ps.group_labels, table, by)
present = list(dict.fromkeys(sorted(labels.unique(), key=str)))
if len(present) < 2:
    st.warning("This grouping puts every sequence in one group; choose another grouping or other thresholds.")
    st.stop()
g2.selectbox("Group A", present, key=su.widget_key("ga", present[0], present))
g3.selectbox("Group B", present, key=su.widget_key("gb", present[-1], present))
ga, gb = su.value("ga"), su.value("gb")
mask_a, mask_b = (labels == ga).to_numpy(), (labels == gb).to_numpy()
st.caption(f"Group A: **{ga}** ({mask_a.sum()} sequences) · Group B: **{gb}** ({mask_b.sum()} sequences)")

H = msg.guarded(sq.states, ctx, "h", layer, direction)
key = (layer, direction, thr, low, high, by, ga, gb)


def show(build, *args, csv, name, **kw):
    st.caption(wg.chart(build, *args, key=key + (name,), **kw))
    wg.csv_button(csv, "Download the data of this view (CSV)", f"{name}.csv", f"dl_{name}")


st.subheader("Saturation over time")
sub = labels.where(labels.isin([ga, gb]))
over = msg.guarded(cp.compute, sa.saturation_over_time, H[mask_a | mask_b], ds.lengths[mask_a | mask_b],
                   groups=sub[mask_a | mask_b].to_numpy(), threshold=thr, key=key)
show(sc.saturation_time_chart, over, threshold=thr, width=640, csv=over, name="over_time")

st.subheader("Which units saturate, and when")
cols = st.columns(2)
for col, g, m in ((cols[0], ga, mask_a), (cols[1], gb, mask_b)):
    with col:
        st.markdown(f"**{g}**")
        ut = msg.guarded(cp.compute, sa.unit_saturation_over_time, H[m], ds.lengths[m], threshold=thr, key=key + (g,))
        show(sc.unit_saturation_chart, ut, threshold=thr, width=330, height=max(120, min(320, 8 * H.shape[2])),
             csv=ut, name=f"units_{'ab'[g == gb]}")

if kinds.keys() - {"h", "c"}:
    st.subheader("Gates: nearly shut or nearly open?")
    cols = st.columns(2)
    for col, g, m in ((cols[0], ga, mask_a), (cols[1], gb, mask_b)):
        with col:
            st.markdown(f"**{g}**")
            gs = msg.guarded(ps.gate_scatter_data, ctx, layer, direction, m, low, high, key=key + (g,))
            show(sc.gate_scatter_chart, gs, low=low, high=high, csv=gs, name=f"gates_{'ab'[g == gb]}")

st.subheader("Group A vs group B")
res = msg.guarded(ps.resilience_results, ctx)
full = ps.with_resilience(table, res)
cmp = msg.guarded(cp.compute, ps.compare, full, by, ga, gb, key=key + ("cmp",))
st.dataframe(ps.comparison_view(cmp), hide_index=True, width="stretch",
             column_config={c: st.column_config.NumberColumn(format="%.3g") for c in ("A", "B", "A − B", "p-value", "effect size")})
st.caption("One row per measure: the mean in group A and in group B, their difference, and a test of whether "
           "the difference could be chance (small p-value: unlikely to be chance; read the effect size first, "
           "since with many sequences tiny differences look significant). Output change: how much the answer moves "
           "when the input gets noise or loses steps.")
wg.csv_button(cmp, "Download the comparison (CSV)", "comparison.csv", "dl_cmp")
rs = msg.guarded(cp.compute, ps.resilience_by_group, res, table, labels.to_numpy(), ga, gb, key=key + ("res",))
show(sc.resilience_chart, rs, width=640, csv=rs, name="resilience")

with st.expander("Compare with a second trained model (reproducibility)"):
    m2.second_model_section(ctx, by, labels)
