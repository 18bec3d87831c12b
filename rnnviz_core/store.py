"""A small content-addressed store for uploaded files, so a shared link can refer to them.

Each file is kept under the SHA-256 of its bytes (64 hex characters: unguessable without the
content itself). The store has no listing: a file can be read back only by a caller that knows
its hash. The folder is bounded in size; when a new file would exceed the bound, the least
recently used files are removed first.

    store = UploadStore("/var/tmp/rnnviz-uploads", max_bytes=200_000_000)
    digest = store.put(data, name="model.safetensors")
    data, name = store.get(digest)          # (bytes, original file name), or KeyError

Pure Python; the app wraps it, a notebook can use it too.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path

from .errors import InputError

__all__ = ["UploadStore", "content_hash", "default_folder", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 500 * 1024 * 1024  # whole store: 500 MB
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_META = ".meta.json"


def content_hash(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def default_folder() -> Path:
    """``$RNNVIZ_UPLOAD_DIR`` if set, else ``<system temp>/rnnviz-uploads``."""
    env = os.environ.get("RNNVIZ_UPLOAD_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "rnnviz-uploads"


class UploadStore:
    """Files kept under their content hash in one folder, bounded in total size.

    Parameters
    ----------
    folder : str or Path, optional
        Where the files live (created with owner-only permissions). Default: :func:`default_folder`.
    max_bytes : int
        Upper bound on the total size of stored files; least recently used files are evicted
        to stay under it. A single file larger than this is refused.
    """

    def __init__(self, folder: str | os.PathLike | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes <= 0:
            raise InputError("The upload store needs a positive size limit (max_bytes).")
        self.folder = Path(folder) if folder is not None else default_folder()
        self.max_bytes = int(max_bytes)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    # -- public -------------------------------------------------------------------------
    def put(self, data: bytes, name: str = "") -> str:
        """Keep ``data`` (and its original file ``name``) and return its content hash."""
        data = bytes(data)
        if len(data) > self.max_bytes:
            raise InputError(
                f"The file is {len(data) / 1e6:.1f} MB, more than the {self.max_bytes / 1e6:.0f} MB "
                "this server keeps; use a smaller file."
            )
        digest = content_hash(data)
        path = self._path(digest)
        if not path.exists():
            self._evict(room_for=len(data))
            self._atomic_write(path, data)
        self._atomic_write(self._meta(digest), json.dumps({"name": os.path.basename(name)}).encode())
        self._touch(path)
        return digest

    def get(self, digest: str) -> tuple[bytes, str]:
        """Return ``(bytes, original name)`` for ``digest``; ``KeyError`` if it is not kept.

        A malformed hash, a missing file and a file whose bytes no longer match their hash all
        raise ``KeyError`` (the damaged file is removed).
        """
        if not isinstance(digest, str) or not _DIGEST.match(digest):
            raise KeyError(digest)
        path = self._path(digest)
        try:
            data = path.read_bytes()
        except OSError:
            raise KeyError(digest) from None
        if content_hash(data) != digest:
            self._remove(digest)
            raise KeyError(digest)
        self._touch(path)
        try:
            name = json.loads(self._meta(digest).read_text()).get("name", "")
        except (OSError, ValueError):
            name = ""
        return data, name

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and bool(_DIGEST.match(digest)) and self._path(digest).exists()

    def total_bytes(self) -> int:
        """Bytes currently used by stored files (not counting their small name records)."""
        return sum(size for _, size, _ in self._entries())

    # -- private ------------------------------------------------------------------------
    def _path(self, digest: str) -> Path:
        return self.folder / digest

    def _meta(self, digest: str) -> Path:
        return self.folder / (digest + _META)

    def _entries(self) -> list[tuple[float, int, str]]:
        out = []
        for entry in os.scandir(self.folder):
            if _DIGEST.match(entry.name):
                try:
                    st = entry.stat()
                except OSError:
                    continue
                out.append((st.st_mtime, st.st_size, entry.name))
        return out

    def _evict(self, room_for: int) -> None:
        entries = sorted(self._entries())  # oldest use first
        total = sum(size for _, size, _ in entries)
        for _, size, digest in entries:
            if total + room_for <= self.max_bytes:
                break
            self._remove(digest)
            total -= size

    def _remove(self, digest: str) -> None:
        for p in (self._path(digest), self._meta(digest)):
            try:
                p.unlink()
            except OSError:
                pass

    @staticmethod
    def _touch(path: Path) -> None:
        now = time.time()
        try:
            os.utime(path, (now, now))
        except OSError:
            pass

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
