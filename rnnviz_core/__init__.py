"""rnnviz_core: see inside recurrent networks that read a sequence and give one output.

The public names are imported lazily so that ``import rnnviz_core`` stays cheap and a notebook
user pays only for what they use::

    import rnnviz_core as rv
    tr = rv.trace(model, x, lengths)          # per-step states, gates, cell states
    scores = rv.contributions(model, x, method="integrated_gradients")
    model = rv.load_model("model.safetensors")  # never runs code from the file
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "trace": "trace", "Trace": "trace", "predict": "trace", "RecurrentInfo": "trace",
    "resolve_device": "device",
    "RnnvizError": "errors", "InputError": "errors", "ModelError": "errors",
    "ModelFileError": "errors", "DataError": "errors",
    "contributions": "contributions", "METHODS": "contributions",
    "load_model": "models", "save_model": "models", "ModelConfig": "models",
    "build_model": "models",
    "load_data": "data", "SequenceDataset": "data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnviz_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
