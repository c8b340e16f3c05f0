"""`CachedEngine`: the engine's interface, answering repeated checks from a bounded cache.

A portal asks the same questions over and over; the answer only changes with the policy
version, the request or (for time-based rules) the clock. Why a cached answer is always the
answer the engine would give now is argued in docs/design/cache.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cnm_policy.cache.batches import BatchChecks
from cnm_policy.cache.decisions import DecisionStore
from cnm_policy.cache.keys import Key, key_bytes, keyed_request, request_key
from cnm_policy.cache.plans import PlanCache
from cnm_policy.cache.stats import CacheStats
from cnm_policy.cache.store import DEFAULT_MAX_KEY_BYTES, DEFAULT_MAXSIZE
from cnm_policy.engine import Clock, Engine, PolicySnapshot, decide_batch
from cnm_policy.engine.plan import Plan
from cnm_policy.model import AccessRequest, Decision, GrantDecision, Principal, Resource

__all__ = ["DEFAULT_TTL", "CachedEngine"]

DEFAULT_TTL: Final = 60.0

_Item = tuple[str, Resource]
_Request = tuple[Principal, str, Resource, Mapping[str, Any] | None, Principal | None]


class CachedEngine(BatchChecks):
    """`Engine`'s interface, answering repeated checks from a bounded, versioned cache.

    `maxsize` bounds the number of cached decisions (``0`` or ``enabled=False`` disables
    caching; the counters keep working); `ttl` bounds how long one may be reused; `clock`
    defaults to the engine's. Requests whose encoded attributes and context exceed
    `max_key_bytes` are answered but not stored; with names capped by validation (256
    characters each), memory stays below roughly ``maxsize * (max_key_bytes + 8000)`` bytes.
    """

    __slots__ = ("_clock", "_engine", "_plans", "_store")

    def __init__(
        self,
        engine: Engine,
        maxsize: int = DEFAULT_MAXSIZE,
        ttl: float = DEFAULT_TTL,
        clock: Clock | None = None,
        *,
        enabled: bool = True,
        max_key_bytes: int = DEFAULT_MAX_KEY_BYTES,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
            raise ValueError(f"maxsize must be a non-negative integer, got {maxsize!r}")
        if not ttl > 0:  # also rejects NaN
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        self._engine = engine
        self._clock: Clock = engine.clock if clock is None else clock
        self._digest_memo = (engine.snapshot, engine.snapshot.digest)
        self._store = DecisionStore(
            maxsize if enabled else 0,
            float(ttl),
            max_key_bytes=max_key_bytes,
            key_size=key_bytes,
        )
        self._plans = PlanCache(maxsize if enabled else 0, float(ttl))

    @property
    def engine(self) -> Engine:
        """The engine this cache decorates."""
        return self._engine

    @property
    def snapshot(self) -> PolicySnapshot:
        """The policy version serving right now (the engine's)."""
        return self._engine.snapshot

    @property
    def clock(self) -> Clock:
        """The time source for evaluation and expiry (epoch seconds)."""
        return self._clock

    @property
    def maxsize(self) -> int:
        """How many decisions are kept at most (``0``: caching is off)."""
        return self._store.maxsize

    @property
    def ttl(self) -> float:
        """How many seconds a decision may be reused at most."""
        return self._store.ttl

    @property
    def enabled(self) -> bool:
        """Whether decisions are being stored at all."""
        return self._store.maxsize > 0

    def swap(self, snapshot: PolicySnapshot) -> PolicySnapshot:
        """Serve `snapshot` from now on and drop the replaced version's entries."""
        previous = self._engine.swap(snapshot)
        if previous.digest != snapshot.digest:
            self.clear()  # not needed for correctness (keys carry the digest): frees memory
        return previous

    def clear(self) -> None:
        """Drop every entry; the counters keep counting."""
        self._store.clear()
        self._plans.clear()

    def stats(self) -> CacheStats:
        """A consistent copy of the counters."""
        return self._store.stats()

    def plan(
        self,
        principal: Principal,
        action: str,
        kind: str,
        context: Mapping[str, Any] | None = None,
    ) -> Plan:
        """:meth:`Engine.plan`, from the plan cache (keyed and expiring as decisions are)."""
        return self._plans.plan(self._engine, principal, action, kind, context, self._clock())

    def can_grant(
        self,
        granter: Principal,
        role: str,
        grantee_tenant: str,
        valid_until: float | None = None,
    ) -> GrantDecision:
        """:meth:`Engine.can_grant` (not cached: it reads no request attributes worth keying)."""
        return self._engine.can_grant(granter, role, grantee_tenant, valid_until)

    def check_request(self, request: AccessRequest, *, explain: bool = False) -> Decision:
        """:meth:`check` for a request already bundled as an :class:`AccessRequest`."""
        principal, action, resource = request.principal, request.action, request.resource
        return self.check(
            principal, action, resource, request.context, explain=explain, actor=request.actor
        )

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> Decision:
        """May `principal` do `action` on `resource` (with `actor` acting on its behalf)?
        Raises InvalidRequestError on bad input."""
        snapshot = self._engine.snapshot  # read once: the key and the evaluation share it
        store = self._store
        if explain or not store.maxsize:
            items = [(action, resource)]
            return self._evaluate(snapshot, principal, items, context, explain, actor)[0]
        memo = self._digest_memo  # inline: a method call is a tenth of a hit
        digest = memo[1] if memo[0] is snapshot else self._digest(snapshot)
        key = request_key(digest, principal, action, resource, context, actor)
        now = self._clock()
        if key is not None:
            found = store.live(key, now)
            if found is not None:
                store.hit()
                return found
        request = (principal, action, resource, context, actor)
        return self._miss(snapshot, key, request, now, trusted=False)

    def check_fingerprinted(
        self,
        fingerprint: bytes,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        actor: Principal | None = None,
    ) -> Decision:
        """:meth:`check`, keyed by `fingerprint`, an exact encoding the caller already holds.

        The caller guarantees that equal fingerprints mean equal requests and that its objects
        never change (the sidecar's decoded requests); they are evaluated as given. Not for
        explain requests, which are never cached.
        """
        snapshot = self._engine.snapshot
        store = self._store
        memo = self._digest_memo
        digest = memo[1] if memo[0] is snapshot else self._digest(snapshot)
        key = (digest, b"", fingerprint) if type(fingerprint) is bytes else None
        now = self._clock()
        if key is not None and store.maxsize:
            found = store.live(key, now)
            if found is not None:
                store.hit()
                return found
        request = (principal, action, resource, context, actor)
        return self._miss(snapshot, key, request, now, trusted=True)

    def _miss(
        self,
        snapshot: PolicySnapshot,
        key: Key | None,
        request: _Request,
        now: float,
        *,
        trusted: bool,
    ) -> Decision:
        """A fresh decision for a single check no live entry answered, stored under `key`."""
        store = self._store
        if key is not None and not trusted:
            copy = keyed_request(key)  # evaluate only what the key says (design note, 2)
            if copy is None:
                key = None
            else:
                request = copy
        principal, action, resource, context, actor = request
        item = ((action, resource),)
        decision = decide_batch(snapshot, principal, item, context, now, actor=actor)[0]
        store.miss()
        if key is not None:
            store.put(key, decision, now)
        return decision
