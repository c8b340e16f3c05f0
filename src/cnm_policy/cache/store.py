"""The one bounded map the decision cache and the sidecar's decode memo both keep entries in.

First in, first out on an `OrderedDict`: a lookup is the dict's own C `get` (no lock, no
Python code), and writers insert and evict together under a lock. docs/design/cache.md says
why FIFO rather than LRU, and why lock-free reads are safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Final, Generic, TypeVar

__all__ = ["DEFAULT_MAXSIZE", "DEFAULT_MAX_KEY_BYTES", "FifoStore"]

DEFAULT_MAXSIZE: Final = 10_000  # decisions cached, and requests remembered by the sidecar
DEFAULT_MAX_KEY_BYTES: Final = 4096  # longer keys are answered but never stored

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class FifoStore(Generic[_K, _V]):
    """At most `maxsize` values by key (``0`` remembers nothing), the oldest evicted first.

    Keys whose `key_size` exceeds `max_key_bytes` are never stored (they are rare), so memory
    stays below about ``maxsize * (max_key_bytes + value size)``.
    """

    __slots__ = ("_key_size", "_lock", "_max_key_bytes", "_store", "evictions", "get", "maxsize")

    #: The value stored for a key, or ``None``: the dict's own lookup, bound once.
    get: Callable[[_K], _V | None]

    def __init__(
        self,
        maxsize: int,
        *,
        max_key_bytes: int = DEFAULT_MAX_KEY_BYTES,
        key_size: Callable[[Any], int] = len,
    ) -> None:
        self._store: OrderedDict[_K, _V] = OrderedDict()
        self.maxsize = max(0, maxsize)  # read-only
        self._max_key_bytes = max_key_bytes
        self._key_size = key_size
        self._lock = threading.Lock()
        self.get = self._store.get
        self.evictions = 0  # entries dropped for space or because they expired

    def __len__(self) -> int:
        return len(self._store)

    def get_many(self, keys: Iterable[_K]) -> list[_V | None]:
        """What each key has stored (``None`` if nothing)."""
        get = self._store.get
        return [get(key) for key in keys]

    def put(self, key: _K, value: _V) -> None:
        """Store `value` under `key`, evicting the oldest entry if the store is full."""
        maxsize = self.maxsize
        if not maxsize or self._key_size(key) > self._max_key_bytes:
            return
        store = self._store
        with self._lock:
            store[key] = value  # a key already present keeps its place and the size
            if len(store) > maxsize:
                store.popitem(last=False)
                self.evictions += 1

    def put_many(self, pairs: Iterable[tuple[_K, _V]]) -> None:
        """`put` for each pair, the oldest entries making room."""
        maxsize = self.maxsize
        if not maxsize:
            return
        store = self._store
        limit, size = self._max_key_bytes, self._key_size
        with self._lock:
            for key, value in pairs:
                if size(key) > limit:
                    continue
                store[key] = value
                if len(store) > maxsize:
                    store.popitem(last=False)
                    self.evictions += 1

    def discard(self, key: _K, value: _V) -> None:
        """Remove `key` if it still holds that very `value` (another writer may have replaced
        it since it was read), counting it as evicted."""
        with self._lock:
            if self._store.get(key) is value:
                del self._store[key]
                self.evictions += 1

    def items(self) -> list[tuple[_K, _V]]:
        """A copy of the entries, oldest first (for tests and diagnostics)."""
        with self._lock:
            return list(self._store.items())

    def clear(self) -> None:
        """Drop every entry (the eviction count keeps counting)."""
        with self._lock:
            self._store.clear()
