"""Find the recurrent modules of a model (``nn.RNN``/``nn.GRU``/``nn.LSTM``), looking through wrappers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..errors import ModelError
from .recurrence import GATES



@dataclass(frozen=True)
class RecurrentInfo:
    """What one recurrent module in the model is.

    ``name`` is its qualified name in the model ("rnn", "encoder.lstm"); ``mode`` is PyTorch's
    ("GRU", "LSTM", "RNN_TANH", "RNN_RELU").
    """

    name: str
    mode: str
    num_layers: int
    bidirectional: bool
    hidden_size: int
    proj_size: int
    input_size: int
    batch_first: bool

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def state_size(self) -> int:
        """Size of h per direction (``proj_size`` for a projected LSTM)."""
        return self.proj_size or self.hidden_size

    @property
    def output_size(self) -> int:
        """Size of the module's per-step output (directions concatenated)."""
        return self.state_size * self.num_directions

    @property
    def gates(self) -> tuple[str, ...]:
        return GATES[self.mode]

    @property
    def kinds(self) -> tuple[str, ...]:
        """Every per-step array the trace holds for one layer and direction."""
        return ("h", "c") + self.gates if self.mode == "LSTM" else ("h",) + self.gates

    def kind_size(self, kind: str) -> int:
        return self.state_size if kind == "h" else self.hidden_size

    def describe(self) -> str:
        cell = {"GRU": "GRU", "LSTM": "LSTM", "RNN_TANH": "RNN (tanh)", "RNN_RELU": "RNN (ReLU)"}[self.mode]
        bits = [f"{self.num_layers} layer{'s' if self.num_layers > 1 else ''}", f"{self.hidden_size} units"]
        if self.bidirectional:
            bits.append("bidirectional")
        if self.proj_size:
            bits.append(f"projected to {self.proj_size}")
        return f"{cell} ({', '.join(bits)})"


def recurrent_info(name: str, m: nn.RNNBase) -> RecurrentInfo:
    return RecurrentInfo(
        name=name,
        mode=m.mode,
        num_layers=m.num_layers,
        bidirectional=m.bidirectional,
        hidden_size=m.hidden_size,
        proj_size=getattr(m, "proj_size", 0) or 0,
        input_size=m.input_size,
        batch_first=m.batch_first,
    )



# ----------------------------------------------------------------------------- the model


_WRAPPERS: tuple[type, ...] = (nn.DataParallel, nn.parallel.DistributedDataParallel)


def unwrap_model(model: Any) -> Any:
    """The module inside ``nn.DataParallel`` / ``DistributedDataParallel`` wrappers (else ``model``).

    The wrappers only split a batch over devices; rnnviz runs the wrapped module itself, so
    module names read as the user wrote them ("rnn", not "module.rnn").
    """
    while isinstance(model, _WRAPPERS):
        model = model.module
    return model


def find_recurrent(model: nn.Module) -> list[RecurrentInfo]:
    """The recurrent modules of ``model`` in registration order; the last is "the last"."""
    model = unwrap_model(model)
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"Expected a PyTorch model (torch.nn.Module), got {type(model).__name__}. "
            "Load one with rv.load_model(path) or pass your own nn.Module."
        )
    found = [recurrent_info(name, m) for name, m in model.named_modules() if isinstance(m, nn.RNNBase)]
    if not found:
        raise ModelError(
            "This model contains no recurrent module (nn.RNN, nn.GRU or nn.LSTM), so there are no "
            "hidden states to show. rnnviz works with models built from those PyTorch modules."
        )
    if any(info.name == "" for info in found):
        raise ModelError(
            "The model is a bare nn.RNN/nn.GRU/nn.LSTM, which returns states rather than one output per "
            "sequence. Wrap it in a module whose forward returns the prediction (e.g. a linear head on the last state)."
        )
    return found
