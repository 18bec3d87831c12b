"""Saving and loading models: save_model, load_model (safetensors, or a weights-only state dict of
the built-in family; nothing else), load_model_from_factory (local programmers only)."""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import BinaryIO, Mapping

import torch
from torch import nn

from . import config as _limits  # read at call time: a limit set on the module holds
from ..io.limits import read_bytes  # path, bytes or upload read within the size limit
from ..errors import ModelError, ModelFileError
from ..io.model_files import canonical_safetensors, checked_weights, read_safetensors, read_torch_zip, sniff_model
from .config import ModelConfig, short_message
from .family import RecurrentModel
from .infer import infer_config, strip_prefixes


# ------------------------------------------------------------------------------ save / load
def save_model(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model`` (a :class:`RecurrentModel`) to one ``.safetensors`` file.

    The weights are tensors; the metadata holds JSON strings ``config`` (with ``readout``),
    ``class_names``, ``feature_names``, ``normalization``, ``rnnviz_format`` and, for a token
    model with ``model.vocabulary`` set, ``vocabulary`` (the token of each id). Returns the path
    written.
    """
    from safetensors.torch import save

    if not isinstance(model, RecurrentModel):
        raise ModelError("rv.save_model saves models built with rv.build_model; for your own "
                         "class save the weights with safetensors.torch.save_file(model.state_dict(), ...) "
                         "and load them with rv.load_model_from_factory.")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ModelError("Give the file name the ending .safetensors, e.g. 'model.safetensors'.")
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {
        "rnnviz_format": str(_limits.FORMAT_VERSION),
        "config": json.dumps(model.config.to_dict()),
        "class_names": json.dumps(model.class_names),
        "feature_names": json.dumps(model.feature_names),
        "normalization": json.dumps(model.normalization),
    }
    if model.vocabulary is not None:
        if model.config.encoder != "embedding" or len(model.vocabulary) != model.config.vocab_size:
            raise ModelError(f"model.vocabulary must list one token per id of the embedding "
                             f"({model.config.vocab_size}), token i for id i.")
        meta["vocabulary"] = json.dumps([str(t) for t in model.vocabulary])
    raw = save(tensors, metadata=meta)
    path.write_bytes(canonical_safetensors(raw))
    return path


def load_model(path_or_bytes: str | os.PathLike | bytes | BinaryIO, name: str | None = None) -> nn.Module:
    """Load a model file safely, in eval mode, on the CPU.

    Parameters
    ----------
    path_or_bytes : a path, the file's bytes, or a binary file-like object (e.g. a Streamlit
        upload, whose ``.name`` is used when ``name`` is not given).
    name : the original file name, used for its extension and in messages.

    Accepted: ``.safetensors`` written by :func:`save_model` (or any safetensors file whose
    parameter names and shapes fit the built-in family), and ``.pt``/``.pth``/``.bin`` holding a
    plain state dict from ``torch.save(model.state_dict(), ...)``. The format is decided by the
    file's content. Everything else raises :class:`ModelFileError`. Every refusal carries ``field="model"`` and a ``code`` (:data:`MODEL_ERROR_CODES`) so an app can
    say which file to change and why.
    """
    try:
        return _load_model(path_or_bytes, name)
    except ModelFileError as e:
        if e.field is None:
            e.field = "model"
        if e.code is None:
            e.code = _error_code(str(e))
        raise


#: ``code`` of a :class:`ModelFileError` from :func:`load_model` -> what it means.
MODEL_ERROR_CODES = {
    "unsafe_file": "the file could run code (a pickle, a whole pickled model, TorchScript): refused unread",
    "too_large": "a size in the file is beyond rnnviz's bounds",
    "bad_weights": "weights that are empty, not floating-point, NaN or infinite, or a zero std",
    "unsupported_layout": "weights outside the built-in model family or not one recurrent stack",
    "inconsistent": "the file's settings and its weights disagree",
    "damaged": "the file is cut short, empty or corrupt",
    "wrong_format": "not a model format rnnviz reads",
}
_CODE_WORDS = [
    ("wrong_format", ("not a model file rnnviz can read", "has the ending", "neither safetensors")),
    ("unsafe_file", ("run code", "pickle", "TorchScript", "cannot check is safe")),
    ("bad_weights", ("NaN", "stores its weights as", "empty weight", "std is 0")),
    ("too_large", ("larger than", "unpacks to more than", "more than the", "more than rnnviz", "header of",
                   "holds more than")),
    ("damaged", ("damaged", "cut short", "is empty", "unreadable")),
    ("inconsistent", ("do not match its own", "do not fit", "does not fit", "describes a model")),
    ("unsupported_layout", ("family", "recurrent", "Could not tell", "does not hold a model")),
]


def _error_code(message: str) -> str:
    for code, words in _CODE_WORDS:
        if any(w in message for w in words):
            return code
    return "wrong_format"


def _load_model(path_or_bytes: str | os.PathLike | bytes | BinaryIO, name: str | None) -> nn.Module:
    data, name = read_bytes(path_or_bytes, name, _limits.MAX_MODEL_BYTES, ModelFileError, "model")
    label = f"'{name}'" if name else "The model file"
    if name:
        ext = Path(name).suffix.lower()
        if ext not in _limits.MODEL_EXTENSIONS:
            raise ModelFileError(
                f"{label} has the ending '{ext or '(none)'}', which rnnviz does not read as a model; "
                f"give a .safetensors file (re-save with rv.save_model(model, 'model.safetensors')) "
                f"or a state dict saved as .pt.")
    if len(data) == 0:
        raise ModelFileError(f"{label} is empty; upload the model file again.")
    kind = sniff_model(data)
    if kind == "safetensors":
        tensors, meta = read_safetensors(data, label)
        tensors = checked_weights(tensors, label)
        if meta and "config" in meta and "rnnviz_format" in meta:
            model = _model_from_rnnviz_file(tensors, meta, label)
        else:
            model = _model_from_state_dict(tensors, label)
    elif kind == "torchzip":
        model = _model_from_state_dict(checked_weights(read_torch_zip(data, label), label), label)
    elif kind == "pickle":
        raise ModelFileError(
            f"{label} is a raw Python pickle, which can run code when opened, so rnnviz refuses it. "
            f"Re-save it with rv.save_model(model, 'model.safetensors'), or save only the weights "
            f"with torch.save(model.state_dict(), 'model.pt').")
    else:
        raise ModelFileError(
            f"{label} is not a model file rnnviz can read (not safetensors and not a PyTorch "
            f"state dict); it may be damaged or another format. Re-save the model with "
            f"rv.save_model(model, 'model.safetensors').")
    _check_normalisation(model, label)
    model.eval()
    return model


def load_model_from_factory(spec: str, weights_path: str | os.PathLike | None = None) -> nn.Module:
    """Build a model with your own code and (optionally) load weights into it. Local use only.

    ``spec`` is ``"package.module:function"``; the function takes no arguments and returns an
    ``nn.Module``. ``weights_path`` is a ``.safetensors`` file or a state-dict ``.pt`` (read
    with ``weights_only=True``). This imports and runs the named Python code, so the app offers
    it only from its command line, never from an upload.
    """
    mod_name, sep, fn_name = spec.partition(":")
    if not sep or not mod_name or not fn_name:
        raise ModelError("Name the model factory as 'package.module:function', e.g. 'mynets:make_model'.")
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as e:
        raise ModelError(f"Could not find {spec!r} ({e}); check the module is importable "
                         f"from where you start the app.") from None
    model = fn()
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec!r} returned {type(model).__name__}, not a torch.nn.Module.")
    if weights_path is not None:
        data, name = read_bytes(weights_path, None, _limits.MAX_MODEL_BYTES, ModelFileError, "model")
        label = f"'{name}'"
        kind = sniff_model(data)
        if kind == "safetensors":
            sd, _ = read_safetensors(data, label)
        elif kind == "torchzip":
            sd = read_torch_zip(data, label)
        else:
            raise ModelFileError(f"{label} is neither safetensors nor a PyTorch state dict.")
        try:
            model.load_state_dict(strip_prefixes(sd), strict=True)
        except RuntimeError as e:
            raise ModelFileError(f"The weights in {label} do not fit the model built by {spec!r}: "
                                 f"{short_message(str(e))}") from None
    model.eval()
    return model


def _check_normalisation(model: "RecurrentModel", label: str) -> None:
    if not bool((model.norm_std > 0).all()):
        raise ModelFileError(f"{label} has an input normalisation whose std is 0 or negative, which would divide "
                             f"by zero; re-save the model with its real normalisation (rv.save_model).")


def _model_from_rnnviz_file(tensors: dict, meta: Mapping[str, str], label: str) -> RecurrentModel:
    try:
        version = int(meta["rnnviz_format"])
        cfg = json.loads(meta["config"])
        class_names = json.loads(meta.get("class_names", "null"))
        feature_names = json.loads(meta.get("feature_names", "null"))
        vocabulary = json.loads(meta.get("vocabulary", "null"))
    except (ValueError, TypeError):
        raise ModelFileError(f"{label} has unreadable rnnviz settings; re-save it with rv.save_model.") from None
    if version > _limits.FORMAT_VERSION:
        raise ModelFileError(f"{label} was written by a newer rnnviz (format {version}); update rnnviz to open it.")
    if not isinstance(cfg, dict):
        raise ModelFileError(f"{label} has unreadable rnnviz settings; re-save it with rv.save_model.")
    # files written before the readout setting existed read the final hidden state h_n
    cfg = {**cfg, "readout": cfg.get("readout", "h_n")}
    try:
        config = ModelConfig.from_dict(cfg)
        with torch.device("meta"):              # shapes only: a crafted config allocates nothing
            skeleton = RecurrentModel(config, class_names, feature_names)
    except (ModelError, TypeError) as e:
        raise ModelFileError(f"{label} describes a model rnnviz cannot build: {e}") from None
    except (RuntimeError, ValueError, OverflowError):
        raise ModelFileError(f"{label} describes a model rnnviz cannot build (its sizes are impossible); "
                             f"re-save the model with rv.save_model.") from None
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:3]
        raise ModelFileError(f"The weights in {label} do not match its own settings (for example "
                             f"{', '.join(f'{k} {list(v)}' for k, v in diff)}); re-save the model with rv.save_model.")
    model = RecurrentModel(config, class_names, feature_names)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"The weights in {label} do not match its own settings ({short_message(str(e))}); "
                             f"re-save the model with rv.save_model.") from None
    if vocabulary is not None:
        if (config.encoder != "embedding" or not isinstance(vocabulary, list)
                or len(vocabulary) != config.vocab_size or not all(isinstance(t, str) for t in vocabulary)):
            raise ModelFileError(f"{label} has a vocabulary that does not fit its model (it must list one token "
                                 f"per id, {config.vocab_size} in all); re-save the model with rv.save_model.")
        model.vocabulary = list(vocabulary)
    return model


def _model_from_state_dict(sd: Mapping[str, torch.Tensor], label: str) -> RecurrentModel:
    try:
        config, renamed = infer_config(sd)
    except ModelFileError as e:
        raise ModelFileError(f"{label}: {e}") from None
    model = RecurrentModel(config)
    try:
        model.load_state_dict(renamed, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{label}: the weights do not fit the inferred model ({short_message(str(e))}); "
                             f"re-save it with rv.save_model.") from None
    c = config
    notes = ["The architecture was read from the weights' names and shapes (the file holds no settings); "
             "class and feature names are numbered because the file does not hold them."]
    if c.cell == "RNN_TANH":
        notes.append("A plain RNN is assumed to use tanh (a ReLU RNN looks the same in its weights).")
    if c.encoder == "linear" or c.head == "mlp":
        notes.append("The layers before and after the recurrent layer are assumed to use ReLU.")
    if c.task == "regression":
        notes.append("A single output is read as regression (a number), not a yes/no probability.")
    if "norm_mean" not in sd:
        notes.append("No input normalisation is applied: the data must be scaled as it was in training.")
    model.notes = notes
    model.inferred = True
    return model
