"""Alive, ready, fresh: what /healthz, /readyz and gRPC health report, from one state.

Ready means a tested policy serves, the sidecar is not stopping, and (with `--max-policy-age`)
a load confirmed the policy recently enough. A watchdog thread re-evaluates freshness so gRPC
health flips on its own and the decision path reads one attribute (why: docs/design/ops.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cnm_policy.errors import PolicyStaleError

__all__ = ["Freshness", "Readiness", "StalenessWatch"]


class Freshness:
    """Whether the serving policy was confirmed by its source within `max_age` seconds.

    `confirmed_at()` is the epoch time of the last confirmation (``None``: never). `stale` is
    the verdict of the last `refresh()`; with no `max_age` it is never set.
    """

    def __init__(
        self,
        max_age: float | None,
        confirmed_at: Callable[[], float | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_age = max_age
        self._confirmed_at = confirmed_at
        self._clock = clock
        self.stale = False

    def age(self) -> float | None:
        """Seconds since the last confirmation (``None``: never confirmed)."""
        confirmed = self._confirmed_at()
        return None if confirmed is None else max(0.0, self._clock() - confirmed)

    def error(self) -> PolicyStaleError:
        """What a check answers while stale (UNAVAILABLE: callers fail closed, then retry)."""
        age = self.age()
        since = "never" if age is None else f"{age:.0f}s ago"
        return PolicyStaleError(
            f"the serving policy was last confirmed by its source {since}, longer than "
            f"--max-policy-age ({self.max_age:g}s) ago: refusing to decide"
        )

    def refresh(self) -> bool:
        """Re-evaluate and return `stale`."""
        if self.max_age is None:
            return False
        age = self.age()
        self.stale = age is None or age > self.max_age
        return self.stale


class Readiness:
    """The sidecar's ready state: started, not stopping, fresh. Every change calls `on_change`.

    `started()` always reports its verdict: the listeners came up SERVING on their own, so a
    sidecar stale from its first moment must be turned NOT_SERVING then, not at a later change.
    """

    def __init__(
        self, freshness: Freshness, on_change: Callable[[bool], None] = lambda _ready: None
    ) -> None:
        self.freshness = freshness
        self._on_change = on_change
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False
        self._ready = False

    def policy_age(self) -> float | None:
        """Seconds since a load last confirmed the serving policy."""
        return self.freshness.age()

    def started(self) -> None:
        """The listeners are up and a tested policy serves."""
        with self._lock:
            self._started = True
        self._evaluate(report=True)

    def stopping(self) -> None:
        """Shutdown began: not ready from now on, whatever else happens."""
        with self._lock:
            self._stopping = True
        self.check()

    def check(self) -> tuple[bool, str]:
        """Re-evaluate now; returns (ready, reason) with reason ``ok`` when ready."""
        return self._evaluate(report=False)

    def _evaluate(self, *, report: bool) -> tuple[bool, str]:
        # One lock around verdict and report: two threads never report out of order.
        with self._lock:
            stale = self.freshness.refresh()
            if self._stopping:
                reason = "stopping"
            elif not self._started:
                reason = "starting"
            else:
                reason = "policy_stale" if stale else "ok"
            ready = reason == "ok"
            changed, self._ready = ready != self._ready, ready
            if changed or report:
                self._on_change(ready)
        return ready, reason


class StalenessWatch:
    """A daemon thread that re-checks readiness every `interval` seconds until stopped."""

    def __init__(self, readiness: Readiness, interval: float) -> None:
        self._readiness = readiness
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cnm-policy-staleness", daemon=True)

    def start(self) -> None:
        """Start watching."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching (returns once the thread has ended)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._readiness.check()
