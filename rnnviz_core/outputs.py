"""From a model's outputs to classes, and every head reading from one run of the recurrence.

:func:`predicted_classes` is the one place where outputs become predicted classes: the index of
the largest output for ``[N, C]`` logits (C >= 2), and for a single-output binary classifier
(one logit read through a sigmoid, ``[N]`` or ``[N, 1]``) class 1 exactly when the logit is
above 0 (probability above 1/2)::

    predicted_classes(np.array([[0.2, 1.0], [3.0, -1.0]]))   # -> [1, 0]
    predicted_classes(np.array([-0.5, 2.0]), n_classes=2)    # -> [0, 1]

:func:`outputs_by_readout` gives a built-in-family model's output under every way its head can
read the sequence (:data:`~rnnviz_core.models.READOUTS`) from ONE run of its recurrent layers:
the readings differ only in what the head reads from the same per-step outputs, so the
start-up table of head readings costs one forward pass instead of one per reading.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["predicted_classes", "outputs_by_readout"]


def predicted_classes(out: Any, n_classes: int | None = None) -> np.ndarray | None:
    """Predicted class index per sequence [N] (int64), or None when the output names no class.

    Parameters
    ----------
    out : the model's outputs, ``[N, C]`` logits (or probabilities) with C >= 2, or one logit per
        sequence (``[N]`` or ``[N, 1]``).
    n_classes : how many classes the labels have. One logit with ``n_classes == 2`` is a binary
        classifier: class 1 when the logit is above 0, else class 0. One output with any other
        ``n_classes`` (None included) is a number, not a class: None.
    """
    arr = np.asarray(out)
    if arr.ndim == 0 or arr.ndim > 2 or len(arr) == 0:
        return None
    cols = 1 if arr.ndim == 1 else arr.shape[1]
    if cols >= 2:
        if n_classes is not None and n_classes != cols:
            return None
        return arr.argmax(1).astype(np.int64)
    if n_classes == 2:
        return (arr.reshape(len(arr)) > 0).astype(np.int64)
    return None


def outputs_by_readout(model, X: Any, lengths: Any = None, *, batch_size: int | None = None) -> dict[str, np.ndarray]:
    """The model's output under every head reading, from one run of its recurrent layers.

    Parameters
    ----------
    model : a :class:`~rnnviz_core.models.RecurrentModel` (built-in family); not changed.
    X, lengths : as for :func:`~rnnviz_core.trace.predict`.
    batch_size : sequences per chunk (default: the chunks :func:`~rnnviz_core.trace.predict` uses).

    Returns
    -------
    ``{readout: float32 array}`` for every key of :data:`~rnnviz_core.models.READOUTS`, each
    shaped as ``predict(with_readout(model, key), X, lengths)`` returns it. Each chunk reaches the
    model sorted longest first, as :func:`~rnnviz_core.trace.predict` passes it, and the head of
    each reading reads the same recurrent outputs the model's own forward computed.
    """
    from .engine import find_recurrent
    from .model.config import READOUTS
    from .model.family import RecurrentModel, with_readout
    from .trace import auto_batch, fused_per_step, prepare

    if not isinstance(model, RecurrentModel):
        raise TypeError("outputs_by_readout needs a model of rnnviz's built-in family.")
    xt, lt = prepare(model, X, lengths, torch.device("cpu"))
    n, t = xt.shape[:2]
    if lt is None:
        lt = torch.full((n,), t, dtype=torch.int64)
    bs = int(batch_size) if batch_size else auto_batch(n, t, fused_per_step(find_recurrent(model)))
    readers = {key: with_readout(model, key) for key in READOUTS}
    captured: dict = {}

    def keep(_mod, _inp, result):   # what the model's forward reads from its recurrent layers
        captured["out"] = result

    parts: dict[str, list] = {key: [] for key in READOUTS}
    was_training = model.training
    handle = model.rnn.register_forward_hook(keep)
    try:
        model.eval()
        with torch.no_grad():
            for s in range(0, n, bs):
                x, ln = xt[s:s + bs], lt[s:s + bs]
                perm = torch.argsort(ln, descending=True, stable=True)
                inv = torch.empty_like(perm)
                inv[perm] = torch.arange(len(perm))
                first = readers["last"](x.index_select(0, perm), ln.index_select(0, perm))
                seq, h = captured.pop("out")
                lens = ln.index_select(0, perm)
                for key, reader in readers.items():
                    o = first if key == "last" else _head(reader, seq, h, lens)
                    parts[key].append(o.index_select(0, inv).to(torch.float32))
    finally:
        handle.remove()
        model.train(was_training)
    return {key: torch.cat(p, 0).numpy() for key, p in parts.items()}


def _head(reader, seq, h, lens) -> torch.Tensor:
    """``reader``'s output from its recurrent layers' result (the end of its own forward)."""
    out = reader.head(reader._read(seq, h, lens))
    c = reader.config
    if c.task == "regression" and c.num_outputs == 1:
        out = out.squeeze(-1)
    return out
