"""A built-in family of many-to-one recurrent models, and model files that cannot run code.

The family covers what people usually train to turn a sequence into one output::

    x [N, T, F] --normalise--> encoder (none | linear | embedding) --> rnn (RNN/GRU/LSTM)
        --> readout [N, H*D] --> head (linear | mlp) --> logits [N, C] or [N]

The *readout* is how the head reads the sequence (``ModelConfig.readout``, see
:data:`READOUTS`): the last real step's output (``"last"``, what ``out[:, -1]`` does), the
final hidden state (``"h_n"``, what ``h[-1]`` does), or the mean or max over the real steps.
A file's weights cannot tell which one a model was trained with, so for a plain state dict it
is an assumption (see :func:`assumptions`) that :func:`with_readout` changes.

Model files
-----------
``save_model(model, "m.safetensors")`` writes one safetensors file: the weights, and in its
metadata the config, class names, feature names and normalisation as JSON strings.
``load_model`` reads it back into an identical model in eval mode. It also accepts a plain
PyTorch *state dict* saved with ``torch.save(model.state_dict(), "m.pt")``; that file is read
with ``torch.load(..., weights_only=True)`` only after its zip has been measured and torch's
own checkpoint inspection (``torch.serialization.get_unsafe_globals_in_checkpoint``) has found
nothing but tensors and plain containers, and the architecture is inferred from parameter
names and shapes (how the head reads the sequence and the class order are then assumptions:
:func:`assumptions`). Whole pickled models, TorchScript archives, old-style (non-zip) pickles
and anything unknown are refused with a :class:`~rnnviz_core.errors.ModelFileError` saying what
to do.

Before anything is built, every size a file states is bounded (``MAX_*`` below: header, layers,
units, inputs, outputs, vocabulary, total numbers) and checked against the weights' own
shapes; weights that are empty, not floating-point, NaN or infinite, or a zero std, are refused.
Nothing in an uploaded file is ever executed.

Your own model class (local use only)
-------------------------------------
A programmer whose model is not in the family can build it with their own code::

    model = load_model_from_factory("mypackage.nets:make_model", "weights.safetensors")

``"module:function"`` names a function that takes no arguments and returns the
``nn.Module``; the weights file (safetensors, or a state-dict ``.pt``) is then loaded into it.
This imports and runs *your* code, so it is reachable only from Python or from the app's
command line (never from an upload).
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
import io
import json
import os
import pickletools
import re
import struct
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .data import read_bytes  # shared path/bytes/upload reading with the size limit
from .errors import InputError, ModelError, ModelFileError

__all__ = [
    "ModelConfig", "RecurrentModel", "build_model", "save_model", "load_model",
    "load_model_from_factory", "infer_config", "MAX_MODEL_BYTES", "FORMAT_VERSION",
    "MODEL_EXTENSIONS", "READOUTS", "with_readout", "with_class_names", "assumptions", "MODEL_ERROR_CODES",
]

#: Largest model file accepted (bytes). The demos are a few hundred kB; 200 MB is far beyond
#: any many-to-one RNN people inspect in a browser.
MAX_MODEL_BYTES = 200 * 1024 * 1024
#: Version of the metadata layout written by :func:`save_model`.
FORMAT_VERSION = 1
#: File name endings that :func:`load_model` accepts (content decides the actual format).
MODEL_EXTENSIONS = (".safetensors", ".pt", ".pth", ".bin")

#: Largest safetensors header (JSON) read: the format allows 100 MB; an rnnviz file's header
#: (names, settings, a vocabulary) is a few kB to a few MB.
MAX_HEADER_BYTES = 8 * 1024 * 1024
#: Bounds on every size a model file may state, checked before anything is built.
MAX_LAYERS = 32            # stacked recurrent layers
MAX_UNITS = 16_384         # hidden_size, proj_size, encoder_size, head_hidden
MAX_INPUTS = 10_000        # features per step
MAX_OUTPUTS = 10_000       # classes or regression targets
MAX_VOCAB = 1_000_000      # token ids of an embedding
#: Most numbers (weights and buffers) in one model: 200 MB of float32, the file size limit.
MAX_PARAMETERS = MAX_MODEL_BYTES // 4

CELLS = ("GRU", "LSTM", "RNN_TANH", "RNN_RELU")
#: How the head reads the sequence: key -> a plain sentence (the app shows these).
READOUTS = {
    "last": "the output at each sequence's last real step (both directions' outputs at that step "
            "for a bidirectional layer), as out[:, -1] reads it",
    "h_n": "the final hidden state (forward at the last real step, backward at the first step for a "
           "bidirectional layer), as h[-1] or h_n reads it",
    "mean": "the average of the outputs over the real steps (mean pooling)",
    "max": "the largest value of each output unit over the real steps (max pooling)",
}
_GATE_MULT = {"GRU": 3, "LSTM": 4, "RNN_TANH": 1, "RNN_RELU": 1}
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "none": nn.Identity}


# ----------------------------------------------------------------------------------- config
@dataclass
class ModelConfig:
    """Everything needed to rebuild a :class:`RecurrentModel` (its weights aside)."""

    cell: str = "GRU"                 # recurrent cell: "GRU", "LSTM", "RNN_TANH" or "RNN_RELU"
    input_size: int = 1               # features per step in the data (F); token ids: 1
    hidden_size: int = 32             # units per direction in each recurrent layer (H)
    num_layers: int = 1               # stacked recurrent layers
    bidirectional: bool = False       # also read each sequence backwards (head sees 2*H)
    dropout: float = 0.0              # dropout between stacked layers while training only
    rnn_bias: bool = True             # recurrent layers have bias vectors (PyTorch's bias=)
    proj_size: int = 0                # LSTM only: project h to this size (0 = no projection)
    encoder: str | None = None        # None, "linear" (Linear+activation) or "embedding" (token ids)
    encoder_size: int = 0             # output width of the encoder = the rnn's input size
    encoder_activation: str = "relu"  # after a linear encoder: "relu", "tanh" or "none"
    vocab_size: int = 0               # embedding encoder: number of distinct token ids
    head: str = "linear"              # on the final state: "linear" or "mlp" (Linear-act-Linear)
    head_hidden: int = 0              # width of the mlp head's hidden layer
    head_activation: str = "relu"     # mlp head's activation: "relu", "tanh" or "none"
    task: str = "classification"      # "classification" (logits [N, C]) or "regression"
    num_outputs: int = 2              # classes C, or regression targets (1 gives output [N])
    readout: str = "last"             # how the head reads the sequence: a key of READOUTS

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ModelError` with a plain message when the config is inconsistent."""
        def bad(msg: str) -> None:
            raise ModelError(msg)

        if self.cell not in CELLS:
            bad(f"The cell type {self.cell!r} is not supported; use one of {', '.join(CELLS)}.")
        for name in ("input_size", "hidden_size", "num_layers", "num_outputs"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(f"The model setting {name} must be a whole number of at least 1, not {_short(repr(v), 40)}.")
        for name in ("encoder_size", "vocab_size", "head_hidden", "proj_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                bad(f"The model setting {name} must be a whole number, not {_short(repr(v), 40)}.")
        for name, most in (("num_layers", MAX_LAYERS), ("hidden_size", MAX_UNITS), ("proj_size", MAX_UNITS),
                           ("encoder_size", MAX_UNITS), ("head_hidden", MAX_UNITS), ("input_size", MAX_INPUTS),
                           ("num_outputs", MAX_OUTPUTS), ("vocab_size", MAX_VOCAB)):
            if getattr(self, name) > most:
                bad(f"The model setting {name} is {getattr(self, name):,}, more than the {most:,} rnnviz "
                    f"accepts; this is not a model rnnviz can show.")
        for name in ("bidirectional", "rnn_bias"):
            if not isinstance(getattr(self, name), bool):
                bad(f"The model setting {name} must be true or false.")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) \
                or not 0.0 <= self.dropout < 1.0:
            bad("The model setting dropout must be a number from 0 up to (not including) 1.")
        if self.proj_size and (self.cell != "LSTM" or not 0 < self.proj_size < self.hidden_size):
            bad("proj_size works only with an LSTM and must be smaller than hidden_size.")
        if self.encoder not in (None, "linear", "embedding"):
            bad(f"The encoder {self.encoder!r} is not supported; use None, 'linear' or 'embedding'.")
        if self.encoder is not None and self.encoder_size < 1:
            bad("An encoder needs encoder_size (its output width) of at least 1.")
        if self.encoder == "embedding" and (self.vocab_size < 1 or self.input_size != 1):
            bad("An embedding encoder needs vocab_size >= 1 and input_size 1 (one token id per step).")
        for name in ("encoder_activation", "head_activation"):
            if getattr(self, name) not in _ACTIVATIONS:
                bad(f"{name} must be one of {', '.join(_ACTIVATIONS)}.")
        if self.head not in ("linear", "mlp"):
            bad(f"The head {self.head!r} is not supported; use 'linear' or 'mlp'.")
        if self.head == "mlp" and self.head_hidden < 1:
            bad("An mlp head needs head_hidden (its hidden width) of at least 1.")
        if self.task not in ("classification", "regression"):
            bad(f"The task {self.task!r} is not supported; use 'classification' or 'regression'.")
        if self.task == "classification" and self.num_outputs < 2:
            bad("A classification model needs at least 2 classes (num_outputs >= 2).")
        if self.readout not in READOUTS:
            bad(f"The readout {_short(repr(self.readout), 40)} is not supported; use one of {', '.join(READOUTS)}.")
        if self.num_parameters > MAX_PARAMETERS:
            bad(f"These settings make a model of {self.num_parameters:,} numbers, more than the "
                f"{MAX_PARAMETERS:,} rnnviz accepts.")

    @property
    def num_parameters(self) -> int:
        """Weights and buffers a model with this config holds (arithmetic only, nothing built)."""
        out_w = self.proj_size or self.hidden_size                 # what each direction outputs
        d = 2 if self.bidirectional else 1
        g = _GATE_MULT.get(self.cell, 1) * self.hidden_size
        n = 2 * self.input_size                                    # norm_mean, norm_std
        if self.encoder == "linear":
            n += self.input_size * self.encoder_size + self.encoder_size
        elif self.encoder == "embedding":
            n += self.vocab_size * self.encoder_size
        for layer in range(self.num_layers):
            inp = self.rnn_input_size if layer == 0 else out_w * d
            per_dir = g * inp + g * out_w + (2 * g if self.rnn_bias else 0)
            per_dir += self.proj_size * self.hidden_size
            n += d * per_dir
        state = out_w * d
        if self.head == "mlp":
            n += state * self.head_hidden + self.head_hidden + self.head_hidden * self.num_outputs + self.num_outputs
        else:
            n += state * self.num_outputs + self.num_outputs
        return n

    @property
    def rnn_input_size(self) -> int:
        """Width of what the recurrent layer reads (after the encoder)."""
        return self.encoder_size if self.encoder else self.input_size

    @property
    def state_size(self) -> int:
        """Width of the final state the head reads: (proj_size or hidden_size) * directions."""
        return (self.proj_size or self.hidden_size) * (2 if self.bidirectional else 1)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelFileError(
                f"The model file describes settings this version of rnnviz does not know "
                f"({', '.join(unknown)}); update rnnviz or re-save the model with rv.save_model.")
        try:
            return cls(**dict(d))
        except TypeError as e:  # pragma: no cover - defensive
            raise ModelFileError(f"The model file's settings are unreadable ({e}).") from None


# ------------------------------------------------------------------------------------ model
class RecurrentModel(nn.Module):
    """Many-to-one recurrent network built from a :class:`ModelConfig`.

    ``forward(x, lengths=None)`` takes raw (un-normalised) padded input ``x`` [N, T, F]
    (token ids in ``x[..., 0]`` for an embedding encoder) and returns logits [N, C]
    (classification), [N] (regression with one target) or [N, K]. With ``lengths`` the
    input is packed, so padding never reaches the recurrence. The head reads what
    ``config.readout`` says (:data:`READOUTS`): ``"last"`` the last layer's output at each
    sequence's last real step, ``"h_n"`` its final hidden state (bidirectional: forward state at
    the last valid step ++ backward state at step 0), ``"mean"``/``"max"`` the output pooled
    over the real steps.

    Attributes: ``config``, ``class_names`` (list or None), ``feature_names`` (list), the
    recurrent module ``rnn`` (``nn.GRU``/``nn.LSTM``/``nn.RNN``, batch_first), buffers
    ``norm_mean``/``norm_std`` [F] applied inside ``forward``, ``vocabulary`` (list of tokens
    or None, embedding models), ``inferred`` (True when built from a plain state dict, whose
    unknowns :func:`assumptions` lists) and ``notes`` (plain sentences on how it was obtained).
    """

    def __init__(self, config: ModelConfig, class_names: Sequence[str] | None = None,
                 feature_names: Sequence[str] | None = None,
                 normalization: Mapping[str, Sequence[float]] | None = None) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c = config
        if c.encoder == "linear":
            self.encoder = nn.Linear(c.input_size, c.encoder_size)
            self.encoder_act = _ACTIVATIONS[c.encoder_activation]()
        elif c.encoder == "embedding":
            self.encoder = nn.Embedding(c.vocab_size, c.encoder_size)
        kw = dict(input_size=c.rnn_input_size, hidden_size=c.hidden_size, num_layers=c.num_layers,
                  bias=c.rnn_bias, batch_first=True, dropout=c.dropout if c.num_layers > 1 else 0.0,
                  bidirectional=c.bidirectional)
        if c.cell == "GRU":
            self.rnn = nn.GRU(**kw)
        elif c.cell == "LSTM":
            self.rnn = nn.LSTM(proj_size=c.proj_size, **kw)
        else:
            self.rnn = nn.RNN(nonlinearity="tanh" if c.cell == "RNN_TANH" else "relu", **kw)
        if c.head == "linear":
            self.head = nn.Linear(c.state_size, c.num_outputs)
        else:
            self.head = nn.Sequential(nn.Linear(c.state_size, c.head_hidden),
                                      _ACTIVATIONS[c.head_activation](),
                                      nn.Linear(c.head_hidden, c.num_outputs))
        self.register_buffer("norm_mean", torch.zeros(c.input_size))
        self.register_buffer("norm_std", torch.ones(c.input_size))
        if normalization is not None:
            self.set_normalization(normalization["mean"], normalization["std"])
        self.class_names = _check_names(class_names, c.num_outputs, "class") \
            if c.task == "classification" else (list(class_names) if class_names else None)
        if self.class_names is None and c.task == "classification":
            self.class_names = [f"class {i}" for i in range(c.num_outputs)]
        self.feature_names = _check_names(feature_names, c.input_size, "feature") \
            or [f"feature {i}" for i in range(c.input_size)]
        # plain sentences on how this model was obtained (filled in for inferred state dicts)
        self.notes: list[str] = []
        self.inferred = False          # built from a plain state dict (see assumptions())
        self.vocabulary: list[str] | None = None

    # -- normalisation ---------------------------------------------------------------------
    def set_normalization(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Store per-feature mean/std [F]; forward then computes (x - mean) / std."""
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        f = self.config.input_size
        if mean_t.numel() != f or std_t.numel() != f:
            raise ModelError(f"Normalisation needs one mean and one std per feature ({f}).")
        if not torch.isfinite(mean_t).all() or not (std_t > 0).all() or not torch.isfinite(std_t).all():
            raise ModelError("Normalisation std values must be positive and all values finite.")
        self.norm_mean.copy_(mean_t)
        self.norm_std.copy_(std_t)

    @property
    def normalization(self) -> dict | None:
        """``{"mean": [...], "std": [...]}``, or None when it is the identity."""
        if bool((self.norm_mean == 0).all()) and bool((self.norm_std == 1).all()):
            return None
        return {"mean": self.norm_mean.tolist(), "std": self.norm_std.tolist()}

    # -- forward ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        c = self.config
        if x.dim() == 2 and c.encoder == "embedding":
            x = x.unsqueeze(-1)                                   # (N, T) token ids -> (N, T, 1)
        if x.dim() != 3 or x.shape[-1] != c.input_size:
            raise InputError(f"The model expects sequences shaped [N, T, {c.input_size}] "
                             f"but got {list(x.shape)}.")
        if c.encoder == "embedding":
            ids = x[..., 0].long()                                # (N, T)
            if lengths is not None:                               # padding may hold anything
                steps = torch.arange(x.shape[1], device=x.device)
                valid = steps[None, :] < torch.as_tensor(lengths, device=x.device).reshape(-1, 1)
                ids = torch.where(valid, ids, torch.zeros_like(ids))
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= c.vocab_size):
                raise InputError(f"Token ids must be whole numbers from 0 to {c.vocab_size - 1} "
                                 f"for this model's vocabulary.")
            z = self.encoder(ids)                                 # (N, T, E)
        else:
            z = (x.to(self.norm_mean.dtype) - self.norm_mean) / self.norm_std   # (N, T, F)
            if c.encoder == "linear":
                z = self.encoder_act(self.encoder(z))             # (N, T, E)
        lens = None
        if lengths is None:
            seq, h = self.rnn(z)
        else:
            lens = torch.as_tensor(lengths).to(device="cpu", dtype=torch.int64).reshape(-1)
            if lens.numel() != x.shape[0]:
                raise InputError(f"Got {lens.numel()} lengths for {x.shape[0]} sequences.")
            if lens.numel() and (int(lens.min()) < 1 or int(lens.max()) > x.shape[1]):
                raise InputError(f"Every length must be between 1 and the padded length {x.shape[1]}.")
            packed = pack_padded_sequence(z, lens, batch_first=True, enforce_sorted=False)
            seq, h = self.rnn(packed)                             # h back in input order
        final = self._read(seq, h, lens)                          # (N, H_out * D)
        out = self.head(final)                                    # (N, C)
        if c.task == "regression" and c.num_outputs == 1:
            out = out.squeeze(-1)                                 # (N,)
        return out

    def _read(self, seq: torch.Tensor | PackedSequence, h: Any, lens: torch.Tensor | None) -> torch.Tensor:
        """What the head reads, per ``config.readout``: (N, H_out * D)."""
        c = self.config
        if c.readout == "h_n":
            if isinstance(h, tuple):                              # LSTM: (h_n, c_n)
                h = h[0]
            d = 2 if c.bidirectional else 1
            return torch.cat(list(h[-d:]), dim=-1)                # last layer's final states
        if isinstance(seq, PackedSequence):
            seq, _ = pad_packed_sequence(seq, batch_first=True)   # (N, T', H_out * D), input order
        n, t = seq.shape[:2]
        if lens is None:
            lens = torch.full((n,), t, dtype=torch.int64)
        lens = lens.to(seq.device)
        if c.readout == "last":
            return seq[torch.arange(n, device=seq.device), lens - 1]
        valid = (torch.arange(t, device=seq.device)[None, :] < lens[:, None])[..., None]   # (N, T', 1)
        if c.readout == "mean":
            return (seq * valid).sum(1) / lens[:, None].to(seq.dtype)
        return seq.masked_fill(~valid, float("-inf")).amax(1)    # "max"

    def extra_repr(self) -> str:
        return f"task={self.config.task}, readout={self.config.readout}, classes={self.class_names}"


def _check_names(names: Sequence[str] | None, n: int, what: str) -> list[str] | None:
    if names is None:
        return None
    names = [str(s) for s in names]
    if len(names) != n:
        raise ModelError(f"Got {len(names)} {what} names but the model has {n} {what}s.")
    if len(set(names)) != len(names):
        raise ModelError(f"The {what} names must be different from each other.")
    return names


def build_model(config: ModelConfig, class_names: Sequence[str] | None = None,
                feature_names: Sequence[str] | None = None,
                normalization: Mapping[str, Sequence[float]] | None = None) -> RecurrentModel:
    """Build an untrained :class:`RecurrentModel` (train mode, PyTorch's default init)."""
    return RecurrentModel(config, class_names, feature_names, normalization)


def _sibling(model: RecurrentModel) -> RecurrentModel:
    """A new RecurrentModel object sharing ``model``'s modules, parameters and buffers."""
    if not isinstance(model, RecurrentModel):
        raise ModelError("Only models from rnnviz's built-in family (rv.load_model, rv.build_model) have "
                         "readout and class-name settings; your own model class reads the sequence as its "
                         "forward says.")
    new = copy.copy(model)                       # new object, same attribute values
    for k, v in list(new.__dict__.items()):      # own containers (parameters, buffers, modules,
        if isinstance(v, dict):                  # hooks), holding the same tensors and submodules
            new.__dict__[k] = v.copy()
    new.config = dataclasses.replace(model.config)
    new.class_names = list(model.class_names) if model.class_names is not None else None
    new.feature_names = list(model.feature_names)
    new.notes = list(model.notes)
    new.vocabulary = list(model.vocabulary) if model.vocabulary is not None else None
    return new


def with_readout(model: RecurrentModel, readout: str) -> RecurrentModel:
    """The same model (parameters shared, not copied) reading the sequence another way.

    Parameters
    ----------
    model : a :class:`RecurrentModel`; it is not changed.
    readout : a key of :data:`READOUTS` ("last", "h_n", "mean" or "max").

    Returns
    -------
    A new :class:`RecurrentModel` whose ``config.readout`` is ``readout`` (in ``model``'s
    train/eval mode). Training one trains the other: they hold the same tensors.
    """
    if readout not in READOUTS:
        raise ModelError(f"The readout {_short(repr(readout), 40)} is not supported; use one of "
                         f"{', '.join(READOUTS)}.", code="bad_readout", field="readout")
    new = _sibling(model)
    new.config.readout = readout
    return new


def with_class_names(model: RecurrentModel, names: Sequence[str]) -> RecurrentModel:
    """The same model (parameters shared) with its outputs named ``names`` in output order.

    ``names[i]`` names the model's i-th output. A plain state dict holds no class names, so
    this is how the class order a training script used (e.g. sorted labels, as LabelEncoder
    gives) is put back. ``model`` is not changed. Raises :class:`ModelError` when the count is
    not the model's number of classes or two names are the same.
    """
    new = _sibling(model)
    if new.config.task != "classification":
        raise ModelError("This model predicts numbers (regression), so it has no class names to set.")
    try:
        new.class_names = _check_names(list(names), new.config.num_outputs, "class")
    except ModelError as e:
        raise ModelError(str(e), code="bad_class_order", field="class_order") from None
    return new


def assumptions(model: nn.Module) -> list[dict[str, str]]:
    """What rnnviz assumed about a model built from a plain state dict, and where to change it.

    Returns one dict per assumption with keys ``key`` ("readout", "class_order",
    "activations", "vocabulary", "normalisation", "task"), ``what`` (a plain sentence on what was assumed),
    ``value`` (the current setting, as text), ``how_to_change`` (where to change it in the app,
    naming its sidebar control when there is one) and ``python`` (the same in code). A model
    whose file records its settings (saved with :func:`save_model`), or a model that is not in
    the built-in family, gives an empty list: nothing was assumed.
    """
    if not isinstance(model, RecurrentModel) or not getattr(model, "inferred", False):
        return []
    c = model.config
    fixed = "It cannot be changed in the app; ask for the model saved with rnnviz's save_model, which records it."
    out = [dict(
        key="readout",
        what="The file does not say how the model reads the sequence; it is read as "
             f"{READOUTS[c.readout]}.",
        value=c.readout,
        how_to_change="Choose another reading under 'How the model reads the sequence' in the sidebar; "
                      "each choice is shown with its accuracy on the data.",
        python="rnnviz_core.models.with_readout(model, 'mean')")]
    if c.task == "classification":
        numbered = model.class_names == [f"class {i}" for i in range(c.num_outputs)]
        out.append(dict(
            key="class_order",
            what="The file holds no class names, so which class each output stands for is assumed"
                 + (" (the outputs are numbered)." if numbered else ": ") + ("" if numbered else ", ".join(model.class_names) + "."),
            value=", ".join(model.class_names),
            how_to_change="Choose the order your training script used under 'Class order' in the sidebar "
                          "(declared in the data file, sorted, first appearance, or typed by hand).",
            python="rnnviz_core.models.with_class_names(model, ['neg', 'pos'])"))
    acts = []
    if c.cell == "RNN_TANH":
        acts.append("a plain RNN uses tanh (a ReLU RNN has the same weights)")
    if c.encoder == "linear":
        acts.append(f"the layer before the recurrent layer uses {c.encoder_activation}")
    if c.head == "mlp":
        acts.append(f"the head's hidden layer uses {c.head_activation}")
    if acts:
        out.append(dict(key="activations", what="Activations cannot be read from weights: " + "; ".join(acts) + ".",
                        value=", ".join(acts), how_to_change=fixed,
                        python="rv.build_model(ModelConfig(..., head_activation='tanh')), load the weights, rv.save_model"))
    if c.encoder == "embedding" and model.vocabulary is None:
        out.append(dict(
            key="vocabulary",
            what=f"The file holds no vocabulary, so which word each of the {c.vocab_size:,} token ids stands for "
                 f"is unknown; text data needs the vocabulary the model was trained with.",
            value="none",
            how_to_change="Upload the vocabulary beside the data file (a .json list, or a .txt file with one "
                          "token per line, in id order), or use data holding token ids.",
            python="rv.load_data('data.csv', vocabulary=rnnviz_core.data.load_vocabulary('vocab.json'))"))
    norm = model.normalization
    if c.encoder != "embedding":
        out.append(dict(
            key="normalisation",
            what=("No input normalisation is applied: the data must be scaled as it was in training."
                  if norm is None else "The input normalisation stored with the weights is applied."),
            value="none" if norm is None else "stored mean and std",
            how_to_change="Scale the data file as the training script did, or " + fixed[0].lower() + fixed[1:],
            python="model.set_normalization(mean, std); rv.save_model(model, 'model.safetensors')"))
    if c.task == "regression":
        out.append(dict(key="task", what="A single output is read as a number (regression), not a yes/no probability.",
                        value="regression", how_to_change=fixed, python="rv.save_model with task='classification'"))
    return out


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
        "rnnviz_format": str(FORMAT_VERSION),
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
    path.write_bytes(_canonical_safetensors(raw))
    return path


def _canonical_safetensors(raw: bytes) -> bytes:
    """Rewrite the header with sorted keys so the same model always gives the same bytes.

    (safetensors writes its metadata map in an arbitrary order.) Tensor offsets are relative to
    the data section, so only the header changes; it is padded to 8 bytes like the original.
    """
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + n:]


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
    data, name = read_bytes(path_or_bytes, name, MAX_MODEL_BYTES, ModelFileError, "model")
    label = f"'{name}'" if name else "The model file"
    if name:
        ext = Path(name).suffix.lower()
        if ext not in MODEL_EXTENSIONS:
            raise ModelFileError(
                f"{label} has the ending '{ext or '(none)'}', which rnnviz does not read as a model; "
                f"give a .safetensors file (re-save with rv.save_model(model, 'model.safetensors')) "
                f"or a state dict saved as .pt.")
    if len(data) == 0:
        raise ModelFileError(f"{label} is empty; upload the model file again.")
    kind = _sniff_model(data)
    if kind == "safetensors":
        tensors, meta = _read_safetensors(data, label)
        tensors = _checked_weights(tensors, label)
        if meta and "config" in meta and "rnnviz_format" in meta:
            model = _model_from_rnnviz_file(tensors, meta, label)
        else:
            model = _model_from_state_dict(tensors, label)
    elif kind == "torchzip":
        model = _model_from_state_dict(_checked_weights(_read_torch_zip(data, label), label), label)
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
        data, name = read_bytes(weights_path, None, MAX_MODEL_BYTES, ModelFileError, "model")
        label = f"'{name}'"
        kind = _sniff_model(data)
        if kind == "safetensors":
            sd, _ = _read_safetensors(data, label)
        elif kind == "torchzip":
            sd = _read_torch_zip(data, label)
        else:
            raise ModelFileError(f"{label} is neither safetensors nor a PyTorch state dict.")
        try:
            model.load_state_dict(_strip_prefixes(sd), strict=True)
        except RuntimeError as e:
            raise ModelFileError(f"The weights in {label} do not fit the model built by {spec!r}: "
                                 f"{_short(str(e))}") from None
    model.eval()
    return model


# ----------------------------------------------------------------------------- file reading
def _sniff_model(data: bytes) -> str:
    """Decide the format from the content: 'safetensors', 'torchzip', 'pickle' or 'unknown'."""
    if data[:4] == b"PK\x03\x04":
        return "torchzip"
    if len(data) >= 10:
        (n,) = struct.unpack("<Q", data[:8])
        if 2 <= n <= len(data) - 8 and data[8:9] == b"{":
            return "safetensors"
    if data[:1] == b"\x80" or data[:1] in (b"(", b"}", b"]"):
        return "pickle"
    return "unknown"


def _read_safetensors(data: bytes, label: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors.torch import load as st_load

    (n,) = struct.unpack("<Q", data[:8])                  # the header's length, read first
    if n > MAX_HEADER_BYTES:
        raise ModelFileError(f"{label} has a settings header of {n / 2**20:.0f} MB, far more than a model needs "
                             f"(rnnviz reads at most {MAX_HEADER_BYTES // 2**20} MB), so it was not read; "
                             f"re-save the model with rv.save_model.")
    if n > len(data) - 8:
        raise ModelFileError(f"{label} is cut short (its header is incomplete); upload it again.")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ValueError("metadata is not an object of strings")
        ok = len(header) <= _MAX_TENSORS + 1
    except Exception:  # JSON errors, unicode errors, deep nesting
        ok = None
    if ok is False:
        raise ModelFileError(f"{label} holds more than {_MAX_TENSORS:,} weight arrays, far more than a "
                             f"recurrent model has; re-save the model with rv.save_model.")
    try:
        if ok is None:
            raise ValueError("unreadable header")
        tensors = st_load(data)
    except Exception:  # SafetensorError, JSON errors, unicode errors
        raise ModelFileError(f"{label} is damaged or cut short (the safetensors data does not add up); "
                             f"upload it again or re-save it with rv.save_model.") from None
    return tensors, meta


_MAX_TENSORS = 10_000
_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _checked_weights(tensors: Mapping[str, torch.Tensor], label: str) -> dict[str, torch.Tensor]:
    """Refuse weights rnnviz cannot use safely, before any module is built; return them as float32.

    Refused with a sentence: more than ``_MAX_TENSORS`` arrays or ``MAX_PARAMETERS`` numbers,
    an empty array (a dimension of 0), whole-number or other non-float dtypes (int8, uint8,
    bool, quantised, complex: reading them as floats would give wrong numbers, e.g. a
    normalisation divisor of 0), and values that are NaN or infinite once read as float32.
    """
    if len(tensors) > _MAX_TENSORS:
        raise ModelFileError(f"{label} holds more than {_MAX_TENSORS:,} weight arrays, far more than a "
                             f"recurrent model has; re-save the model with rv.save_model.")
    total = 0
    for k, v in tensors.items():
        if v.numel() == 0:
            raise ModelFileError(f"{label} holds an empty weight array ('{_short(k, 60)}' of shape "
                                 f"{list(v.shape)}), which no trained model has; re-save the model with rv.save_model.")
        if v.dtype not in _FLOAT_DTYPES:
            raise ModelFileError(
                f"{label} stores its weights as {str(v.dtype).replace('torch.', '')} (for example "
                f"'{_short(k, 60)}'), not as floating-point numbers; rnnviz reads float weights only. "
                f"Convert them with model.float() and re-save (rv.save_model, or torch.save(model.state_dict())).")
        total += v.numel()
        if total > MAX_PARAMETERS:
            raise ModelFileError(f"{label} holds more than {MAX_PARAMETERS:,} numbers, more than rnnviz accepts "
                                 f"for a model.")
    out = {}
    for k, v in tensors.items():
        f = v.detach().to(torch.float32)
        if not bool(torch.isfinite(f).all()):
            raise ModelFileError(
                f"{label} has weights that are not numbers (NaN) or are infinite, in '{_short(k, 60)}'; "
                f"the model is damaged (often a training run that diverged), so rnnviz cannot show it. "
                f"Re-save it from a checkpoint taken before that.")
        out[k] = f
    return out


def _check_normalisation(model: "RecurrentModel", label: str) -> None:
    if not bool((model.norm_std > 0).all()):
        raise ModelFileError(f"{label} has an input normalisation whose std is 0 or negative, which would divide "
                             f"by zero; re-save the model with its real normalisation (rv.save_model).")


_DANGEROUS_MODULES = ("os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "runpy",
                      "code", "pty", "ctypes", "builtins", "__builtin__", "pickle", "marshal", "types")


def _names_for_message(pkl: bytes) -> list[str]:
    """Globals a pickle names, as 'module.name', to say in a refusal what a file asked for.

    Only wording depends on this: whether a file is opened is decided by torch's own
    checkpoint inspection and ``weights_only`` loader. Used when torch's inspector cannot
    parse the stream (pickle protocol 4+). Raises ValueError when the stream is not a pickle.
    """
    names, strings = [], []
    for op, arg, _pos in pickletools.genops(pkl):
        if op.name in ("GLOBAL", "INST"):
            names.append(str(arg).replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            names.append(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(arg, str) and ("UNICODE" in op.name or "STRING" in op.name):
            strings.append(str(arg))
    return names


def _refuse_unsafe(label: str, unsafe: Sequence[str]) -> None:
    """Raise the plain refusal for a checkpoint that names globals torch does not allow."""
    dangerous = any(n.split(".")[0] in _DANGEROUS_MODULES for n in unsafe)
    if any(n.startswith("torch.nn.") for n in unsafe) and not dangerous:
        raise ModelFileError(
            f"{label} holds a whole pickled model, not just its weights, and opening that would "
            f"run code. Re-save it with rv.save_model(model, 'model.safetensors'), or save the "
            f"weights with torch.save(model.state_dict(), 'model.pt').")
    raise ModelFileError(
        f"{label} asks to run code when opened ({', '.join(list(unsafe)[:3])}), so rnnviz refused it. "
        f"Only plain weights are accepted: re-save with rv.save_model.")


def _measured_zip(data: bytes, label: str, limit: int) -> zipfile.ZipFile:
    """Open a zip, refusing it unless its members' real unpacked size (measured by reading,
    not taken from the headers) and their declared sizes both stay within ``limit`` bytes."""
    too_big = ModelFileError(f"{label} unpacks to more than the {limit // 2**20} MB rnnviz accepts "
                             f"for a model; re-save the model with rv.save_model(model, 'model.safetensors').")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise ModelFileError(f"{label} is a damaged archive; upload it again or re-save the model "
                             f"with rv.save_model(model, 'model.safetensors').") from None
    if len(infos) > 10_000 or sum(i.file_size for i in infos) > limit:
        raise too_big
    total = 0
    try:
        for info in infos:
            got = 0
            with zf.open(info) as member:
                while chunk := member.read(1 << 20):       # 1 MB at a time: memory stays flat
                    got += len(chunk)
                    if total + got > limit:
                        raise too_big
            if got != info.file_size:                      # the index lies about this member
                raise ValueError("size mismatch")
            total += got
    except ModelFileError:
        raise
    except Exception:   # CRC or size mismatch (headers that lie), bad compression, encryption
        raise ModelFileError(f"{label} is a damaged archive (its contents do not match its index); upload it "
                             f"again or re-save the model with rv.save_model(model, 'model.safetensors').") from None
    return zf


def _read_torch_zip(data: bytes, label: str) -> dict[str, torch.Tensor]:
    """Read a torch.save zip holding a state dict; refuse TorchScript and anything with code.

    The zip is measured first (:func:`_measured_zip`); torch's own checkpoint inspection
    (``torch.serialization.get_unsafe_globals_in_checkpoint``) then lists anything beyond
    tensors and plain containers, and only a clean file is read, with ``weights_only=True``.
    """
    zf = _measured_zip(data, label, MAX_MODEL_BYTES)
    names = zf.namelist()
    if any(n.split("/", 1)[-1].startswith("code/") or n.endswith("constants.pkl") for n in names):
        raise ModelFileError(
            f"{label} is a TorchScript model, which contains code, so rnnviz never loads it from a file. "
            f"Save only the weights (torch.save(model.state_dict(), 'model.pt')) or use rv.save_model.")
    pkls = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkls) != 1:
        raise ModelFileError(f"{label} is a zip archive but not a PyTorch weights file; "
                             f"re-save the model with rv.save_model(model, 'model.safetensors').")
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception:   # torch's inspector cannot parse it (e.g. pickle protocol 4+, garbage)
        try:
            unsafe = [n for n in _names_for_message(zf.read(pkls[0]))
                      if not n.startswith(("torch._utils.", "collections.OrderedDict"))
                      and not re.fullmatch(r"torch\.(\w+Storage|Size|device|dtype)", n)
                      and n not in ("builtins.set", "builtins.frozenset", "builtins.tuple", "builtins.list",
                                    "builtins.dict")]
        except Exception:
            raise ModelFileError(f"{label} holds data rnnviz cannot check is safe, so it was not opened; "
                                 f"re-save the model with rv.save_model(model, 'model.safetensors').") from None
    if unsafe:
        _refuse_unsafe(label, unsafe)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")               # torch's notes on pickle protocols
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:   # torch's own safe reader refused it (e.g. pickle protocol 4+, odd objects)
        raise ModelFileError(f"{label} could not be read as plain PyTorch weights. Re-save the model with "
                             f"rv.save_model(model, 'model.safetensors'), or with "
                             f"torch.save(model.state_dict(), 'model.pt') and default settings.") from None
    return _unwrap_state_dict(obj, label)


def _unwrap_state_dict(obj: Any, label: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model", "net", "weights"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise ModelFileError(f"{label} does not hold a model's weights (a state dict of tensors); "
                         f"save them with torch.save(model.state_dict(), 'model.pt') or rv.save_model.")


def _short(msg: str, n: int = 200) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def _strip_prefixes(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop wrapper prefixes added by DataParallel ('module.') and torch.compile ('_orig_mod.').

    A prefix is dropped when every key carries it, with torch's own
    ``consume_prefix_in_state_dict_if_present``.
    """
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    out = dict(sd)
    for prefix in ("module.", "_orig_mod."):
        if out and all(k.startswith(prefix) for k in out):
            consume_prefix_in_state_dict_if_present(out, prefix)
    return out


def _model_from_rnnviz_file(tensors: dict, meta: Mapping[str, str], label: str) -> RecurrentModel:
    try:
        version = int(meta["rnnviz_format"])
        cfg = json.loads(meta["config"])
        class_names = json.loads(meta.get("class_names", "null"))
        feature_names = json.loads(meta.get("feature_names", "null"))
        vocabulary = json.loads(meta.get("vocabulary", "null"))
    except (ValueError, TypeError):
        raise ModelFileError(f"{label} has unreadable rnnviz settings; re-save it with rv.save_model.") from None
    if version > FORMAT_VERSION:
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
        raise ModelFileError(f"The weights in {label} do not match its own settings ({_short(str(e))}); "
                             f"re-save the model with rv.save_model.") from None
    if vocabulary is not None:
        if (config.encoder != "embedding" or not isinstance(vocabulary, list)
                or len(vocabulary) != config.vocab_size or not all(isinstance(t, str) for t in vocabulary)):
            raise ModelFileError(f"{label} has a vocabulary that does not fit its model (it must list one token "
                                 f"per id, {config.vocab_size} in all); re-save the model with rv.save_model.")
        model.vocabulary = list(vocabulary)
    return model


# ------------------------------------------------------------------- state-dict inference
_RNN_KEY = re.compile(r"^(?:(?P<prefix>.*)\.)?(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(?P<layer>\d+)(?P<rev>_reverse)?$")


def _check_recurrent_layout(p: Mapping[tuple[str, int, bool], torch.Tensor], cell: str, hidden: int,
                            proj_size: int, rnn_in: int, num_layers: int, bidirectional: bool, bias: bool,
                            prefix: str) -> None:
    """Refuse a recurrent module whose weights are not exactly those of one nn.RNN/GRU/LSTM.

    Every layer 0..num_layers-1 (and each direction) must be present with the shapes PyTorch
    gives it, so a stray key such as ``weight_ih_l999`` cannot make rnnviz build 1000 layers.
    Sizes are bounded before the shapes are compared.
    """
    name = prefix or "the recurrent layer"
    present = sorted({layer for _, layer, _ in p})
    if present != list(range(len(present))) or num_layers > MAX_LAYERS:
        raise ModelFileError(
            f"The recurrent module '{name}' has weights for layers {_layer_list(present)}, which is not a "
            f"stack of layers 0, 1, 2, ... (at most {MAX_LAYERS}); the file is damaged or was edited. "
            f"Re-save the model's state dict.")
    if hidden > MAX_UNITS or rnn_in > max(MAX_INPUTS, MAX_UNITS):
        raise ModelFileError(f"The recurrent module '{name}' has {hidden:,} units reading {rnn_in:,} inputs, "
                             f"more than rnnviz accepts ({MAX_UNITS:,} units).")
    g = _GATE_MULT[cell] * hidden
    out_w = proj_size or hidden
    d = 2 if bidirectional else 1
    expected: dict[tuple[str, int, bool], tuple[int, ...]] = {}
    for layer in range(num_layers):
        for rev in ((False, True) if bidirectional else (False,)):
            inp = rnn_in if layer == 0 else out_w * d
            expected[("weight_ih", layer, rev)] = (g, inp)
            expected[("weight_hh", layer, rev)] = (g, out_w)
            if bias:
                expected[("bias_ih", layer, rev)] = (g,)
                expected[("bias_hh", layer, rev)] = (g,)
            if proj_size:
                expected[("weight_hr", layer, rev)] = (proj_size, hidden)
    found = {k: tuple(v.shape) for k, v in p.items()}
    if found != expected:
        def key(k):
            return f"{k[0]}_l{k[1]}{'_reverse' if k[2] else ''}"
        wrong = sorted(key(k) for k in set(found) | set(expected) if found.get(k) != expected.get(k))
        raise ModelFileError(
            f"The recurrent module '{name}' does not have the weights of one {cell} with {num_layers} layer(s) of "
            f"{hidden} units ({', '.join(wrong[:3])} missing, extra or of another shape); the file is damaged "
            f"or was edited. Re-save the model's state dict.")


def _layer_list(layers: Sequence[int]) -> str:
    return ", ".join(map(str, layers[:5])) + (f", ... {layers[-1]}" if len(layers) > 5 else "")


def infer_config(state_dict: Mapping[str, torch.Tensor]) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Infer a :class:`ModelConfig` from a plain state dict and rename its keys to the family's.

    The state dict must hold one recurrent module (``<name>.weight_ih_l0`` ...), optionally one
    module before it (a Linear encoder or an Embedding) and one or two Linear layers after it
    (the head). Assumptions that shapes cannot tell: a 1-gate cell is RNN_TANH, a linear
    encoder and an mlp head use ReLU, one output means regression. Raises
    :class:`ModelFileError` explaining what does not fit.
    """
    sd = _strip_prefixes(state_dict)
    rnn_keys: dict[str, list] = {}
    others: dict[str, dict[str, torch.Tensor]] = {}
    norm: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        m = _RNN_KEY.match(k)
        if m:
            rnn_keys.setdefault(m.group("prefix") or "", []).append((m, v))
        elif k in ("norm_mean", "norm_std"):
            norm[k] = v
        else:
            mod, _, pname = k.rpartition(".")
            others.setdefault(mod, {})[pname] = v
    if not rnn_keys:
        raise ModelFileError("The file's weights contain no recurrent layer (no 'weight_ih_l0'); rnnviz "
                             "needs an nn.RNN, nn.GRU or nn.LSTM inside the model.")
    if len(rnn_keys) > 1:
        raise ModelFileError(
            f"The file's weights hold several recurrent modules ({', '.join(sorted(rnn_keys))}), which the "
            f"built-in model family does not cover; run rnnviz locally with your own model class "
            f"(rv.load_model_from_factory('module:function', weights)).")
    prefix, entries = next(iter(rnn_keys.items()))
    p = {(m.group("kind"), int(m.group("layer")), bool(m.group("rev"))): v for m, v in entries}
    num_layers = 1 + max(layer for _, layer, _ in p)
    bidirectional = any(rev for _, _, rev in p)
    w_ih0, w_hh0 = p.get(("weight_ih", 0, False)), p.get(("weight_hh", 0, False))
    if w_ih0 is None or w_hh0 is None or w_ih0.dim() != 2 or w_hh0.dim() != 2:
        raise ModelFileError("The recurrent layer's weights are incomplete (weight_ih_l0/weight_hh_l0 missing).")
    proj = p.get(("weight_hr", 0, False))
    proj_size = int(proj.shape[0]) if proj is not None else 0
    hidden = int(proj.shape[1]) if proj is not None else int(w_hh0.shape[1])
    mult = int(w_hh0.shape[0]) // hidden if hidden else 0
    cell = {1: "RNN_TANH", 3: "GRU", 4: "LSTM"}.get(mult)
    if cell is None or mult * hidden != w_hh0.shape[0]:
        raise ModelFileError("The recurrent layer's weight shapes do not match an RNN, GRU or LSTM.")
    if cell == "RNN_TANH" and "relu" in prefix.lower():
        cell = "RNN_RELU"
    rnn_in = int(w_ih0.shape[1])
    state = (proj_size or hidden) * (2 if bidirectional else 1)
    rnn_bias = ("bias_ih", 0, False) in p
    _check_recurrent_layout(p, cell, hidden, proj_size, rnn_in, num_layers, bidirectional, rnn_bias, prefix)

    # classify the other modules into encoder / head
    mods = dict(others)
    for mod, ps in mods.items():
        w = ps.get("weight")
        if set(ps) - {"weight", "bias"} or w is None or w.dim() != 2:
            raise ModelFileError(
                f"The file has weights the built-in model family does not have ('{mod}': "
                f"{', '.join(sorted(ps))}); run rnnviz locally with your own model class "
                f"(rv.load_model_from_factory('module:function', weights)).")
    order = list(sd)
    rnn_pos = min(order.index(m.string) for m, _ in entries)
    readings = []   # (encoder key or None, encoder kind, head keys)
    for enc_key in [None, *mods]:
        if enc_key is None:
            enc_kind = None
        else:
            ps = mods[enc_key]
            if "bias" in ps and ps["weight"].shape[0] == rnn_in:
                enc_kind = "linear"
            elif "bias" not in ps and ps["weight"].shape[1] == rnn_in:
                enc_kind = "embedding"
            else:
                continue
        remaining = {m: ps for m, ps in mods.items() if m != enc_key}
        width, chain = state, []
        while remaining:
            nxt = [m for m, ps in remaining.items() if ps["weight"].shape[1] == width and "bias" in ps]
            if len(nxt) != 1:
                break
            chain.append(nxt[0])
            width = int(remaining.pop(nxt[0])["weight"].shape[0])
        if not remaining and 1 <= len(chain) <= 2:
            readings.append((enc_key, enc_kind, chain))
    if len(readings) > 1:   # ambiguous shapes: prefer names, then position before the rnn
        def score(r):
            k = r[0]
            if k is None:
                return 1
            named = bool(re.search(r"enc|emb|input|in_proj", k, re.I))
            headish = bool(re.search(r"head|fc|out|classif|decod|final|linear", k, re.I))
            before = order.index(f"{k}.weight" if k else "weight") < rnn_pos
            return 4 * named + 2 * before - 4 * headish
        readings.sort(key=score, reverse=True)
        if score(readings[0]) == score(readings[1]):
            raise ModelFileError("Could not tell which layers come before and after the recurrent layer; "
                                 "re-save the model with rv.save_model.")
    if not readings:
        raise ModelFileError(
            f"The layers around the recurrent layer do not match the built-in family (an optional Linear "
            f"or Embedding before it; one Linear, or Linear-activation-Linear, after it reading the final "
            f"state of width {state}); found {', '.join(sorted(mods)) or 'no other layers'}. Re-save with "
            f"rv.save_model, or run rnnviz locally with your own model class (rv.load_model_from_factory).")
    enc_key, encoder, head_layers = readings[0]
    num_out = int(mods[head_layers[-1]]["weight"].shape[0])
    cfg = dict(cell=cell, hidden_size=hidden, num_layers=num_layers, bidirectional=bidirectional,
               rnn_bias=rnn_bias, proj_size=proj_size, num_outputs=num_out,
               task="classification" if num_out > 1 else "regression")
    renamed: dict[str, torch.Tensor] = {}
    for m, v in entries:
        renamed["rnn." + m.string[len(prefix) + 1:] if prefix else "rnn." + m.string] = v
    if encoder == "linear":
        w = mods[enc_key]["weight"]
        cfg.update(encoder="linear", encoder_size=int(w.shape[0]), input_size=int(w.shape[1]))
        renamed["encoder.weight"], renamed["encoder.bias"] = w, mods[enc_key]["bias"]
    elif encoder == "embedding":
        w = mods[enc_key]["weight"]
        cfg.update(encoder="embedding", encoder_size=int(w.shape[1]), vocab_size=int(w.shape[0]), input_size=1)
        renamed["encoder.weight"] = w
    else:
        cfg.update(input_size=rnn_in)
    if len(head_layers) == 1:
        cfg["head"] = "linear"
        renamed["head.weight"] = mods[head_layers[0]]["weight"]
        renamed["head.bias"] = mods[head_layers[0]]["bias"]
    else:
        cfg.update(head="mlp", head_hidden=int(mods[head_layers[0]]["weight"].shape[0]))
        for i, m in zip((0, 2), head_layers):
            renamed[f"head.{i}.weight"] = mods[m]["weight"]
            renamed[f"head.{i}.bias"] = mods[m]["bias"]
    try:
        config = ModelConfig(**cfg)
    except ModelError as e:
        raise ModelFileError(f"The weights describe a model rnnviz cannot build: {e}") from None
    f = config.input_size
    renamed["norm_mean"] = norm.get("norm_mean", torch.zeros(f))
    renamed["norm_std"] = norm.get("norm_std", torch.ones(f))
    return config, renamed


def _model_from_state_dict(sd: Mapping[str, torch.Tensor], label: str) -> RecurrentModel:
    try:
        config, renamed = infer_config(sd)
    except ModelFileError as e:
        raise ModelFileError(f"{label}: {e}") from None
    model = RecurrentModel(config)
    try:
        model.load_state_dict(renamed, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{label}: the weights do not fit the inferred model ({_short(str(e))}); "
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
