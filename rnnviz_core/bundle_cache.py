"""Opened bundles shared by every visitor of one server, bounded by the bytes they hold.

A count bound lets four opened bundles take gigabytes; this cache counts each bundle's bytes
(its file bytes kept in memory plus :attr:`Bundle.memory_bytes`, the memory its reads take as the
open check computed it) and evicts the least recently used bundles until a new one fits. A
bundle larger than the whole bound is handed out without being kept. Pure Python, thread-safe::

    cache = BundleCache(max_bytes=1_000_000_000)
    b = cache.get_or_open(digest, lambda: bundle.open(data))
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

__all__ = ["BundleCache", "bundle_bytes"]


def bundle_bytes(b: Any) -> int:
    """Bytes an opened bundle holds: its file bytes kept in memory and what its reads take."""
    files = getattr(b, "_files", None)
    raw = getattr(files, "_raw", None)
    return int(getattr(b, "memory_bytes", 0)) + (len(raw) if raw is not None else 0)


class BundleCache:
    """Least recently used bundles, at most ``max_bytes`` in all (see :func:`bundle_bytes`)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def get_or_open(self, key: str, opener: Callable[[], Any]) -> Any:
        """The bundle under ``key``, opening it with ``opener()`` (outside the lock) when absent."""
        b = self.get(key)
        if b is not None:
            return b
        b = opener()
        self.put(key, b)
        return b

    def put(self, key: str, b: Any) -> None:
        size = bundle_bytes(b)
        with self._lock:
            self._items.pop(key, None)
            if size > self.max_bytes:
                return
            while self._items and self.held_bytes_locked() + size > self.max_bytes:
                self._items.popitem(last=False)
            self._items[key] = (b, size)

    def held_bytes_locked(self) -> int:
        return sum(s for _, s in self._items.values())

    def held_bytes(self) -> int:
        with self._lock:
            return self.held_bytes_locked()

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
