"""The "Steps to draw" window lives in the link (rnnviz_app.views.widgets.step_window), under AppTest."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def _script():
    import streamlit as st

    from rnnviz_app.state import state_url as su
    from rnnviz_app.views import widgets as wg
    su.init_session()
    n = st.selectbox("steps", [2000, 900], key="n")
    w = wg.step_window(n, "traj")
    st.write(f"window={w}")
    su.show_link_notes()
    su.sync_url()


def _app(**params):
    at = AppTest.from_function(_script, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def _note(at):
    return " ".join(c.value for c in at.caption)


def test_a_link_with_a_window_reopens_it():
    at = _app(steps_traj="100-300")
    assert not at.exception
    assert at.slider[0].value == (100, 300)
    assert "window=(100, 301)" in at.markdown[0].value       # end exclusive: steps 100..300 drawn
    assert "not valid" not in _note(at)


def test_moving_the_window_puts_it_in_the_link_and_every_step_leaves_it_out():
    at = _app()
    assert at.slider[0].value == (0, 1999) and "window=None" in at.markdown[0].value
    assert "steps_traj" not in at.query_params
    at.slider[0].set_value((10, 20)).run()
    assert at.query_params["steps_traj"] in ("10-20", ["10-20"])
    assert "window=(10, 21)" in at.markdown[0].value
    at.slider[0].set_value((0, 1999)).run()
    assert "steps_traj" not in at.query_params and "window=None" in at.markdown[0].value


@pytest.mark.parametrize("raw", ["300-100", "0-2000", "abc", "-5-10", "1e3-1500", "9" * 3000])
def test_a_bad_window_in_the_link_starts_from_every_step_with_a_note(raw):
    at = _app(steps_traj=raw)
    assert not at.exception
    assert at.slider[0].value == (0, 1999) and "window=None" in at.markdown[0].value
    assert "not valid" in _note(at) and "steps_traj" in _note(at)


def test_other_steps_start_again_from_every_step_without_a_note():
    at = _app(steps_traj="1500-1800")
    assert at.slider[0].value == (1500, 1800)
    at.selectbox[0].select(900).run()                         # another pair: 900 steps
    assert not at.exception
    assert at.slider[0].value == (0, 899) and "window=None" in at.markdown[0].value
    assert "not valid" not in _note(at)
