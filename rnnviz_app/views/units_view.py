"""The Units page's two sections: one unit's entry (what drives it to its limit, with the input
pattern or words around those steps) and the table of every unit (drawn by ``pages/5_Units.py``;
the glue they read is :mod:`rnnviz_app.views.page_units`)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from rnnviz_app.state import state_url as su
from rnnviz_app.views import page_findings as pf
from rnnviz_app.views import page_units as pu
from rnnviz_app.views import widgets as wg


def one_unit(d, ds) -> None:
    """The entry of the unit chosen (a link's ``unit=`` or the button under a heatmap opens it)."""
    keys = list(d["key"])
    st.subheader("One unit")
    with wg.section("The unit's entry"):
        st.selectbox("Unit", keys, key=su.widget_key("unit", keys[0], keys),
                     help="Also opened from a link (unit=h 3) or from the button under a hidden-state heatmap.")
        unit = su.value("unit")
        e = d[d["key"] == unit].iloc[0]
        kind = pu.KIND_LABELS.get(str(e["kind"]), str(e["kind"]))
        st.markdown(f"**{pf.plain(unit)}** ({pf.plain(kind)}, layer {int(e['layer'])}): "
                    + pf.plain(e["responds_to"] or "it never reaches a limit on the loaded data."))
        c = st.columns(4)
        c[0].metric(f"At its limit ({pf.plain(e['limit'])})", f"{float(e['share_at_limit']):.1%}",
                    help="Share of all real steps the unit spends at this limit.")
        c[1].metric("Sequences reaching it", f"{int(e['n_sequences'])} of {len(ds.X)}")
        sel = e["selectivity"]
        c[2].metric("Class selectivity", "n/a" if pd.isna(sel) else f"{float(sel):.2f}",
                    help="0: no class preferred; 1: it reaches its limit in one class only.")
        corr = e["output_correlation"]
        c[3].metric("Output correlation", "n/a" if pd.isna(corr) else f"{float(corr):+.2f}",
                    help="Pearson's r over sequences between its last value and the output named below.")
        notes = []
        if isinstance(e["selective_for"], str) and e["selective_for"]:
            notes.append(f"It prefers the class {e['selective_for']}.")
        if isinstance(e["correlated_with"], str) and e["correlated_with"]:
            notes.append(f"Its last value goes most with the output {e['correlated_with']}.")
        if notes:
            st.text(" ".join(notes))
        words = pu.words_frame(e)
        pattern = pu.pattern_frame(e, ds.feature_names)
        if words is not None:
            st.caption("Words read at and just before the steps where this unit reaches its limit, most over-represented "
                       "first.")
            st.dataframe(words, hide_index=True, width="content")
        elif pattern is not None:
            st.caption("The mean input in the steps up to each event (in standard deviations from each feature's mean "
                       "over all real steps; 0 steps before = the event's own step).")
            st.dataframe(pattern.style.format(precision=2), hide_index=True, width="content")


def all_units(d) -> None:
    """Every unit and gate, filtered, sorted and paged, with the table as CSV."""
    st.subheader("All units")
    with wg.section("The table of units"):
        c1, c2, c3 = st.columns([2, 2, 2])
        kinds = sorted(d["kind"].unique(), key=lambda k: (k != "h", k))
        chosen = c1.multiselect("Show", kinds, default=kinds, format_func=lambda k: pu.KIND_LABELS.get(k, k),
                                key="units_kinds")
        text = c2.text_input("Filter", key="units_filter", placeholder="a word, feature or class",
                             help="Keep the units whose name, limit or description contains this text.")
        sort = c3.selectbox("Sort by", list(pu.SORTS), format_func=pu.SORTS.get, key="units_sort")
        rows = pu.table(d, chosen, text, sort)
        if not len(rows):
            st.info("No unit matches: clear the 'Filter' box or pick more under 'Show'.")
        else:
            pages = (len(rows) - 1) // pu.PAGE_ROWS + 1
            page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="units_page") if pages > 1 else 1
            part = rows.iloc[(int(page) - 1) * pu.PAGE_ROWS: int(page) * pu.PAGE_ROWS]
            st.dataframe(pu.shown(part), hide_index=True, width="stretch",
                         column_config={"How often (share of steps)": st.column_config.NumberColumn(format="percent"),
                                        "Class selectivity": st.column_config.NumberColumn(format="%.2f"),
                                        "Output correlation": st.column_config.NumberColumn(format="%+.2f")})
            st.caption(f"Units {(int(page) - 1) * pu.PAGE_ROWS + 1} to {(int(page) - 1) * pu.PAGE_ROWS + len(part)} of "
                       f"{len(rows)} shown ({len(d)} in all), sorted by {pu.SORTS[sort].lower()}.")
        wg.csv_button(lambda: pu.shown(rows), "Download the table (CSV)", "units.csv", "dl_units")
