"""A failing forward explained: feature count, token ids, lengths, sorting, number types."""
from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ..errors import MismatchError, ModelError, RnnvizError
from .inputs import LengthsSlot, embeddings, is_tokens, model_dtype


# Shape errors from the first layer that reads x, in PyTorch's words: (pattern, group of the
# size expected, group of the size given).
_SHAPE_ERRORS = (
    (re.compile(r"input\.size\(-1\) must be equal to input_size\. Expected (\d+), got (\d+)"), 1, 2),
    (re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)"), 3, 2),
    (re.compile(r"expected input\[[^\]]*\] to have (\d+) channels, but got (\d+) channels"), 1, 2),
    (re.compile(r"normalized_shape=\[(\d+)\], expected input with shape \[\*, (\d+)\]"), 1, 2),
)


def describe_tensor(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"{str(v.dtype).replace('torch.', '')} {list(v.shape)}"
    if isinstance(v, (tuple, list)):
        return f"{type(v).__name__} of {len(v)}"
    return type(v).__name__


def explain_failure(exc: Exception, model: nn.Module, xt: torch.Tensor, given: torch.Tensor | None,
                     passed: torch.Tensor | None, slot: LengthsSlot | None) -> RnnvizError:
    """A message for a failed forward that names its real cause (features, tokens, lengths, ...)."""
    msg = f"{type(exc).__name__}: {exc}".strip()
    low = str(exc).lower()
    tokens = is_tokens(xt)
    call = f"x ({describe_tensor(xt)})"
    if passed is not None:
        call += f" and the lengths as {slot.where}"
    head = f"Running the model on these sequences failed ({msg}). rnnviz called its forward with {call}. "
    embs = embeddings(model)
    # --- token ids
    if tokens and "index out of range" in low and embs:
        n_emb = embs[0][1].num_embeddings
        lo, hi = int(xt.min()), int(xt.max())
        return MismatchError(
            f"x holds token ids from {lo} to {hi}, but the model's embedding has {n_emb} entries "
            f"(ids 0 to {n_emb - 1}). Check that the data was encoded with the model's vocabulary.",
            code="token_range", field="x")
    if tokens and not embs:
        return MismatchError(
            "x is an integer array [sequences, steps], which rnnviz reads as token ids, but the model has "
            "no nn.Embedding to read them and its forward failed on them. Pass features as a float array "
            f"[sequences, steps, features] (e.g. x[..., None].astype('float32')). ({msg})",
            code="dtype", field="x")
    if not tokens and embs and ("indices" in low or "long, int" in low or "scalar type long" in low):
        return MismatchError(
            "The model embeds token ids (it has an nn.Embedding), but x holds floats. Pass the token ids "
            f"as an integer array [sequences, steps]. ({msg})", code="dtype", field="x")
    # --- feature count
    for pattern, ge, gg in _SHAPE_ERRORS:
        m = pattern.search(str(exc))
        if m:
            expected, got = int(m.group(ge)), int(m.group(gg))
            if not tokens and got == xt.shape[-1] and expected != got:
                return MismatchError(
                    f"Running the model on these sequences failed: the model expects {expected} feature(s) "
                    f"per step, but the data has {got}. Check that the data has the feature columns the "
                    "model was trained on, in the same order.", code="feature_count", field="x")
            return ModelError(head + f"A layer inside the model expects inputs of size {expected} but got "
                              f"{got}; the data has {xt.shape[-1] if not tokens else 'one token'} per step.")
    # --- lengths and sorting
    if "sorted in decreasing order" in low or "enforce_sorted" in low:
        return ModelError(head + "The model packs its sequences with enforce_sorted=True, but they did not reach "
                          "it sorted by length. rnnviz sorts each batch when it passes the lengths to the "
                          "forward; if the model takes them under another name, pass lengths_arg='<name>'.",
                          code="lengths", field="lengths")
    missing = re.search(r"missing (\d+ )?required (positional |keyword-only )?arguments?: '(\w+)'", str(exc))
    if isinstance(exc, TypeError) and missing:
        name = missing.group(3)
        return ModelError(
            f"The model's forward needs an argument '{name}' that rnnviz does not know how to give ({msg}). "
            f"If '{name}' is the sequence lengths, pass lengths_arg='{name}' (and lengths=); rnnviz calls the "
            "forward with x and the lengths only.", code="lengths", field="lengths")
    if passed is None and slot is not None and given is None and (
            "none" in low or "len" in low or "pack" in low):
        return ModelError(head + f"The forward takes the lengths as {slot.where} but none were given, so it ran "
                          "with its default. Pass lengths= (one per sequence).", code="lengths", field="lengths")
    if given is not None and slot is None and ("len" in low or "pack" in low):
        return ModelError(head + "Lengths were given but the forward has no parameter rnnviz recognises for them; "
                          "pass lengths_arg='<name of the parameter>'.", code="lengths", field="lengths")
    if "length" in low or "pack" in low:
        return ModelError(head + "The error is about the sequence lengths: check that lengths holds one whole "
                          "number per sequence, between 1 and the padded length.", code="lengths", field="lengths")
    if "dtype" in low or "scalar type" in low or "expected both" in low:
        return ModelError(head + f"The error is about number types: x was passed as {xt.dtype}, the model's "
                          f"weights are {model_dtype(model)}.", code="dtype", field="x")
    return ModelError(head + "Check that the data is what the model was trained on (features, their order, "
                      "lengths).")
