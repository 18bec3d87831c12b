"""Import the libraries the analysis pages need once per server process, in the background, as
soon as the server runs its first script: the first visit to Trajectories or Saturation then
does not wait for scikit-learn, SciPy's statistics and Altair to load (about 2-6 s together on
a 2-core machine). Python's import lock makes a page that needs a module while it is being
imported wait for that one import, never import it twice."""
from __future__ import annotations

import importlib
import threading

#: what the analysis pages import on their first run
MODULES = ("altair", "sklearn.decomposition", "scipy.stats", "scipy.cluster.hierarchy", "scipy.special",
           "rnnviz_core.trajectories", "rnnviz_core.saturation", "rnnviz_core.unit_saturation",
           "rnnviz_core.groups", "rnnviz_core.rankings", "rnnviz_core.contributions", "rnnviz_core.display",
           "rnnviz_core.charts.trajectories", "rnnviz_core.charts.saturation", "rnnviz_core.charts.contributions",
           "rnnviz_core.charts.inputs")

_started = threading.Event()


def _import_all() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a page that needs it says why when it imports it
            pass


def start() -> None:
    """Start the background imports (once per process; later calls return at once)."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_import_all, name="rnnviz-warm-imports", daemon=True).start()
