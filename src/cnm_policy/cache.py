"""The decision cache: a decorator around `Engine` that makes a repeated check nearly free.

A portal page or a list filter asks the same questions over and over; the answer only changes
when the policy version, the request, or (for time-based rules) the clock does. `CachedEngine`
has the engine's interface, so the library and the sidecar can use either one.

Why a cached answer is always the answer the engine would give now:

- **The key is every input.** The policy digest and every input of the check, encoded exactly
  (`cnm_policy._cache_keys`): ``True``, ``1``, ``1.0`` and ``"1"`` never share a key, a
  subclass cannot pose as a string, and a request that cannot be encoded exactly is simply
  evaluated every time. Mappings encode in insertion order, so the same facts in another
  order are a miss, never a wrong answer.
- **A stored decision is about its key.** On a miss the cache evaluates the request rebuilt
  from the library key, not the caller's objects. A caller's attribute dicts can change
  between keying and evaluation (another thread updating a shared session), and a decision
  about the new facts must never be stored under the old facts' key.
- **One snapshot per call.** The snapshot reference is read once; the key carries its digest
  and the evaluation uses that same snapshot, so a swap can never serve another version.
- **Time.** An entry answers only for ``stored_at <= now < min(stored_at + ttl, valid_until)``:
  a maintenance-window decision dies at the window boundary, and a clock moved backwards
  (possible with wall-clock time) makes every younger entry a miss.
- **Only decisions are stored.** Invalid requests raise before anything is stored, and explain
  requests (which carry a trace) bypass the cache.
- **Fingerprints.** An adapter that already holds an exact encoding of the request (the
  sidecar: the request's protobuf bytes, serialized deterministically) passes it to
  `check_fingerprinted` / `check_batch_fingerprinted` instead of having the request encoded
  again. There, "the key is every input" rests on the caller's promise that equal fingerprints
  mean equal requests; one process should use one fingerprint scheme. Those keys have three
  parts, library keys two or eight, so the kinds never answer for each other.

Concurrency: a hit takes no lock (one dictionary lookup is atomic, and the hit is counted by
one atomic tick of an `itertools.count`); writers, which store, evict and count under a lock,
only ever replace or remove whole entries. Evaluation runs outside the lock, so threads and
asyncio callers never wait on another caller's evaluation. Memory is bounded by `maxsize`
(the oldest entries go first), and identical decisions are shared between entries.

Why first-in-first-out rather than least-recently-used: every entry dies within `ttl` anyway,
so a hot entry is recomputed at most once per TTL under either policy (once per `maxsize`
insertions under a flood of unique requests, an evaluation per hundred thousand inserts), while
LRU's reordering on every hit was a tenth of a hit's cost.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, cast

from cachetools import FIFOCache

from cnm_policy._cache_keys import Key, batch_keys, key_bytes, keyed_request, request_key
from cnm_policy.engine import Clock, Engine, PolicySnapshot, decide_batch
from cnm_policy.model import AccessRequest, Decision, Principal, Resource

__all__ = ["DEFAULT_MAXSIZE", "DEFAULT_MAX_KEY_BYTES", "DEFAULT_TTL", "CacheStats", "CachedEngine"]

DEFAULT_MAXSIZE: Final = 100_000
DEFAULT_TTL: Final = 60.0
DEFAULT_MAX_KEY_BYTES: Final = 4096
_INTERN_LIMIT: Final = 4096  # distinct decisions shared per policy version; beyond: not shared

# Library keys come from `cnm_policy._cache_keys`. The fingerprinted methods key by (digest,
# shared fingerprint, item fingerprint), where a single check's shared part is empty (a batch's
# never is: see `check_batch_fingerprinted`); library keys have two or eight parts, so keys of
# different kinds are never equal.
_Entry = tuple[Decision, float, float]  # (decision with cached=True, stored_at, expires)


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


class _Store(FIFOCache[Key, _Entry]):
    """cachetools' FIFO cache, counting the entries it evicts for space."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.evictions = 0

    def popitem(self) -> tuple[Key, _Entry]:
        item = super().popitem()
        self.evictions += 1
        return item


class CachedEngine:
    """`Engine`'s interface, answering repeated checks from a bounded, versioned cache.

    `maxsize` bounds the number of cached decisions (``0`` disables caching, as does
    ``enabled=False``; the counters keep working); `ttl` bounds how long one may be reused;
    `clock` defaults to the engine's, and is the time both evaluation and expiry use.
    Requests whose key exceeds `max_key_bytes` (huge attributes) are answered but not stored,
    so memory stays below roughly ``maxsize * (max_key_bytes + 1000)`` bytes.
    """

    __slots__ = (
        "_clock",
        "_digest_memo",
        "_engine",
        "_hit_reads",
        "_hit_ticks",
        "_hits",
        "_interned",
        "_lock",
        "_max_key_bytes",
        "_maxsize",
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
        self._max_key_bytes = max_key_bytes
        self._maxsize = maxsize if enabled else 0
        self._store = _Store(self._maxsize) if self._maxsize else None
        self._interned: dict[Decision, Decision] = {}
        self._digest_memo = (engine.snapshot, engine.snapshot.digest)
        self._lock = threading.Lock()
        self._hits = 0  # hits of batches, counted under the lock
        # Hits of single checks: next() on a count is one atomic call, so the hit path takes
        # no lock. Reading it draws a tick too; `_hit_reads` says how many reads drew one.
        self._hit_ticks = itertools.count()
        self._hit_reads = 0
        self._misses = 0

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

    def swap(self, snapshot: PolicySnapshot) -> PolicySnapshot:
        """Serve `snapshot` from now on and drop the replaced version's entries."""
        previous = self._engine.swap(snapshot)
        if previous.digest != snapshot.digest:
            # Not needed for correctness (keys carry the digest): frees the memory at once.
            self.clear()
        return previous

    def clear(self) -> None:
        """Drop every entry; the counters keep counting."""
        with self._lock:
            if self._store is not None:
                self._store.clear()
            self._interned = {}

    def stats(self) -> CacheStats:
        """A consistent copy of the counters."""
        with self._lock:
            store = self._store
            return CacheStats(
                hits=self._hits + self._single_hits(),
                misses=self._misses,
                evictions=store.evictions if store is not None else 0,
                size=len(store) if store is not None else 0,
                maxsize=self._maxsize,
                ttl=self._ttl,
            )

    def _single_hits(self) -> int:
        """Single-check hits so far (caller holds the lock, so reads never interleave)."""
        hits = next(self._hit_ticks) - self._hit_reads
        self._hit_reads += 1
        return hits

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
        # The hot path, with _digest_of and the hit written out here (each call costs a
        # twentieth of a hit); check_fingerprinted has the same lookup. The engine's snapshot
        # is read from its attribute, as the property's call would cost another twentieth
        # (Engine.swap replaces that one reference, so one read sees one version).
        snapshot = self._engine._snapshot
        memo = self._digest_memo
        if memo[0] is not snapshot:
            memo = self._digest_memo = (snapshot, snapshot.digest)
        store = self._store
        now = self._clock()
        if store is None or explain:
            item = ((action, resource),)
            return self._evaluate(snapshot, principal, item, context, now, explain)[0]
        key = request_key(memo[1], principal, action, resource, context)
        entry = None
        if key is not None:
            try:
                entry = store[key]
            except KeyError:
                pass
            else:
                if entry[1] <= now < entry[2]:  # INVARIANT: see _miss
                    next(self._hit_ticks)
                    return entry[0]
        return self._miss(
            snapshot, key, entry, principal, action, resource, context, now, fingerprinted=False
        )

    def check_fingerprinted(
        self,
        fingerprint: bytes,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
    ) -> Decision:
        """:meth:`check`, keyed by `fingerprint` instead of an encoding of the request.

        For adapters that hold an exact encoding of the request already (the sidecar passes
        the `CheckRequest` bytes). The caller guarantees that equal fingerprints mean equal
        requests; two fingerprints of one request are merely two entries. The caller's objects
        are evaluated as given, so they must not change during the call (the sidecar's decoded
        requests are never changed). Not for explain requests, which are never cached.
        """
        # The sidecar's hot path: _digest_of and the snapshot read are written out, as in check().
        snapshot = self._engine._snapshot
        memo = self._digest_memo
        if memo[0] is not snapshot:
            memo = self._digest_memo = (snapshot, snapshot.digest)
        store = self._store
        now = self._clock()
        if store is None or type(fingerprint) is not bytes:
            item = ((action, resource),)
            return self._evaluate(snapshot, principal, item, context, now, False)[0]
        key = (memo[1], b"", fingerprint)
        entry = None
        try:
            entry = store[key]
        except KeyError:
            pass
        else:
            if entry[1] <= now < entry[2]:  # INVARIANT: see _miss
                next(self._hit_ticks)
                return entry[0]
        return self._miss(
            snapshot, key, entry, principal, action, resource, context, now, fingerprinted=True
        )

    def check_batch(
        self,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
    ) -> list[Decision]:
        """One decision per (action, resource), in order, all from the same policy version."""
        snapshot = self._engine._snapshot
        if self._store is None or explain or not items:
            return self._evaluate(snapshot, principal, items, context, self._clock(), explain)
        if not isinstance(items, list | tuple):
            items = list(items)
        keys = batch_keys(self._digest_of(snapshot), principal, items, context)
        return self._answer_batch(snapshot, keys, principal, items, context, fingerprinted=False)

    def check_batch_fingerprinted(
        self,
        shared: bytes,
        fingerprints: Sequence[bytes],
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None = None,
    ) -> list[Decision]:
        """:meth:`check_batch`, keyed by fingerprints instead of encodings of the requests.

        `shared` encodes the principal and context exactly and is never empty, ``fingerprints[i]``
        encodes the i-th item (the sidecar passes protobuf bytes); equal fingerprints must mean
        equal requests, as for :meth:`check_fingerprinted`.
        """
        if len(fingerprints) != len(items):
            raise ValueError(f"{len(fingerprints)} fingerprints for {len(items)} items")
        if not shared:
            raise ValueError("the shared fingerprint of a batch must not be empty")
        snapshot = self._engine._snapshot
        if self._store is None or not items:
            return self._evaluate(snapshot, principal, items, context, self._clock(), False)
        digest = self._digest_of(snapshot)
        keys: list[Key | None] = (
            [(digest, shared, fingerprint) for fingerprint in fingerprints]
            if type(shared) is bytes and all(type(f) is bytes for f in fingerprints)
            else [None] * len(items)
        )
        return self._answer_batch(snapshot, keys, principal, items, context, fingerprinted=True)

    def _miss(
        self,
        snapshot: PolicySnapshot,
        key: Key | None,
        entry: _Entry | None,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None,
        now: float,
        *,
        fingerprinted: bool,
    ) -> Decision:
        """A fresh decision for a check the cache did not answer, stored under `key` if it may be
        (see `_evaluate_for_keys`).

        `entry` is what the caller's lookup found for `key` (read without the lock: one lookup
        is atomic, and writers, holding the lock, only ever replace or remove whole entries)
        and did not answer.
        INVARIANT: an entry answers only inside [stored_at, expires) of the clock it was
        computed with; see _drop_if_expired for the rest.
        """
        item = ((action, resource),)
        if key is None:  # not plain data: evaluated (and rejected, if bad), never stored
            return self._evaluate(snapshot, principal, item, context, now, False)[0]
        store = self._store
        if entry is not None and store is not None:
            with self._lock:
                _drop_if_expired(store, key, entry, now)
        decisions, keys = self._evaluate_for_keys(
            snapshot, [key], principal, item, context, now, fingerprinted
        )
        self._remember(keys, decisions, now)
        return decisions[0]

    def _answer_batch(
        self,
        snapshot: PolicySnapshot,
        keys: Sequence[Key | None],
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None,
        *,
        fingerprinted: bool,
    ) -> list[Decision]:
        """Stored decisions where they still answer; the rest evaluated together and stored."""
        now = self._clock()
        store = self._store
        results: list[Decision | None] = [None] * len(keys)
        if store is not None:
            with self._lock:
                for index, key in enumerate(keys):
                    if key is not None:
                        entry = _lookup(store, key, now)
                        if entry is not None:
                            results[index] = entry[0]
        missing = [index for index, found in enumerate(results) if found is None]
        fresh: list[Decision] = []
        keep: list[Key | None] = []
        if missing:
            fresh, keep = self._evaluate_for_keys(
                snapshot,
                [keys[i] for i in missing],
                principal,
                [items[i] for i in missing],
                context,
                now,
                fingerprinted,
            )
        # Hits are counted once the whole batch succeeded: hits + misses = decisions answered.
        self._remember(keep, fresh, now, hits=len(keys) - len(missing))
        for index, decision in zip(missing, fresh, strict=True):
            results[index] = decision
        return cast(list[Decision], results)  # INVARIANT: every slot is filled by now

    def _evaluate_for_keys(
        self,
        snapshot: PolicySnapshot,
        keys: Sequence[Key | None],
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None,
        now: float,
        fingerprinted: bool,
    ) -> tuple[list[Decision], list[Key | None]]:
        """Evaluate `items` (validating them); returns the decisions and the keys to store them
        under, ``None`` where a decision must only be answered, not stored.

        Caller fingerprints vouch for the request, so the caller's objects are evaluated. Under a
        library key the request `keyed_request` rebuilds from the key is evaluated, never the
        caller's objects (see that function for why). A batch is evaluated with the principal
        and context rebuilt from the first key that can be rebuilt; an item whose key holds
        another principal or context (the caller changed them while the batch was being keyed)
        is answered, not stored. Items without a key that can be rebuilt are evaluated as given,
        with that same principal and context, and not stored.
        """
        limit = self._max_key_bytes
        if fingerprinted:
            keep = [key if key is not None and key_bytes(key) <= limit else None for key in keys]
            return decide_batch(snapshot, principal, items, context, now), keep
        rebuilt = [
            keyed_request(key) if key is not None and key_bytes(key) <= limit else None
            for key in keys
        ]
        first = next((request for request in rebuilt if request is not None), None)
        if first is None:
            return decide_batch(snapshot, principal, items, context, now), [None] * len(keys)
        shared_principal, _, _, shared_context = first
        evaluated: list[tuple[str, Resource]] = []
        keep = []
        for key, request, item in zip(keys, rebuilt, items, strict=True):
            if key is None or request is None:
                evaluated.append(item)
                keep.append(None)
                continue
            _, action, resource, _ = request
            evaluated.append((action, resource))
            same = request is first or key == request_key(
                key[0], shared_principal, action, resource, shared_context
            )
            keep.append(key if same else None)
        return decide_batch(snapshot, shared_principal, evaluated, shared_context, now), keep

    def _digest_of(self, snapshot: PolicySnapshot) -> str:
        """`snapshot.digest`, remembered for the serving snapshot (a property costs ~5% of a hit).

        check() and check_fingerprinted() have this written out. The memo is one tuple, replaced
        whole, so concurrent callers never pair one snapshot with another's digest.
        """
        memo = self._digest_memo
        if memo[0] is not snapshot:
            memo = self._digest_memo = (snapshot, snapshot.digest)
        return memo[1]

    def _evaluate(
        self,
        snapshot: PolicySnapshot,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None,
        now: float,
        explain: bool,
    ) -> list[Decision]:
        """Evaluate without storing (disabled, explain, or not keyable); still counted."""
        decisions = decide_batch(snapshot, principal, items, context, now, explain=explain)
        with self._lock:
            self._misses += len(decisions)
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
        ttl_expiry = now + self._ttl
        entries: list[tuple[Key, _Entry]] = []
        for key, decision in zip(keys, decisions, strict=True):
            if key is None:
                continue
            expires = ttl_expiry
            if decision.valid_until is not None and decision.valid_until < expires:
                expires = decision.valid_until
            if now < expires:
                entries.append((key, (self._shared(decision), now, expires)))
        with self._lock:
            self._hits += hits
            self._misses += len(decisions)
            store = self._store
            if store is not None:
                for key, entry in entries:
                    store[key] = entry

    def _shared(self, decision: Decision) -> Decision:
        """`decision` marked as cached, one object per distinct decision (saves memory)."""
        interned = self._interned
        shared = interned.get(decision)
        if shared is None:
            shared = replace(decision, cached=True)
            if len(interned) < _INTERN_LIMIT:
                # dict.setdefault is atomic: racing threads agree on one object.
                shared = interned.setdefault(decision, shared)
        return shared


def _lookup(store: _Store, key: Key, now: float) -> _Entry | None:
    """The entry for `key` if it answers at `now` (caller holds the lock)."""
    try:
        entry = store[key]
    except KeyError:
        return None
    if entry[1] <= now < entry[2]:
        return entry
    _drop_if_expired(store, key, entry, now)
    return None


def _drop_if_expired(store: _Store, key: Key, entry: _Entry, now: float) -> None:
    """Remove `entry`, read for `key` before, if it is past its expiry (caller holds the lock).

    Only that very entry: another thread may have replaced or dropped it since it was read. An
    entry younger than `now` (the clock moved back) is a miss but not expired: the fresh
    decision about to be stored replaces it.
    """
    if now >= entry[2] and store.get(key) is entry:
        del store[key]
        store.evictions += 1
