"""rnnviz_core: see inside recurrent networks that read a sequence and give one output.

The verbs of the contract are imported at once; the rest is imported on first use::

    import rnnviz_core as rv
    tr = rv.trace(model, x, lengths)          # per-step states, gates, cell states
    scores = rv.contributions(model, x, method="integrated_gradients")
    model = rv.load_model("model.safetensors")  # never runs code from the file
    res = rv.what_if(model, x, [(0, 5, 0, 1.0)])  # edit a step; only the steps after it run again
    h = rv.horizon(model, x, lengths)         # decision step and memory horizon per sequence
    d = rv.unit_dictionary(model, x, lengths) # what drives each unit and gate to its limits
"""
from __future__ import annotations

import importlib

# The two verbs of the contract share their names with the submodules that define them. Importing
# them here binds the package attributes to the functions once the submodules are loaded, so that
# `rv.trace(...)` and `rv.contributions(...)` stay functions whatever imports the submodules later.
from .contributions import METHODS, contributions, contributions_many  # noqa: E402
from .trace import Trace, predict, trace  # noqa: E402

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "RecurrentInfo": "trace",
    "resolve_device": "device",
    "RnnvizError": "errors", "InputError": "errors", "ModelError": "errors",
    "ModelFileError": "errors", "DataError": "errors", "MismatchError": "errors",
    "load_model": "models", "save_model": "models", "ModelConfig": "models",
    "build_model": "models",
    "load_data": "data", "SequenceDataset": "data", "inspect_columns": "data",
    "ColumnGuess": "data", "class_order_candidates": "data", "load_vocabulary": "data",
    "what_if": "whatif", "WhatIfResult": "whatif", "apply_edits": "whatif", "prefix_outputs": "restart",
    "horizon": "horizons", "damage_by_distance": "horizons",
    "unit_dictionary": "units",
    "show": "launch",
}

# submodules reachable as attributes (rv.trajectories.StatePCA, rv.saturation..., rv.demos.load_demo)
_SUBMODULES = {
    "trajectories", "saturation", "groups", "rankings", "faithfulness", "models", "data",
    "demos", "charts", "engine", "device", "errors", "store", "pairing", "budget", "findings",
    "bundle", "cli", "regression", "whatif", "horizons", "units", "restart", "launch",
    # the layout by concern (issue 20); the flat names above keep working for one release
    "io", "model", "analyses", "attribution", "arrays",
}

__all__ = sorted(set(_EXPORTS) | {"trace", "Trace", "predict", "contributions", "contributions_many", "METHODS"})


def __getattr__(name: str):
    if name in _SUBMODULES and name not in _EXPORTS:
        value = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnviz_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
