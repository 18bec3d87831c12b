"""A failing page section says why in its place and the page goes on (issue 18)."""
import re

from streamlit.testing.v1 import AppTest


def _app():
    import streamlit as st

    from rnnviz_app.views import widgets as wg
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
    # shown as text: Markdown characters arrive backslash-escaped; read them as a person sees them
    warnings = [re.sub(r"\\(.)", r"\1", w.value) for w in at.warning]
    assert warnings[0].startswith("The first chart could not be drawn: Sequence 'x' is not in this heatmap data.")
    assert "'Feature columns'" in warnings[0] and "Traceback" not in " ".join(warnings)
    assert warnings[1].startswith("The second chart could not be drawn for this choice (ValueError)")
    text = [m.value for m in at.markdown]
    assert "third drawn" in text and "before stop" in text
    assert "never reached" not in text          # st.stop() inside a section still stops the page


def _app_with_a_name_from_a_file():
    from rnnviz_app.views import widgets as wg
    from rnnviz_core.errors import InputError

    with wg.section("The chart"):
        raise InputError("Column '[Sign in](http://evil.example/login) <img src=x>' is not numeric.")


def test_a_failing_section_shows_names_from_files_as_text():
    """The exception text quotes names read from files: the warning must render them as literal
    characters (escaped Markdown), never as a link or an image."""
    import re

    at = AppTest.from_function(_app_with_a_name_from_a_file).run(timeout=60)
    body = at.warning[0].value
    # unescaped, a Markdown link or an HTML tag would be live: every [ ] ( < > must carry a backslash
    assert not re.search(r"(?<!\\)\[Sign in(?<!\\)\]\(", body), body
    assert not re.search(r"(?<!\\)<img", body), body
    assert "evil" in body and "Sign in" in body
