"""``rv.unit_dictionary``: what drives each unit and each gate to its limits.

For every unit of the state ``h`` and of each sigmoid gate (GRU ``r``, ``z``; LSTM ``i``,
``f``, ``o``) of one layer, over every real step of every sequence:

* **its limit**: a state unit saturates at ``+1`` (``h >= threshold``) or ``-1``
  (``h <= -threshold``); a gate is ``open`` (``> high``) or ``shut`` (``< low``), with the
  thresholds of :mod:`rnnviz_core.saturation`. A row describes the limit the unit reaches more
  often (``limit``); ``share_at_limit`` is the share of all real steps spent there and
  ``share_other_limit`` at the other one.
* **the input pattern before it**: the steps where the unit is at its limit are its *events*;
  the window of ``window`` steps ending at each event (the unit can only respond to what it has
  read) is averaged per feature, as a z-score against that feature over all real steps:
  ``pattern`` is float [window, F], row ``window - 1`` the event's own step. For token models
  ``words`` lists the words most over-represented at and just before the events (``lift``: how
  many times more often than in the data as a whole; only words seen at least 3 times there).
  ``responds_to`` says the strongest of these in a sentence.
* **class selectivity**: per sequence the share of its real steps at the limit; the mean of that
  share per class (``y`` if given, else the predicted class) gives
  ``(mu_max - mu_rest) / (mu_max + mu_rest)`` (Morcos et al. 2018: 0 = no preference, 1 = only
  one class), ``selective_for`` the class of ``mu_max``.
* **output correlation**: Pearson's r over sequences between the unit's value at the last real
  step and each output (class logit, or the regression output); the one with the largest |r|
  (``output_correlation``, ``correlated_with``).

Sequences stream through in batches, so the dictionary of 100,000 sequences needs the memory of
one batch's trace.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .arrays import valid_mask
from .engine import find_recurrent, is_tokens, prepare, unwrap_model
from .errors import InputError
from .saturation import DEFAULT_HIGH, DEFAULT_LOW, DEFAULT_THRESHOLD, SIGMOID_GATES
from .trace import trace

__all__ = ["unit_dictionary", "unit_entry", "MIN_EVENTS"]

_BATCH_ELEMENTS = 2**23  # trace elements per batch (about 32 MB of float32 per kind)
_MIN_WORD_COUNT = 3
#: fewer events than this and ``responds_to`` says so instead of naming a pattern
MIN_EVENTS = 5


def _limits(kind: str, arr: np.ndarray, thr: float, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) event masks of one kind's values [n, T, H] (NaN is neither)."""
    with np.errstate(invalid="ignore"):
        if kind == "h":
            return arr >= thr, arr <= -thr
        return arr > high, arr < low


def _offset_words(offset: int) -> str:
    return "at the step" if offset == 0 else ("1 step before" if offset == 1 else f"{offset} steps before")


def unit_dictionary(
    model: nn.Module,
    x: Any,
    lengths: Any = None,
    *,
    y: Any = None,
    layer: int = -1,
    module: int = -1,
    kinds: Sequence[str] | None = None,
    window: int = 5,
    threshold: float = DEFAULT_THRESHOLD,
    low: float = DEFAULT_LOW,
    high: float = DEFAULT_HIGH,
    feature_names: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    vocabulary: Sequence[str] | None = None,
    top_words: int = 5,
    batch_size: int | None = None,
    device: str | torch.device | None = "auto",
    lengths_arg: str | None = None,
    output: int | str | Callable | None = None,
) -> pd.DataFrame:
    """One row per unit of the state and of each sigmoid gate: what drives it to its limit.

    Parameters
    ----------
    model, x, lengths : as in :func:`rnnviz_core.trace` (x [N, T, F] or token ids [N, T]).
    y : true classes [N] for the class selectivity (default: the predicted class).
    layer, module : which recurrent layer (default the last layer of the last module).
    kinds : "h" and gate letters (default "h" and the module's sigmoid gates).
    window : steps in the input window that ends at each event.
    threshold, low, high : saturation thresholds (see :mod:`rnnviz_core.saturation`).
    feature_names, class_names, vocabulary : names used in ``responds_to``, ``selective_for``,
        ``correlated_with`` and ``words`` (a model's ``vocabulary`` attribute is used if present).
    top_words : token models: how many words ``words`` lists.
    batch_size : sequences per batch (default: about 8M trace elements each).

    Returns
    -------
    DataFrame, one row per (direction, kind, unit): ``layer``, ``direction``, ``kind``, ``unit``,
    ``name`` ("z 17"), ``limit``, ``share_at_limit``, ``share_other_limit``, ``n_events``,
    ``n_sequences`` (with at least one event), ``pattern`` (float [window, F] z-scores, or None
    for token models / no events), ``words`` (token models: list of ``(word, offset, lift,
    count)``), ``responds_to`` (a sentence, "" without events), ``selectivity``,
    ``selective_for``, ``output_correlation``, ``correlated_with``.
    """
    model = unwrap_model(model)
    if not isinstance(window, (int, np.integer)) or isinstance(window, bool) or window < 1:
        raise InputError(f"window must be a whole number of steps, 1 or more; got {window!r}.", field="window")
    xt, lt = prepare(model, x, lengths, torch.device("cpu"))
    n, T = xt.shape[:2]
    L = np.full(n, T, dtype=np.int64) if lt is None else lt.numpy().astype(np.int64)
    tokens = is_tokens(xt)
    infos = find_recurrent(model)
    try:
        info = infos[module]
    except IndexError:
        raise InputError(f"module {module} is out of range: the model has {len(infos)} recurrent module(s).",
                         field="module") from None
    if kinds is None:
        kinds = ("h",) + tuple(SIGMOID_GATES.get(info.mode, ()))
    bad = [k for k in kinds if k != "h" and k not in SIGMOID_GATES.get(info.mode, ())]
    if bad:
        raise InputError(f"kinds may hold 'h' and this {info.mode}'s sigmoid gates "
                         f"{list(SIGMOID_GATES.get(info.mode, ()))}; got {bad}.", field="kinds")
    dirs = ("fwd", "bwd")[: info.num_directions]
    vocab = list(vocabulary) if vocabulary is not None else getattr(model, "vocabulary", None)
    xs = xt.numpy()
    F = 1 if tokens else xs.shape[2]
    W = int(window)
    valid = valid_mask(L, T)
    if not tokens:
        pts = xs[valid].astype(np.float64)
        f_mean, f_std = pts.mean(0), pts.std(0)
        f_std[f_std == 0] = 1.0
        V = 0
    else:
        V = int(max(xs.max() + 1, len(vocab) if vocab else 0))
        base_counts = np.bincount(xs[valid].ravel(), minlength=V).astype(np.float64)
    per_step = sum(info.kind_size(k) for k in kinds) * len(dirs)
    bs = int(batch_size) if batch_size else int(max(1, min(n, _BATCH_ELEMENTS // max(1, T * per_step))))
    keys = [(d, k) for d in dirs for k in kinds]
    size = {key: info.kind_size(key[1]) for key in keys}
    up_count = {key: np.zeros(size[key]) for key in keys}
    lo_count = {key: np.zeros(size[key]) for key in keys}
    seq_up = {key: np.zeros((n, size[key]), np.float32) for key in keys}   # share of a sequence's steps
    seq_lo = {key: np.zeros((n, size[key]), np.float32) for key in keys}
    last_val = {key: np.zeros((n, size[key]), np.float32) for key in keys}
    # window sums per side: numeric [H, W, F]; tokens: word counts [H, W, V] for offsets 0..W-1
    wsum = {(key, side): np.zeros((size[key], W, F if not tokens else V)) for key in keys for side in (0, 1)}
    wcount = {(key, side): np.zeros((size[key], W)) for key in keys for side in (0, 1)}  # events with t >= o
    logits = []
    for s in range(0, n, bs):
        e = min(n, s + bs)
        tr = trace(model, xt[s:e], None if lt is None else lt[s:e], gates=True, device=device,
                   lengths_arg=lengths_arg, output=output)
        logits.append(np.asarray(tr.logits, dtype=np.float64).reshape(e - s, -1))
        Lb = L[s:e]
        xb = xs[s:e]
        for key in keys:
            d, k = key
            arr = np.asarray(tr.get(k, layer=layer, direction=d, module=module))  # (b, T, H)
            up, lo = _limits(k, arr, threshold, low, high)
            up_count[key] += up.sum((0, 1))
            lo_count[key] += lo.sum((0, 1))
            seq_up[key][s:e] = up.sum(1) / Lb[:, None]
            seq_lo[key][s:e] = lo.sum(1) / Lb[:, None]
            last_val[key][s:e] = arr[np.arange(e - s), Lb - 1]
            for side, m in ((0, up), (1, lo)):
                acc = wsum[(key, side)]
                mf = m.astype(np.float32)
                for o in range(W):
                    # events at step t read the input at t - o (nothing before step 0)
                    if o >= T:
                        break
                    ev = mf[:, o:]                                   # (b, T-o, H) events at t >= o
                    wcount[(key, side)][:, o] += ev.sum((0, 1))
                    if tokens:
                        src = xb[:, : T - o]                         # (b, T-o) ids at t - o
                        ids = np.broadcast_to(src[..., None], ev.shape)
                        hit = ev > 0
                        h_idx = np.broadcast_to(np.arange(ev.shape[2]), ev.shape)[hit]
                        np.add.at(acc[:, o], (h_idx, ids[hit]), 1.0)
                    else:
                        src = xb[:, : T - o].astype(np.float32)      # (b, T-o, F)
                        acc[:, o] += ev.reshape(-1, ev.shape[2]).T @ src.reshape(-1, F)  # (H, F)
    logit_all = np.concatenate(logits, 0)                            # (N, K)
    n_steps = float(valid.sum())
    # classes for selectivity
    if y is not None:
        cls = np.asarray(y).reshape(-1)
        if cls.shape[0] != n:
            raise InputError(f"y holds {cls.shape[0]} values but there are {n} sequences.", field="y")
    elif logit_all.shape[1] >= 2:
        cls = logit_all.argmax(1)
    else:
        cls = None
    names_c = list(class_names) if class_names is not None else getattr(model, "class_names", None)
    rows = []
    for key in keys:
        d, k = key
        H = size[key]
        for h in range(H):
            side = 0 if up_count[key][h] >= lo_count[key][h] else 1
            cnt = (up_count[key] if side == 0 else lo_count[key])[h]
            other = (lo_count[key] if side == 0 else up_count[key])[h]
            limit = ("+1" if side == 0 else "-1") if k == "h" else ("open" if side == 0 else "shut")
            share_seq = (seq_up[key] if side == 0 else seq_lo[key])[:, h]
            row = {"layer": layer if layer >= 0 else info.num_layers + layer, "direction": d, "kind": k,
                   "unit": h, "name": f"{k} {h}" if len(dirs) == 1 else f"{k} {h} ({d})", "limit": limit,
                   "share_at_limit": cnt / n_steps, "share_other_limit": other / n_steps, "n_events": int(cnt),
                   "n_sequences": int((share_seq > 0).sum()), "pattern": None, "words": None, "responds_to": ""}
            acc = wsum[(key, side)][h]                               # (W, F) or (W, V)
            if cnt > 0:
                wc = wcount[(key, side)][h]                          # (W,)
                if tokens:
                    row["words"], row["responds_to"] = _words(acc, wc, base_counts, vocab, top_words)
                else:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        z = (acc / wc[:, None] - f_mean[None, :]) / f_std[None, :]   # (W, F), row o = o steps back
                    row["pattern"] = z[::-1].astype(np.float32)      # rows: oldest offset first, the event last
                    row["responds_to"] = _numeric_sentence(z, feature_names, F)
                if cnt < MIN_EVENTS:
                    row["responds_to"] = f"too few events ({int(cnt)}) to say"
            row.update(_selectivity(share_seq, cls, names_c))
            row.update(_correlation(last_val[key][:, h], logit_all, names_c))
            rows.append(row)
    return pd.DataFrame(rows)


def _numeric_sentence(z: np.ndarray, feature_names: Sequence[str] | None, F: int) -> str:
    """The window cell (offset, feature) with the largest |z|, in words."""
    if not np.isfinite(z).any():
        return ""
    o, f = np.unravel_index(np.nanargmax(np.abs(z)), z.shape)
    name = feature_names[f] if feature_names is not None and f < len(feature_names) else f"feature {f}"
    v = z[o, f]
    return f"{name} {'high' if v > 0 else 'low'} {_offset_words(int(o))} ({v:+.1f} sd)"


def _words(acc: np.ndarray, wc: np.ndarray, base: np.ndarray, vocab, top: int):
    """The words most over-represented at offsets 0..W-1 before the events: (word, offset, lift, count)."""
    total = base.sum()
    p_base = np.where(base >= _MIN_WORD_COUNT, base / max(total, 1.0), np.nan)   # (V,)
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = (acc / np.maximum(wc[:, None], 1.0)) / p_base[None, :]          # (W, V)
    lift = np.where(acc >= 2, lift, np.nan)  # a word seen once before an event is no pattern
    flat = np.argsort(np.nan_to_num(lift, nan=-1.0), axis=None)[::-1]
    out = []
    for idx in flat[:top]:
        o, v = np.unravel_index(idx, lift.shape)
        if not np.isfinite(lift[o, v]) or lift[o, v] <= 1.0:
            break
        word = vocab[v] if vocab is not None and v < len(vocab) else f"id {v}"
        out.append((word, int(o), float(lift[o, v]), int(acc[o, v])))
    sentence = ", ".join(f"'{w}' {_offset_words(o)} (x{lf:.1f})" for w, o, lf, _ in out[:3])
    return out, sentence


def _selectivity(share: np.ndarray, cls: np.ndarray | None, names) -> dict:
    """Class selectivity index of the per-sequence shares at the limit."""
    res = {"selectivity": np.nan, "selective_for": None}
    if cls is None:
        return res
    labels = np.unique(cls)
    if labels.size < 2:
        return res
    mu = np.array([share[cls == c].mean() for c in labels])
    j = int(np.argmax(mu))
    rest = np.delete(mu, j).mean()
    if mu[j] + rest > 0:
        res["selectivity"] = float((mu[j] - rest) / (mu[j] + rest))
        c = labels[j]
        res["selective_for"] = names[int(c)] if names is not None and 0 <= int(c) < len(names) else str(c)
    return res


def _correlation(v: np.ndarray, logits: np.ndarray, names) -> dict:
    """Pearson r between the unit's last value and each output; the largest |r|."""
    best, which = np.nan, None
    v = v.astype(np.float64)
    if v.size >= 3 and np.ptp(v) > 0:
        for c in range(logits.shape[1]):
            out = logits[:, c]
            if np.ptp(out) == 0:
                continue
            r = float(np.corrcoef(v, out)[0, 1])
            if np.isfinite(r) and (not np.isfinite(best) or abs(r) > abs(best)):
                best = r
                which = ("output" if logits.shape[1] == 1 else
                         (names[c] if names is not None and c < len(names) else f"class {c}"))
    return {"output_correlation": best, "correlated_with": which}


def unit_entry(dictionary: pd.DataFrame, kind: str, unit: int, direction: str = "fwd") -> pd.Series:
    """The dictionary row of one unit (what a click on a heatmap row opens)."""
    hit = dictionary[(dictionary["kind"] == kind) & (dictionary["unit"] == unit)
                     & (dictionary["direction"] == direction)]
    if hit.empty:
        raise InputError(f"The dictionary has no unit {kind} {unit} ({direction}).", field="unit")
    return hit.iloc[0]
