"""The shapes the server needs from the core, as structural types.

The server is an adapter: it depends on *what* an engine, a policy snapshot and cache
statistics look like, not on which class provides them. `Engine` and `CachedEngine` both fit
`DecisionEngine` (the cache is a decorator with the same interface), and so does the small fake
the servicer's unit tests use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from cnm_policy.model import Decision, Principal, Resource
from cnm_policy.policy.commit import Versioned

__all__ = ["CacheStatsView", "DecisionEngine", "FingerprintedEngine", "SnapshotView"]


class SnapshotView(Versioned, Protocol):
    """The identity of a compiled policy version (``cnm_policy.policy.PolicySnapshot``)."""

    @property
    def rule_count(self) -> int: ...
    @property
    def loaded_at(self) -> float: ...
    @property
    def source(self) -> str: ...


class CacheStatsView(Protocol):
    """Decision cache counters (``cnm_policy.cache.CacheStats``)."""

    @property
    def hits(self) -> int: ...
    @property
    def misses(self) -> int: ...
    @property
    def evictions(self) -> int: ...
    @property
    def size(self) -> int: ...
    @property
    def maxsize(self) -> int: ...
    @property
    def ttl(self) -> float: ...


class DecisionEngine(Protocol):
    """What the servicer calls: one check, a batch for one principal, the serving snapshot."""

    @property
    def snapshot(self) -> SnapshotView: ...

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> Decision: ...

    def check_batch(
        self,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> list[Decision]: ...


@runtime_checkable
class FingerprintedEngine(DecisionEngine, Protocol):
    """An engine that can key its cache by encodings the caller already holds (`CachedEngine`).

    The servicer passes the request's protobuf bytes, so a cache hit costs no re-encoding.
    """

    def check_fingerprinted(
        self,
        fingerprint: bytes,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        actor: Principal | None = None,
    ) -> Decision: ...

    def check_batch_fingerprinted(
        self,
        shared: bytes,
        fingerprints: Sequence[bytes],
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None = None,
        actor: Principal | None = None,
    ) -> list[Decision]: ...
