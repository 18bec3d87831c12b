"""infer_config: a ModelConfig read from a state dict's names and shapes alone."""
from __future__ import annotations

import re
from typing import Mapping, Sequence

import torch

from . import config as _limits  # read at call time: a limit set on the module holds
from ..errors import ModelError, ModelFileError
from .config import GATE_MULT, ModelConfig


def strip_prefixes(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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
    if present != list(range(len(present))) or num_layers > _limits.MAX_LAYERS:
        raise ModelFileError(
            f"The recurrent module '{name}' has weights for layers {_layer_list(present)}, which is not a "
            f"stack of layers 0, 1, 2, ... (at most {_limits.MAX_LAYERS}); the file is damaged or was edited. "
            f"Re-save the model's state dict.")
    if hidden > _limits.MAX_UNITS or rnn_in > max(_limits.MAX_INPUTS, _limits.MAX_UNITS):
        raise ModelFileError(f"The recurrent module '{name}' has {hidden:,} units reading {rnn_in:,} inputs, "
                             f"more than rnnviz accepts ({_limits.MAX_UNITS:,} units).")
    g = GATE_MULT[cell] * hidden
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
    sd = strip_prefixes(state_dict)
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
