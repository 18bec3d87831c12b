"""Which class order a dataset may have (declared, sorted, first seen, sorted as text)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from .dataset import SequenceDataset
from .tokens import is_int_text


def class_order_candidates(ds: SequenceDataset) -> list[tuple[str, str, list[str]]]:
    """The class orders a model's outputs may follow, for a choice with each one's accuracy.

    A state dict does not say which output is which class; the usual answers are the order the
    data file declares, sorted labels (what scikit-learn's ``LabelEncoder``, ``np.unique`` and
    pandas categories give) and the order of first appearance. Never pick one by accuracy
    silently: show them all.

    Parameters
    ----------
    ds : a classification dataset (its ``class_names`` hold every label string of the file).

    Returns
    -------
    list of ``(key, label, names)``: ``key`` in ``"declared"`` (only when the file declares an
    order: the ``.ts`` ``@classLabel`` line, an NPZ ``class_names`` array), ``"sorted"``,
    ``"sorted_text"`` (only for whole-number labels whose text order differs from their number
    order: ``"1", "10", "2"`` is what ``LabelEncoder`` gives for labels read as text), ``"first"``
    (first appearance in the data; classes the file declares but does not use follow in their
    declared order); ``label`` a plain sentence naming it; ``names`` the class names, output 0
    first. Orders equal to an earlier one are kept (the label says so), so keys are stable. Empty
    for regression targets or unlabelled data.
    """
    if ds.y is None or ds.class_names is None:
        return []
    names = list(ds.class_names)
    if ds.declared_classes:
        names += [c for c in ds.declared_classes if c not in names]
    out: list[tuple[str, str, list[str]]] = []

    def add(key: str, label: str, order: list[str]) -> None:
        same = next((lab for _, lab, o in out if o == order), None)
        out.append((key, label + (f" (the same as: {same.split(' (')[0].lower()})" if same else ""), order))

    if ds.declared_classes:
        add("declared", "The order the data file declares", list(ds.declared_classes) +
            [c for c in names if c not in ds.declared_classes])
    if all(is_int_text(c) for c in names):
        add("sorted", "Sorted by number", sorted(names, key=lambda c: int(c)))
        if sorted(names) != sorted(names, key=lambda c: int(c)):
            add("sorted_text", "Sorted as text, as labels read from a text file sort", sorted(names))
    else:
        add("sorted", "Sorted A to Z", sorted(names))
    first = [ds.class_names[i] for i in pd.unique(ds.y)]
    rest = ds.declared_classes or names
    add("first", "Order of first appearance in the data", first + [c for c in rest if c not in first])
    return out


def placeholder_classes(names: Sequence[str] | None) -> bool:
    """True for the numbered names an inferred state dict gets ("class 0", "class 1", ...)."""
    return bool(names) and list(names) == [f"class {i}" for i in range(len(names))]
