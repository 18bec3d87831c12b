"""ModelConfig: what a model of the built-in family is (cell, sizes, encoder, head, readout, task),
with the limits every model file is checked against."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from ..errors import ModelError, ModelFileError

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
GATE_MULT = {"GRU": 3, "LSTM": 4, "RNN_TANH": 1, "RNN_RELU": 1}
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "none": nn.Identity}


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
                bad(f"The model setting {name} must be a whole number of at least 1, not {short_message(repr(v), 40)}.")
        for name in ("encoder_size", "vocab_size", "head_hidden", "proj_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                bad(f"The model setting {name} must be a whole number, not {short_message(repr(v), 40)}.")
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
            if getattr(self, name) not in ACTIVATIONS:
                bad(f"{name} must be one of {', '.join(ACTIVATIONS)}.")
        if self.head not in ("linear", "mlp"):
            bad(f"The head {self.head!r} is not supported; use 'linear' or 'mlp'.")
        if self.head == "mlp" and self.head_hidden < 1:
            bad("An mlp head needs head_hidden (its hidden width) of at least 1.")
        if self.task not in ("classification", "regression"):
            bad(f"The task {self.task!r} is not supported; use 'classification' or 'regression'.")
        if self.task == "classification" and self.num_outputs < 2:
            bad("A classification model needs at least 2 classes (num_outputs >= 2).")
        if self.readout not in READOUTS:
            bad(f"The readout {short_message(repr(self.readout), 40)} is not supported; use one of {', '.join(READOUTS)}.")
        if self.num_parameters > MAX_PARAMETERS:
            bad(f"These settings make a model of {self.num_parameters:,} numbers, more than the "
                f"{MAX_PARAMETERS:,} rnnviz accepts.")

    @property
    def num_parameters(self) -> int:
        """Weights and buffers a model with this config holds (arithmetic only, nothing built)."""
        out_w = self.proj_size or self.hidden_size                 # what each direction outputs
        d = 2 if self.bidirectional else 1
        g = GATE_MULT.get(self.cell, 1) * self.hidden_size
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


def short_message(msg: str, n: int = 200) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= n else msg[: n - 3] + "..."
