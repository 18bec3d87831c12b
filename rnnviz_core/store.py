"""A small content-addressed store for uploaded files, so a shared link can refer to them.

Each file is kept under the SHA-256 of its bytes (64 hex characters: unguessable without the
content itself). The store has no listing: a file can be read back only by a caller that knows
its hash. The folder is bounded in size, and so is each uploader's share of it:

- a file is stored only once the caller has checked it loads (the app parses first), so refused
  files never take anyone's room;
- each owner (one browser session in the app) holds at most ``owner_bytes``; going over evicts
  that owner's own least recently used files;
- when the whole store is full, room is made by evicting from whoever holds the most (least
  recently used first), so a visitor who uploads a lot evicts their own files before a
  colleague's smaller ones;
- writes reserve their size under a lock before the bytes reach the disk, so the bound holds
  under concurrent uploads (temporary files included), and a hash is returned only for a file
  that is in the store when ``put`` returns;
- the folder is scanned once, when the store opens: leftover temporary files of a crashed
  write and name records without their file are removed there and counted in
  :attr:`UploadStore.cleaned`; after that the store keeps its own index (no scan per upload);
- storing the same bytes again (after an eviction) brings the same hash, so an old link works
  again.

    store = UploadStore("/var/tmp/rnnviz-uploads", max_bytes=200_000_000)
    digest = store.put(data, name="model.safetensors", owner="session-1")
    data, name = store.get(digest)          # (bytes, original file name), or KeyError

The folder is ``$RNNVIZ_UPLOAD_DIR`` when set (point it at a persistent disk so links survive a
restart of the host), else a folder in the system's temporary directory. Pure Python; the app
wraps it, a notebook can use it too. One process owns a folder at a time (the index lives in
memory).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path

from .errors import InputError

__all__ = ["UploadStore", "content_hash", "default_folder", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 500 * 1024 * 1024  # whole store: 500 MB
#: how long an upload waits for room that other uploads still being written hold, before refusing
BUSY_WAIT_S = 30.0
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_META = ".meta.json"
_TMP = ".tmp-"


def _size(n: int) -> str:
    """A byte count in MB for people: "1.5 MB" (small bounds keep their digits: "0.00005 MB")."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e6:.6f}".rstrip("0") + " MB"


def content_hash(data: bytes) -> str:
    """SHA-256 of ``data`` as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def default_folder() -> Path:
    """``$RNNVIZ_UPLOAD_DIR`` if set, else ``<system temp>/rnnviz-uploads``."""
    env = os.environ.get("RNNVIZ_UPLOAD_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "rnnviz-uploads"


class UploadStore:
    """Files kept under their content hash in one folder, bounded in total and per owner.

    Parameters
    ----------
    folder : str or Path, optional
        Where the files live (created with owner-only permissions). Default: :func:`default_folder`.
    max_bytes : int
        Upper bound on the bytes of stored files plus files being written (their small name
        records aside). A single file larger than this (or than ``owner_bytes``) is refused.
    owner_bytes : int, optional
        Upper bound on what one named owner holds. Default: a quarter of ``max_bytes``.

    Attributes
    ----------
    cleaned : dict
        What opening the store removed: ``{"temporary": n, "orphan_records": n, "bytes": n}``.
    """

    def __init__(self, folder: str | os.PathLike | None = None, max_bytes: int = DEFAULT_MAX_BYTES,
                 owner_bytes: int | None = None):
        if max_bytes <= 0 or (owner_bytes is not None and owner_bytes <= 0):
            raise InputError("The upload store needs a positive size limit (max_bytes).")
        self.folder = Path(folder) if folder is not None else default_folder()
        self.max_bytes = int(max_bytes)
        self.owner_bytes = int(owner_bytes) if owner_bytes is not None else max(1, self.max_bytes // 4)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        # a condition, so that a write waiting for room wakes when another write's reservation ends
        self._lock = threading.Condition()
        # digest -> [last use, bytes on disk (file + record), owner]
        self._index: dict[str, list] = {}
        self._reserved = 0
        self.cleaned = {"temporary": 0, "orphan_records": 0, "bytes": 0}
        self._open()

    # -- public -------------------------------------------------------------------------
    def put(self, data: bytes, name: str = "", owner: str = "") -> str:
        """Keep ``data`` (and its original file ``name``) for ``owner``; return its content hash.

        Call it only for a file that loads: a refused file should not take anyone's room.
        """
        data = bytes(data)
        record = json.dumps({"name": os.path.basename(str(name))[:255], "owner": str(owner)[:64]}).encode()
        size = len(data)
        limit = min(self.max_bytes, self.owner_bytes) if owner else self.max_bytes
        if size > limit:
            raise InputError(
                f"The file is {_size(len(data))}, more than the {_size(limit)} "
                f"this server keeps{' for one visitor' if owner else ''}; use a smaller file."
            )
        digest = content_hash(data)
        with self._lock:
            entry = self._index.get(digest)
            if entry is not None and self._path(digest).exists():
                entry[0] = time.time()
                self._touch(self._path(digest))
                return digest
            self._index.pop(digest, None)
            deadline = time.monotonic() + BUSY_WAIT_S
            while not self._make_room(size, str(owner)):
                # the room is held by other uploads still being written: wait for them to finish
                left = deadline - time.monotonic()
                if left <= 0 or not self._reserved:
                    raise InputError("The server's upload space is busy with files being written; "
                                     "try again in a moment.")
                self._lock.wait(left)
            self._reserved += size
        try:
            self._atomic_write(self._path(digest), data)
            self._atomic_write(self._meta(digest), record)
        except BaseException:
            with self._lock:
                self._reserved -= size
                self._remove(digest)
                self._lock.notify_all()
            raise
        with self._lock:
            self._reserved -= size
            self._index[digest] = [time.time(), size, str(owner)]
            self._lock.notify_all()
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
            with self._lock:
                self._remove(digest)
            raise KeyError(digest)
        with self._lock:
            entry = self._index.get(digest)
            if entry is not None:
                entry[0] = time.time()
        self._touch(path)
        try:
            name = json.loads(self._meta(digest).read_text()).get("name", "")
        except (OSError, ValueError, AttributeError):
            name = ""
        return data, str(name)

    def __contains__(self, digest: object) -> bool:
        return isinstance(digest, str) and bool(_DIGEST.match(digest)) and self._path(digest).exists()

    def total_bytes(self) -> int:
        """Bytes used by stored files (not counting their small name records)."""
        with self._lock:
            return sum(e[1] for e in self._index.values())

    def used_bytes(self) -> int:
        """Bytes the store counts against ``max_bytes``: stored files and writes under way."""
        with self._lock:
            return sum(e[1] for e in self._index.values()) + self._reserved

    def owner_total(self, owner: str) -> int:
        """Bytes held by ``owner``."""
        with self._lock:
            return sum(e[1] for e in self._index.values() if e[2] == owner)

    # -- private ------------------------------------------------------------------------
    def _path(self, digest: str) -> Path:
        return self.folder / digest

    def _meta(self, digest: str) -> Path:
        return self.folder / (digest + _META)

    def _meta_size(self, digest: str) -> int:
        try:
            return self._meta(digest).stat().st_size
        except OSError:
            return 0

    def _open(self) -> None:
        """The one scan: index the stored files, remove leftovers of crashed writes and records
        without their file, evict down to the bound if it shrank."""
        files, metas = {}, set()
        for entry in os.scandir(self.folder):
            name = entry.name
            try:
                st = entry.stat()
            except OSError:
                continue
            if name.startswith(_TMP):
                self.cleaned["temporary"] += 1
                self.cleaned["bytes"] += st.st_size
                self._unlink(Path(entry.path))
            elif _DIGEST.match(name):
                files[name] = st
            elif name.endswith(_META) and _DIGEST.match(name[: -len(_META)]):
                metas.add(name[: -len(_META)])
        for d in metas - set(files):
            self.cleaned["orphan_records"] += 1
            self.cleaned["bytes"] += self._meta_size(d)
            self._unlink(self._meta(d))
        for d, st in files.items():
            owner = ""
            try:
                owner = str(json.loads(self._meta(d).read_text()).get("owner", ""))
            except (OSError, ValueError, AttributeError):
                pass
            self._index[d] = [st.st_mtime, st.st_size, owner]
        with self._lock:
            self._make_room(0, "")

    def _make_room(self, size: int, owner: str) -> bool:
        """Evict (lock held) so that ``size`` more bytes fit for ``owner``; False when they cannot
        fit yet because the rest of the room is reserved by writes in progress."""
        mine = sorted((e[0], d) for d, e in self._index.items() if e[2] == owner) if owner else []
        # (files stored without an owner are not under a per-owner quota)
        held = sum(self._index[d][1] for _, d in mine)
        for _, d in mine:                                  # the owner's own share first
            if held + size <= self.owner_bytes:
                break
            held -= self._index[d][1]
            self._remove(d)
        total = sum(e[1] for e in self._index.values()) + self._reserved
        while total + size > self.max_bytes and self._index:
            by_owner: dict[str, int] = {}
            for e in self._index.values():
                by_owner[e[2]] = by_owner.get(e[2], 0) + e[1]
            if owner:
                by_owner[owner] = by_owner.get(owner, 0) + size
            # the largest holder that still has a file gives one up (its least recently used)
            for who in sorted(by_owner, key=by_owner.get, reverse=True):
                theirs = [(e[0], d) for d, e in self._index.items() if e[2] == who]
                if theirs:
                    victim = min(theirs)[1]
                    break
            total -= self._index[victim][1]
            self._remove(victim)
        return total + size <= self.max_bytes

    def _remove(self, digest: str) -> None:
        self._index.pop(digest, None)
        for p in (self._path(digest), self._meta(digest)):
            self._unlink(p)

    @staticmethod
    def _unlink(p: Path) -> None:
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
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=_TMP)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            self._unlink(Path(tmp))
            raise
