"""What the decision path counts: plain counters bumped under one short lock, no labels lookup.

prometheus_client's labelled children cost a dict lookup and a lock each; a decision here costs
one bisect and one uncontended lock. The registry reads these counters at scrape time
(`ops/collector.py`). No tenant or principal is ever a label (cardinality and privacy).
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["AUDIT_CLASSES", "DEFAULT_BUCKETS", "DecisionMetrics", "MetricsSnapshot"]

# `Decision.audit_class` values, exported at 0 from the start so "any increase" alerts work.
AUDIT_CLASSES = ("break_glass", "self_managed_crossing")

# Seconds: a cached check takes tens of microseconds, an uncached one up to milliseconds.
DEFAULT_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Counters at one instant; `latency[method]` is (per-bucket counts, +Inf last; sum)."""

    decisions: dict[tuple[str, str], int]
    audited: dict[str, int]
    rejected: dict[tuple[str, str], int]
    latency: dict[str, tuple[list[int], float]]
    in_flight: int
    bounds: tuple[float, ...]


class DecisionMetrics:
    """Decisions by method and outcome, audited decisions by class, rejections by code,
    latency, requests in flight.

    `begin()` at the start of a call, then exactly one of `decided`, `decided_batch` or
    `rejected` (or `failed`) at its end: in flight is begun minus ended.
    """

    def __init__(self, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        self._bounds = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._decisions: dict[tuple[str, str], int] = {}
        self._audited = dict.fromkeys(AUDIT_CLASSES, 0)
        self._rejected: dict[tuple[str, str], int] = {}
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        self._ended = 0
        self._reads = 0  # snapshots draw a tick from `_begun` too
        # Lock-free: next() on an itertools.count is one atomic call under the GIL.
        self._begun = itertools.count()
        self.begin = self._begun.__next__

    def decided(
        self, method: str, allowed: bool, seconds: float, audit_class: str | None = None
    ) -> None:
        """One call that answered one decision (`audit_class`: the decision's, if any)."""
        index = bisect.bisect_left(self._bounds, seconds)
        key = (method, "allow" if allowed else "deny")
        with self._lock:
            self._decisions[key] = self._decisions.get(key, 0) + 1
            if audit_class is not None:
                self._audited[audit_class] = self._audited.get(audit_class, 0) + 1
            self._observe(method, index, seconds)

    def decided_batch(
        self,
        method: str,
        allowed: int,
        denied: int,
        seconds: float,
        audit_classes: Iterable[str | None] = (),
    ) -> None:
        """One call that answered `allowed + denied` decisions (latency counted once)."""
        index = bisect.bisect_left(self._bounds, seconds)
        with self._lock:
            for outcome, count in (("allow", allowed), ("deny", denied)):
                if count:
                    key = (method, outcome)
                    self._decisions[key] = self._decisions.get(key, 0) + count
            for audit_class in audit_classes:
                if audit_class is not None:
                    self._audited[audit_class] = self._audited.get(audit_class, 0) + 1
            self._observe(method, index, seconds)

    def rejected(self, method: str, code: str, seconds: float) -> None:
        """One call refused before its decision, by its error's stable code."""
        index = bisect.bisect_left(self._bounds, seconds)
        key = (method, code)
        with self._lock:
            self._rejected[key] = self._rejected.get(key, 0) + 1
            self._observe(method, index, seconds)

    def _observe(self, method: str, index: int, seconds: float) -> None:
        # INVARIANT: called with the lock held, once per begun call.
        counts = self._buckets.get(method)
        if counts is None:
            counts = self._buckets[method] = [0] * (len(self._bounds) + 1)
            self._sums[method] = 0.0
        counts[index] += 1
        self._sums[method] += seconds
        self._ended += 1

    def snapshot(self) -> MetricsSnapshot:
        """A consistent copy of every counter (scrape time, not the hot path)."""
        with self._lock:
            begun = next(self._begun) - self._reads  # the ticks drawn by `begin` so far
            self._reads += 1
            return MetricsSnapshot(
                decisions=dict(self._decisions),
                audited=dict(self._audited),
                rejected=dict(self._rejected),
                latency={m: (list(c), self._sums[m]) for m, c in self._buckets.items()},
                in_flight=max(0, begun - self._ended),
                bounds=self._bounds,
            )
