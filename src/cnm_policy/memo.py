"""A bounded, thread-safe map from exact bytes to what was derived from them.

The sidecar remembers, per distinct request bytes, what decoding them gave and how the parts of
their decision events render. Decoding is a pure function of the bytes, and a rendered part is
kept with the decision it describes and used only for that decision, so a remembered value is
what deriving it again would give; a portal that repeats itself byte for byte (the same page,
the same user, the same devices) pays for the derivation once.

First in, first out: a hot key pushed out by a flood of new ones is derived again once per
`entries` insertions, while least-recently-used order would cost every lookup. Keys longer than
`max_key_bytes` are never stored (they are rare), so memory stays below about
``entries * (max_key_bytes + value size)``.

Lookups take no lock: they run on every call, and one dictionary lookup is atomic under the
GIL. Writers, which insert and evict together, hold a lock, so the map never exceeds its bound.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Generic, TypeVar

__all__ = ["DEFAULT_MAX_KEY_BYTES", "BytesMemo"]

DEFAULT_MAX_KEY_BYTES: Final = 2048

_V = TypeVar("_V")


class BytesMemo(Generic[_V]):
    """At most `entries` values by their bytes key; ``entries=0`` remembers nothing."""

    __slots__ = ("_entries", "_lock", "_max_key_bytes", "_store", "get")

    #: The value remembered for a key, or ``None``: the store's own lookup, bound once, so a
    #: lookup on the request path runs no Python code.
    get: Callable[[bytes], _V | None]

    def __init__(self, entries: int, *, max_key_bytes: int = DEFAULT_MAX_KEY_BYTES) -> None:
        self._store: OrderedDict[bytes, _V] = OrderedDict()
        self._entries = max(0, entries)
        self._max_key_bytes = max_key_bytes
        self._lock = threading.Lock()
        self.get = self._store.get

    def __len__(self) -> int:
        return len(self._store)

    def get_many(self, keys: Sequence[bytes]) -> list[_V | None]:
        """What each key has remembered (``None`` if nothing)."""
        get = self._store.get
        return [get(key) for key in keys]

    def put(self, key: bytes, value: _V) -> None:
        """Remember `value` for `key` (unless the key is too long to keep)."""
        self.put_many(((key, value),))

    def put_many(self, pairs: Iterable[tuple[bytes, _V]]) -> None:
        """`put` for each pair, the oldest entries making room."""
        entries = self._entries
        if not entries:
            return
        store = self._store
        limit = self._max_key_bytes
        with self._lock:
            for key, value in pairs:
                if len(key) <= limit:
                    if key not in store and len(store) >= entries:
                        store.popitem(last=False)
                    store[key] = value
