"""Saturation: which units and gates pin at their limits, and does it matter?"""
import streamlit as st

from rnnviz_app.inputs.page_widgets import bound
from rnnviz_app.sources import context as cx
from rnnviz_app.sources import second_model as m2
from rnnviz_app.sources import sequences as sq
from rnnviz_app.state import compute as cp
from rnnviz_app.state import page_boot
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_saturation as ps
from rnnviz_app.views import widgets as wg
from rnnviz_app.views.text import md_escape
from rnnviz_core import saturation as sa
from rnnviz_core import unit_saturation as us
from rnnviz_core.charts import saturation as sc

page_boot.require_entry_point()
ctx = cx.loaded()
ds = ctx.data
st.title("Saturation")
st.caption("A unit is saturated when its value sits at the edge of its range, where it can no longer change "
           "smoothly. Compare two groups of sequences: do the ones whose memory saturates fare worse?")
findings = st.container()

layers, dirs, kinds = msg.guarded(sq.layer_options, ctx)
c4, c5, _ = st.columns([1, 1.4, 3.6])  # wide enough for "backward" and a two-digit layer
c1, c2, c3 = st.columns([3, 2, 2])
layer = bound(c4.selectbox, "Layer", "layer", layers[-1], layers, int)
direction = bound(c5.selectbox, "Direction", "dir", "fwd", dirs, format_func={"fwd": "forward", "bwd": "backward"}.get)
H = msg.guarded(sq.states, ctx, "h", layer, direction)
hint = msg.guarded(cp.compute, sa.suggest_threshold, H, ds.lengths, key=("suggest", layer, direction))
thr = bound(c1.slider, "Saturated when |value| is at least", "thr", hint.threshold, cast=float,
            min_value=0.5, max_value=0.99, step=0.01,
            help="Hidden states of GRU/LSTM/tanh units lie between -1 and 1. The start value shows something on "
                 "this model; the bars below show how the values are spread.")
gated = bool(kinds.keys() - {"h", "c"})
low = bound(c2.slider, "Gate nearly shut below", "shut", 0.1, cast=float, min_value=0.0, max_value=0.49, step=0.01,
            disabled=not gated)
high = bound(c3.slider, "Gate nearly open above", "open", 0.9, cast=float, min_value=0.51, max_value=1.0, step=0.01,
             disabled=not gated)
if hint.message:
    st.info(pf.plain(hint.message))

with st.expander("How the values are spread (choose the thresholds by eye)", expanded=hint.share < 0.01):
    dist = msg.guarded(ps.distribution, ctx, layer, direction, thr, low, high)
    st.caption(wg.chart(sc.distribution_chart, dist, threshold=thr, low=low if gated else None, width=235,
                        high=high if gated else None, key=(layer, direction, thr, low, high, "dist")))

table = msg.guarded(ps.saturation_table, ctx, layer, direction, thr, low, high)
options = ps.groupings(ctx, table)
g1, g2, g3 = st.columns([2, 1, 1])
by = bound(g1.selectbox, "Group the sequences by", "by", ps.default_grouping(table, options), list(options),
           format_func=options.get)
labels = msg.guarded(ps.group_labels, table, by)
present = list(dict.fromkeys(sorted(labels.unique(), key=str)))
if len(present) < 2:
    st.warning(f"Grouping by '{md_escape(options[by])}' puts every sequence in one group; choose another grouping under "
               "'Group the sequences by' or move the thresholds.")
    st.stop()
ga = bound(g2.selectbox, "Group A", "ga", present[0], present)
gb = bound(g3.selectbox, "Group B", "gb", present[-1], present)
if ga == gb:
    st.warning("Group A and group B are the same group; choose another one under 'Group B'.")
mask_a, mask_b = (labels == ga).to_numpy(), (labels == gb).to_numpy()
st.caption(f"Grouped by {pf.plain(options[by])}. Group A: **{pf.plain(ga)}** ({mask_a.sum()} sequences) · "
           f"Group B: **{pf.plain(gb)}** ({mask_b.sum()} sequences)")
key = (layer, direction, thr, low, high, by, ga, gb)


def show(build, *args, csv, name, **kw):
    st.caption(wg.chart(build, *args, key=key + (name,), **kw))
    wg.csv_button(csv, "Download the data of this view (CSV)", f"{name}.csv", f"dl_{name}")


window = wg.step_window(int(ds.lengths[mask_a | mask_b].max()), "sat")
wkey = key + (window,)
st.subheader("Saturation over time")
over = None
with wg.section("Saturation over time"):
    sub = labels.where(labels.isin([ga, gb]))
    # the groups' rows are read in place (a copy of their states cost seconds per rerun at 1,000 x 128)
    over = cp.compute(sa.saturation_over_time, H, ds.lengths, groups=sub.to_numpy(), threshold=thr,
                      rows=mask_a | mask_b, key=key)
    st.caption(wg.chart(sc.saturation_time_chart, over, threshold=thr, width=480, window=window, key=wkey + ("over_time",)))
    wg.csv_button(over, "Download the data of this view (CSV)", "over_time.csv", "dl_over_time")

st.subheader("Which units saturate, and when")
with wg.section("The per-unit saturation heatmaps"):
    # [T, H] shares per group; only the drawn units' rows become a frame (all of them only for the CSV)
    shares = {side: cp.compute(us.unit_saturation_shares, H, ds.lengths, m, threshold=thr, key=key + (side,))
              for m, side in ((mask_a, "a"), (mask_b, "b"))}
    top = max((s.top or 0.0 for s in shares.values()), default=0.0) or None  # one colour scale, to the highest share
    n_steps = max(s.n_steps for s in shares.values())
    drawn_units = cp.compute(us.shared_saturated_units, *shares.values(), n_steps=n_steps, window=window,
                             key=wkey + ("shared_units",))  # the same rows for A and B
    units = {side: s.frame(drawn_units) for side, s in shares.items()}  # the drawn units' rows only
    # one above the other on one step scale (side by side they overflowed half a 1,100 px window)
    for g, side in ((ga, "a"), (gb, "b")):
        st.markdown(f"**Group {side.upper()}: {pf.plain(g)}**")
        st.caption(wg.chart(sc.unit_saturation_chart, units[side], threshold=thr, width=550, top=top, n_steps=n_steps,
                            units=drawn_units, window=window,
                            height=max(120, min(320, 8 * len(drawn_units or [0]))), key=wkey + (f"units_{side}",)))
        wg.csv_button(shares[side].frame, "Download the data of this view (CSV)", f"units_{side}.csv", f"dl_units_{side}")

if gated:
    st.subheader("Gates: nearly shut or nearly open?")
    cols = st.columns(2)
    for col, g, m, side in ((cols[0], ga, mask_a, "a"), (cols[1], gb, mask_b, "b")):
        with col, wg.section(f"Group {side.upper()}'s gate chart"):
            st.markdown(f"**Group {side.upper()}: {pf.plain(g)}**")
            gs = ps.gate_scatter_data(ctx, layer, direction, m, low, high, key=key + (side,))
            show(sc.gate_scatter_chart, gs, low=low, high=high, csv=gs, name=f"gates_{side}")

st.subheader("Group A vs group B")
res = None if ds.is_tokens else msg.guarded(ps.resilience_results, ctx)
full = table if res is None else ps.with_resilience(table, res)
cmp = msg.guarded(cp.compute, ps.compare, full, by, ga, gb, key=key + ("cmp",))
st.dataframe(ps.comparison_view(cmp), hide_index=True, width="stretch")
st.caption("One row per measure: the mean in group A and in group B, their difference, and whether the difference "
           "could be chance (a small p-value says it is unlikely to be; read how big the difference is first, since "
           "with many sequences tiny differences look certain)."
           + ("" if res is None else " Output change: how much the answer moves when the input gets noise or loses steps."))
wg.csv_button(cmp, "Download the comparison (CSV)", "comparison.csv", "dl_cmp")
if res is None:
    st.caption("Resilience to noisy or missing inputs is not measured here: adding noise to words has no meaning.")
else:
    note = ps.resilience_note(res, len(ds.X))
    if note:
        st.caption(note)
    rs = msg.guarded(cp.compute, ps.resilience_by_group, res, table, labels.to_numpy(), ga, gb, key=key + ("res",))
    show(sc.resilience_chart, rs, width=520, csv=rs, name="resilience")
pf.show_findings(findings, "saturation_findings", cmp, over_time=over, suggestion=hint, by=by)

with st.expander("Compare with a second trained model (reproducibility)"):
    m2.second_model_section(ctx, by, labels)
