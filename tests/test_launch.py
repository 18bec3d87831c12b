"""Your own model class live (``rnnviz app``, ``rv.show``) without a browser: the launch file
channel, the start page on a launched model (AppTest), and that a link or an upload can never
make the app import a factory or unpickle a model."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import own_class_files as ocf  # noqa: E402

ENTRY = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return ocf.write_files(tmp_path_factory.mktemp("own_class"))


@pytest.fixture
def marker(tmp_path, monkeypatch, files):
    """A file the user's module writes when it is imported; the module is importable from here."""
    path = tmp_path / "imported.txt"
    monkeypatch.setenv("RNNVIZ_TEST_IMPORT_MARKER", str(path))
    monkeypatch.syspath_prepend(str(files["module"].parent))
    monkeypatch.delitem(sys.modules, ocf.MODULE, raising=False)
    monkeypatch.setenv("RNNVIZ_UPLOAD_DIR", str(tmp_path / "uploads"))
    return path


def _factory_launch(files) -> Path:
    from rnnviz_core import launch
    folder = launch.private_dir()
    return launch.write_launch(folder, {"kind": "factory", "factory": ocf.FACTORY,
                                        "app_dir": str(files["module"].parent), "weights": str(files["weights"]),
                                        "data": str(files["data"]), "data_options": {}})


# ------------------------------------------------------------------------------ the channel
def test_launch_file_is_private(files):
    from rnnviz_core import launch
    path = _factory_launch(files)
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    assert (path.stat().st_mode & 0o777) == 0o600
    got = launch.read_launch({launch.LAUNCH_ENV: str(path)})
    assert got is not None and got[1]["factory"] == ocf.FACTORY


def test_launch_file_refused_when_others_can_write_its_folder(files, tmp_path):
    from rnnviz_core import launch
    from rnnviz_core.errors import InputError
    path = _factory_launch(files)
    os.chmod(path.parent, 0o777)
    with pytest.raises(InputError, match="private launch file"):
        launch.read_launch({launch.LAUNCH_ENV: str(path)})
    os.chmod(path.parent, 0o700)
    copy = tmp_path / "x" / "other.json"   # any other name, or a relative path, is refused too
    copy.parent.mkdir(mode=0o700)
    copy.write_text(path.read_text())
    for raw in (str(copy), os.path.relpath(path)):
        with pytest.raises(InputError):
            launch.read_launch({launch.LAUNCH_ENV: raw})
    assert launch.read_launch({}) is None


def test_load_launch_builds_the_users_class_with_its_weights(files, marker):
    """The factory's model with the saved state dict gives the training script's own outputs."""
    import torch

    from rnnviz_core import launch
    path = _factory_launch(files)
    model, ds, mname, dname = launch.load_launch(*launch.read_launch({launch.LAUNCH_ENV: str(path)}))
    assert marker.exists()    # the launch did import the user's module
    assert type(model).__name__ == "AttnConvGRU" and ocf.FACTORY in mname and dname == "test_data.npz"
    ref = files["model"]
    X, L = torch.from_numpy(ds.X), torch.from_numpy(ds.lengths)
    with torch.no_grad():
        torch.testing.assert_close(model(X, L), ref(X, L))


def test_show_takes_arrays_tuples_and_paths(files):
    from rnnviz_core.launch import _as_dataset
    X, lengths, y = ocf.task()
    model = files["model"]
    for data in ((X, y, lengths), {"X": X, "y": y, "lengths": lengths}, str(files["data"])):
        ds = _as_dataset(data, model)
        np.testing.assert_array_equal(ds.X, X)
        np.testing.assert_array_equal(ds.lengths, lengths)
        np.testing.assert_array_equal(ds.y, y)
    ds = _as_dataset(X, model)
    assert ds.y is None and ds.X.shape == X.shape


# ------------------------------------------------------------------------------ the app
def test_start_page_shows_the_scripts_accuracy(files, marker, monkeypatch):
    path = _factory_launch(files)
    monkeypatch.setenv("RNNVIZ_LAUNCH", str(path))
    at = AppTest.from_file(ENTRY, default_timeout=180)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.metric[0].label == "Accuracy on the loaded data"
    assert at.metric[0].value == f"{files['accuracy']:.1%}"   # 41 of 48: not on a half, one decimal
    assert [s.label for s in at.sidebar.selectbox] == ["Target output"]   # no demo picker, no uploads
    assert "Demo" not in [s.label for s in at.sidebar.selectbox]


HOSTILE_PARAMS = {"model_factory": ocf.FACTORY, "factory": ocf.FACTORY, "launch": "", "RNNVIZ_LAUNCH": "",
                  "app_dir": "", "weights": "", "demo": "launched", "model": ocf.FACTORY, "data": ""}


def test_a_link_cannot_import_a_factory(files, marker):
    """No query parameter can name a factory or a launch file: the module (importable from this
    process) is never imported, and the app offers its ordinary sources (a link's model= waits for an upload)."""
    path = _factory_launch(files)
    params = {k: (str(path) if v == "" else v) for k, v in HOSTILE_PARAMS.items()}
    params["app_dir"] = params["weights"] = str(files["module"].parent)
    assert "RNNVIZ_LAUNCH" not in os.environ
    at = AppTest.from_file(ENTRY, default_timeout=180)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not marker.exists() and ocf.MODULE not in sys.modules
    assert "Demo" in [s.label for s in at.sidebar.selectbox]   # the ordinary sources, not a launched model


def test_an_upload_cannot_import_a_factory_or_unpickle_a_model(files, marker, tmp_path):
    """A launch file uploaded as data, and a pickle of the user's model (whose loading would import
    the module) uploaded as a model, are refused without importing anything."""
    import textwrap

    path = _factory_launch(files)
    pkl = files["pickle"]   # torch.save of the whole model: loading it would import my_attn_nets
    (tmp_path / "launch.json").write_text(path.read_text())
    assert not marker.exists()
    src = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import streamlit as st
        import upload_helpers as uh
        from pathlib import Path
        from rnnviz_app.state import state_url as su
        su.init_session()
        uh.upload("model", Path({str(pkl)!r}))
        uh.upload("data", Path({str(tmp_path / 'launch.json')!r}))
        st.write("refused: " + ",".join(sorted(st.session_state.get("_upload_errors", {{}}))))
        st.write("stored: " + ",".join(k for k in ("model", "data") if su.view().get(k)) + ".")
    """)
    at = AppTest.from_string(src, default_timeout=120)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    text = " ".join(m.value for m in at.markdown)
    assert "refused: data,model" in text and "stored: ." in text
    assert not marker.exists() and ocf.MODULE not in sys.modules


def test_cli_refuses_a_factory_it_cannot_find_before_starting_a_server(tmp_path, files):
    r = subprocess.run([sys.executable, "-m", "rnnviz_core.cli", "app", "--model-factory", "no_such_mod:make",
                        "--data", str(files["data"]), "--app-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert r.returncode == 2, r.stderr
    assert "Could not find 'no_such_mod:make'" in r.stderr and "Traceback" not in r.stderr


def test_show_writes_a_private_launch_and_shows_the_app_inline_in_ipython(files, monkeypatch):
    """rv.show pickles the model and the data into a private launch folder that the app's reader
    accepts, starts the server on it and, inside IPython, displays the address in an IFrame."""
    import IPython.display

    import rnnviz_core as rv
    from rnnviz_core import launch
    started, shown = [], []
    monkeypatch.setattr(launch, "start", lambda path, port=None, **kw: (started.append((path, port)) or
                                                                         (None, "http://127.0.0.1:9")))
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    X, lengths, y = ocf.task()
    url = rv.show(files["model"], (X, y, lengths), port=8599, inline=True)
    assert url == "http://127.0.0.1:9" and started[0][1] == 8599
    path = started[0][0]
    got = launch.read_launch({launch.LAUNCH_ENV: str(path)})
    model, ds, mname, _ = launch.load_launch(*got)
    assert mname == "AttnConvGRU (from Python)"
    np.testing.assert_array_equal(ds.X, X)
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.IFrame) and shown[0].src == url
