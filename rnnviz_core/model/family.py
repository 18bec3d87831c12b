"""The built-in family: RecurrentModel built from a ModelConfig; siblings with another readout or
class order that share the parameters."""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..arrays import valid_mask
from ..errors import InputError, ModelError
from .config import ACTIVATIONS, READOUTS, ModelConfig, short_message


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
            self.encoder_act = ACTIVATIONS[c.encoder_activation]()
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
                                      ACTIVATIONS[c.head_activation](),
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
                valid = valid_mask(torch.as_tensor(lengths).reshape(-1), x.shape[1], device=x.device)
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
        valid = valid_mask(lens, t, device=seq.device)[..., None]   # (N, T', 1)
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
        raise ModelError(f"The readout {short_message(repr(readout), 40)} is not supported; use one of "
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
