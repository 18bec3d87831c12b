"""A minimal app around the play control, for tests/e2e/test_play_browser.py and bench/bench_play.py.

Query parameters: ta, tb (steps of A and B; default 18 and 5), units (default 8), words (a text of
that many words over A and B instead of the numeric input strips: "w0 w1 ..."), mode:
"component" (the play control) or "fragment" (the server-driven alternative it was measured
against: an ``st.fragment(run_every=...)`` that redraws the Altair heatmaps one step further).
"""
import sys
import time
from pathlib import Path

import numpy as np
import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rnnviz_app.views.play import panel, play_heatmaps, token_panel  # noqa: E402

q = st.query_params
units, ta, tb = int(q.get("units", 8)), int(q.get("ta", 18)), int(q.get("tb", 5))
n_words = int(q.get("words", 0))
if n_words:
    ta = tb = n_words
t = np.arange(max(ta, tb))[:, None]
u = np.arange(units)[None, :]
a = np.tanh(np.sin(0.4 * t + u))
b = np.tanh(np.cos(0.3 * t - u))

if q.get("mode", "component") == "component":
    strips = [panel(np.sin(0.5 * t[:n]), n, title=f"{s}: input", domain=(-1.0, 1.0), labels=["x"], cell_h=10,
                    strip=True) for s, n in (("A", ta), ("B", tb))]
    if n_words:
        strips = [token_panel([f"w{i}" for i in range(n_words)], title=f"{s}: words") for s in "AB"]
    st.caption(play_heatmaps(a, b, steps_a=ta, steps_b=tb, colour_domain=(-1.0, 1.0), key="play",
                             titles=("A: sequence 1", "B: sequence 2"), marks=((3, 7), ()), strips=strips))
else:
    import altair as alt

    from rnnviz_core.charts import trajectories as tc
    from rnnviz_core.trajectories import heatmap_data

    alt.data_transformers.disable_max_rows()  # as big as the component's data, to compare like with like
    H = np.stack([a, b])
    hm = heatmap_data(H, np.array([ta, tb]), ids=np.array(["A", "B"]), domain=(-1, 1))
    st.session_state.setdefault("step", 0)
    st.session_state.setdefault("playing", False)
    st.session_state.setdefault("ticks", [])

    @st.fragment(run_every=float(q.get("every", 0.1)))
    def loop() -> None:
        t0 = time.perf_counter()
        if st.session_state["playing"]:
            st.session_state["step"] = (st.session_state["step"] + 1) % max(ta, tb)
        spec = tc.pair_heatmaps_chart(hm, "A", "B").to_dict()

        def at_step(node):  # move the chart's step param to the server's step
            if isinstance(node, dict):
                if node.get("name") == tc.STEP_PARAM and "value" in node:
                    node["value"] = st.session_state["step"]
                for v in node.values():
                    at_step(v)
            elif isinstance(node, list):
                for v in node:
                    at_step(v)

        at_step(spec)
        st.vega_lite_chart(spec, theme=None)
        st.caption(f"frag-step {st.session_state['step']}")
        st.session_state["ticks"].append(time.perf_counter() - t0)

    if st.button("Play / Stop"):
        st.session_state["playing"] = not st.session_state["playing"]
    loop()
st.button("Rerun")
