"""The private view's parts: a structural copy of the module tree whose recurrent modules are
recording proxies (fused, fast or stepwise recurrence), sharing the model's parameters; the
embedding hook that makes an embedding's output a leaf for gradients."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from ..errors import ModelError
from .recurrence import layer_weights, run_module
from .discovery import recurrent_info
from .inputs import valid_mask


def _pack_like(padded: torch.Tensor, ref: PackedSequence) -> PackedSequence:
    """Pack ``padded`` (N, T, H), original batch order, exactly as ``ref`` is packed."""
    bs = ref.batch_sizes
    # lengths in sorted order: sequence j (sorted) is present at step t iff j < batch_sizes[t]
    sorted_len = (torch.arange(padded.shape[0])[:, None] < bs[None, :]).sum(1)
    src = padded if ref.sorted_indices is None else padded.index_select(0, ref.sorted_indices.to(padded.device))
    t_len = bs.shape[0]
    keep = valid_mask(sorted_len, len(sorted_len), t_len, padded.device).T  # (T, N) in sorted order
    data = src[:, :t_len].transpose(0, 1)[keep]  # step-major, as packed data is laid out
    return PackedSequence(data, bs, ref.sorted_indices, ref.unsorted_indices)


# ----------------------------------------------------------------------------- private view


@dataclass
class EmbedSpec:
    """What the embedding hook does on one run of a token model (caller's row order).

    ``mode="grad"``: the embedding output E of x becomes a leaf tensor to differentiate by.
    ``mode="path"``: it is replaced by the point ``Eb + alpha * (E - Eb)`` of the straight path
    from the baseline embedding ``Eb`` (the embedding of ``base_ids``, or zeros when
    ``base_ids`` is None) to E, with ``Eb = E`` on padding (``valid`` False).
    """

    mode: str                          # "grad" | "path"
    valid: torch.Tensor                # (n, T) bool
    base_ids: torch.Tensor | None = None
    alphas: torch.Tensor | None = None  # (n,), or (n, T): one point per step (masks)


class Session:
    """Per-call state shared by the proxies of one view: what to record and what was recorded."""

    def __init__(self, recurrence: str, record: bool = False, probe_name: str | None = None):
        self.recurrence = recurrence  # "fused" | "fast" | "stepwise" (recurrence.RECURRENCES)
        self.record = record
        self.probe_name = probe_name
        self.probe: torch.Tensor | None = None
        self.records: dict[str, dict[str, torch.Tensor]] = {}
        self.perm: torch.Tensor | None = None   # rows as the model sees them (sorted), or None
        self.inv: torch.Tensor | None = None
        self.embed: EmbedSpec | None = None
        self.embed_shape: tuple[int, ...] | None = None
        self.embed_leaf: torch.Tensor | None = None
        self.embed_delta: torch.Tensor | None = None
        self.embed_mod: nn.Module | None = None      # the embedding that reads the ids (runs by length)
        self.group: tuple[torch.Tensor, torch.Tensor, int] | None = None  # (all ids, rows, steps) of one length
        # optional stand-in for run_module (unrolled recurrences): runner(name, info, weights, x, hx, mask,
        # record) -> run_module's tuple, or None to run the recurrence as usual (see rnnviz_core.restart)
        self.runner: Callable | None = None
        # optional callable(proxy, input, hx) -> the fused module's result, or None to run it
        # as usual (used by rnnviz_core.resume to restart a recurrence from cached states)
        self.fused_hook: Callable | None = None


_FORWARD_HOOK_DICTS = ("_forward_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                       "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs")
_BACKWARD_HOOK_DICTS = ("_backward_hooks", "_backward_pre_hooks")


def _plain_rnn_class(m: nn.RNNBase) -> type:
    """The module's own class, below the one torch.nn.utils.parametrize injects."""
    from torch.nn.utils import parametrize

    cls = type(m)
    return cls.__bases__[0] if parametrize.is_parametrized(m) else cls


def _called_twice(name: str) -> ModelError:
    return ModelError(
        f"The model runs its recurrent module '{name}' more than once in one forward pass (on two "
        "inputs, or in a loop). rnnviz shows one call's states per module and cannot tell which call "
        "to show, so it does not trace this model. Give each call its own module, or trace a model "
        "whose forward runs each recurrent module once."
    )


class _RecurrentProxy(nn.Module):
    """Stands in for one nn.RNN/GRU/LSTM inside the private view; same inputs, same outputs.

    The user's forward hooks and pre-hooks registered on the recurrent module run here, on
    every engine, exactly once per call (the fused copy inside has none).
    """

    def __init__(self, name: str, orig: nn.RNNBase, session: Session, device, dtype):
        super().__init__()
        object.__setattr__(self, "_orig", orig)
        for key in _FORWARD_HOOK_DICTS:
            if hasattr(orig, key):
                self.__dict__[key] = getattr(orig, key)
        self.rv_name = name
        self.rv_info = recurrent_info(name, orig)
        self.rv_session = session
        if session.recurrence == "fused":
            fused = object.__new__(_plain_rnn_class(orig))  # no copy.copy: parametrized modules refuse it
            fused.__dict__.update(orig.__dict__)
            fused.__dict__["_parameters"] = {
                wn: getattr(orig, wn).detach().to(device=device, dtype=dtype) for wn in orig._flat_weights_names
            }
            fused.__dict__["_modules"] = OrderedDict()
            fused.__dict__["training"] = False
            for key in _FORWARD_HOOK_DICTS + _BACKWARD_HOOK_DICTS:
                if key in fused.__dict__:
                    fused.__dict__[key] = OrderedDict()
            fused._init_flat_weights()
            object.__setattr__(self, "_fused", fused)
        else:
            nd = self.rv_info.num_directions
            self.rv_weights = {
                (layer, d): layer_weights(orig, layer, d == 1, device, dtype)
                for layer in range(orig.num_layers)
                for d in range(nd)
            }

    def __getattr__(self, name):  # attributes the model may read (hidden_size, batch_first, ...)
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(object.__getattribute__(self, "_orig"), name)

    def flatten_parameters(self) -> None:  # models often call this; nothing to do here
        return None

    def forward(self, input, hx=None):
        info, session = self.rv_info, self.rv_session
        if self.rv_name in session.records:
            raise _called_twice(self.rv_name)
        if session.recurrence == "fused":
            return self._forward_fused(input, hx)
        packed = isinstance(input, PackedSequence)
        unbatched = False
        lengths = None
        if packed:
            x, lengths = pad_packed_sequence(input, batch_first=True)  # original batch order
        else:
            x = input
            if x.dim() == 2:
                unbatched = True
                x = x.unsqueeze(0 if info.batch_first else 1)
                if hx is not None:
                    hx = tuple(h.unsqueeze(1) for h in hx) if isinstance(hx, tuple) else hx.unsqueeze(1)
            if not info.batch_first:
                x = x.transpose(0, 1)
        if x.shape[-1] != info.input_size:  # PyTorch's own words, so failures read the same on every path
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {info.input_size}, got {x.shape[-1]}")
        probe = session.probe if session.probe_name == self.rv_name else None
        if probe is not None and probe.shape[:2] != x.shape[:2]:
            probe = probe[:, : x.shape[1]]
        mask = None if lengths is None else valid_mask(lengths, x.shape[0], x.shape[1], x.device)
        done = None
        if session.runner is not None and probe is None:
            done = session.runner(self.rv_name, info, self.rv_weights, x, hx, mask, session.record)
        output, h_n, c_n, recs = done if done is not None else run_module(
            info, self.rv_weights, x, hx, mask, probe=probe, record=session.record, recurrence=session.recurrence
        )
        session.records[self.rv_name] = {"out": output, "lengths": lengths, **recs}
        if packed:
            out_obj = _pack_like(output, input)
        else:
            out_obj = output if info.batch_first else output.transpose(0, 1)
            if unbatched:
                out_obj = out_obj.squeeze(0 if info.batch_first else 1)
                h_n = h_n.squeeze(1)
                c_n = None if c_n is None else c_n.squeeze(1)
        return out_obj, ((h_n, c_n) if info.mode == "LSTM" else h_n)

    def _forward_fused(self, input, hx):
        info = self.rv_info
        hook = self.rv_session.fused_hook
        result = hook(self, input, hx) if hook is not None else None
        if result is None:
            result = object.__getattribute__(self, "_fused")(input, hx)
        out, lengths = result[0], None
        if isinstance(out, PackedSequence):
            out, lengths = pad_packed_sequence(out, batch_first=True)
        else:
            if out.dim() == 2:  # unbatched input
                out = out.unsqueeze(0 if info.batch_first else 1)
            if not info.batch_first:
                out = out.transpose(0, 1)
        self.rv_session.records[self.rv_name] = {"out": out, "lengths": lengths}
        return result


def _embedding_leaf(mod: nn.Module, E: torch.Tensor, spec: EmbedSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The leaf to differentiate by and its delta, for the embedding output ``E`` (caller's rows)."""
    if spec.mode == "grad":
        return E.clone().requires_grad_(True), E
    if spec.base_ids is None:
        Eb = torch.zeros_like(E)
    else:
        Eb = mod.forward(spec.base_ids.to(E.device)).detach().to(E.dtype)  # no hooks
    Eb = torch.where(spec.valid.to(E.device)[..., None], Eb, E)
    delta = E - Eb
    a = spec.alphas.to(device=E.device, dtype=E.dtype)      # (n,) or per step (n, T)
    a = a[:, None, None] if a.dim() == 1 else a[..., None]
    leaf = (Eb + a * delta).requires_grad_(True)
    return leaf, delta


def embedding_hook(session: Session):
    """Forward hook for the view's copies of nn.Embedding: see :class:`EmbedSpec`."""

    def hook(mod, args, out):
        spec = session.embed
        if spec is None or not args:
            return None
        ids = args[0]
        if not (isinstance(ids, torch.Tensor) and not ids.is_floating_point()
                and tuple(ids.shape) == session.embed_shape and out.dim() == 3):
            return None
        group = session.group  # (full ids, rows, steps) when the batch runs one length at a time
        if group is not None and (session.embed_mod is None or session.embed_mod is mod):
            full_ids, rows, steps = group
            if session.embed_leaf is None:  # one leaf for the whole batch; each length reads its slice
                E = mod.forward(full_ids.to(out.device)).detach().to(out.dtype)  # no hooks
                session.embed_leaf, session.embed_delta = _embedding_leaf(mod, E, spec)
                session.embed_mod = mod
            return session.embed_leaf.index_select(0, rows.to(out.device))[:, :steps]
        if session.embed_leaf is not None:
            raise ModelError(
                "Two embeddings of the model read the token ids, so rnnviz cannot tell which one's output "
                "to attribute to. Use grad_norm or grad_x_state, which attribute to the recurrent states."
            )
        E = out.detach()
        if session.inv is not None:
            E = E.index_select(0, session.inv.to(E.device))   # caller's row order
        leaf, delta = _embedding_leaf(mod, E, spec)
        session.embed_leaf, session.embed_delta = leaf, delta
        return leaf if session.perm is None else leaf.index_select(0, session.perm.to(leaf.device))

    return hook


def copy_tree(module: nn.Module, prefix: str, session: Session, device, dtype, memo: dict) -> nn.Module:
    key = id(module)
    if key in memo:
        return memo[key]
    if isinstance(module, nn.RNNBase):
        new = _RecurrentProxy(prefix, module, session, device, dtype)
    else:
        new = object.__new__(type(module))  # no copy.copy: parametrized modules refuse to be copied
        d = new.__dict__
        d.update(module.__dict__)
        d["training"] = False
        d["_parameters"] = {
            k: (None if p is None else p.detach().to(device=device, dtype=dtype if p.is_floating_point() else p.dtype))
            for k, p in module._parameters.items()
        }
        d["_buffers"] = {
            k: (None if b is None else b.to(device=device)) for k, b in module._buffers.items()
        }
        d["_modules"] = {
            k: (None if v is None else copy_tree(v, f"{prefix}.{k}" if prefix else k, session, device, dtype, memo))
            for k, v in module._modules.items()
        }
        for k in _BACKWARD_HOOK_DICTS:  # rnnviz's gradients are the forward's own derivative
            if k in d:
                d[k] = OrderedDict()
        if isinstance(module, nn.Embedding):
            d["_forward_hooks"] = OrderedDict(module._forward_hooks)  # the user's first, then rnnviz's
            d["_forward_hooks"][-1] = embedding_hook(session)
    memo[key] = new
    return new
