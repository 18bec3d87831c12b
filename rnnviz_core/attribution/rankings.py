"""Rankings and dataset-level summaries of per-step contribution scores, as tidy DataFrames.

Every function takes the ``[N, T]`` array returned by :func:`rnnviz_core.contributions` (NaN at
and past each sequence's length; the lengths are read from the NaNs unless given) and returns a
pandas DataFrame with one row per observation, ready for a table or an Altair chart.

Positions
---------
* absolute position: the step index ``t`` (0 = first step);
* relative position: ``(t + 0.5) / L``, the centre of step ``t`` as a share of the sequence's
  length ``L`` (so every step of every sequence falls in exactly one of ``bins`` equal bins and
  long and short sequences can be compared); ``relative_position`` in top-k tables is
  ``t / (L - 1)`` instead (0 = first step, 1 = last step; 1 for a one-step sequence), which
  reads more naturally next to a step number.

Concentration
-------------
How much of a sequence's total ``|score|`` sits on a few steps:

* ``top_k_share`` = sum of the k largest ``|score|`` / sum of all ``|score|`` (1: everything on
  k steps; k/L: evenly spread);
* ``entropy`` = normalised entropy of ``p_t = |score_t| / sum |score|``, divided by ``log L``
  (0: everything on one step; 1: evenly spread). A one-step sequence has entropy 0.

Sequences with no more than k steps are trivially concentrated (share 1), and sequences whose
scores are all zero have no defined share (NaN); both are left out of the most/least
concentrated lists.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..arrays import valid_mask
from ..errors import InputError

__all__ = [
    "lengths_from_scores",
    "scores_frame",
    "top_steps",
    "mean_abs_by_position",
    "mean_abs_by_group",
    "concentration",
    "most_concentrated",
    "least_concentrated",
    "correctness",
    "shorten",
    "WORD_CHARS",
]

#: the longest word shown whole in a table or a sentence; longer ones are cut with an ellipsis
WORD_CHARS = 24


def shorten(text: Any, max_chars: int = WORD_CHARS) -> str:
    """``text`` on one line, cut to ``max_chars`` characters with "…" at the end when longer
    (never cut without the ellipsis); whitespace runs become one space."""
    s = " ".join(str(text).split())
    if max_chars < 2 or len(s) <= max_chars:
        return s
    return s[: max_chars - 1].rstrip() + "…"


# --------------------------------------------------------------------------------- helpers

def _scores(scores: Any) -> np.ndarray:
    s = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores,
                   dtype=np.float64)
    if s.ndim != 2:
        raise InputError(f"scores must be a 2-D array [sequences, steps], got shape {s.shape}.")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise InputError("scores is empty.")
    return s


def lengths_from_scores(scores: Any, lengths: Any = None) -> np.ndarray:
    """Valid length of each row: given, or the count of leading non-NaN scores."""
    s = _scores(scores)
    N, T = s.shape
    if lengths is not None:
        L = np.asarray(lengths)
        if L.shape != (N,):
            raise InputError(f"lengths must hold one number per sequence ({N}); got shape "
                             f"{L.shape}.")
        L = L.astype(np.int64)
        if ((L < 1) | (L > T)).any():
            raise InputError(f"lengths must be between 1 and {T}.")
        return L
    finite = ~np.isnan(s)
    L = np.where(finite.all(1), T, np.argmin(finite, 1)).astype(np.int64)
    if (L < 1).any():
        raise InputError(f"Sequence {int(np.flatnonzero(L < 1)[0])} has no score at its first "
                         "step; pass lengths= if the scores are not NaN-padded.")
    return L


def _ids(ids, N):
    if ids is None:
        return np.arange(N)
    ids = np.asarray(ids)
    if ids.shape != (N,):
        raise InputError(f"ids must hold one label per sequence ({N}); got shape {ids.shape}.")
    return ids


def _groups(groups, N, name):
    if isinstance(groups, pd.Series):
        name = groups.name if (name is None and groups.name is not None) else name
        groups = groups.to_numpy()
    g = np.asarray(groups)
    if g.shape != (N,):
        raise InputError(f"groups must hold one label per sequence ({N}); got shape {g.shape}.")
    return g, (name or "group")


# ------------------------------------------------------------------------------ tidy data

def scores_frame(scores: Any, *, method: str | None = None, ids: Sequence | None = None,
                 lengths: Any = None) -> pd.DataFrame:
    """One row per valid (sequence, step): columns ``seq, step, score, abs_score`` (+ ``method``)."""
    s = _scores(scores)
    N, T = s.shape
    L = lengths_from_scores(s, lengths)
    r, t = np.nonzero(valid_mask(L, T))
    df = pd.DataFrame({"seq": _ids(ids, N)[r], "step": t, "score": s[r, t],
                       "abs_score": np.abs(s[r, t])})
    if method is not None:
        df.insert(0, "method", method)
    return df


def top_steps(scores: Any, k: int = 5, *, by: str = "score", lengths: Any = None,
              ids: Sequence | None = None, words: Sequence[Sequence[str]] | None = None) -> pd.DataFrame:
    """The k highest-ranked steps of every sequence.

    ``by="score"`` ranks by the signed score (the steps that pushed the explained output up the
    most first; for never-negative methods such as grad_norm this is the same as ``"abs"``);
    ``by="abs"`` ranks by size whatever the sign. Ties keep the earlier step first.

    Returns columns ``seq, rank (1 = top), step, score, length, relative_position``; a sequence
    shorter than k contributes all its steps. With ``words`` (a text model's words, one list per
    row of ``scores``, ``words[i][t]`` the word read at step t) a ``word`` column names each
    step's word, cut to :data:`WORD_CHARS` characters with an ellipsis (:func:`shorten`).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive whole number, got {k!r}.")
    if by not in ("score", "abs"):
        raise InputError(f'by must be "score" or "abs", got {by!r}.')
    s = _scores(scores)
    N, T = s.shape
    L = lengths_from_scores(s, lengths)
    key = np.abs(s) if by == "abs" else s.copy()
    key[~valid_mask(L, T) | np.isnan(key)] = -np.inf
    order = np.argsort(-key, axis=1, kind="stable")[:, :k]              # (N, k)
    kk = order.shape[1]
    rows = np.repeat(np.arange(N), kk)
    rank = np.tile(np.arange(1, kk + 1), N)
    step = order.reshape(-1)
    keep = step < L[rows]
    rows, rank, step = rows[keep], rank[keep], step[keep]
    Lr = L[rows]
    rel = np.where(Lr > 1, step / np.maximum(Lr - 1, 1), 1.0)
    out = pd.DataFrame({"seq": _ids(ids, N)[rows], "rank": rank, "step": step,
                        "score": s[rows, step], "length": Lr, "relative_position": rel})
    if words is not None:
        if len(words) != N:
            raise InputError(f"words holds {len(words)} sequences but scores has {N}.")
        out["word"] = [shorten(words[r][t]) if t < len(words[r]) else "" for r, t in zip(rows, step)]
    return out


def _abs_matrix(s: np.ndarray, L: np.ndarray, normalize: bool) -> np.ndarray:
    a = np.abs(s)
    a[~valid_mask(L, s.shape[1])] = np.nan
    if normalize:
        tot = np.nansum(a, 1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.where(tot > 0, a / tot, np.nan)
    return a


def mean_abs_by_position(scores: Any, *, relative: bool = False, bins: int = 10,
                         normalize: bool = False, lengths: Any = None, groups: Any = None,
                         group_name: str | None = None) -> pd.DataFrame:
    """Mean |score| at each position over the sequences that reach it.

    Parameters
    ----------
    relative : bool
        False: by step index (columns ``position, mean_abs, n``). True: by share of the
        sequence, in ``bins`` equal bins of ``(t + 0.5) / L`` (columns ``bin, bin_start,
        bin_end, position`` = bin centre, ``mean_abs, n``).
    normalize : bool
        Divide each sequence's |scores| by their sum first, so every sequence weighs the same
        and methods on different scales can be compared (each sequence's shares add up to 1).
    groups : array-like [N] or pandas Series, optional
        A label per sequence (class, prediction, correctness, any column): one curve per group,
        in an extra column named ``group_name`` (default: the Series name, else "group").

    ``n`` counts the (sequence, step) pairs averaged in each row.
    """
    s = _scores(scores)
    N, T = s.shape
    L = lengths_from_scores(s, lengths)
    a = _abs_matrix(s, L, normalize)
    r, t = np.nonzero(valid_mask(L, T))
    vals = a[r, t]
    keep = ~np.isnan(vals)
    r, t, vals = r[keep], t[keep], vals[keep]
    if relative:
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise InputError(f"bins must be a positive whole number, got {bins!r}.")
        pos = np.minimum(((t + 0.5) / L[r] * bins).astype(np.int64), bins - 1)
    else:
        pos = t
    df = pd.DataFrame({"pos": pos, "v": vals})
    keys = ["pos"]
    if groups is not None:
        g, gname = _groups(groups, N, group_name)
        df["g"] = g[r]
        keys = ["g", "pos"]
    out = df.groupby(keys, sort=True)["v"].agg(mean_abs="mean", n="size").reset_index()
    if relative:
        out = out.rename(columns={"pos": "bin"})
        out["bin_start"] = out["bin"] / bins
        out["bin_end"] = (out["bin"] + 1) / bins
        out["position"] = (out["bin"] + 0.5) / bins
        cols = ["bin", "bin_start", "bin_end", "position", "mean_abs", "n"]
    else:
        out = out.rename(columns={"pos": "position"})
        cols = ["position", "mean_abs", "n"]
    if groups is not None:
        out = out.rename(columns={"g": gname})
        cols = [gname] + cols
    return out[cols].reset_index(drop=True)


def mean_abs_by_group(scores: Any, groups: Any, *, relative: bool = True, bins: int = 10,
                      normalize: bool = True, lengths: Any = None,
                      name: str | None = None) -> pd.DataFrame:
    """Mean |score| by position, one curve per group (class, prediction, correctness, ...).

    Same as :func:`mean_abs_by_position` with ``groups``; by default relative positions (so
    groups with different lengths line up) and normalised scores (so every sequence weighs the
    same).
    """
    return mean_abs_by_position(scores, relative=relative, bins=bins, normalize=normalize,
                                lengths=lengths, groups=groups, group_name=name)


def concentration(scores: Any, k: int = 3, *, lengths: Any = None,
                  ids: Sequence | None = None) -> pd.DataFrame:
    """Per sequence: ``seq, length, top_k_share, entropy, top_steps`` (see module docstring).

    ``top_steps`` lists the k steps with the largest |score|, largest first.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive whole number, got {k!r}.")
    s = _scores(scores)
    N, T = s.shape
    L = lengths_from_scores(s, lengths)
    a = np.abs(s)
    a[~valid_mask(L, T) | np.isnan(a)] = 0.0
    tot = a.sum(1)
    srt = -np.sort(-a, axis=1)
    top = srt[:, :k].sum(1)
    order = np.argsort(-a, axis=1, kind="stable")[:, :k]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(tot > 0, top / tot, np.nan)
        p = a / tot[:, None]
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        ent = -plogp.sum(1) / np.log(np.maximum(L, 2))
    ent = np.where(tot > 0, np.where(L > 1, ent, 0.0), np.nan)
    tops = [list(map(int, o[: min(k, n)])) for o, n in zip(order, L)]
    return pd.DataFrame({"seq": _ids(ids, N), "length": L, "top_k_share": share,
                         "entropy": ent, "top_steps": tops})


def _ranked_concentration(scores, n, k, lengths, ids, ascending):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive whole number, got {n!r}.")
    c = concentration(scores, k, lengths=lengths, ids=ids)
    c = c[(c["length"] > k) & c["top_k_share"].notna()]
    # share first; entropy breaks ties (lower entropy = more concentrated)
    c = c.sort_values(["top_k_share", "entropy"], ascending=[ascending, not ascending],
                      kind="stable")
    return c.head(n).reset_index(drop=True)


def most_concentrated(scores: Any, n: int = 10, k: int = 3, *, lengths: Any = None,
                      ids: Sequence | None = None) -> pd.DataFrame:
    """The n sequences whose |scores| sit most on k steps (highest top-k share)."""
    return _ranked_concentration(scores, n, k, lengths, ids, ascending=False)


def least_concentrated(scores: Any, n: int = 10, k: int = 3, *, lengths: Any = None,
                       ids: Sequence | None = None) -> pd.DataFrame:
    """The n sequences whose |scores| are most spread out (lowest top-k share)."""
    return _ranked_concentration(scores, n, k, lengths, ids, ascending=True)


def correctness(y: Any, pred: Any) -> np.ndarray:
    """"correct" / "wrong" per sequence, for grouping by correctness."""
    y, pred = np.asarray(y), np.asarray(pred)
    if y.shape != pred.shape or y.ndim != 1:
        raise InputError(f"y and pred must be 1-D and the same length; got {y.shape} and "
                         f"{pred.shape}.")
    return np.where(y == pred, "correct", "wrong")
