"""Start the dashboard on a model of your own class: ``rnnviz app`` and :func:`show`.

The launching process (your command line, script or notebook) writes what the app needs into a
private folder of its own (mode 0700) and starts ``streamlit run streamlit_app.py`` with
``$RNNVIZ_LAUNCH`` naming the launch file there. Only that environment variable, set by the
launcher, makes the app run your code; nothing in a link or an upload can name a factory or a
pickle (the hosted app never has the variable set). Local use only: on your machine, running
your own code is fine.

Two kinds of launch file (JSON, ``{"rnnviz_launch": 1, "kind": ...}``):

- ``"factory"``: ``factory`` ("module:function"), ``weights`` (a file or null), ``app_dir`` (the
  folder the module is imported from), ``data`` (a data file) and ``data_options`` (the
  keyword options of :func:`rnnviz_core.data.load_data`).
- ``"object"``: ``model`` and ``data``, pickles in the same folder written by :func:`show`
  (with cloudpickle when installed, so a class defined in a notebook travels by value).
"""
from __future__ import annotations

import atexit
import json
import os
import pickle
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["LAUNCH_ENV", "show", "app_script", "start", "read_launch", "load_launch"]

#: The environment variable naming the launch file; set only by :func:`start`.
LAUNCH_ENV = "RNNVIZ_LAUNCH"
#: The launcher's process id: the app stops when its launcher is gone (a killed notebook kernel).
PARENT_ENV = "RNNVIZ_LAUNCH_PARENT"
_FORMAT = 1
_RUNNING: list[subprocess.Popen] = []


def app_script() -> Path:
    """Path of ``streamlit_app.py`` (beside the ``rnnviz_core`` package in a source checkout)."""
    from .errors import InputError
    path = Path(__file__).resolve().parents[1] / "streamlit_app.py"
    if not path.is_file():
        raise InputError("The dashboard's streamlit_app.py was not found beside the rnnviz_core package; "
                         "install rnnviz from its source folder (pip install -e .) to start the app.")
    return path


def private_dir() -> Path:
    """A new folder only this user can read or write (mode 0700)."""
    return Path(tempfile.mkdtemp(prefix="rnnviz-launch-"))  # mkdtemp creates it with mode 0700


def write_launch(folder: Path, spec: dict) -> Path:
    """Write the launch file ``launch.json`` into ``folder`` (made by :func:`private_dir`)."""
    path = Path(folder) / "launch.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"rnnviz_launch": _FORMAT, **spec}, f)
    return path


def _private(path: Path) -> bool:
    """Whether ``path`` and its folder belong to this user and nobody else can write them."""
    try:
        for p, mask in ((path.parent, stat.S_IRWXG | stat.S_IRWXO), (path, stat.S_IWGRP | stat.S_IWOTH)):
            st_ = p.lstat()
            if stat.S_ISLNK(st_.st_mode) or st_.st_uid != os.getuid() or st_.st_mode & mask:
                return False
    except (OSError, AttributeError):
        return False
    return True


def read_launch(environ: dict | None = None) -> tuple[Path, dict] | None:
    """``(launch file, its content)`` named by ``$RNNVIZ_LAUNCH``, or None when it is not set.

    Raises :class:`~rnnviz_core.errors.InputError` when the file is not a private launch file
    written by this user (its folder must be mode 0700 and owned by the user running the app).
    """
    from .errors import InputError
    raw = (environ if environ is not None else os.environ).get(LAUNCH_ENV)
    if not raw:
        return None
    path = Path(raw)
    if not path.is_absolute() or path.name != "launch.json" or not path.is_file() or not _private(path):
        raise InputError(f"${LAUNCH_ENV} does not name a private launch file written by 'rnnviz app' or rv.show; "
                         "start the app again with one of them.")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"The launch file {path} cannot be read; start the app again.") from None
    if not isinstance(spec, dict) or spec.get("rnnviz_launch") != _FORMAT or spec.get("kind") not in ("factory",
                                                                                                       "object"):
        raise InputError(f"The launch file {path} was not written by this version of rnnviz; start the app again.")
    return path, spec


def load_launch(path: Path, spec: dict) -> tuple[Any, Any, str, str]:
    """``(model, dataset, model name, data name)`` of a launch file. Runs the user's code."""
    from .data import SequenceDataset, load_data
    from .models import load_model_from_factory
    folder = path.parent
    if spec["kind"] == "factory":
        app_dir = str(spec.get("app_dir") or ".")
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
        weights = spec.get("weights")
        model = load_model_from_factory(spec["factory"], weights)
        names = getattr(model, "class_names", None) or None
        data = load_data(spec["data"], class_names=names, **(spec.get("data_options") or {}))
        mname = f"{spec['factory']}" + (f" with {Path(weights).name}" if weights else "")
        return model, data, mname, Path(spec["data"]).name
    with open(folder / "model.pkl", "rb") as f:
        model = pickle.load(f)  # noqa: S301 - written by this user's own launcher into a private folder
    with open(folder / "data.pkl", "rb") as f:
        data = pickle.load(f)  # noqa: S301
    if not isinstance(data, SequenceDataset):
        from .errors import DataError
        raise DataError("The launch's data is not a SequenceDataset; call rv.show again.")
    model.eval()
    return model, data, str(spec.get("model_name") or type(model).__name__), str(spec.get("data_name") or "data")


def watch_parent(environ: dict | None = None, every_s: float = 2.0) -> bool:
    """In the app's server: stop this process (SIGTERM, Streamlit's own clean stop) once the
    launcher that started it is gone, so a killed notebook or script leaves no server behind.
    Returns whether a watcher was started."""
    import signal
    import threading
    raw = (environ if environ is not None else os.environ).get(PARENT_ENV, "")
    if not raw.isdigit() or os.getppid() != int(raw):
        return False

    def watch() -> None:
        while os.getppid() == int(raw):
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="rnnviz-launcher-watch", daemon=True).start()
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The ``streamlit run`` command line of the dashboard on ``port``."""
    return [sys.executable, "-m", "streamlit", "run", str(app_script()), "--server.headless", "true",
            "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none"]


def server_env(launch_file: Path, extra_path: list[str] | None = None) -> dict:
    """The app's environment: this one, ``$RNNVIZ_LAUNCH`` and an import path that finds what
    this process imports (the user's modules)."""
    path = [p for p in (extra_path or []) + sys.path if p and os.path.isdir(p)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return dict(os.environ, **{LAUNCH_ENV: str(launch_file), "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
                               PARENT_ENV: str(os.getpid()), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})


def start(launch_file: Path, port: int | None = None, *, wait_s: float = 120.0, log=subprocess.DEVNULL,
          extra_path: list[str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start the dashboard on ``launch_file`` in a new process; return ``(process, address)``
    once the server answers (the process is stopped when this Python exits). ``log``: where the
    server's output goes (a file, None for this process's own output)."""
    from .errors import InputError
    port = int(port) if port else _free_port()
    proc = subprocess.Popen(server_command(port), cwd=str(app_script().parent), env=server_env(launch_file, extra_path),
                            stdout=log, stderr=subprocess.STDOUT)
    _RUNNING.append(proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InputError(f"The dashboard stopped while starting (exit status {proc.returncode}); is port {port} "
                             "already in use? Pass another port.")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise InputError(f"The dashboard did not answer within {wait_s:.0f} s.")


@atexit.register
def _stop_all() -> None:
    for proc in _RUNNING:
        if proc.poll() is None:
            proc.terminate()


def _as_dataset(data: Any, model: Any):
    """A :class:`SequenceDataset` from what :func:`show` accepts."""
    from .data import SequenceDataset, from_arrays, load_data
    from .errors import DataError
    if isinstance(data, SequenceDataset):
        return data
    names = getattr(model, "class_names", None) or None
    if isinstance(data, (str, os.PathLike)):
        return load_data(data, class_names=names)
    if isinstance(data, dict):
        return from_arrays(_np(data["X"]), data.get("lengths"), y=_np(data.get("y")), class_names=names,
                           name="arrays")
    if isinstance(data, (tuple, list)) and 1 <= len(data) <= 3:
        X, y, lengths = (list(data) + [None, None])[:3]
        return from_arrays(_np(X), None if lengths is None else _np(lengths), y=_np(y), class_names=names,
                           name="arrays")
    if hasattr(data, "shape"):
        return from_arrays(_np(data), name="arrays")
    raise DataError(f"rv.show takes its data as a SequenceDataset, a file path, an array X, a tuple (X, y) or "
                    f"(X, y, lengths), or a dict with 'X'; not {type(data).__name__}.")


def _np(a):
    import numpy as np
    if a is None:
        return None
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _dump(obj: Any, path: Path) -> None:
    try:
        import cloudpickle as pk  # classes defined in a notebook travel by value
    except ImportError:  # pragma: no cover - cloudpickle comes with ray; plain pickle needs an importable class
        pk = pickle
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        pk.dump(obj, f)


def show(model, data, port: int | None = None, *, inline: bool | None = None, height: int = 800) -> str:
    """Open the dashboard on a model object in memory; return its address.

    Parameters
    ----------
    model : any ``torch.nn.Module`` rnnviz can trace (see :func:`rnnviz_core.trace`).
    data : a :class:`~rnnviz_core.data.SequenceDataset`, a data file's path, an array ``X``
        [N, T, F] (or token ids [N, T]), a tuple ``(X, y)`` or ``(X, y, lengths)``, or a dict
        with ``"X"`` (and ``"y"``, ``"lengths"``).
    port : the port to serve on (default: a free one).
    inline : show the app in the notebook (default: when running inside IPython).

    The model and the data are pickled into a private folder and read by the app's own server
    process, which this Python stops when it exits.
    """
    from .errors import InputError
    import torch
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"rv.show takes a torch.nn.Module, not {type(model).__name__}.")
    ds = _as_dataset(data, model)
    folder = private_dir()
    _dump(model, folder / "model.pkl")
    _dump(ds, folder / "data.pkl")
    launch = write_launch(folder, {"kind": "object", "model_name": f"{type(model).__name__} (from Python)",
                                   "data_name": ds.name or "data from Python"})
    _, url = start(launch, port, extra_path=[os.getcwd()])
    if inline is None:
        inline = _in_ipython()
    if inline:
        try:
            from IPython.display import IFrame, display
            display(IFrame(url, width="100%", height=height))
        except ImportError:  # pragma: no cover
            pass
    return url


def _in_ipython() -> bool:
    ip = sys.modules.get("IPython")
    try:
        return ip is not None and ip.get_ipython() is not None
    except Exception:  # noqa: BLE001
        return False
