"""`CachedEngine`: the engine's interface, answering repeated checks from a bounded cache.

A portal asks the same questions over and over; the answer only changes with the policy
version, the request or (for time-based rules) the clock. Why a cached answer is always the
answer the engine would give now is argued in docs/design/cache.md.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, cast

from cnm_policy.cache.keys import Key, batch_keys, key_bytes, keyed_request, request_key
from cnm_policy.cache.store import DEFAULT_MAX_KEY_BYTES, DEFAULT_MAXSIZE, FifoStore
from cnm_policy.engine import Clock, Engine, PolicySnapshot, decide_batch
from cnm_policy.model import AccessRequest, Decision, Principal, Resource

__all__ = ["DEFAULT_TTL", "CacheStats", "CachedEngine"]

DEFAULT_TTL: Final = 60.0
_INTERN_LIMIT: Final = 4096  # distinct decisions shared per policy version; beyond: not shared

_Entry = tuple[Decision, float, float]  # (decision with cached=True, stored_at, expires)
_Item = tuple[str, Resource]


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


class CachedEngine:
    """`Engine`'s interface, answering repeated checks from a bounded, versioned cache.

    `maxsize` bounds the number of cached decisions (``0`` or ``enabled=False`` disables
    caching; the counters keep working); `ttl` bounds how long one may be reused; `clock`
    defaults to the engine's. Requests whose key exceeds `max_key_bytes` are answered but
    not stored, so memory stays below roughly ``maxsize * (max_key_bytes + 1000)`` bytes.
    """

    __slots__ = (
        "_batch_hits",
        "_batch_misses",
        "_clock",
        "_engine",
        "_hits",
        "_interned",
        "_lock",
        "_misses",
        "_store",
        "_ttl",
    )

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
        self._ttl = float(ttl)
        self._store: FifoStore[Key, _Entry] = FifoStore(
            maxsize if enabled else 0, max_key_bytes=max_key_bytes, key_size=key_bytes
        )
        self._interned: dict[Decision, Decision] = {}
        self._lock = threading.Lock()
        self._hits = _Ticks()  # single checks: counted without a lock
        self._misses = _Ticks()
        self._batch_hits = 0  # batches: counted under the lock
        self._batch_misses = 0

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
        return self._ttl

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
        self._interned = {}

    def stats(self) -> CacheStats:
        """A consistent copy of the counters."""
        with self._lock:
            return CacheStats(
                hits=self._batch_hits + self._hits.read(),
                misses=self._batch_misses + self._misses.read(),
                evictions=self._store.evictions,
                size=len(self._store),
                maxsize=self._store.maxsize,
                ttl=self._ttl,
            )

    def check_request(self, request: AccessRequest, *, explain: bool = False) -> Decision:
        """:meth:`check` for a request already bundled as an :class:`AccessRequest`."""
        return self.check(
            request.principal, request.action, request.resource, request.context, explain=explain
        )

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
    ) -> Decision:
        """May `principal` do `action` on `resource`? Raises InvalidRequestError on bad input."""
        snapshot = self._engine.snapshot  # read once: the key and the evaluation share it
        if explain or not self._store.maxsize:
            return self._evaluate(snapshot, principal, [(action, resource)], context, explain)[0]
        key = request_key(snapshot.digest, principal, action, resource, context)
        return self._answer(snapshot, key, principal, action, resource, context, trusted=False)

    def check_fingerprinted(
        self,
        fingerprint: bytes,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """:meth:`check`, keyed by `fingerprint`, an exact encoding the caller already holds.

        The caller guarantees that equal fingerprints mean equal requests and that its objects
        never change (the sidecar's decoded requests); they are evaluated as given. Not for
        explain requests, which are never cached.
        """
        snapshot = self._engine.snapshot
        key = (snapshot.digest, b"", fingerprint) if type(fingerprint) is bytes else None
        return self._answer(snapshot, key, principal, action, resource, context, trusted=True)

    def _answer(
        self,
        snapshot: PolicySnapshot,
        key: Key | None,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None,
        *,
        trusted: bool,
    ) -> Decision:
        """The one lookup path of a single check: a live entry, or a fresh decision stored."""
        now = self._clock()
        store = self._store
        if key is not None and store.maxsize:
            entry = store.get(key)  # INVARIANT: answers only inside [stored_at, expires)
            if entry is not None:
                if entry[1] <= now < entry[2]:
                    self._hits.tick()
                    return entry[0]
                if now >= entry[2]:
                    store.discard(key, entry)
            if not trusted:
                copy = keyed_request(key)  # evaluate only what the key says (design note)
                if copy is None:
                    key = None
                else:
                    principal, action, resource, context = copy
        decision = decide_batch(snapshot, principal, ((action, resource),), context, now)[0]
        self._misses.tick()
        if key is not None:
            entry = self._entry(decision, now)
            if entry is not None:
                store.put(key, entry)
        return decision

    def check_batch(
        self,
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
    ) -> list[Decision]:
        """One decision per (action, resource), in order, all from the same policy version."""
        snapshot = self._engine.snapshot
        if not self._store.maxsize or explain or not items:
            return self._evaluate(snapshot, principal, items, context, explain)
        if not isinstance(items, list | tuple):
            items = list(items)
        keys = batch_keys(snapshot.digest, principal, items, context)
        return self._answer_batch(snapshot, keys, principal, items, context, trusted=False)

    def check_batch_fingerprinted(
        self,
        shared: bytes,
        fingerprints: Sequence[bytes],
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None = None,
    ) -> list[Decision]:
        """:meth:`check_batch`, keyed by fingerprints (as :meth:`check_fingerprinted`).

        `shared` encodes the principal and context exactly and is never empty,
        ``fingerprints[i]`` the i-th item.
        """
        if len(fingerprints) != len(items):
            raise ValueError(f"{len(fingerprints)} fingerprints for {len(items)} items")
        if not shared:
            raise ValueError("the shared fingerprint of a batch must not be empty")
        snapshot = self._engine.snapshot
        if not self._store.maxsize or not items:
            return self._evaluate(snapshot, principal, items, context, False)
        digest = snapshot.digest
        exact = type(shared) is bytes and all(type(f) is bytes for f in fingerprints)
        keys: list[Key | None] = (
            [(digest, shared, fingerprint) for fingerprint in fingerprints]
            if exact
            else [None] * len(items)
        )
        return self._answer_batch(snapshot, keys, principal, items, context, trusted=True)

    def _answer_batch(
        self,
        snapshot: PolicySnapshot,
        keys: Sequence[Key | None],
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None,
        *,
        trusted: bool,
    ) -> list[Decision]:
        """Live entries where there are some; the rest evaluated together and stored."""
        now = self._clock()
        store = self._store
        results: list[Decision | None] = [None] * len(keys)
        for index, key in enumerate(keys):
            entry = None if key is None else store.get(key)
            if entry is None or key is None:
                continue
            if entry[1] <= now < entry[2]:
                results[index] = entry[0]
            elif now >= entry[2]:
                store.discard(key, entry)
        missing = [index for index, found in enumerate(results) if found is None]
        fresh: list[Decision] = []
        keep: list[Key | None] = []
        if missing:
            missing_keys = [keys[i] for i in missing]
            missing_items = [items[i] for i in missing]
            fresh, keep = self._decide_for_keys(
                snapshot, missing_keys, principal, missing_items, context, now, trusted
            )
        # Hits are counted once the whole batch succeeded: hits + misses = decisions answered.
        self._remember(keep, fresh, now, hits=len(keys) - len(missing))
        for index, decision in zip(missing, fresh, strict=True):
            results[index] = decision
        return cast(list[Decision], results)  # INVARIANT: every slot is filled by now

    def _decide_for_keys(
        self,
        snapshot: PolicySnapshot,
        keys: Sequence[Key | None],
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None,
        now: float,
        trusted: bool,
    ) -> tuple[list[Decision], list[Key | None]]:
        """Evaluate `items`; returns the decisions and the keys to store them under (``None``:
        answer only). An untrusted batch is evaluated from the copies its keys rebuild, with
        the principal and context of the first copy (docs/design/cache.md)."""
        if trusted:
            return decide_batch(snapshot, principal, items, context, now), list(keys)
        copies = [None if key is None else keyed_request(key) for key in keys]
        first = next((copy for copy in copies if copy is not None), None)
        if first is None:
            return decide_batch(snapshot, principal, items, context, now), [None] * len(keys)
        shared_principal, _, _, shared_context = first
        evaluated: list[_Item] = []
        keep: list[Key | None] = []
        for key, copy, item in zip(keys, copies, items, strict=True):
            if key is None or copy is None:
                evaluated.append(item)
                keep.append(None)
                continue
            _, action, resource, _ = copy
            evaluated.append((action, resource))
            same = copy is first or key == request_key(
                key[0], shared_principal, action, resource, shared_context
            )
            keep.append(key if same else None)
        return decide_batch(snapshot, shared_principal, evaluated, shared_context, now), keep

    def _evaluate(
        self,
        snapshot: PolicySnapshot,
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None,
        explain: bool,
    ) -> list[Decision]:
        """Evaluate without storing (disabled or explain); still counted."""
        now = self._clock()
        decisions = decide_batch(snapshot, principal, items, context, now, explain=explain)
        with self._lock:
            self._batch_misses += len(decisions)
        return decisions

    def _remember(
        self,
        keys: Sequence[Key | None],
        decisions: Sequence[Decision],
        now: float,
        *,
        hits: int = 0,
    ) -> None:
        """Store fresh decisions (where `keys` has one) until the earlier of the TTL and their
        `valid_until`; count them as misses."""
        entries: list[tuple[Key, _Entry]] = []
        for key, decision in zip(keys, decisions, strict=True):
            entry = None if key is None else self._entry(decision, now)
            if key is not None and entry is not None:
                entries.append((key, entry))
        with self._lock:
            self._batch_hits += hits
            self._batch_misses += len(decisions)
        if entries:
            self._store.put_many(entries)

    def _entry(self, decision: Decision, now: float) -> _Entry | None:
        """The entry for a fresh decision: valid until the earlier of the TTL and its
        `valid_until` (``None`` if that has passed), the decision shared and marked cached."""
        expires = now + self._ttl
        until = decision.valid_until
        if until is not None and until < expires:
            expires = until
        if not now < expires:
            return None
        interned = self._interned
        shared = interned.get(decision)
        if shared is None:
            shared = replace(decision, cached=True)
            if len(interned) < _INTERN_LIMIT:
                # dict.setdefault is atomic: racing threads agree on one object.
                shared = interned.setdefault(decision, shared)
        return (shared, now, expires)


class _Ticks:
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
