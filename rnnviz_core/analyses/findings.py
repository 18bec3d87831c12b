"""Findings in words: two or three plain sentences per page, computed from the loaded model and data.

Each function takes the very tables the page's charts draw (so a sentence and its chart can
never disagree) and returns a ``list[str]`` of plain sentences, numbers formatted for people
("p < 0.001", "3.1 times", effect sizes in words). A sentence is produced only when the evidence
for it is there: no sentence about a difference without a test result, none about a group of
fewer than 2 sequences, none about the deletion check before it has run.

* :func:`trajectory_findings` — where sequences A and B part (and rejoin), whether their memory
  settles;
* :func:`saturation_findings` — whether group A saturates more than group B (from which step on)
  and whether their accuracy differs; a sentence when nothing saturates;
* :func:`contribution_findings` — which method's ranking to trust on this model, which do no
  better than chance, whether methods find the steps known to decide the answer;
* :func:`known_step_hits` — the share of sequences whose top-ranked steps are exactly the steps
  known to decide the answer (the marker demo's markers);
* :func:`known_step_overlap` — how many of each sequence's top-k steps lie among its k known steps
  (precision at k), against a random order, and how often the top step is a known one: at long
  lengths (the burst demo's 32-step window) an exact match is almost never met, this still says
  whether the scores peak where they should.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..arrays import valid_mask
from ..errors import InputError
from .tables import effect_words, format_p, p_column
from .pairs import Parting, parting_summary, step_words

__all__ = ["trajectory_findings", "saturation_findings", "contribution_findings", "known_step_hits",
           "known_step_overlap", "ALPHA"]

#: a (corrected) p-value below this is reported as a difference; above it as "no clear difference"
ALPHA = 0.05


def _pct(v: float) -> str:
    v = float(v)
    if v == 0:
        return "0%"
    if 0 < v < 0.001:
        return "under 0.1%"
    return f"{v:.1%}" if v < 0.1 else f"{v:.0%}"


def _times(r: float) -> str:
    return f"{r:.1f} times" if r < 10 else f"{r:.0f} times"


# ----------------------------------------------------------------------------- trajectories
def trajectory_findings(distance: pd.DataFrame | None, *, rel_threshold: float = 0.25, k: int = 3,
                        parting: Parting | None = None, norms: pd.DataFrame | None = None,
                        seqs: Sequence[Any] | None = None, names: Sequence[str] = ("A", "B"),
                        words: Sequence[Sequence[str] | None] | None = None) -> list[str]:
    """Sentences for the Trajectories page.

    Parameters
    ----------
    distance : the frame of :func:`rnnviz_core.trajectories.pair_distance` the distance chart
        draws (None: no parting sentence).
    rel_threshold, k : the parting rule (as the chart); ``parting``: its summary if already
        computed.
    norms : the frame of :func:`rnnviz_core.trajectories.state_norms` the norms chart draws, with
        ``seqs`` the ids of A and B in it (None: no plateau sentence).
    names : how to call the two sequences.
    words : a text model's words of the two sequences (``words[0][t]``: A's word at step t), or
        None: then each step named is followed by the words read there ("step 5 ('boring' in A,
        'film' in B)"), cut to fit with an ellipsis.
    """
    out: list[str] = []
    na, nb = (str(n) for n in names)
    wa, wb = (list(words) + [None, None])[:2] if words is not None else (None, None)

    def step_words(step: int, align: str) -> str:  # the step, and the words A and B read there
        return _step_text(step, align, [(na, wa), (nb, wb)])
    if distance is not None and len(distance):
        p = parting if parting is not None else parting_summary(distance, rel_threshold=rel_threshold, k=k)
        align = distance.attrs.get("align", "start")
        pair = f"Sequences {na} and {nb}"
        if p.kind == "never":
            if p.max_distance <= p.threshold:
                out.append(f"{pair} never part: their memories stay within the parting threshold at every step "
                           "compared.")
            else:
                out.append(f"{pair} never part: their memories move apart only briefly, never for {p.k} steps in a "
                           "row.")
        elif p.kind == "for good":
            if p.apart_from_start:
                out.append(f"{pair} are apart from the first step compared and stay apart to the end.")
            elif p.n_partings == 1:
                out.append(f"{pair} part at {step_words(p.part_step, align)} and stay apart to the end.")
            else:
                out.append(f"{pair} first part at {step_words(p.part_step, align)} and part for good at "
                           f"{step_words(p.last_part_step, align)}.")
        else:
            start = ("are apart from the first step compared" if p.part_step == p.first_step
                     else f"part at {step_words(p.part_step, align)}")
            out.append(f"{pair} {start} and come back together at {step_words(p.rejoin_step, align)}.")
    if norms is not None and seqs is not None and len(norms):
        plateau = {}
        for s, n in zip(seqs, (na, nb)):
            rows = norms.loc[norms["seq"] == s, "plateau_step"]
            if len(rows):
                plateau[n] = int(rows.iloc[0])
        if len(plateau) == 2:
            settled = {n: v for n, v in plateau.items() if v >= 0}
            own = {na: wa, nb: wb}
            if len(settled) == 2:
                out.append(f"The memory settles from {_step_text(plateau[na], 'start', [(na, wa)])} in {na} and from "
                           f"{_step_text(plateau[nb], 'start', [(nb, wb)])} in {nb}.")
            elif len(settled) == 1:
                (n, v), = settled.items()
                other = nb if n == na else na
                out.append(f"The memory of {n} settles from {_step_text(v, 'start', [(n, own[n])])}; that of {other} "
                           "is still moving at its end.")
            else:
                out.append("Neither memory settles before its sequence ends: both are still moving at the last step.")
    return out


# ----------------------------------------------------------------------------- saturation
def _first_step_always_above(over_time: pd.DataFrame, a: Any, b: Any, min_steps: int = 3) -> int | None:
    """First step from which group a's saturated share is above b's at every later step both reach."""
    wide = over_time.pivot_table(index="step", columns="group", values="frac_saturated", observed=True)
    wide.columns = [str(c) for c in wide.columns]
    if str(a) not in wide or str(b) not in wide:
        return None
    both = wide[[str(a), str(b)]].dropna()
    if len(both) < min_steps:
        return None
    above = (both[str(a)] > both[str(b)]).to_numpy()
    if not above[-1]:
        return None
    below = np.flatnonzero(~above)
    start = 0 if below.size == 0 else int(below[-1]) + 1
    if len(both) - start < min_steps:
        return None
    return int(both.index[start])


def saturation_findings(cmp: pd.DataFrame | None, *, over_time: pd.DataFrame | None = None,
                        suggestion: Any = None, by: str | None = None) -> list[str]:
    """Sentences for the Saturation page.

    Parameters
    ----------
    cmp : the frame of :func:`rnnviz_core.groups.compare_groups` for groups A and B (its
        ``frac_saturated`` and ``correct`` rows are read; ``p_adjusted`` when present).
    over_time : the frame of :func:`rnnviz_core.saturation.saturation_over_time` the chart
        draws for the same two groups (gives "from step s on").
    suggestion : the :class:`~rnnviz_core.saturation.ThresholdSuggestion` of the page; when
        nothing saturates at any threshold its sentence is the only finding.
    by : the grouping; no accuracy sentence when the groups are themselves correct / wrong, no
        error sentence (regression: the ``abs_error`` row) when they are error sizes.
    """
    out: list[str] = []
    if suggestion is not None and getattr(suggestion, "share", 1.0) == 0 and getattr(suggestion, "message", ""):
        return [suggestion.message]
    if cmp is None or not len(cmp):
        return out
    rows = cmp.set_index("metric")
    pcol = p_column(cmp)
    if "frac_saturated" in rows.index:
        r = rows.loc["frac_saturated"]
        ga, gb = str(r["group_a"]), str(r["group_b"])
        ma, mb, p = float(r["mean_a"]), float(r["mean_b"]), float(r[pcol])
        if r["n_a"] >= 2 and r["n_b"] >= 2 and np.isfinite([ma, mb, p]).all():
            if ma == 0 and mb == 0:
                out.append(f"Neither {ga} nor {gb} sequences saturate at this threshold.")
            elif p < ALPHA and ma != mb:
                hi, lo, mhi, mlo = (ga, gb, ma, mb) if ma > mb else (gb, ga, mb, ma)
                since = ""
                if over_time is not None and len(over_time):
                    s = _first_step_always_above(over_time, hi, lo)
                    if s is not None and s > 0:
                        since = f", and more at every step from step {s} on"
                word = effect_words(r["effect_size"], r["effect_name"])
                size = f", a {word} difference" if word and word != "negligible" else \
                    (", though the difference is negligible in size" if word == "negligible" else "")
                if mlo > 0:
                    out.append(f"{_cap(hi)} sequences saturate {_times(mhi / mlo)} as much as {lo} ones ({_pct(mhi)} "
                               f"vs {_pct(mlo)} of unit-steps, {format_p(p)}{size}){since}.")
                else:
                    out.append(f"{_cap(hi)} sequences saturate ({_pct(mhi)} of unit-steps) and {lo} ones never do "
                               f"({format_p(p)}{size}){since}.")
            else:
                out.append(f"{_cap(ga)} and {gb} sequences saturate about as much ({_pct(ma)} vs {_pct(mb)} "
                           f"of unit-steps, {format_p(p)}: no clear difference).")
    if "abs_error" in rows.index and by != "error_size":
        r = rows.loc["abs_error"]
        ga, gb = str(r["group_a"]), str(r["group_b"])
        ma, mb, p = float(r["mean_a"]), float(r["mean_b"]), float(r[pcol])
        if r["n_a"] >= 2 and r["n_b"] >= 2 and np.isfinite([ma, mb, p]).all():
            if p < ALPHA:
                out.append(f"The model is off by {ma:.3g} on average for {ga} sequences and by {mb:.3g} for {gb} "
                           f"ones ({format_p(p)}).")
            else:
                out.append(f"The model's error does not clearly differ between {ga} ({ma:.3g} on average) and {gb} "
                           f"({mb:.3g}) sequences ({format_p(p)}).")
    if "correct" in rows.index and by not in ("correct", "outcome"):
        r = rows.loc["correct"]
        ga, gb = str(r["group_a"]), str(r["group_b"])
        ma, mb, p = float(r["mean_a"]), float(r["mean_b"]), float(r[pcol])
        if r["n_a"] >= 2 and r["n_b"] >= 2 and np.isfinite([ma, mb, p]).all():
            if p < ALPHA:
                out.append(f"{_cap(ga)} sequences are answered correctly {_pct(ma)} of the time and {gb} ones "
                           f"{_pct(mb)} ({format_p(p)}).")
            else:
                out.append(f"Accuracy does not clearly differ between {ga} ({_pct(ma)}) and {gb} ({_pct(mb)}) "
                           f"sequences ({format_p(p)}).")
    return out


# ----------------------------------------------------------------------------- contributions
def known_step_hits(scores: Any, known: Any, lengths: Any = None) -> float:
    """Share of sequences whose k highest-|score| steps are exactly their k known steps.

    Parameters
    ----------
    scores : [N, T] per-step scores (NaN past each length).
    known : bool [N, T], True at the steps known to decide the answer (k may differ per
        sequence; sequences with no known step are left out).
    lengths : [N] or None (read from the NaNs).

    Returns
    -------
    The share (NaN when no sequence has a known step).
    """
    s = np.abs(np.asarray(scores, dtype=np.float64))
    kn = np.asarray(known, dtype=bool)
    if s.shape != kn.shape or s.ndim != 2:
        raise InputError(f"scores and known must both be [N, T]; got {s.shape} and {kn.shape}.")
    if lengths is not None:
        mask = valid_mask(lengths, s.shape[1])
        s = np.where(mask, s, np.nan)
    s = np.where(np.isfinite(s), s, -np.inf)
    k = kn.sum(axis=1)
    use = k > 0
    if not use.any():
        return float("nan")
    order = np.argsort(-s, axis=1, kind="stable")
    hits = []
    for i in np.flatnonzero(use):
        hits.append(bool(kn[i, order[i, :k[i]]].all()))
    return float(np.mean(hits))


def known_step_overlap(scores: Any, known: Any, lengths: Any = None) -> dict | None:
    """How well the largest |scores| find the steps known to decide the answer.

    For each sequence with k > 0 known steps, its k steps of largest |score| (ties: the earlier
    step first) are compared with its known steps.

    Returns
    -------
    None when no sequence has a known step; else a dict:
    ``precision`` — mean over sequences of (top-k steps that are known) / k;
    ``found`` — mean number of those steps; ``k`` — the number of known steps when it is the same
    in every sequence, else None; ``chance`` — the precision a random order gives (mean k / length);
    ``top1`` — share of sequences whose largest score falls on a known step; ``exact`` — share whose
    top-k steps are exactly the known ones (:func:`known_step_hits`); ``n`` — sequences counted.
    """
    s = np.abs(np.asarray(scores, dtype=np.float64))
    kn = np.asarray(known, dtype=bool)
    if s.shape != kn.shape or s.ndim != 2:
        raise InputError(f"scores and known must both be [N, T]; got {s.shape} and {kn.shape}.")
    if lengths is None:
        lens = np.isfinite(s).sum(axis=1)
    else:
        lens = np.asarray(lengths).astype(np.int64)
        s = np.where(valid_mask(lens, s.shape[1]), s, np.nan)
    s = np.where(np.isfinite(s), s, -np.inf)
    k = kn.sum(axis=1)
    use = np.flatnonzero(k > 0)
    if not use.size:
        return None
    order = np.argsort(-s, axis=1, kind="stable")
    found = np.array([int(kn[i, order[i, :k[i]]].sum()) for i in use])
    ks = k[use]
    return {"precision": float(np.mean(found / ks)), "found": float(found.mean()),
            "k": int(ks[0]) if (ks == ks[0]).all() else None,
            "chance": float(np.mean(ks / np.maximum(lens[use], 1))),
            "top1": float(np.mean(kn[use, order[use, 0]])), "exact": float(np.mean(found == ks)), "n": int(use.size)}


def _overlap_sentence(m: str, o: Mapping[str, Any], several: bool) -> str:
    """A :func:`known_step_overlap` result in words."""
    k = o.get("k")
    if k is not None:
        head = (f"of the {k} steps to which {m} gives the largest scores (by size) in each sequence, on average "
                f"{o['found']:.3g} ({_pct(o['precision'])}) lie among the {k} known steps")
    else:
        head = (f"of the steps to which {m} gives the largest scores (by size), as many as each sequence has known "
                f"steps, {_pct(o['precision'])} on average are known ones")
    return (f"On the steps known to decide the answer: {head}, where a random order of the steps would give "
            f"{_pct(o['chance'])}; its largest score falls on a known step in {_pct(o['top1'])} of sequences"
            + (" (the most of the methods compared)." if several else "."))


def contribution_findings(summary: pd.DataFrame | None = None, *, hits: Mapping[str, float] | None = None,
                          labels: Mapping[str, str] | None = None, top: pd.DataFrame | None = None,
                          seqs: Sequence[Any] | None = None, names: Sequence[str] = ("A", "B"),
                          method: str | None = None) -> list[str]:
    """Sentences for the Contributions page.

    Parameters
    ----------
    summary : the deletion-check summary (``faithfulness.compare_methods(...).summary``) that the
        chart of advantages draws; None (check not run): no sentence about trust.
    hits : method -> :func:`known_step_overlap` dict (or an older :func:`known_step_hits` share),
        when the data knows the deciding steps (the marker and burst demos).
    labels : plain method names (default :data:`rnnviz_core.charts.contributions.METHOD_LABELS`).
    top, seqs, names, method : the ``rankings.top_steps`` frame the top-steps table shows, the
        ids of A and B in it, their names and the method (its sign decides the wording: a signed
        method's top step is the one that pushed the answer up most, an unsigned one's the step
        the answer reacts to most strongly).
    """
    if labels is None:
        from ..charts.contributions import METHOD_LABELS as labels  # noqa: N811
    name = (lambda m: labels.get(m, str(m).replace("_", " ")))  # noqa: E731
    out: list[str] = []
    if summary is not None and len(summary) and {"method", "aopc_minus_random"} <= set(summary.columns):
        rows = summary[(summary["method"] != "random") & np.isfinite(summary["aopc_minus_random"].astype(float))]
        rows = rows.sort_values("aopc_minus_random", ascending=False, kind="stable")
        if len(rows):
            best = rows.iloc[0]
            adv = float(best["aopc_minus_random"])
            if adv <= 0:
                out.append("On this model no method's ranking beats a random order of the steps, so treat every "
                           "ranking with caution.")
            else:
                tail = ""
                if len(rows) > 1:
                    nxt = rows.iloc[1]
                    tail = f"; next comes {name(nxt['method'])} ({float(nxt['aopc_minus_random']):.3g})"
                out.append(f"On this model {name(best['method'])}'s ranking is the one to trust: it beats a random "
                           f"order by the widest margin ({adv:.3g}{tail}).")
                losers = [name(m) for m, v in zip(rows["method"], rows["aopc_minus_random"]) if float(v) <= 0]
                if losers:
                    verb = "does" if len(losers) == 1 else "do"
                    out.append(f"{_cap(_join(losers))} {verb} no better than a random order here.")
    if top is not None and seqs is not None and {"seq", "rank", "step"} <= set(top.columns):
        from ..charts.contributions import is_signed

        firsts = []
        for s_id, nm in zip(seqs, names):
            row = top[(top["seq"] == s_id) & (top["rank"] == 1)]
            score = float(row["score"].iloc[0]) if len(row) and "score" in row else float("nan")
            if np.isfinite(score):
                word = str(row["word"].iloc[0]) if "word" in row and pd.notna(row["word"].iloc[0]) else ""
                firsts.append((str(nm), int(row["step"].iloc[0]), score, word))
        if len(firsts) == len(list(seqs)) and firsts:
            signed = is_signed(method) if method is not None else True
            who = f"By {name(method)}, " if method is not None else ""
            parts = [_step_words(st, nm, word) for nm, st, _, word in firsts]
            words = all(word for *_, word in firsts)
            if signed and all(sc > 0 for _, _, sc, _ in firsts):
                out.append(f"{who}the {'word' if words else 'step'} that pushed the answer up most is {_join(parts)}.")
            elif not signed:
                out.append(f"{who}the answer reacts most {'to' if words else 'strongly to'} {_join(parts)}.")
    over = {m: v for m, v in (hits or {}).items() if isinstance(v, Mapping) and np.isfinite(v.get("precision", np.nan))}
    if over:
        m, v = max(over.items(), key=lambda kv: kv[1]["precision"])
        out.append(_overlap_sentence(name(m), v, len(over) > 1))
    elif hits:
        ok = {m: float(v) for m, v in hits.items()
              if v is not None and not isinstance(v, Mapping) and np.isfinite(v)}
        if ok:
            m, v = max(ok.items(), key=lambda kv: kv[1])
            out.append(f"On the steps known to decide the answer, {name(m)} ranks exactly those steps at its top in "
                       f"{_pct(v)} of sequences" + (", the most of the methods compared." if len(ok) > 1 else "."))
    return out


def _step_text(step: int, align: str, seqs: Sequence[tuple[str, Sequence[str] | None]]) -> str:
    """An aligned step in words (:func:`rnnviz_core.trajectories.step_words`), followed for a text
    model by the word each sequence reads there: "step 5 ('boring' in A, 'film' in B)"; with one
    sequence: "step 5 ('boring')". Steps aligned at the end count back from each one's last word."""
    from ..rankings import shorten
    text = step_words(step, align)
    found = []
    for name, words in seqs:
        if not words:
            continue
        i = int(step) if align != "end" else len(words) - 1 + int(step)
        if 0 <= i < len(words):
            found.append(f"'{shorten(words[i])}'" + (f" in {name}" if len(seqs) > 1 else ""))
    return f"{text} ({', '.join(found)})" if found else text


def _step_words(step: int, seq_name: str, word: str = "") -> str:
    """"step 11 of A", or for a text model "'boring' (word 11 of A)" (the word as the table shows
    it, already cut to fit; the number is the step axis's)."""
    if not word:
        return f"step {step} of {seq_name}"
    from ..rankings import shorten
    return f"'{shorten(word)}' (word {step} of {seq_name})"


def _cap(text: str) -> str:
    """First letter upper-case, the rest as it is (group names keep their spelling)."""
    text = str(text)
    return text[:1].upper() + text[1:]


def _join(items: Sequence[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
