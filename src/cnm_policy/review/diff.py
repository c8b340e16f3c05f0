"""The effective access change between two bundle versions, as a reviewer needs to see it.

Both versions are reduced to effective grants and compared per (role, side, kind, action,
effect); how reaches are classed (added, widened, changed...) and why a changed reach gates
like a widening: docs/design/policy-language.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from cnm_policy.policy import Bundle, Effect, Side
from cnm_policy.review.definitions import DefinitionChanges, definition_changes
from cnm_policy.review.grants import GrantKey, GrantSource, effective_grants
from cnm_policy.review.reach import Reach

__all__ = [
    "BundleDiff",
    "BundleRef",
    "ChangeKind",
    "DiffWarning",
    "GrantChange",
    "Impact",
    "diff_bundles",
]


class ChangeKind(StrEnum):
    """How one effective grant moved between the versions."""

    ADDED = "added"
    REMOVED = "removed"
    WIDENED = "widened"
    NARROWED = "narrowed"
    CHANGED = "changed"


class Impact(StrEnum):
    """What a change does to access: deny changes act in reverse of allow changes."""

    WIDENS = "widens"
    NARROWS = "narrows"
    UNCLEAR = "unclear"
    LATENT = "latent"


_ALLOW_IMPACT: Mapping[ChangeKind, Impact] = {
    ChangeKind.ADDED: Impact.WIDENS,
    ChangeKind.WIDENED: Impact.WIDENS,
    ChangeKind.REMOVED: Impact.NARROWS,
    ChangeKind.NARROWED: Impact.NARROWS,
    ChangeKind.CHANGED: Impact.UNCLEAR,
}
_REVERSED = {Impact.WIDENS: Impact.NARROWS, Impact.NARROWS: Impact.WIDENS}


@dataclass(frozen=True, slots=True)
class GrantChange:
    """One effective grant that differs, with the rules responsible on each side."""

    change: ChangeKind
    key: GrantKey
    old: Reach | None
    new: Reach | None
    old_rules: tuple[GrantSource, ...] = ()
    new_rules: tuple[GrantSource, ...] = ()
    latent: bool = False

    @property
    def impact(self) -> Impact:
        """Whether access widens or narrows; a deny change has the opposite impact.

        A deny change for a (role, kind, action) that no allow grants in either version is
        ``latent``: no request changes outcome today, but the guardrail protects less (or
        more) should an allow appear later.
        """
        if self.latent:
            return Impact.LATENT
        impact = _ALLOW_IMPACT[self.change]
        return _REVERSED.get(impact, impact) if self.key.effect is Effect.DENY else impact

    @property
    def widens_access(self) -> bool:
        """True for a widening and for an unclear change (a gate must fail closed)."""
        return self.impact in (Impact.WIDENS, Impact.UNCLEAR)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: one flat record per grant."""
        return {
            "change": self.change.value,
            "impact": self.impact.value,
            "role": self.key.role,
            "side": self.key.side.value,
            "kind": self.key.kind,
            "action": self.key.action,
            "effect": self.key.effect.value,
            "old": _reach_dict(self.old),
            "new": _reach_dict(self.new),
            "old_rules": [_source_dict(s) for s in self.old_rules],
            "new_rules": [_source_dict(s) for s in self.new_rules],
        }


@dataclass(frozen=True, slots=True)
class BundleRef:
    """Which bundle version one side of the diff is."""

    origin: str
    name: str
    version: str
    digest: str

    @classmethod
    def of(cls, bundle: Bundle) -> BundleRef:
        """The reference for a loaded bundle."""
        manifest = bundle.manifest
        return cls(bundle.source.origin, manifest.name, manifest.version, bundle.digest)


@dataclass(frozen=True, slots=True)
class DiffWarning:
    """Something a reviewer must not miss; `code` is stable, `message` is for people."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class BundleDiff:
    """The effective access change from `old` to `new`."""

    old: BundleRef
    new: BundleRef
    changes: tuple[GrantChange, ...]
    definitions: DefinitionChanges
    warnings: tuple[DiffWarning, ...]

    @property
    def widens(self) -> bool:
        """True when any change widens access (or might: ``unclear`` counts)."""
        return any(change.widens_access for change in self.changes)

    def count(self, impact: Impact) -> int:
        """How many grant changes have `impact`."""
        return sum(1 for change in self.changes if change.impact is impact)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of the whole diff."""
        return {
            "old": _ref_dict(self.old),
            "new": _ref_dict(self.new),
            "widens": self.widens,
            "summary": {impact.value: self.count(impact) for impact in Impact},
            "warnings": [{"code": w.code, "message": w.message} for w in self.warnings],
            "changes": [change.to_dict() for change in self.changes],
            "definitions": self.definitions.to_dict(),
        }


def diff_bundles(old: Bundle, new: Bundle) -> BundleDiff:
    """Compare two validated bundles' effective grants."""
    before, after = effective_grants(old), effective_grants(new)
    allowed = {(k.role, k.kind, k.action) for k in (*before, *after) if k.effect is Effect.ALLOW}
    changes: list[GrantChange] = []
    for key in sorted(set(before) | set(after), key=GrantKey.sort_key):
        found = _compare(key, before.get(key, {}), after.get(key, {}))
        if key.effect is Effect.DENY and (key.role, key.kind, key.action) not in allowed:
            found = [replace(change, latent=True) for change in found]
        changes.extend(found)
    return BundleDiff(
        old=BundleRef.of(old),
        new=BundleRef.of(new),
        changes=tuple(changes),
        definitions=definition_changes(old, new),
        warnings=_warnings(changes, old, new),
    )


Sources = Mapping[Reach, tuple[GrantSource, ...]]


def _compare(key: GrantKey, old: Sources, new: Sources) -> list[GrantChange]:
    """The changes for one key; reaches still covered on the other side are no change."""
    removed = sorted((r for r in old if r not in new), key=Reach.sort_key)
    added = sorted((r for r in new if r not in old), key=Reach.sort_key)
    changes: list[GrantChange] = []
    paired: set[Reach] = set()
    for reach in added:
        if any(before.covers(reach) for before in old):
            continue  # nothing the old version did not already give
        replaced = next((o for o in removed if o not in paired and reach.covers(o)), None)
        kind = ChangeKind.WIDENED
        if replaced is None:
            lost = [o for o in removed if o not in paired and not _covered(o, new)]
            replaced = lost[0] if len(lost) == 1 else None
            kind = ChangeKind.CHANGED if replaced is not None else ChangeKind.ADDED
        if replaced is not None:
            paired.add(replaced)
        changes.append(_change(kind, key, replaced, reach, old, new))
    for reach in removed:
        if reach in paired or _covered(reach, new):
            continue
        narrower = next((n for n in added if reach.covers(n)), None)
        kind = ChangeKind.REMOVED if narrower is None else ChangeKind.NARROWED
        changes.append(_change(kind, key, reach, narrower, old, new))
    return changes


def _covered(reach: Reach, reaches: Sources) -> bool:
    return any(other.covers(reach) for other in reaches)


def _change(
    kind: ChangeKind,
    key: GrantKey,
    old_reach: Reach | None,
    new_reach: Reach | None,
    old: Sources,
    new: Sources,
) -> GrantChange:
    return GrantChange(
        change=kind,
        key=key,
        old=old_reach,
        new=new_reach,
        old_rules=old[old_reach] if old_reach is not None else (),
        new_rules=new[new_reach] if new_reach is not None else (),
    )


def _warnings(changes: list[GrantChange], old: Bundle, new: Bundle) -> tuple[DiffWarning, ...]:
    """The findings a pull-request comment must lead with."""
    warnings: list[DiffWarning] = []
    customer = [c for c in changes if c.widens_access and c.key.side is Side.CUSTOMER]
    if customer:
        roles = ", ".join(f"`{r}`" for r in dict.fromkeys(c.key.role for c in customer))
        message = f"customer-side access widens: {len(customer)} grant change(s) for {roles}"
        warnings.append(DiffWarning("customer_access_widened", message))
    warnings.extend(_deny_warnings(changes, old, new))
    if changes and old.manifest.version == new.manifest.version:
        message = f"access changes but the bundle version is still `{new.manifest.version}`"
        warnings.append(DiffWarning("version_unchanged", message))
    return tuple(warnings)


def _deny_warnings(changes: list[GrantChange], old: Bundle, new: Bundle) -> list[DiffWarning]:
    """A deny rule that disappeared, or that still exists but now lets more through."""
    kept = {rule.id for rule in new.rules}
    weakened = {
        source.rule_id
        for c in changes
        if c.key.effect is Effect.DENY and c.widens_access
        for source in c.old_rules
    }
    warnings = []
    for rule in old.rules:
        if rule.effect is not Effect.DENY:
            continue
        if rule.id not in kept:
            warnings.append(DiffWarning("deny_removed", f"deny rule `{rule.id}` was removed"))
        elif rule.id in weakened:
            warnings.append(DiffWarning("deny_weakened", f"deny rule `{rule.id}` now denies less"))
    return warnings


def _reach_dict(reach: Reach | None) -> dict[str, Any] | None:
    if reach is None:
        return None
    return {
        "scope": reach.scope.value,
        "tenants": list(reach.tenants),
        "condition": reach.condition,
    }


def _source_dict(source: GrantSource) -> dict[str, Any]:
    return {"rule": source.rule_id, "via": source.via}


def _ref_dict(ref: BundleRef) -> dict[str, str]:
    return {"origin": ref.origin, "name": ref.name, "version": ref.version, "digest": ref.digest}
