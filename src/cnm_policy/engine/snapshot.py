"""A compiled, immutable policy version: what one decision is evaluated against.

The rows are indexed by (kind, action) and role, so a check touches only the rows that can apply
(docs/design/engine.md); a reload compiles a new snapshot to the side and swaps one reference.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnm_policy.engine import casbin_backend
from cnm_policy.model import Decision, LimitExceeded, Obligation
from cnm_policy.policy import Bundle, BundleSource, RuleDef, Side, load_bundle
from cnm_policy.policy.roles import role_closures

__all__ = ["Bucket", "PolicySnapshot", "ResolvedRoles", "compile_bundle", "load_snapshot"]


@dataclass(frozen=True, slots=True)
class Bucket:
    """The rules for one (kind, action, role): unpinned ones, and ones pinned to tenants."""

    general: tuple[RuleDef, ...]
    pinned: Mapping[str, tuple[RuleDef, ...]]


_RESOLVED_CACHE_SIZE = 4096
_DECISION_MEMO_SIZE = 4096  # distinct answers shared per version; beyond: built each time


@dataclass(frozen=True, slots=True)
class ResolvedRoles:
    """A role list resolved against one snapshot: what the principal effectively holds."""

    effective: tuple[str, ...]
    unknown: tuple[str, ...]
    sides: frozenset[Side]


def _resolve(snapshot: PolicySnapshot, roles: tuple[str, ...]) -> ResolvedRoles:
    effective: set[str] = set()
    unknown: list[str] = []
    for role in roles:
        closure = snapshot.closures.get(role)
        if closure is None:
            unknown.append(role)
        else:
            effective |= closure
    sides = frozenset(side for role in effective if (side := snapshot.side_of(role)) is not None)
    return ResolvedRoles(tuple(sorted(effective)), tuple(unknown), sides)


@dataclass(frozen=True, eq=False)
class PolicySnapshot:
    """One compiled policy version. Every field is read-only after construction."""

    bundle: Bundle
    loaded_at: float
    closures: Mapping[str, frozenset[str]]
    index: Mapping[tuple[str, str], Mapping[str, Bucket]]
    row_count: int
    _resolved: dict[tuple[str, ...], ResolvedRoles] = field(default_factory=dict, repr=False)
    _decisions: dict[tuple[Any, ...], Decision] = field(default_factory=dict, repr=False)
    _reference: dict[bool, Any] = field(default_factory=dict, repr=False)
    _reference_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        """The bundle name from its manifest."""
        return self.bundle.manifest.name

    @property
    def version(self) -> str:
        """The bundle's declared version."""
        return self.bundle.manifest.version

    @property
    def digest(self) -> str:
        """``sha256:...`` over the bundle's files: identifies the exact content."""
        return self.bundle.digest

    @property
    def source(self) -> str:
        """Where the bundle was read from (a directory or a git revision)."""
        return self.bundle.source.origin

    @property
    def rule_count(self) -> int:
        """Number of rules as written (not expanded casbin rows)."""
        return len(self.bundle.rules)

    def resolve_roles(self, roles: tuple[str, ...]) -> ResolvedRoles:
        """Effective roles, unknown roles and sides for a principal's role list (memoised)."""
        resolved = self._resolved.get(roles)
        if resolved is None:
            resolved = _resolve(self, roles)
            if len(self._resolved) >= _RESOLVED_CACHE_SIZE:
                self._resolved.clear()  # bounded; role lists repeat, so this is rare
            self._resolved[roles] = resolved
        return resolved

    def decision(
        self,
        allowed: bool,
        rule_ids: tuple[str, ...],
        reason: str,
        errors: tuple[str, ...] = (),
        valid_until: float | None = None,
        matched_denies: tuple[str, ...] = (),
        obligations: tuple[Obligation, ...] = (),
        limits_exceeded: tuple[LimitExceeded, ...] = (),
        audit_class: str | None = None,
    ) -> Decision:
        """The `Decision` with these facts under this version: one shared object per distinct
        answer (a frozen dataclass costs more to build than a lookup; memoised, bounded)."""
        key: tuple[Any, ...] = (allowed, rule_ids, reason, errors, valid_until, matched_denies)
        if obligations or limits_exceeded or audit_class:
            key = (*key, obligations, limits_exceeded, audit_class)
        found = self._decisions.get(key)
        if found is None:
            found = Decision(
                allowed,
                rule_ids,
                reason,
                self.bundle.manifest.name,
                self.bundle.manifest.version,
                self.bundle.digest,
                errors,
                valid_until,
                False,
                (),
                matched_denies,
                obligations,
                limits_exceeded,
                audit_class,
            )
            if len(self._decisions) < _DECISION_MEMO_SIZE:
                found = self._decisions.setdefault(key, found)  # atomic: racing threads agree
        return found

    def side_of(self, role: str) -> Side | None:
        """The side of a declared role, ``None`` for a role the bundle does not define."""
        definition = self.bundle.roles.get(role)
        return definition.side if definition is not None else None

    def casbin_rows(self) -> list[tuple[str, str, str, str, str, str, str]]:
        """The ``p`` rows of the casbin model, in :data:`casbin_backend.MODEL_TEXT` order."""
        return [
            (role, kind, action, rule.scope.value, " ".join(rule.tenants), rule.id, rule.effect)
            for rule in self.bundle.rules
            for role in rule.roles
            for kind, action in rule.grants
        ]

    def casbin_links(self) -> list[tuple[str, str]]:
        """The ``g`` rows: (role, inherited role)."""
        return [(r.id, parent) for r in self.bundle.roles.values() for parent in r.inherits]

    def reference(self, *, allows_only: bool = False) -> casbin_backend.CasbinReference:
        """casbin's own enforcer over this snapshot's rows (or its allow rows), built once."""
        with self._reference_lock:
            if allows_only not in self._reference:
                from cnm_policy.engine.reference import build_reference  # noqa: PLC0415

                self._reference[allows_only] = build_reference(self, allows_only=allows_only)
            reference: casbin_backend.CasbinReference = self._reference[allows_only]
            return reference


def compile_bundle(bundle: Bundle, *, loaded_at: float | None = None) -> PolicySnapshot:
    """Compile a validated bundle: resolve role inheritance and build the row index."""
    closures = role_closures(bundle.roles)
    general: dict[tuple[str, str], dict[str, list[RuleDef]]] = defaultdict(
        lambda: defaultdict(list)
    )
    pinned: dict[tuple[str, str], dict[str, dict[str, list[RuleDef]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    rows = 0
    for rule in bundle.rules:
        for kind_action in rule.grants:
            for role in rule.roles:
                rows += 1
                if rule.tenants:
                    for tenant in rule.tenants:
                        pinned[kind_action][role][tenant].append(rule)
                else:
                    general[kind_action][role].append(rule)
    index: dict[tuple[str, str], dict[str, Bucket]] = {}
    for kind_action in set(general) | set(pinned):
        roles = set(general.get(kind_action, {})) | set(pinned.get(kind_action, {}))
        index[kind_action] = {
            role: _bucket(
                general.get(kind_action, {}).get(role, []),
                pinned.get(kind_action, {}).get(role, {}),
            )
            for role in roles
        }
    return PolicySnapshot(
        bundle=bundle,
        loaded_at=time.time() if loaded_at is None else loaded_at,
        closures=closures,
        index=index,
        row_count=rows,
    )


def _bucket(general: list[RuleDef], pinned: Mapping[str, list[RuleDef]]) -> Bucket:
    return Bucket(tuple(general), {tenant: tuple(rules) for tenant, rules in pinned.items()})


def load_snapshot(
    path: str | Path | BundleSource, *, loaded_at: float | None = None
) -> PolicySnapshot:
    """Read (unless given the files read already), validate and compile a bundle.

    Raises BundleInvalidError.
    """
    return compile_bundle(load_bundle(path), loaded_at=loaded_at)
