"""Old path of the model code (split by concern in issue 20; kept for one release).

Models now live in :mod:`rnnviz_core.model`: :mod:`~rnnviz_core.model.config` (ModelConfig and
the limits), :mod:`~rnnviz_core.model.family` (the built-in RecurrentModel), :mod:`~rnnviz_core.model.infer`
(a config read from a state dict), :mod:`~rnnviz_core.model.files` (save and load),
:mod:`~rnnviz_core.model.assumptions` and :mod:`~rnnviz_core.model.pairing`; reading model files
without running code is :mod:`rnnviz_core.io.model_files`. Every public name this module had is
re-exported here.
"""
from __future__ import annotations

import sys as _sys
import types as _types

import torch  # noqa: F401  (names the old module had)
from torch import nn  # noqa: F401

from .errors import InputError, ModelError, ModelFileError  # noqa: F401  (as before)
from .model import config as _model_limits
from .model.assumptions import assumptions
from .model.config import (CELLS, FORMAT_VERSION, MAX_HEADER_BYTES, MAX_INPUTS, MAX_LAYERS, MAX_MODEL_BYTES, MAX_OUTPUTS,
                           MAX_PARAMETERS, MAX_UNITS, MAX_VOCAB, MODEL_EXTENSIONS, READOUTS, ModelConfig)
from .model.family import RecurrentModel, build_model, with_class_names, with_readout
from .model.files import MODEL_ERROR_CODES, load_model, load_model_from_factory, save_model
from .model.infer import infer_config

__all__ = [
    "ModelConfig", "RecurrentModel", "build_model", "save_model", "load_model",
    "load_model_from_factory", "infer_config", "MAX_MODEL_BYTES", "FORMAT_VERSION",
    "MODEL_EXTENSIONS", "READOUTS", "with_readout", "with_class_names", "assumptions", "MODEL_ERROR_CODES",
]

class _OldPath(_types.ModuleType):
    """Setting a limit on this old path sets it where the readers look it up (rnnviz_core.model.config)."""

    def __setattr__(self, name, value):
        if name in _FORWARDED:
            setattr(_model_limits, name, value)
        super().__setattr__(name, value)


_FORWARDED = {n for n in dir(_model_limits) if n.startswith("MAX_")}
_sys.modules[__name__].__class__ = _OldPath
