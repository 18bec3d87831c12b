"""Synthetic tasks whose answers are known, used by the demos and by tests.

``make_marker_task`` is the known-answer task for per-step contributions: only two steps of
each sequence decide its label, and :func:`make_marker_task` returns which ones.
``make_race_form`` generates greyhound race-form histories for the default demo.
``make_burst_task`` is the long-sequence known-answer task (a sensor trace of hundreds of steps
whose class is the shape of one burst in a marked window), and ``make_window_sum_task`` the
regression one (the target is the sum of the values in a marked window).
``make_reviews`` writes short movie reviews whose sentiment is decided by known words (a
sentiment word, flipped by a negation right before it), for the text demo; and
:func:`review_decisive_steps` says, from a review's words alone, which steps decide it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..data import SequenceDataset

__all__ = ["make_marker_task", "make_race_form", "make_burst_task", "make_window_sum_task",
           "BURST_FEATURES", "BURST_CLASSES", "WINDOW_SUM_FEATURES", "make_reviews", "review_decisive_steps", "review_vocabulary",
           "MARKER_FEATURES", "MARKER_CLASSES", "RACE_FEATURES", "RACE_CLASSES", "REVIEW_CLASSES",
           "POSITIVE_WORDS", "NEGATIVE_WORDS", "NEGATIONS", "FILLER_WORDS"]

MARKER_FEATURES = ["value", "marker", "noise"]
MARKER_CLASSES = ["negative", "positive"]


def make_marker_task(n: int, t_min: int = 20, t_max: int = 50, seed: int = 0) -> tuple[SequenceDataset, np.ndarray]:
    """The marker (adding-problem style) task with a known answer.

    Each sequence has a length drawn uniformly from ``t_min..t_max`` and 3 features per step:
    f0 ``value`` ~ U(-1, 1); f1 ``marker`` = 1 at exactly two distinct random valid steps, else 0;
    f2 ``noise`` ~ N(0, 1), a distractor. The label is 1 ("positive") when the values at the
    two marked steps sum to more than 0, else 0 ("negative").

    Returns
    -------
    ds : SequenceDataset with X float32 [n, t_max, 3] (zero past each length), lengths, y int64 [n],
        ids "m00000"..., class_names ["negative", "positive"], groups with columns
        ``length`` and ``gap`` (steps between the two markers).
    decisive : bool [n, t_max], True exactly at the two marked steps.
    """
    if n < 1 or not 2 <= t_min <= t_max:
        raise ValueError("need n >= 1 and 2 <= t_min <= t_max")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(t_min, t_max + 1, size=n)                     # (N,)
    X = np.zeros((n, t_max, 3), dtype=np.float32)                        # (N, T, 3)
    decisive = np.zeros((n, t_max), dtype=bool)                          # (N, T)
    y = np.zeros(n, dtype=np.int64)
    gaps = np.zeros(n, dtype=np.int64)
    for i, L in enumerate(lengths):
        X[i, :L, 0] = rng.uniform(-1.0, 1.0, size=L)
        X[i, :L, 2] = rng.standard_normal(L)
        a, b = np.sort(rng.choice(L, size=2, replace=False))
        X[i, [a, b], 1] = 1.0
        decisive[i, [a, b]] = True
        y[i] = int(X[i, a, 0] + X[i, b, 0] > 0)
        gaps[i] = b - a
    ds = SequenceDataset(
        X=X, lengths=lengths.astype(np.int64), y=y, ids=np.array([f"m{i:05d}" for i in range(n)]),
        groups=pd.DataFrame({"length": lengths.astype(np.int64), "gap": gaps}),
        feature_names=list(MARKER_FEATURES), class_names=list(MARKER_CLASSES), name="marker")
    return ds, decisive


BURST_FEATURES = ["vibration", "marker"]
BURST_CLASSES = ["rise", "dip", "wobble"]


def burst_shape(kind: int, window: int) -> np.ndarray:
    """The burst of class ``kind`` over ``window`` steps: "rise" a positive half sine, "dip" a
    negative one, "wobble" one full sine period (up, then down). Float64 [window]."""
    u = np.linspace(0.0, 1.0, window)
    return [np.sin(np.pi * u), -np.sin(np.pi * u), np.sin(2 * np.pi * u)][kind]


def make_burst_task(n: int, t_min: int = 400, t_max: int = 480, window: int = 32, amplitude: float = 1.2,
                    seed: int = 0) -> tuple[SequenceDataset, np.ndarray]:
    """A long sensor-like trace whose class is decided by one burst in a known window.

    Each sequence has a length drawn uniformly from ``t_min..t_max`` and 2 features per step:
    f0 ``vibration``, smooth background noise (AR(1): ``a_t = 0.8 a_{t-1} + 0.3 e_t``, e ~ N(0, 1))
    plus, in one window of ``window`` steps at a uniformly random start, ``amplitude`` times the
    burst of the sequence's class (:func:`burst_shape`: "rise", "dip" or "wobble"); f1 ``marker``
    = 1 inside that window, else 0 (the steps known to decide the answer). The label is the
    burst's shape; classes are drawn uniformly.

    Returns
    -------
    ds : SequenceDataset with X float32 [n, t_max, 2] (zero past each length), lengths, y int64 [n],
        ids "s00000"..., class_names ``BURST_CLASSES``, groups with column ``window_start``.
    decisive : bool [n, t_max], True exactly inside each sequence's window.
    """
    if n < 1 or not 2 <= window <= t_min <= t_max:
        raise ValueError("need n >= 1 and 2 <= window <= t_min <= t_max")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(t_min, t_max + 1, size=n)                     # (N,)
    y = rng.integers(0, len(BURST_CLASSES), size=n).astype(np.int64)     # (N,)
    X = np.zeros((n, t_max, 2), dtype=np.float32)                        # (N, T, 2)
    decisive = np.zeros((n, t_max), dtype=bool)                          # (N, T)
    starts = np.zeros(n, dtype=np.int64)
    for i, L in enumerate(lengths):
        e = 0.3 * rng.standard_normal(L)
        noise = np.empty(L)
        a = 0.0
        for t in range(L):                                               # AR(1) background
            a = 0.8 * a + e[t]
            noise[t] = a
        s = int(rng.integers(0, L - window + 1))
        noise[s:s + window] += amplitude * burst_shape(int(y[i]), window)
        X[i, :L, 0] = noise
        X[i, s:s + window, 1] = 1.0
        decisive[i, s:s + window] = True
        starts[i] = s
    ds = SequenceDataset(
        X=X, lengths=lengths.astype(np.int64), y=y, ids=np.array([f"s{i:05d}" for i in range(n)]),
        groups=pd.DataFrame({"window_start": starts}),
        feature_names=list(BURST_FEATURES), class_names=list(BURST_CLASSES), name="burst")
    return ds, decisive


WINDOW_SUM_FEATURES = ["value", "marker"]


def make_window_sum_task(n: int, t_min: int = 30, t_max: int = 60, w_min: int = 4, w_max: int = 8,
                         seed: int = 0) -> tuple[SequenceDataset, np.ndarray]:
    """Regression with a known answer: the target is the sum of the values in a marked window.

    Each sequence has a length drawn uniformly from ``t_min..t_max`` and 2 features per step:
    f0 ``value`` ~ U(-1, 1) rounded to 3 decimals; f1 ``marker`` = 1 on one run of ``w_min..w_max``
    consecutive steps at a random place, else 0. The target is the sum of ``value`` over the
    marked steps (float32).

    Returns
    -------
    ds : SequenceDataset with X float32 [n, t_max, 2], lengths, y float32 [n] (no class names),
        ids "w00000"..., groups with columns ``window_length`` and ``window_start``.
    decisive : bool [n, t_max], True exactly at the marked steps.
    """
    if n < 1 or not 1 <= w_min <= w_max <= t_min <= t_max:
        raise ValueError("need n >= 1 and 1 <= w_min <= w_max <= t_min <= t_max")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(t_min, t_max + 1, size=n)                     # (N,)
    X = np.zeros((n, t_max, 2), dtype=np.float32)                        # (N, T, 2)
    decisive = np.zeros((n, t_max), dtype=bool)                          # (N, T)
    widths = np.zeros(n, dtype=np.int64)
    starts = np.zeros(n, dtype=np.int64)
    for i, L in enumerate(lengths):
        w = int(rng.integers(w_min, w_max + 1))
        s = int(rng.integers(0, L - w + 1))
        X[i, :L, 0] = np.round(rng.uniform(-1.0, 1.0, size=L), 3)
        X[i, s:s + w, 1] = 1.0
        decisive[i, s:s + w] = True
        widths[i], starts[i] = w, s
    y = (X[..., 0] * decisive).sum(1, dtype=np.float64).astype(np.float32)   # (N,)
    ds = SequenceDataset(
        X=X, lengths=lengths.astype(np.int64), y=y, ids=np.array([f"w{i:05d}" for i in range(n)]),
        groups=pd.DataFrame({"window_length": widths, "window_start": starts}),
        feature_names=list(WINDOW_SUM_FEATURES), class_names=None, name="window_sum")
    return ds, decisive


RACE_FEATURES = ["position", "time", "weight", "box", "days_since"]
RACE_CLASSES = ["win", "place (2-3)", "unplaced"]
RACE_TRACKS = ["Sandown Park", "The Meadows", "Wentworth Park", "Albion Park"]
_TRACK_BASE_TIME = {"Sandown Park": 29.6, "The Meadows": 30.1, "Wentworth Park": 30.4, "Albion Park": 30.0}


def _finish(score: float, field_strength: float, rng: np.random.Generator) -> int:
    """Finishing position 1..8 of a dog with performance ``score`` against 7 rivals."""
    rivals = rng.normal(field_strength, 1.0, size=7)
    return 1 + int((rivals > score).sum())


def make_race_form(n_dogs: int, seed: int = 0, min_races: int = 4, max_races: int = 30) -> SequenceDataset:
    """Generated greyhound race form: each dog is the sequence of its past races.

    A hidden ability, a form trend (improving or declining), the box draw, weight changes and
    long rests drive a noisy performance score per race; finishing position 1..8 comes from
    that score against seven rivals, and race time falls as performance rises. The label is the
    result of the dog's *next* race: "win", "place (2-3)" or "unplaced".

    Features per race (in order): position 1..8, time (s), weight (kg), box 1..8, days_since
    (days since the previous race; the first race counts from the dog's debut trial).
    Per-dog extras (``groups``): track (home track), grade (1 = best .. 7), sex, age_months.
    """
    rng = np.random.default_rng(seed)
    L = rng.integers(min_races, max_races + 1, size=n_dogs)
    T = int(max_races)
    X = np.zeros((n_dogs, T, 5), dtype=np.float32)
    y = np.zeros(n_dogs, dtype=np.int64)
    tracks, grades, sexes, ages = [], [], [], []
    for i in range(n_dogs):
        n = int(L[i])
        ability = rng.normal(0.0, 1.0)
        trend = rng.normal(0.0, 1.0)                 # change of form over the dog's recent career
        base_w = rng.normal(31.5, 2.5)
        track = RACE_TRACKS[rng.integers(len(RACE_TRACKS))]
        grade = int(np.clip(round(4 - 1.2 * ability + rng.normal(0, 1.0)), 1, 7))
        field = 0.25 * (4 - grade)                   # better grades race stronger fields
        form = 0.0
        for k in range(n + 1):                       # race n is the next (label) race
            form = 0.6 * form + rng.normal(0.0, 0.3)            # short-lived ups and downs
            level = ability + trend * (k - n) / 12.0 + form       # trend ends at `ability` next race
            box = int(rng.integers(1, 9))
            days = int(rng.integers(4, 15) if rng.random() < 0.85 else rng.integers(28, 120))
            weight = base_w + rng.normal(0.0, 0.35) + (0.8 if days > 28 else 0.0)
            box_eff = {1: 0.3, 2: 0.15, 8: 0.15}.get(box, 0.0)
            rest_eff = -0.5 if days > 28 else 0.0
            score = 2.0 * level + box_eff + rest_eff + rng.normal(0.0, 0.5)
            pos = _finish(score, field, rng)
            if k == n:
                y[i] = 0 if pos == 1 else (1 if pos <= 3 else 2)
                break
            time = _TRACK_BASE_TIME[track] + 0.1 * (grade - 4) - 0.18 * score + 0.07 * (pos - 1) \
                + rng.normal(0.0, 0.08)
            X[i, k] = (pos, round(time, 2), round(weight, 1), box, days)
        tracks.append(track)
        grades.append(grade)
        sexes.append("dog" if rng.random() < 0.5 else "bitch")
        ages.append(int(18 + 1.5 * n + rng.integers(0, 8)))
    groups = pd.DataFrame({"track": tracks, "grade": grades, "sex": sexes, "age_months": ages})
    return SequenceDataset(X=X, lengths=L.astype(np.int64), y=y,
                           ids=np.array([f"dog{i:04d}" for i in range(n_dogs)]), groups=groups,
                           feature_names=list(RACE_FEATURES), class_names=list(RACE_CLASSES), name="race")


# ------------------------------------------------------------------------------- reviews
REVIEW_CLASSES = ["negative", "positive"]
POSITIVE_WORDS = ["good", "great", "excellent", "wonderful", "enjoyable", "brilliant", "fun", "loved"]
NEGATIVE_WORDS = ["bad", "awful", "boring", "terrible", "dull", "poor", "weak", "hated"]
NEGATIONS = ["not", "never"]
INTENSIFIERS = ["very", "really", "quite"]      # filler words; "not very good" is still negated
FILLER_WORDS = ["the", "movie", "film", "plot", "was", "and", "it", "a", "this", "actors", "story", "i",
                "watched", "with", "my", "friends", "ending", "music", "scenes", "is", "were", "of", "on",
                "saturday", "cinema", "director", "script", "characters", "quite", "very", "really",
                "overall", "long", "second", "half", "cast"]


def review_vocabulary() -> list[str]:
    """The text demo's vocabulary: ``<pad>`` (id 0), ``<unk>`` (id 1), then every word the reviews use."""
    return ["<pad>", "<unk>", *FILLER_WORDS, *NEGATIONS, *POSITIVE_WORDS, *NEGATIVE_WORDS]


def review_decisive_steps(words: list[str] | str) -> np.ndarray:
    """Which steps of a review decide its sentiment (the known answer of the text demo).

    A step decides when it holds a sentiment word (``POSITIVE_WORDS``/``NEGATIVE_WORDS``) or a
    negation (``NEGATIONS``) that flips one (see :func:`negated`); filler, including
    intensifiers such as "very" (also in "not very good"), never does. Returns bool [len(words)].
    """
    words = words.split() if isinstance(words, str) else list(words)
    out = np.zeros(len(words), dtype=bool)
    for i, w in enumerate(words):
        if w in POSITIVE_WORDS or w in NEGATIVE_WORDS:
            out[i] = True
            j = negated(words, i)
            if j is not None:
                out[j] = True
    return out


def negated(words: list[str], i: int) -> int | None:
    """Step of the negation that flips the sentiment word at ``i``: right before it ("not good"),
    or two before with an intensifier between ("not very good"); None when not negated."""
    if i >= 1 and words[i - 1] in NEGATIONS:
        return i - 1
    if i >= 2 and words[i - 1] in INTENSIFIERS and words[i - 2] in NEGATIONS:
        return i - 2
    return None


def review_sentiment(words: list[str] | str) -> int:
    """The rule that labels a review: 1 (positive) when its sentiment phrases say so, else 0.

    Each sentiment word counts +1 (positive) or -1 (negative), flipped by a negation right
    before it or before an intensifier right before it ("not very good"); the review is positive when the sum is above 0 (generated reviews never tie).
    """
    words = words.split() if isinstance(words, str) else list(words)
    total = 0
    for i, w in enumerate(words):
        if w in POSITIVE_WORDS or w in NEGATIVE_WORDS:
            sign = 1 if w in POSITIVE_WORDS else -1
            if negated(words, i) is not None:
                sign = -sign
            total += sign
    return int(total > 0)


def make_reviews(n: int, seed: int = 0, min_words: int = 6, max_words: int = 24) -> pd.DataFrame:
    """Short synthetic movie reviews with a known answer, one row per review.

    Each review is filler words with one or two sentiment phrases dropped in at random places;
    a phrase is a sentiment word, preceded by a negation ("not good", "never boring") a third
    of the time, with an intensifier between in a quarter of those ("not very good"). With two
    phrases both say the same thing, so every review has a clear label: :func:`review_sentiment`
    of its words. Intensifiers ("very", "really", "quite") also occur as filler.

    Returns
    -------
    DataFrame with columns ``review_id`` ("r00000" ...), ``text`` (words separated by spaces),
    ``label`` ("negative"/"positive") and ``negation`` ("yes" when a phrase is negated).
    """
    if n < 1 or not 4 <= min_words <= max_words:
        raise ValueError("need n >= 1 and 4 <= min_words <= max_words")
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        target = int(rng.integers(0, 2))                      # the sentiment the review carries
        n_phrases = 1 + int(rng.random() < 0.35)
        length = int(rng.integers(min_words, max_words + 1))
        phrases = []
        for _ in range(n_phrases):
            negated = rng.random() < 1 / 3
            says_positive = bool(target) != negated           # a negated word says the opposite
            pool = POSITIVE_WORDS if says_positive else NEGATIVE_WORDS
            word = pool[int(rng.integers(len(pool)))]
            phrase = [word]
            if negated:
                if rng.random() < 0.25:
                    phrase.insert(0, INTENSIFIERS[int(rng.integers(len(INTENSIFIERS)))])
                phrase.insert(0, NEGATIONS[int(rng.integers(len(NEGATIONS)))])
            phrases.append(phrase)
        filler_len = max(length - sum(len(p) for p in phrases), 2)
        words = [FILLER_WORDS[int(j)] for j in rng.integers(len(FILLER_WORDS), size=filler_len)]
        # filler never negates by accident: a negation word appears only inside a phrase
        slots = sorted(rng.choice(filler_len + 1, size=n_phrases, replace=False).tolist(), reverse=True)
        for slot, phrase in zip(slots, phrases):
            words[slot:slot] = phrase
        assert review_sentiment(words) == target
        rows.append((f"r{i:05d}", " ".join(words), REVIEW_CLASSES[target],
                     "yes" if any(p[0] in NEGATIONS for p in phrases) else "no"))
    return pd.DataFrame(rows, columns=["review_id", "text", "label", "negation"])
