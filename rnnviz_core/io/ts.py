"""The UCR/UEA ``.ts`` reader."""
from __future__ import annotations

from typing import Iterable

import numpy as np

from . import limits as _limits  # read at call time: a limit set on the module holds
from ..errors import DataError
from .dataset import SequenceDataset, from_arrays
from .limits import check_size, too_big
from .tables import LINE_BREAK


# --------------------------------------------------------------------------------- .ts
def load_ts(data: bytes, label: str, name: str, class_names, missing: str, task=None) -> SequenceDataset:
    """Read the UCR/UEA ``.ts`` format (as written by sktime/aeon), line by line.

    Each case's size (channels from its colons, steps from its commas) is checked against the
    limits before the line is parsed, and the running total of values before it is stored.
    """
    header: dict[str, str] = {}
    cases: list[np.ndarray] = []                                       # each (T_i, C) float32
    labels: list[str] = []
    in_data = False
    class_list: list[str] | None = None
    has_label = False
    total = 0
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    for lineno, (a, b) in enumerate(_lines(data, start), start=1):
        while a < b and data[a] in b" \t":
            a += 1
        if a == b or data[a] == ord("#"):
            continue
        if not in_data:
            if b - a > 1_000_000:
                raise too_big(f"{label}: line {lineno} is a header line of {b - a:,} bytes; check the file.")
            line = data[a:b].decode("utf-8", errors="replace").strip()
            if not line.startswith("@"):
                raise DataError(f"{label}: line {lineno} comes before '@data' but is not a header line; "
                                f"check the file is in the .ts format.", code="unreadable", field="file")
            key, _, val = line[1:].partition(" ")
            key = key.lower()
            header[key] = val.strip()
            if key == "classlabel":
                parts = val.split()
                has_label = bool(parts) and parts[0].lower() == "true"
                class_list = parts[1:] if has_label else None
            elif key == "targetlabel":
                has_label = val.split()[:1] == ["true"]
            elif key == "timestamps" and val.strip().lower() == "true":
                raise DataError(f"{label} uses time stamps, which rnnviz does not read yet; export it "
                                f"without time stamps or as a long-form CSV.", code="unreadable", field="file")
            elif key == "data":
                in_data = True
            continue
        if len(cases) >= _limits.MAX_SEQUENCES:
            check_size(len(cases) + 1, 1, 1)
        channels = data.count(b":", a, b) + 1 - has_label
        values = data.count(b",", a, b) + max(channels, 1)
        if channels > _limits.MAX_FEATURES:
            check_size(1, 1, channels)
        if channels >= 1 and values // channels > _limits.MAX_STEPS:
            raise too_big(f"{label}: case {len(cases) + 1} (line {lineno}) has about {values // channels:,} steps; "
                           f"rnnviz handles at most {_limits.MAX_STEPS:,}. Shorten the sequences (for example keep the "
                           f"last {_limits.MAX_STEPS:,} steps).")
        total += values
        if total > _limits.MAX_CELLS:
            raise too_big(f"{label} holds more than {_limits.MAX_CELLS:,} values; rnnviz handles at most that many. "
                           f"Upload fewer or shorter sequences.")
        parts = data[a:b].split(b":")
        if has_label:
            labels.append(parts[-1].strip().decode("utf-8", errors="replace"))
            parts = parts[:-1]
        if not parts:
            raise DataError(f"{label}: line {lineno} has no values.", code="unreadable", field="file")
        dims = [_ts_values(p, label, lineno) for p in parts]
        if cases and len(dims) != cases[0].shape[1]:
            raise DataError(f"{label}: line {lineno} has {len(dims)} channels but the first case has "
                            f"{cases[0].shape[1]}; every case needs the same channels.", code="unreadable",
                            field="file")
        if len({len(d) for d in dims}) != 1:
            raise DataError(f"{label}: the channels on line {lineno} have different lengths; rnnviz needs "
                            f"all channels of a case to have the same number of steps.", code="unreadable",
                            field="file")
        cases.append(np.stack(dims, axis=1).astype(np.float32))
    if not in_data:
        raise DataError(f"{label} has no '@data' line, so it is not a complete .ts file.", code="unreadable",
                        field="file")
    if not cases:
        raise DataError(f"{label} has no cases after '@data', so there are no sequences.", code="no_sequences",
                        field="file")
    f = cases[0].shape[1]
    lengths = np.array([len(c) for c in cases], dtype=np.int64)
    if lengths.min() < 1:
        raise DataError(f"{label} has a case with no values.", code="unreadable", field="file")
    check_size(len(cases), int(lengths.max()), f)
    X = np.zeros((len(cases), int(lengths.max()), f), dtype=np.float32)
    for i in range(len(cases)):
        X[i, : lengths[i]] = cases[i]
        cases[i] = None                                                # free as we go
    del cases
    y = None
    if has_label:
        if "classlabel" in header:
            cn = list(class_names) if class_names is not None else class_list
            y = np.asarray(labels, dtype=object)
            if cn:
                unknown = sorted(set(labels) - set(cn))
                if unknown and class_names is None:
                    raise DataError(f"{label} has labels not declared in its @classLabel line: "
                                    f"{', '.join(unknown[:5])}.", code="unknown_labels", field="label")
        else:
            cn = None
            try:
                y = np.asarray([float(v) for v in labels], dtype=np.float32)
            except ValueError:
                raise DataError(f"{label} declares numeric targets but has a non-numeric one.", code="bad_labels",
                                field="label") from None
    else:
        cn = None
    problem = header.get("problemname", "")
    dim_names = [f"dim {j}" for j in range(f)] if f > 1 else [problem or "value"]
    ds = from_arrays(X, lengths, y=y, ids=[f"case{i:05d}" for i in range(len(lengths))], groups=None,
                     feature_names=dim_names, class_names=cn, name=name, missing=missing,
                     task=task or ("classification" if "classlabel" in header else "regression"), _copy=False)
    if class_list and ds.class_names is not None:
        ds.declared_classes = list(class_list)
    return ds


def _lines(data: bytes, start: int = 0) -> Iterable[tuple[int, int]]:
    """(start, end) of each line of ``data``, for line breaks of every kind (\\n, \\r\\n, a lone \\r)."""
    pos = start
    for m in LINE_BREAK.finditer(data, start):
        yield pos, m.start()
        pos = m.end()
    if pos < len(data):
        yield pos, len(data)


def _ts_values(part: bytes, label: str, lineno: int) -> np.ndarray:
    """One channel of a ``.ts`` case: comma-separated numbers, ``?`` for a missing value."""
    vals = part.replace(b"?", b"nan").split(b",")
    if vals and not vals[-1].strip():
        vals = vals[:-1]                                               # a trailing comma
    try:
        return np.array(vals, dtype=bytes).astype(np.float64)
    except ValueError:
        bad = next((v.strip().decode("utf-8", "replace") for v in vals
                    if not _is_float(v.strip().decode("utf-8", "replace").replace("nan", "?").replace("?", "0"))),
                   "")
        bad = bad.replace("nan", "?")
        raise DataError(f"{label}: line {lineno} has the value {bad!r}, which is not a number.", code="unreadable",
                        field="file") from None


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False
