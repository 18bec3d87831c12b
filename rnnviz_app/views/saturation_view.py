"""The Saturation page's body for any source (a live model, or an analysis bundle with its stored
shares): the controls and groups, saturation over time, the units and gates, group A against group
B, resilience, the findings and the second model. Drawn by ``pages/2_Saturation.py``."""
from __future__ import annotations

import streamlit as st

from rnnviz_app.sources import second_model as m2
from rnnviz_app.views import messages as msg
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_groups as pg
from rnnviz_app.views import page_saturation as ps
from rnnviz_app.views import widgets as wg
from rnnviz_core.analyses.tables import comparison_table
from rnnviz_core.charts import saturation as sc


def body(src) -> None:
    """Every section of the page for the source ``src`` (see :mod:`rnnviz_app.sources.source`)."""
    findings = st.container()

    s = pg.controls(src)
    if not src.bundle:
        ps.spread_section(src.ctx, s)
    g = pg.groups(src, s)
    window = wg.step_window(pg.n_steps(src, g), "sat")

    st.subheader("Saturation over time")
    over = None
    with wg.section("Saturation over time"):
        over = pg.over_time(src, s, g)
        st.caption(wg.chart(sc.saturation_time_chart, over, threshold=s.thr, width=480, window=window,
                            key=g.key + (window, "over_time")))
        wg.csv_button(over, "Download the data of this view (CSV)", "over_time.csv", "dl_over_time")

    st.subheader("Which units saturate, and when")
    if src.cannot("unit_saturation") is None:
        with wg.section("The per-unit saturation heatmaps"):
            ps.unit_section(src.ctx, s, g, window)
    else:
        st.info(src.cannot("unit_saturation"))

    if s.gated:
        st.subheader("Gates: nearly shut or nearly open?")
        ps.gate_section(src.ctx, s, g)

    st.subheader("Group A vs group B")
    res = None if src.cannot("resilience") else msg.guarded(ps.resilience_results, src.ctx)
    cmp = None
    with wg.section("The comparison of group A and group B"):
        cmp = pg.comparison(src, g)
        shown = comparison_table(cmp)   # the core's table: the corrected p-value the findings read
        st.dataframe(shown, hide_index=True, width="stretch")
        st.caption(shown.attrs.get("caption", ""))
        wg.csv_button(cmp, "Download the comparison (CSV)", "comparison.csv", "dl_cmp")
    st.subheader("Resilience to noisy or missing inputs")
    if res is None:
        st.info(src.cannot("resilience"))
    else:
        ps.resilience_section(src.ctx, g, res)
    pf.show_findings(findings, "saturation_findings", cmp, over_time=over, suggestion=s.hint, by=g.by)

    with st.expander("Compare with a second trained model (reproducibility)"):
        if src.cannot("second_model"):
            st.info(src.cannot("second_model"))
        else:
            m2.second_model_section(src.ctx, g.by, g.labels)
