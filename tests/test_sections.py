"""A failing page section says why in its place and the page goes on (issue 18)."""
from streamlit.testing.v1 import AppTest


def _app():
    import streamlit as st

    from rnnviz_app import widgets as wg
    from rnnviz_core.errors import InputError

    with wg.section("The first chart"):
        raise InputError("Sequence 'x' is not in this heatmap data.", field="features")
    with wg.section("The second chart"):
        raise ValueError("a bug")
    with wg.section("The third chart"):
        st.write("third drawn")
    with wg.section("A stopped section"):
        st.write("before stop")
        st.stop()
    st.write("never reached")


def test_failures_become_sentences_and_the_page_goes_on():
    at = AppTest.from_function(_app).run(timeout=60)
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert warnings[0].startswith("The first chart could not be drawn: Sequence 'x' is not in this heatmap data.")
    assert "'Feature columns'" in warnings[0] and "Traceback" not in " ".join(warnings)
    assert warnings[1].startswith("The second chart could not be drawn for this choice (ValueError)")
    text = [m.value for m in at.markdown]
    assert "third drawn" in text and "before stop" in text
    assert "never reached" not in text          # st.stop() inside a section still stops the page
