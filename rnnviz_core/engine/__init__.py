"""The engine: run a user's model with its recurrent modules swapped for recording proxies.

PyTorch's ``nn.GRU``/``nn.LSTM``/``nn.RNN`` run a whole sequence as one fused operation that
returns each step's output but no gates, no LSTM cell states, and no autograd path through the
per-step outputs (the gradient of the final output with respect to ``output[:, t]`` is zero
for every step the head does not read). The engine therefore runs the user's model through a
*private view*: a structural copy of the module tree, in eval mode, that shares the model's
parameter storage (detached, so no parameter gradients are ever built) and has each recurrent
module replaced by a recording proxy (:mod:`.proxy`). The user's model object is never touched: no
``.eval()``, no hooks registered on it, no ``.to()``; a model shared by several threads stays
correct for all.

The view runs the model as the user's own call would, whichever way its recurrences run:

* lengths reach the forward parameter that takes them (:func:`lengths_slot`), each batch
  sorted longest first when they do (``pack_padded_sequence`` defaults to
  ``enforce_sorted=True``), results returned in the caller's order;
* the user's forward hooks and forward pre-hooks (on any module, recurrent ones included) run
  once per call, on the fused and the unrolled recurrences alike; backward hooks never run (the
  gradients rnnviz reports are the derivative of the forward as it is);
* a forward that calls the same recurrent module twice is refused (:mod:`.proxy`);
* a tuple output gives the one element shaped [N, C] or [N] unless ``output=`` picks one;
* a failing forward is reported with its cause (:mod:`.failures`): feature count
  (expected and given), token ids, lengths, sorting, number types.

Token ids ([N, T] integers) go to the model unchanged; for gradients with respect to the input,
a forward hook on the view's copy of the ``nn.Embedding`` that reads them makes its output a
leaf (:class:`EmbedSpec`).

A proxy runs in one of three ways (``recurrence=``; the keyword was called ``engine=`` before):

* ``"fused"``: it calls a copy of the original fused module (what the model itself does) and
  records the per-step output. Used for ``Trace.hidden`` and ``predict``.
* ``"fast"`` (:mod:`.recurrence`): the recurrence step by step with the module's own weights,
  exactly as the PyTorch docs write the equations, recording h, c and every gate; under
  autograd each layer is one node whose backward (back-propagation through time) is written by
  hand: no cuDNN backward (so gradients work in eval mode on GPU), no parameter gradients.
  Used for full traces and for gradients.
* ``"stepwise"``: the same loop with autograd recording every step: the slower reference the
  hand-written backward is tested against.

Both recomputing ways can add a zero ``probe`` to the last layer's state at every step, so
that ``autograd.grad(out, probe)`` is the total derivative d out / d h_t. The tests compare all
three with the fused modules on every configuration to 1e-5.

Layout (issue 20): :mod:`.discovery` (find the recurrent modules), :mod:`.inputs` (x, lengths,
the forward parameter that takes them, embeddings), :mod:`.recurrence` (the step-by-step
recurrence and its hand-written backward), :mod:`.proxy` (the private view's module copy and
proxies), :mod:`.failures` (a failing forward explained), :mod:`.lengthwise` (a model without a
lengths parameter run once per distinct length), :mod:`.view` (:class:`ModelView` and the
forwards). Every name below is importable from ``rnnviz_core.engine`` as before; the old module
paths ``rnnviz_core.recurrence`` and ``rnnviz_core.lengthwise`` are these modules.
"""
from __future__ import annotations

from .discovery import RecurrentInfo, find_recurrent, recurrent_info, unwrap_model
from .failures import describe_tensor, explain_failure
from .inputs import (LengthsSlot, check_batch_size, default_baseline_token, embeddings, is_tokens, lengths_slot,
                     model_dtype, prepare, takes_lengths, valid_mask)
from .proxy import EmbedSpec, Session, copy_tree, embedding_hook
from .recurrence import DIRECTIONS, GATES, RECURRENCES, layer_weights, pick_recurrence, run_module
from .view import ModelView, fused_forward, run_unrolled, unrolled_forward

__all__ = [
    "GATES",
    "DIRECTIONS",
    "RECURRENCES",
    "RecurrentInfo",
    "find_recurrent",
    "prepare",
    "unrolled_forward",
    "fused_forward",
    "takes_lengths",
    "lengths_slot",
    "LengthsSlot",
    "unwrap_model",
    "check_batch_size",
    "is_tokens",
    "embeddings",
    "default_baseline_token",
    "run_unrolled",
    "EmbedSpec",
    "ModelView",
    "valid_mask",
    "layer_weights",
    "run_module",
    "pick_recurrence",
    "recurrent_info",
    "model_dtype",
    "describe_tensor",
    "explain_failure",
    "Session",
    "copy_tree",
    "embedding_hook",
]
