"""The batch half of `CachedEngine` (one principal, many items), and what both halves share.

Live entries answer what they can; the rest are evaluated together (the principal prepared
once) and stored. A mixin so `cached_engine.py` keeps one screenful per concern; the key and
copy rules are the single checks' (docs/design/cache.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from cnm_policy.cache.decisions import DecisionStore
from cnm_policy.cache.keys import Key, batch_copy, batch_keys
from cnm_policy.engine import Clock, Engine, PolicySnapshot, decide_batch
from cnm_policy.model import Decision, Principal, Resource

__all__ = ["BatchChecks"]

_Item = tuple[str, Resource]


class BatchChecks:
    """`check_batch` and `check_batch_fingerprinted` over the cache `CachedEngine` keeps, and
    the digest and evaluation single checks share with them."""

    __slots__ = ("_digest_memo",)
    _digest_memo: tuple[PolicySnapshot, str]
    _engine: Engine
    _store: DecisionStore
    _clock: Clock

    def _digest(self, snapshot: PolicySnapshot) -> str:
        """`snapshot.digest`, remembered for the serving snapshot (one tuple, replaced whole,
        so concurrent callers never pair one snapshot with another's digest)."""
        memo = self._digest_memo
        if memo[0] is not snapshot:
            memo = self._digest_memo = (snapshot, snapshot.digest)
        return memo[1]

    def _evaluate(
        self,
        snapshot: PolicySnapshot,
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None,
        explain: bool,
        actor: Principal | None = None,
    ) -> list[Decision]:
        """Evaluate without storing (disabled or explain); still counted."""
        now = self._clock()
        decisions = decide_batch(
            snapshot, principal, items, context, now, explain=explain, actor=actor
        )
        self._store.count(0, len(decisions))
        return decisions

    def check_batch(
        self,
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> list[Decision]:
        """One decision per (action, resource), in order, all from the same policy version."""
        snapshot = self._engine.snapshot
        if not self._store.maxsize or explain or not items:
            return self._evaluate(snapshot, principal, items, context, explain, actor)
        if not isinstance(items, list | tuple):
            items = list(items)
        keys = batch_keys(self._digest(snapshot), principal, items, context, actor)
        return self._answer_batch(snapshot, keys, principal, items, context, actor, trusted=False)

    def check_batch_fingerprinted(
        self,
        shared: bytes,
        fingerprints: Sequence[bytes],
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None = None,
        actor: Principal | None = None,
    ) -> list[Decision]:
        """:meth:`check_batch`, keyed by fingerprints (as :meth:`check_fingerprinted`).

        `shared` encodes the principal, context and actor exactly and is never empty,
        ``fingerprints[i]`` the i-th item.
        """
        if len(fingerprints) != len(items):
            raise ValueError(f"{len(fingerprints)} fingerprints for {len(items)} items")
        if not shared:
            raise ValueError("the shared fingerprint of a batch must not be empty")
        snapshot = self._engine.snapshot
        if not self._store.maxsize or not items:
            return self._evaluate(snapshot, principal, items, context, False, actor)
        digest = self._digest(snapshot)
        exact = type(shared) is bytes and all(type(f) is bytes for f in fingerprints)
        keys: list[Key | None] = (
            [(digest, shared, fingerprint) for fingerprint in fingerprints]
            if exact
            else [None] * len(items)
        )
        return self._answer_batch(snapshot, keys, principal, items, context, actor, trusted=True)

    def _answer_batch(
        self,
        snapshot: PolicySnapshot,
        keys: Sequence[Key | None],
        principal: Principal,
        items: Sequence[_Item],
        context: Mapping[str, Any] | None,
        actor: Principal | None,
        *,
        trusted: bool,
    ) -> list[Decision]:
        """Live entries where there are some; the rest evaluated together and stored."""
        now = self._clock()
        live = self._store.live
        results = [None if key is None else live(key, now) for key in keys]
        missing = [index for index, found in enumerate(results) if found is None]
        fresh: list[Decision] = []
        keep: list[Key | None] = []
        if missing:
            keep = [keys[i] for i in missing]
            evaluated = [items[i] for i in missing]
            if not trusted:
                principal, evaluated, context, actor, keep = batch_copy(
                    keep, principal, evaluated, context, actor
                )
            fresh = decide_batch(snapshot, principal, evaluated, context, now, actor=actor)
        # Hits are counted once the whole batch succeeded: hits + misses = decisions answered.
        self._store.put_many(keep, fresh, now, hits=len(keys) - len(missing))
        for index, decision in zip(missing, fresh, strict=True):
            results[index] = decision
        return cast(list[Decision], results)  # INVARIANT: every slot is filled by now
