"""Analysis bundles in the app: open one and hand the pages the numbers it holds.

A bundle (``rnnviz precompute``, :mod:`rnnviz_core.bundle`) carries numbers only, so the app can
show the analyses of a model it could never load. Three ways in:

- an upload (kept in the upload store under its content hash, so a link can name it);
- a hash in the link: the upload store, then ``$RNNVIZ_BUNDLE_DIR/<sha256>.rnnviz`` (bundles a
  host publishes by their hash; ``rnnviz inspect`` prints a bundle's hash);
- a path the host configures: ``$RNNVIZ_BUNDLE`` (a ``.rnnviz`` file or a bundle folder, or a
  folder's ``file://``, ``http(s)://`` or ``s3://`` URL, read by ranges; only the host's setting is
  ever opened as a URL).

Every way goes through :func:`rnnviz_core.bundle.open`, which checks the manifest, sizes and
hashes and refuses anything else; nothing in a bundle is ever executed or unpickled.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from rnnviz_core.bundle import Bundle, BundleError
from rnnviz_core.bundle import open as open_bundle
from rnnviz_core.bundle_cache import BundleCache
from rnnviz_core.bundle_remote import is_url, open_files
from rnnviz_core.store import content_hash

BUNDLE_ENV = "RNNVIZ_BUNDLE"
BUNDLE_DIR_ENV = "RNNVIZ_BUNDLE_DIR"
#: largest bundle the app opens (an upload is also bounded by server.maxUploadSize)
MAX_BUNDLE_BYTES = int(os.environ.get("RNNVIZ_BUNDLE_MAX_BYTES", 200 * 1024 * 1024))
#: memory the app lets one opened bundle take (its tables, padded per-step arrays and page frames)
MAX_BUNDLE_MEMORY = int(os.environ.get("RNNVIZ_BUNDLE_MAX_MEMORY", 512 * 1024 * 1024))
#: memory all opened bundles together may hold (the least recently used go first)
MAX_CACHE_BYTES = int(os.environ.get("RNNVIZ_BUNDLE_CACHE_BYTES", 1024 * 1024 * 1024))
_DIGEST = re.compile(r"^[0-9a-f]{64}$")

#: views that need the model itself: what the page says instead (names on-screen controls only)
NOT_INCLUDED = {
    "resilience": "Resilience to noise and missing steps re-runs the model, and this analysis bundle does not "
                  "include the model. Load the model and data in the sidebar to see it.",
    "faithfulness": "The deletion check re-runs the model, and this analysis bundle does not include the model. "
                    "Load the model and data in the sidebar to run it.",
    "second_model": "Comparing with a second model needs this model itself, and this analysis bundle does not "
                    "include it. Load the model and data in the sidebar to compare.",
    "target": "This analysis bundle explains the predicted class only; other target outputs need the model, "
              "which the bundle does not include.",
}


def _open(src) -> Bundle:
    return open_bundle(src, max_bytes=MAX_BUNDLE_BYTES, max_memory=MAX_BUNDLE_MEMORY)


def _open_path(path: Path) -> tuple[str, Bundle]:
    if path.is_dir():
        from rnnviz_core.bundle_files import BundleFiles

        files = BundleFiles(path, MAX_BUNDLE_BYTES)   # plain files only: a FIFO manifest cannot block
        dig = content_hash(files.read("manifest.json", files.size("manifest.json")))
        return dig, opened_bundles().get_or_open(dig, lambda: _open(path))
    data = path.read_bytes() if path.is_file() and path.stat().st_size <= MAX_BUNDLE_BYTES else None
    if data is None:
        return "", _open(path)   # refuses with the reason
    return content_hash(data), _open_bytes(content_hash(data), data)


@st.cache_resource
def opened_bundles() -> BundleCache:
    """The server's opened bundles, shared by every visitor, bounded by bytes (not by count)."""
    return BundleCache(MAX_CACHE_BYTES)


def _open_bytes(dig: str, data: bytes) -> Bundle:
    with st.spinner("Checking the analysis bundle…"):
        return opened_bundles().get_or_open(dig, lambda: _open(data))


def bundle_from_upload(uploaded) -> tuple[str, Bundle]:
    """Check an uploaded bundle and keep it under its content hash; ``(hash, bundle)``."""
    from rnnviz_app.sources.uploads import session_owner, upload_store

    data = uploaded.getvalue()
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"This analysis bundle is {len(data) / 1e6:.0f} MB; this app opens bundles up to "
                          f"{MAX_BUNDLE_BYTES / 1e6:.0f} MB.")
    bundle = _open_bytes(content_hash(data), data)   # checked before it is kept
    # kept as this visitor's: their quota applies, and eviction takes from whoever holds most
    return upload_store().put(data, name=uploaded.name, owner=session_owner()), bundle


def bundle_by_hash(dig: str) -> Bundle:
    """The bundle a link names by its hash: an earlier upload, or one the host publishes."""
    from rnnviz_app.sources.uploads import stored

    if not _DIGEST.match(str(dig)):
        raise BundleError("This link does not name an analysis bundle; open the bundle again with the uploader.")
    held = opened_bundles().get(dig)
    if held is not None:
        return held
    try:
        data, _ = stored(dig)
        return _open_bytes(dig, data)
    except KeyError:
        pass
    folder = os.environ.get(BUNDLE_DIR_ENV)
    if folder and (Path(folder) / f"{dig}.rnnviz").is_file():
        got, bundle = _open_path(Path(folder) / f"{dig}.rnnviz")
        if got != dig:
            raise BundleError("The published bundle under this hash has changed since the link was made; "
                              "ask for a new link.")
        return bundle
    raise BundleError("This server no longer has the analysis bundle this link names; open the bundle again "
                      "with the uploader.")


def host_bundle() -> tuple[str, Bundle] | None:
    """The bundle the host configured with ``$RNNVIZ_BUNDLE`` (None when unset), opened lazily
    (:func:`open_lazy`: checked, its sequence table never read whole, no size cap), under the hash
    a link names it by (:func:`_path_digest`)."""
    path = os.environ.get(BUNDLE_ENV)
    if not path:
        return None
    path = path if is_url(path) else Path(path)   # a path, or a file://, http(s):// or s3:// URL (the host's only)
    return _path_digest(path), open_lazy(path)


_DIGESTS: dict[tuple, str] = {}


def _path_digest(path: Path) -> str:
    """A host path's hash: a folder's is its manifest's, a file's is the whole file's (read in
    chunks, once per size and modification time)."""
    if is_url(path) or path.is_dir():
        files = open_files(path, MAX_LAZY_BYTES)
        return content_hash(files.read("manifest.json", files.size("manifest.json")))
    if not path.is_file():
        raise BundleError(f"The host's analysis bundle '{path.name}' is not a file or folder this app can read.")
    import hashlib

    st_ = path.stat()
    key = (str(path), st_.st_size, st_.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


@dataclass
class BundleData:
    """What the pages read from ``ctx.data``, filled from a bundle (no inputs ``X``: see ``sample_x``)."""
    ids: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None
    class_names: list[str] | None
    groups: pd.DataFrame
    feature_names: list[str]
    name: str = ""
    sample_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.ids)


def bundle_data(b: Bundle) -> BundleData:
    """The dataset-shaped view of a bundle for the pages (ids, lengths, labels, data columns)."""
    seq = b.sequences
    data = b.manifest["data"]
    y = None
    if "true" in seq and data.get("labelled"):
        y = seq["true"].to_numpy(np.int64 if data.get("class_names") else np.float32)
    groups = b.data_columns
    return BundleData(ids=b.ids.astype(str), lengths=b.lengths, y=y, class_names=data.get("class_names"),
                      groups=groups, feature_names=list(data.get("feature_names", [])),
                      name=str(data.get("name") or "bundle"), sample_rows=b.sample_rows)


def sample_states(b: Bundle, kind: str = "h", layer: int = -1, direction: str = "fwd") -> tuple[np.ndarray, np.ndarray]:
    """``(rows, states [S, T, H])`` of the sampled sequences: the only ones whose every unit, gate
    and cell state a bundle holds."""
    tr = b.sample_trace()
    return b.sample_rows, np.ascontiguousarray(tr.get(kind, layer=layer, direction=direction))


def method_message(b: Bundle, method: str) -> str | None:
    """None when the bundle holds ``method``'s scores, else the sentence the page shows."""
    if method in b.methods:
        return None
    have = ", ".join(m.replace("_", " ") for m in b.methods) or "no method"
    return (f"This analysis bundle holds the scores of {have} only; {method.replace('_', ' ')} needs the model, "
            f"which the bundle does not include. Choose one of those under Method.")


def sequence_message(b: Bundle) -> str:
    """The note beside sequence pickers: full traces exist for the sample only."""
    return (f"This analysis bundle holds every unit, gate and cell state for {len(b.sample_rows)} of its "
            f"{b.n_sequences:,} sequences, chosen to cover every class and outcome; Sequence A and B are "
            f"picked among those. Paths, |h| curves, saturation shares and scores cover every sequence.")


def threshold_message(b: Bundle) -> str:
    """The note on the saturation page: the thresholds were fixed when the bundle was built."""
    a = b.manifest["analysis"]
    return (f"This analysis bundle was computed with |value| at least {a['threshold']:g} for saturated units and "
            f"gates nearly shut below {a['gate_low']:g} / nearly open above {a['gate_high']:g}; other values "
            f"need the model, which the bundle does not include.")


# ---------------------------------------------------------------------------- large bundles, read lazily
#: largest bundle a host path (``$RNNVIZ_BUNDLE``) may hold when it is opened lazily
MAX_LAZY_BYTES = int(os.environ.get("RNNVIZ_BUNDLE_LAZY_MAX_BYTES", 1024**4))


def open_lazy(path: Path) -> Bundle:
    """A host's bundle opened without reading its sequence table: checked (manifest, every file's
    size, the arrays' hashes, safetensors headers, Parquet footers: the parts are not read whole to
    hash them, as with a bundle behind a URL), then read only as views ask
    (:meth:`Bundle.lazy`, :meth:`Bundle.mean_abs_score`, :meth:`Bundle.histogram`,
    :meth:`Bundle.saturation_over_time` for its built-in groupings). Memory follows the footers and
    one row group, not the number of sequences; uploads keep their size limit (``bundle_from_upload``)."""
    files = open_files(path, MAX_LAZY_BYTES)
    dig = "lazy:" + content_hash(files.read("manifest.json", files.size("manifest.json")))
    def opener() -> Bundle:
        b = open_bundle(path, max_bytes=MAX_LAZY_BYTES, max_memory=2**62, read=False)
        # what it holds: the footers and the small arrays, not the table (which it never reads whole)
        b.memory_bytes = sum(int(md.serialized_size) for md in b._part_metas.values()) + sum(
            int(e["bytes"]) for n, e in b.manifest["files"].items() if n.endswith(".safetensors"))
        return b

    return opened_bundles().get_or_open(dig, opener)


def search_ids(b: Bundle, text: str, limit: int = 50) -> pd.DataFrame:
    """Sequences whose id contains ``text`` (case-insensitive), at most ``limit``: ``seq``, ``id``.
    Reads the bundle's id column part by part and stops at ``limit`` (never loads every id)."""
    text = str(text or "").strip()
    if not text:
        return pd.DataFrame({"seq": np.zeros(0, np.int64), "id": np.zeros(0, object)})
    return b.lazy().find_ids(text, limit=int(limit))
