"""Bundle folders on a shared disk or object storage, opened by path or URL and read with ranges
(issue 21).

:func:`open_files` gives the file access :func:`rnnviz_core.bundle.open` reads through, for

- a local path (a folder or a ``.rnnviz`` file, :class:`rnnviz_core.bundle_files.BundleFiles`),
- a ``file://`` URL (the same, from its path),
- an ``http://`` or ``https://`` URL of a bundle folder (a small range reader over ``urllib``:
  one HEAD per file for its size, one GET with a ``Range`` header per read; a server that does
  not serve byte ranges is refused rather than downloaded from),
- an ``s3://bucket/prefix`` of a bundle folder (``pyarrow.fs.S3FileSystem``: credentials from the
  usual AWS settings, an S3-compatible store's address from ``RNNVIZ_S3_ENDPOINT`` or
  ``AWS_ENDPOINT_URL``).

Remote files are never downloaded whole unless a view reads them whole: the open check reads
the manifest, the safetensors headers and the Parquet footers by range, with the same bounds as
for a local bundle (every size a file states is checked before anything is allocated for it).
A remote file is checked against its manifest hash when it is read whole (the manifest's arrays,
the aggregates); the Parquet parts, read by ranges only, are checked by their size and footers
(hashing them would mean downloading every byte). A URL is only ever opened from a caller's own
setting (the host's ``RNNVIZ_BUNDLE``); uploads arrive as bytes and links name bundles by hash.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .bundle_check import refuse as _refuse
from .bundle_files import MAX_FILES, BundleFiles
from .errors import BundleError

__all__ = ["S3_ENDPOINT_ENV", "RemoteFiles", "is_url", "open_files"]

S3_ENDPOINT_ENV = "RNNVIZ_S3_ENDPOINT"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
#: largest single read of a remote file (a whole small file is read in pieces of this size)
_CHUNK = 8 * 1024**2
_MANIFEST_MAX = 8 * 1024**2


def is_url(src: Any) -> bool:
    """Whether ``src`` is a string with a URL scheme (``file://``, ``http://``, ``s3://`` ...)."""
    return isinstance(src, str) and bool(_SCHEME.match(src))


def open_files(src: Any, max_bytes: int) -> Any:
    """The file access for a bundle at ``src``: a path, a ``file://``, ``http(s)://`` or ``s3://``
    URL, bytes or a binary file object."""
    if not is_url(src):
        return BundleFiles(src, max_bytes)
    scheme = _SCHEME.match(src).group(1).lower()
    if scheme == "file":
        u = urllib.parse.urlparse(src)
        if u.netloc not in ("", "localhost"):
            raise BundleError(f"'{src[:200]}' names a file on another machine; a file:// address must be a path "
                              f"on this one (file:///path/to/bundle).")
        return BundleFiles(Path(urllib.request.url2pathname(u.path)), max_bytes)
    if scheme in ("http", "https"):
        return RemoteFiles(_Http(src), src, max_bytes)
    if scheme == "s3":
        return RemoteFiles(_S3(src), src, max_bytes)
    raise BundleError(f"'{src[:200]}' is not a bundle address this reader knows: use a path, or a file://, "
                      f"http://, https:// or s3:// address of a bundle folder.")


def _where(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.hostname or "", u.path, "", ""))[:200]   # no credentials


class RemoteFiles:
    """Read access to a bundle folder behind a URL, with the interface of
    :class:`~rnnviz_core.bundle_files.BundleFiles` (``names``, ``size``, ``read``, ``read_range``,
    ``sha256``); every read is a range read of at most the bytes asked for."""

    remote = True
    zip = None
    dir = None

    def __init__(self, backend: Any, url: str, max_bytes: int):
        self._be, self.url, self.max_bytes = backend, url, int(max_bytes)
        self._sizes: dict[str, int | None] = {}
        #: hashes from the manifest (set by the open check): files read whole are checked against them
        self.hashes: dict[str, str] = {}
        self._manifest: bytes | None = None

    def names(self) -> list[str]:
        listed = self._be.list()
        if listed is not None:   # a store that lists (S3): every file there, sizes kept
            if len(listed) > MAX_FILES + 1:
                raise _refuse(f"The bundle folder at '{_where(self.url)}' holds more files than a bundle ever has.")
            self._sizes.update(listed)
            return sorted(listed)
        # a server that cannot list (HTTP): the manifest's files, each then checked for its size
        if self.size("manifest.json", missing_ok=True) is None:
            return []
        try:
            man = json.loads(self.read("manifest.json", self.size("manifest.json")))
            files = man.get("files") if isinstance(man, dict) else None
        except (ValueError, BundleError):
            files = None
        names = ["manifest.json"]
        if isinstance(files, dict):
            names += [n for n in list(files)[: MAX_FILES + 1] if isinstance(n, str) and n != "manifest.json"]
        return names

    def size(self, name: str, missing_ok: bool = False) -> int | None:
        if name not in self._sizes:
            self._sizes[name] = self._be.size(name)
        n = self._sizes[name]
        if n is None and not missing_ok:
            raise _refuse(f"The bundle is incomplete: '{name}' is missing at '{_where(self.url)}'.")
        return n

    def read_range(self, name: str, start: int, n: int) -> bytes:
        """``n`` bytes of a file from ``start`` (one ranged request)."""
        if n <= 0:
            return b""
        size = self.size(name)
        if start < 0 or start + n > size:
            raise _refuse(f"'{name}' is shorter than it says; the bundle is damaged.")
        data = self._be.read(name, int(start), int(n))
        if len(data) != n:
            raise _refuse(f"'{name}' is shorter than it says; the bundle is damaged.")
        return data

    def _chunks(self, name: str, expected: int):
        if self.size(name) != expected:
            raise _refuse(f"'{name}' is not the size its manifest entry says; the bundle is damaged.")
        for start in range(0, expected, _CHUNK):
            yield self.read_range(name, start, min(_CHUNK, expected - start))

    def read(self, name: str, expected: int) -> bytes:
        """The whole file (refused unless it is ``expected`` bytes), checked against its manifest
        hash when the open check has set one."""
        if name == "manifest.json" and self._manifest is not None and len(self._manifest) == expected:
            return self._manifest
        if name == "manifest.json" and expected > _MANIFEST_MAX:
            raise _refuse(f"Its manifest.json is {expected / 1e6:.1f} MB, far more than a manifest needs.")
        h = hashlib.sha256()
        parts = []
        for c in self._chunks(name, expected):
            h.update(c)
            parts.append(c)
        data = b"".join(parts)
        if name in self.hashes and h.hexdigest() != self.hashes[name]:
            raise _refuse(f"'{name}' does not match the hash in the manifest; the bundle was changed or damaged.")
        if name == "manifest.json":
            self._manifest = data
        return data

    def sha256(self, name: str, expected: int) -> str:
        h = hashlib.sha256()
        for c in self._chunks(name, expected):
            h.update(c)
        return h.hexdigest()


# ============================================================================ HTTP(S)
class _NoOtherSchemes(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) addresses only (never to ftp:// or file://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        if urllib.parse.urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise BundleError(f"The bundle server redirected to '{newurl[:200]}', which is not an http(s) address.")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Http:
    timeout = 30

    def __init__(self, url: str):
        self.base = url if url.endswith("/") else url + "/"
        self._open = urllib.request.build_opener(_NoOtherSchemes()).open

    def _url(self, name: str) -> str:
        return self.base + urllib.parse.quote(name)

    def _request(self, req: urllib.request.Request) -> Any:
        try:
            return self._open(req, timeout=self.timeout)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise BundleError(f"The analysis bundle at '{_where(self.base)}' cannot be reached ({reason}); check the "
                              f"address and that its server is running.") from None

    def list(self) -> None:
        return None

    def size(self, name: str) -> int | None:
        try:
            with self._request(urllib.request.Request(self._url(name), method="HEAD",
                                                      headers={"Accept-Encoding": "identity"})) as r:
                n = r.headers.get("Content-Length")
        except urllib.error.HTTPError as e:
            if e.code in (403, 404, 410):
                return None
            raise BundleError(f"The bundle server answered {e.code} for '{name}' at '{_where(self.base)}'.") from None
        if n is None or not str(n).isdigit():
            raise BundleError(f"The bundle server does not say how large '{name}' is; a bundle is read by ranges, "
                              f"so its server must send Content-Length.")
        return int(n)

    def read(self, name: str, start: int, n: int) -> bytes:
        req = urllib.request.Request(self._url(name), headers={"Range": f"bytes={start}-{start + n - 1}",
                                                               "Accept-Encoding": "identity"})
        try:
            with self._request(req) as r:
                if r.status != 206 or not str(r.headers.get("Content-Range", "")).startswith(f"bytes {start}-"):
                    raise BundleError(f"The bundle server at '{_where(self.base)}' does not serve byte ranges; "
                                      f"rnnviz reads a remote bundle by ranges and never downloads it whole.")
                return r.read(n + 1)
        except urllib.error.HTTPError as e:
            raise BundleError(f"The bundle server answered {e.code} for '{name}' at '{_where(self.base)}'.") from None


# ============================================================================ S3
class _S3:
    def __init__(self, url: str):
        from pyarrow import fs

        u = urllib.parse.urlsplit(url)
        if not u.netloc:
            raise BundleError(f"'{url[:200]}' names no bucket; write s3://bucket/folder.")
        self.root = (u.netloc + "/" + u.path.strip("/")).rstrip("/")
        kw: dict[str, Any] = {"connect_timeout": 10, "request_timeout": 60,
                              "retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=3)}
        ep = os.environ.get(S3_ENDPOINT_ENV) or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if ep:
            e = urllib.parse.urlsplit(ep if "://" in ep else "https://" + ep)
            kw["endpoint_override"], kw["scheme"] = e.netloc, e.scheme
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            kw["region"] = region
        self.fs = fs.S3FileSystem(**kw)
        self._files: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.url = url

    def _fail(self, e: Exception) -> BundleError:
        why = str(e).splitlines()[0].split("; Details:")[0].rstrip(" .;")[:240]
        return BundleError(f"The analysis bundle at '{_where(self.url)}' cannot be read ({why}); "
                           f"check the address, the credentials and {S3_ENDPOINT_ENV} for an S3-compatible store.")

    def list(self) -> dict[str, int]:
        from pyarrow import fs

        try:
            infos = self.fs.get_file_info(fs.FileSelector(self.root, recursive=True, allow_not_found=True))
        except OSError as e:
            raise self._fail(e) from None
        n = len(self.root) + 1
        return {i.path[n:]: int(i.size) for i in infos if i.type == fs.FileType.File}

    def size(self, name: str) -> int | None:
        from pyarrow import fs

        try:
            info = self.fs.get_file_info(f"{self.root}/{name}")
        except OSError as e:
            raise self._fail(e) from None
        return int(info.size) if info.type == fs.FileType.File else None

    def read(self, name: str, start: int, n: int) -> bytes:
        with self._lock:
            f = self._files.get(name)
            if f is None:
                try:
                    f = self._files[name] = self.fs.open_input_file(f"{self.root}/{name}")
                except OSError as e:
                    raise self._fail(e) from None
        try:
            return bytes(f.read_at(n, start))
        except OSError as e:
            raise self._fail(e) from None
