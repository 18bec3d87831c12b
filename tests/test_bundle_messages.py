"""No name from a bundle becomes a link or an image in a message (issue 19).

Every name a hostile bundle can put into a refusal (a zip entry, a manifest file key, the format
version, a method, a grouping, a class name, a table column, an array name, a value shown back)
carries a Markdown link and an HTML image. The refusal must quote it (so the reader sees what is
wrong), and the Markdown the app renders must be literal text by CommonMark's rules: every
``[ ] ( ) < > !`` backslash-escaped (an escaped punctuation character is never markup) and bare
addresses broken (GitHub-flavoured autolinks need ``http://`` or ``www.`` unbroken). The app's
sidebar error, run under AppTest with the bundle as the host's ``RNNVIZ_BUNDLE``, shows exactly
that escaped text.
"""
from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import hostile_bundles as hb  # noqa: E402

from rnnviz_core import bundle  # noqa: E402

BAD = hb.LINK + hb.IMG
ENTRY = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def _named(base: Path, out: Path, case: str) -> Path:
    d = hb._copy(base, out, case)
    m = hb._manifest
    if case == "zip_entry":
        return hb._zip(d, out / "zip_entry.rnnviz", extra=lambda zf: zf.writestr(BAD[:60], b"x"))
    if case == "file_key":
        return m(d, lambda x: x["files"].update({BAD: {"bytes": 1, "sha256": "0" * 64}}))
    if case == "version":
        return m(d, lambda x: x.update(format_version=BAD))
    if case == "method":
        return m(d, lambda x: x["analysis"]["methods"].update({BAD: "x"}))
    if case == "grouping":
        return m(d, lambda x: x["analysis"]["saturation_groupings"].update({BAD: ["a"]}))
    if case == "class_name":
        return m(d, lambda x: x["data"].update(class_names=[BAD, BAD, "x"]))
    if case == "value":
        return m(d, lambda x: x["analysis"].update(units=BAD))
    if case == "group_column":
        def edit(x):
            x["data"]["group_columns"].append(BAD)
            x["analysis"]["saturation_groupings"]["data:" + BAD] = ["a"]
        return m(d, edit)
    if case == "column":
        import pyarrow as pa
        return hb._part(d, lambda t: t.append_column(BAD, pa.array([0] * t.num_rows)))
    if case == "array":
        return hb._st(d, "pca.safetensors", lambda a: a.update({BAD: a["mean"]}))
    raise AssertionError(case)


CASES = ["zip_entry", "file_key", "version", "method", "grouping", "class_name", "value", "group_column",
         "column", "array"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("names")
    base = hb.build_base(d)
    return {c: _named(base, d, c) for c in CASES}


def literal_markdown(md: str) -> bool:
    """True when CommonMark + GFM render ``md`` as text: no unescaped link/image/HTML character,
    no unbroken bare address."""
    unescaped = re.search(r"(?<!\\)(?:\\\\)*[\[\]()<>!`]", md)
    autolink = re.search(r"(?i)https?:|www\.", md)
    return unescaped is None and autolink is None


def test_the_check_itself_tells_markup_from_text():
    from rnnviz_app.views.messages import as_text

    assert not literal_markdown(hb.LINK) and not literal_markdown(hb.IMG) and not literal_markdown("see www.x.org")
    assert literal_markdown(as_text(BAD)) and literal_markdown("plain words; 'quoted' too.")


@pytest.mark.parametrize("case", CASES)
def test_a_name_with_a_link_and_an_image_is_quoted_as_text(made, case):
    from rnnviz_app.views.messages import app_message, as_text

    with pytest.raises(bundle.BundleError) as err:
        bundle.open(made[case])
    text = str(err.value)
    assert "Sign in" in text or "evil" in text, text          # the name reaches the message ...
    shown = as_text(app_message(err.value))
    assert literal_markdown(shown), shown                      # ... as text, never as markup
    assert "Sign in" in shown.replace("\\", "")


@pytest.mark.parametrize("case", ["file_key", "column", "version"])
def test_the_sidebar_error_shows_the_name_as_text(made, case, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("RNNVIZ_BUNDLE", str(made[case]))
    at = AppTest.from_file(ENTRY, default_timeout=180)
    at.run()
    assert not at.exception
    errors = [e.value for e in at.sidebar.error]
    assert errors, "no error shown"
    assert any("Sign" in e for e in errors), errors
    for e in errors:
        assert literal_markdown(e), e


def test_a_section_that_cannot_draw_says_why_and_the_next_section_draws():
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from rnnviz_app.views import messages as msg
        from rnnviz_core.errors import BundleError

        with msg.section("The paths"):
            raise BundleError("This bundle has no per-step 'pc1 [x](http://evil.example)'.")
        with msg.section("The size of the state"):
            st.write("the next section")

    at = AppTest.from_function(script, default_timeout=60)
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    shown = at.error[0].value
    assert shown.replace("\\", "").startswith("The paths cannot be shown: This bundle has no per-step 'pc1 [x](http")
    assert literal_markdown(shown), shown
    assert [m.value for m in at.markdown] == ["the next section"]
