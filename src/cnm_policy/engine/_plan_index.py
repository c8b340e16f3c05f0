"""Which rules can shape a plan: the snapshot's partition, with tenant pins looked up by range.

A provider pins thousands of rules to customer tenants; a customer's plan needs only the pins
on its own branch of the tenant tree. Pins are indexed once per snapshot and (kind, action) so
a plan reads them by ancestor lookups and one sorted range per root (docs/design/plans.md).
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cnm_policy.engine.evaluate import tenant_ancestors
from cnm_policy.engine.snapshot import Bucket, PolicySnapshot
from cnm_policy.policy import Effect, RuleDef, Scope

__all__ = ["PinIndex", "rules_in_play"]


@dataclass(frozen=True, slots=True)
class PinIndex:
    """One role's pinned rules for one (kind, action), by tenant and in tenant order."""

    by_tenant: Mapping[str, tuple[RuleDef, ...]]
    tenants: tuple[str, ...]  # sorted: a subtree is one contiguous range
    any_allow_pins: frozenset[str]  # pins of allow rules with scope `any`: reach beyond roots


_INDEXES: weakref.WeakKeyDictionary[PolicySnapshot, dict[tuple[str, str], dict[str, PinIndex]]]
_INDEXES = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _pin_indexes(
    snapshot: PolicySnapshot, key: tuple[str, str], by_role: Mapping[str, Bucket]
) -> dict[str, PinIndex]:
    per_snapshot = _INDEXES.get(snapshot)
    found = per_snapshot.get(key) if per_snapshot is not None else None
    if found is not None:
        return found
    built = {role: _index(bucket) for role, bucket in by_role.items() if bucket.pinned}
    with _LOCK:
        _INDEXES.setdefault(snapshot, {})[key] = built
    return built


def _index(bucket: Bucket) -> PinIndex:
    pins = frozenset(
        tenant
        for tenant, rules in bucket.pinned.items()
        for rule in rules
        if rule.scope is Scope.ANY and rule.effect is Effect.ALLOW
    )
    return PinIndex(dict(bucket.pinned), tuple(sorted(bucket.pinned)), pins)


def rules_in_play(
    snapshot: PolicySnapshot,
    key: tuple[str, str],
    by_role: Mapping[str, Bucket],
    roles: tuple[str, ...],
    roots: Iterable[str],
) -> dict[str, RuleDef]:
    """The principal's rules for `key` that can touch what its allow rules can reach.

    `roots` are the tenants its own/subtree/assigned scopes reach from; pinned rules off
    every root's branch are left out (their reach misses every allow's), unless an unpinned
    `any` allow makes the reach unbounded.
    """
    found: dict[str, RuleDef] = {}
    buckets = [bucket for role in roles if (bucket := by_role.get(role)) is not None]
    for bucket in buckets:
        for rule in bucket.general:
            found[rule.id] = rule
    if not any(bucket.pinned for bucket in buckets):
        return found
    unbounded = any(
        rule.scope is Scope.ANY and rule.effect is Effect.ALLOW for rule in found.values()
    )
    indexes = _pin_indexes(snapshot, key, by_role)
    pinned = [indexes[role] for role in roles if role in indexes]
    if unbounded:
        for index in pinned:
            for rules in index.by_tenant.values():
                found.update((rule.id, rule) for rule in rules)
        return found
    reach = set(roots).union(*(index.any_allow_pins for index in pinned))
    for index in pinned:
        for root in reach:
            for tenant in _branch(index, root):
                found.update((rule.id, rule) for rule in index.by_tenant[tenant])
    return found


def _branch(index: PinIndex, root: str) -> list[str]:
    """The pinned tenants on `root`'s branch: its ancestors, itself, its descendants."""
    tenants = [t for t in tenant_ancestors(root) if t in index.by_tenant]
    start = bisect_left(index.tenants, root + "/")
    end = bisect_left(index.tenants, root + "0")  # '0' follows '/': the subtree's range
    tenants.extend(index.tenants[start:end])
    return tenants
