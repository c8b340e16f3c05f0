"""The cache's counters: a consistent snapshot for readers, lock-free ticks for the hot path."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

__all__ = ["CacheStats", "Ticks"]


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since the cache was built; `hits + misses` is every decision answered.

    `misses` counts every evaluated decision, including explain requests and requests the
    cache cannot key. `evictions` counts entries dropped for space or because they expired.
    A disabled cache reports ``maxsize == 0``.
    """

    hits: int
    misses: int
    evictions: int
    size: int
    maxsize: int
    ttl: float

    @property
    def enabled(self) -> bool:
        """Whether decisions are being stored at all."""
        return self.maxsize > 0


class Ticks:
    """A counter bumped without a lock: next() on an itertools.count is one atomic call."""

    __slots__ = ("_reads", "tick")

    def __init__(self) -> None:
        self.tick = itertools.count().__next__
        self._reads = 0  # reading draws a tick too; callers of read() hold one lock

    def read(self) -> int:
        """The ticks so far (not counting reads)."""
        value = self.tick() - self._reads
        self._reads += 1
        return value
