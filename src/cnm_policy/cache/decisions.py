"""The decisions the cache holds: one lookup, expiry, sharing of equal decisions, counters.

`CachedEngine` decides what to key and what to evaluate; this store decides whether a stored
decision still answers (docs/design/cache.md, "Time") and counts every answer once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Final

from cnm_policy.cache.stats import CacheStats, Ticks
from cnm_policy.cache.store import FifoStore
from cnm_policy.model import Decision

__all__ = ["DecisionStore"]

_INTERN_LIMIT: Final = 4096  # distinct decisions shared per policy version; beyond: not shared

_Entry = tuple[Decision, float, float]  # (decision with cached=True, stored_at, expires)


class DecisionStore:
    """At most `maxsize` decisions, each answering for at most `ttl` seconds."""

    __slots__ = (
        "_batch",
        "_counters",
        "_entries",
        "_interned",
        "_lock",
        "_ttl",
        "hit",
        "maxsize",
        "miss",
    )

    def __init__(
        self, maxsize: int, ttl: float, *, max_key_bytes: int, key_size: Callable[[Any], int]
    ) -> None:
        self._entries: FifoStore[Any, _Entry] = FifoStore(
            maxsize, max_key_bytes=max_key_bytes, key_size=key_size
        )
        self._ttl = ttl
        self.maxsize = self._entries.maxsize  # read-only
        # id(engine's decision) -> (it, its cached twin): the engine shares equal decisions, so
        # identity finds the twin without hashing every field; the pair keeps the id unique.
        self._interned: dict[int, tuple[Decision, Decision]] = {}
        self._lock = threading.Lock()
        self._batch = [0, 0]  # hits and misses of batches and uncached calls, under the lock
        hits, misses = Ticks(), Ticks()  # single checks: counted without a lock
        self.hit, self.miss = hits.tick, misses.tick
        self._counters = (hits, misses)

    @property
    def ttl(self) -> float:
        """How many seconds a decision may be reused at most."""
        return self._ttl

    def live(self, key: Any, now: float) -> Decision | None:
        """The one lookup: the decision stored under `key` if it answers at `now`.

        INVARIANT: an entry answers only inside [stored_at, expires); an expired one is
        dropped, a younger one (the clock moved back) is left for the fresh decision to replace.
        """
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= now < entry[2]:
            return entry[0]
        if now >= entry[2]:
            self._entries.discard(key, entry)
        return None

    def put(self, key: Any, decision: Decision, now: float) -> None:
        """Store a fresh decision made at `now` (a single check's miss is counted by `miss`)."""
        entry = self._entry(decision, now)
        if entry is not None:
            self._entries.put(key, entry)

    def put_many(
        self, keys: Sequence[Any], decisions: Sequence[Decision], now: float, *, hits: int = 0
    ) -> None:
        """Store fresh decisions where `keys` has a key; count them as misses, and `hits`."""
        entries = []
        for key, decision in zip(keys, decisions, strict=True):
            entry = None if key is None else self._entry(decision, now)
            if entry is not None:
                entries.append((key, entry))
        self.count(hits, len(decisions))
        if entries:
            self._entries.put_many(entries)

    def count(self, hits: int, misses: int) -> None:
        """Count answers that did not go through `hit`/`miss`."""
        with self._lock:
            self._batch[0] += hits
            self._batch[1] += misses

    def clear(self) -> None:
        """Drop every entry; the counters keep counting."""
        self._entries.clear()
        self._interned = {}

    def stats(self) -> CacheStats:
        """A consistent copy of the counters."""
        with self._lock:
            hits, misses = self._counters
            return CacheStats(
                hits=self._batch[0] + hits.read(),
                misses=self._batch[1] + misses.read(),
                evictions=self._entries.evictions,
                size=len(self._entries),
                maxsize=self._entries.maxsize,
                ttl=self._ttl,
            )

    def items(self) -> list[tuple[Any, _Entry]]:
        """A copy of the entries, oldest first (for tests and diagnostics)."""
        return self._entries.items()

    def _entry(self, decision: Decision, now: float) -> _Entry | None:
        """Valid until the earlier of the TTL and the decision's `valid_until` (``None`` if that
        has passed), one shared object per distinct decision, marked cached."""
        expires = now + self._ttl
        until = decision.valid_until
        if until is not None and until < expires:
            expires = until
        if not now < expires:
            return None
        interned = self._interned
        pair = interned.get(id(decision))
        if pair is not None and pair[0] is decision:
            return (pair[1], now, expires)
        shared = replace(decision, cached=True)
        if len(interned) < _INTERN_LIMIT:
            # dict.setdefault is atomic: racing threads agree on one object.
            pair = interned.setdefault(id(decision), (decision, shared))
            if pair[0] is decision:
                shared = pair[1]
        return (shared, now, expires)
