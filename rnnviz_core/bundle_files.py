"""Read access to the files of an analysis bundle (a folder or one uncompressed zip).

Only plain files are opened: in a folder every name is checked with ``lstat`` and opened with
``O_NOFOLLOW | O_NONBLOCK`` (a FIFO or device cannot block the reader, a link cannot point
elsewhere); in a zip, duplicate names, encrypted entries, links and compressed entries are
refused. Headers and footers are read by offset (:meth:`BundleFiles.read_range`) without reading
the rest of a member. Used by :func:`rnnviz_core.bundle.open`.
"""
from __future__ import annotations

import builtins
import hashlib
import io
import os
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any

from .bundle_check import refuse as _refuse
from .errors import BundleError

__all__ = ["BundleFiles", "MAX_FILES"]

#: most files a bundle holds
MAX_FILES = 10_000


def _regular(path: Path, name: str) -> os.stat_result:
    """``lstat`` of a file inside a bundle folder: a plain file, or a refusal (no links, FIFOs, devices)."""
    try:
        st = os.lstat(path)
    except OSError:
        raise _refuse(f"'{name}' cannot be read from the bundle folder.") from None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(f"'{name}' in the bundle folder is not a plain file (a link, a pipe or a device); a bundle "
                      f"holds plain files only.")
    return st


class BundleFiles:
    """Read access to the files of a bundle, directory or zip, within the manifest's sizes.

    Only plain files are opened: in a folder every name is checked with ``lstat`` and opened with
    ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO cannot block the reader); in a zip, duplicate names,
    encrypted entries and links are refused.
    """

    def __init__(self, src: Any, max_bytes: int):
        self.zip: zipfile.ZipFile | None = None
        self.dir: Path | None = None
        self._raw: bytes | None = None
        self._path: Path | None = None
        self.max_bytes = int(max_bytes)
        if isinstance(src, (bytes, bytearray, memoryview)):
            if len(src) > self.max_bytes:
                raise BundleError(f"This bundle is {len(src) / 1e6:.0f} MB, more than the {self.max_bytes / 1e6:.0f} MB "
                                  f"this reader accepts.")
            self._raw = bytes(src)
            self._open_zip(io.BytesIO(self._raw))
        elif hasattr(src, "read") and not isinstance(src, (str, os.PathLike)):
            data = src.read(self.max_bytes + 1)
            if len(data) > self.max_bytes:
                raise BundleError(f"This bundle is more than the {self.max_bytes / 1e6:.0f} MB this reader accepts.")
            self._raw = bytes(data)
            self._open_zip(io.BytesIO(self._raw))
        else:
            p = Path(src)
            try:
                st = os.stat(p)
            except OSError:
                raise BundleError(f"There is no bundle at '{p}'; check the path.") from None
            if stat.S_ISDIR(st.st_mode):
                self.dir = p
            elif stat.S_ISREG(st.st_mode):
                if st.st_size > self.max_bytes:
                    raise BundleError(f"'{p.name}' is {st.st_size / 1e6:.0f} MB, more than the "
                                      f"{self.max_bytes / 1e6:.0f} MB this reader accepts.")
                self._path = p
                self._open_zip(p)
            else:
                raise BundleError(f"'{p.name}' is not a plain file or folder (a pipe or a device); choose a bundle "
                                  f"file.")

    def _open_zip(self, f: Any) -> None:
        try:
            self.zip = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise BundleError("This file is not an rnnviz bundle (a bundle is a folder or an uncompressed zip "
                              "holding manifest.json); choose a file written by `rnnviz precompute`.") from None

    def names(self) -> list[str]:
        if self.zip is not None:
            infos = self.zip.infolist()
            if len(infos) > MAX_FILES + 1:
                raise _refuse(f"This bundle holds {len(infos)} files, more than a bundle ever has.")
            seen: set[str] = set()
            for i in infos:
                if i.filename in seen:
                    raise _refuse(f"The bundle file holds '{i.filename[:80]}' twice; a bundle holds each file once.")
                seen.add(i.filename)
                if i.flag_bits & 0x1:
                    raise _refuse(f"'{i.filename[:80]}' is encrypted inside the bundle; rnnviz bundles are not.")
                if stat.S_ISLNK(i.external_attr >> 16):
                    raise _refuse(f"'{i.filename[:80]}' is a link inside the bundle; a bundle holds plain files only.")
            return [i.filename for i in infos if not i.is_dir()]
        out = []
        for root, dirs, fnames in os.walk(self.dir):
            for d in list(dirs):
                if os.path.islink(os.path.join(root, d)):
                    raise _refuse(f"'{d[:80]}' in the bundle folder is a link; a bundle holds plain files only.")
            for fn in fnames:
                out.append((Path(root) / fn).relative_to(self.dir).as_posix())
                if len(out) > MAX_FILES + 1:
                    raise _refuse("This bundle folder holds more files than a bundle ever has.")
        return out

    def size(self, name: str) -> int:
        if self.zip is not None:
            info = self.zip.getinfo(name)
            if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
                raise _refuse(f"'{name}' is compressed inside the bundle; rnnviz bundles are stored uncompressed.")
            return info.file_size
        return _regular(self.dir / name, name).st_size

    def _fd(self, name: str) -> int:
        path = self.dir / name
        _regular(path, name)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            raise _refuse(f"'{name}' cannot be read from the bundle folder.") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _refuse(f"'{name}' in the bundle folder is not a plain file; a bundle holds plain files only.")
        return fd

    def stream(self, name: str) -> Any:
        """A binary file object of one member (plain files only)."""
        if self.zip is not None:
            try:
                return self.zip.open(name)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError):
                raise _refuse(f"'{name}' cannot be read from the bundle file; the file is damaged.") from None
        return os.fdopen(self._fd(name), "rb")

    def read(self, name: str, expected: int) -> bytes:
        """The file's bytes, refusing it when it is longer than ``expected``."""
        try:
            with self.stream(name) as f:
                data = f.read(expected + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            raise _refuse(f"'{name}' cannot be read from the bundle file; the file is damaged.") from None
        if len(data) != expected:
            raise _refuse(f"'{name}' is not the size its manifest entry says; the bundle is damaged.")
        return data

    def _data_offset(self, name: str) -> int:
        """Where a stored zip member's bytes start in the zip (after its local header)."""
        info = self.zip.getinfo(name)
        head = self._zip_bytes(info.header_offset, 30)
        if len(head) != 30 or head[:4] != b"PK\x03\x04":
            raise _refuse(f"'{name}' cannot be read from the bundle file; the file is damaged.")
        n_name, n_extra = struct.unpack("<HH", head[26:30])
        return info.header_offset + 30 + n_name + n_extra

    def _zip_bytes(self, start: int, n: int) -> bytes:
        if self._raw is not None:
            return self._raw[start:start + n]
        with builtins.open(self._path, "rb") as f:
            f.seek(start)
            return f.read(n)

    def read_range(self, name: str, start: int, n: int) -> bytes:
        """``n`` bytes of a member from ``start`` (a header or footer), without reading the rest."""
        if self.zip is not None:
            data = self._zip_bytes(self._data_offset(name) + start, n)
        else:
            with os.fdopen(self._fd(name), "rb") as f:
                f.seek(start)
                data = f.read(n)
        if len(data) != n:
            raise _refuse(f"'{name}' is shorter than it says; the bundle is damaged.")
        return data

    def sha256(self, name: str, expected: int) -> str:
        h = hashlib.sha256()
        size = 0
        try:
            with self.stream(name) as f:
                while chunk := f.read(1 << 20):
                    size += len(chunk)
                    if size > expected:
                        break
                    h.update(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            raise _refuse(f"'{name}' cannot be read from the bundle file; the file is damaged.") from None
        if size != expected:
            raise _refuse(f"'{name}' is not the size its manifest entry says; the bundle is damaged.")
        return h.hexdigest()
