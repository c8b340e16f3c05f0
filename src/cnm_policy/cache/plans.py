"""Cached query plans: a portal builds the same plan for every page of the same list.

Keyed as decisions are (the policy digest plus every input, encoded exactly by
`keys.request_key`, the resource reduced to its kind) and kept apart from them; a plan expires
at its `valid_until` or after `ttl`, whichever comes first (docs/design/plans.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from cnm_policy.cache.keys import keyed_request, request_key
from cnm_policy.engine import Engine
from cnm_policy.engine.plan import Plan, plan
from cnm_policy.model import Principal, Resource

__all__ = ["PlanCache"]

_DEFAULT_MAXSIZE = 4096


_PROBES: dict[str, Resource] = {}  # the resource a plan key stands on, per kind (bounded)
_MAX_PROBES = 256


def _probe(kind: str) -> Resource:
    """A plan's key is a check's key on a resource reduced to its kind."""
    probe = Resource(kind, "", "")
    if len(_PROBES) < _MAX_PROBES:
        _PROBES[kind] = probe  # kinds are few; a caller inventing kinds only fills it once
    return probe


class PlanCache:
    """At most `maxsize` plans, each reused for at most `ttl` seconds (FIFO eviction)."""

    __slots__ = ("_entries", "maxsize", "ttl")

    def __init__(self, maxsize: int = _DEFAULT_MAXSIZE, ttl: float = 60.0) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be a non-negative integer, got {maxsize!r}")
        if not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self.maxsize = maxsize
        self.ttl = float(ttl)
        self._entries: dict[Any, tuple[Plan, float]] = {}

    def plan(
        self,
        engine: Engine,
        principal: Principal,
        action: str,
        kind: str,
        context: Mapping[str, Any] | None,
        now: float,
    ) -> Plan:
        """`engine`'s plan at `now`, from the cache when an equal request was planned."""
        snapshot = engine.snapshot  # read once: the key and the plan share it
        probe = _PROBES.get(kind) if type(kind) is str else None
        if probe is None and type(kind) is str:
            probe = _probe(kind)
        key = None
        if probe is not None and self.maxsize:
            key = request_key(snapshot.digest, principal, action, probe, context)
        if key is None:
            return plan(snapshot, principal, action, kind, context, now)
        found = self._entries.get(key)
        if found is not None and now < found[1]:
            return found[0]
        # The key's own copy: the caller's attribute and context dicts may change meanwhile.
        copy = keyed_request(key)
        if copy is None:
            return plan(snapshot, principal, action, kind, context, now)
        built = plan(snapshot, copy[0], action, kind, copy[3], now)
        expires = min(now + self.ttl, math.inf if built.valid_until is None else built.valid_until)
        self._store(key, replace(built, cached=True), expires)
        return built

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every plan."""
        self._entries.clear()

    def _store(self, key: Any, cached: Plan, expires: float) -> None:
        entries = self._entries
        while len(entries) >= self.maxsize:
            try:
                del entries[next(iter(entries))]
            except (KeyError, StopIteration, RuntimeError):  # another thread evicted it first
                break
        entries[key] = (cached, expires)
