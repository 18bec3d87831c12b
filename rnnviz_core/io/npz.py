"""The NPZ reader: X, lengths, y and names as arrays, never pickles."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from . import limits as _limits  # read at call time: a limit set on the module holds
from ..errors import DataError
from .columns import suggest_column
from .dataset import SequenceDataset, from_arrays
from .limits import check_size, too_big


# -------------------------------------------------------------------------------- NPZ
_NPZ_RESERVED = {"X", "lengths", "y", "ids", "class_names", "feature_names"}


def load_npz(data: bytes, label: str, name: str, class_names, missing: str, task=None) -> SequenceDataset:
    arrays = _read_npz_arrays(data, label)
    keys = list(arrays)
    if "X" not in keys:
        raise DataError(f"{label} has no array named 'X' (the sequences, shaped [N, T, F]).{suggest_column('X', keys)} "
                        f"It holds: {', '.join(keys) or 'nothing'}.", code="missing_array", field="file")
    X = arrays["X"]
    n = X.shape[0] if X.ndim >= 1 else 0
    names = arrays.get("class_names")
    fnames = arrays.get("feature_names")
    extra = {k: v for k, v in arrays.items() if k not in _NPZ_RESERVED and v.ndim == 1 and len(v) == n}
    groups = pd.DataFrame({k: (v.astype(str) if v.dtype.kind in "US" else v) for k, v in extra.items()}) \
        if extra else None
    cn = class_names if class_names is not None else (None if names is None else [str(s) for s in names])
    ds = from_arrays(X, arrays.get("lengths"), y=arrays.get("y"), ids=arrays.get("ids"), groups=groups,
                     feature_names=None if fnames is None else [str(s) for s in fnames],
                     class_names=cn, name=name, missing=missing, task=task, _copy=False)
    if names is not None and ds.class_names is not None:
        ds.declared_classes = [str(s) for s in names]
    return ds


def _read_npz_arrays(data: bytes, label: str) -> dict[str, np.ndarray]:
    """Read an NPZ's arrays without trusting its headers.

    Each array's ``.npy`` header (dtype, shape) is checked against the limits before anything is
    allocated; the content is then read into that array in chunks and the bytes actually
    unpacked are counted, so a zip entry whose sizes understate (or overstate) its content is
    refused as damaged instead of being unpacked. Object arrays are refused (they need pickle).
    """
    import zipfile

    from numpy.lib import format as npf

    damaged = DataError(f"{label} is not a readable NPZ archive; save it again with np.savez.",
                        code="unreadable", field="file")
    limit = min(_limits.MAX_DECODED_BYTES, 2 * _limits.MAX_DATA_BYTES)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception:
        if data[:6] == b"\x93NUMPY":
            raise DataError(f"{label} holds a single array, not an NPZ archive; save it with np.savez(..., X=X).",
                            code="unreadable", field="file") from None
        raise damaged from None
    if len(infos) > _limits.MAX_NPZ_ARRAYS:
        raise too_big(f"{label} holds {len(infos):,} files; an NPZ for rnnviz holds at most {_limits.MAX_NPZ_ARRAYS}.")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for info in infos:
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        try:
            with zf.open(info) as f:
                version = npf.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = npf.read_array_header_1_0(f, max_header_size=10_000)
                else:
                    shape, fortran, dtype = npf.read_array_header_2_0(f, max_header_size=10_000)
                if dtype.hasobject:
                    raise DataError(f"The array '{key}' in {label} holds Python objects, which rnnviz does not open "
                                    f"(they could run code). Save text as plain strings, e.g. "
                                    f"np.array(ids, dtype=str).", code="unsafe", field="file")
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                nbytes = count * dtype.itemsize
                if count < 0 or total + nbytes > limit:
                    raise too_big(f"{label} unpacks to more than {limit // 2**20:,} MB of arrays ('{key}' alone "
                                   f"is {nbytes / 2**20:,.0f} MB); rnnviz handles at most that much. Upload fewer "
                                   f"or shorter sequences (or save X as float32).")
                if key == "X" and len(shape) in (2, 3):
                    check_size(*(tuple(shape) + (1,))[:3])
                elif len(shape) >= 1 and key != "X" and shape[0] > _limits.MAX_SEQUENCES and key not in (
                        "class_names", "feature_names"):
                    check_size(shape[0], 1, 1)
                arr = np.empty(count, dtype=dtype)
                buf = memoryview(arr.view(np.uint8).reshape(-1)) if nbytes else memoryview(b"")
                got = 0
                while got < nbytes:
                    k = f.readinto(buf[got: got + (1 << 24)])
                    if not k:
                        break
                    got += k
                if got != nbytes or f.read(1):                   # content measured, not the headers
                    raise damaged
                total += nbytes
        except DataError:
            raise
        except Exception:
            raise damaged from None
        arrays[key] = arr.reshape(shape, order="F" if fortran else "C")
    return arrays
