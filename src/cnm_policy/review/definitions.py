"""Which rules, roles and kinds a change adds, removes or edits: the "what moved" summary.

The effective grant diff says what access changed; this says where in the files to look. A
rule edit with no access change (a refactor, an expanded wildcard that matches the same roles)
shows up here and nowhere else, which is what a reviewer expects of a pure refactor.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cnm_policy.policy import Bundle, KindDef, RoleDef, RuleDef
from cnm_policy.review.reach import rule_reach

__all__ = ["DefinitionChanges", "ItemChanges", "definition_changes"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ItemChanges:
    """Ids added, removed and modified (same id, different meaning), each sorted."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)

    def to_dict(self) -> dict[str, list[str]]:
        """The JSON form."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "modified": list(self.modified),
        }


@dataclass(frozen=True, slots=True)
class DefinitionChanges:
    """What moved in the bundle's definitions between two versions."""

    rules: ItemChanges
    roles: ItemChanges
    kinds: ItemChanges

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "rules": self.rules.to_dict(),
            "roles": self.roles.to_dict(),
            "kinds": self.kinds.to_dict(),
        }


def definition_changes(old: Bundle, new: Bundle) -> DefinitionChanges:
    """Compare rules, roles and kinds by id; descriptions and file positions are ignored."""
    return DefinitionChanges(
        rules=_compare({r.id: r for r in old.rules}, {r.id: r for r in new.rules}, _rule_signature),
        roles=_compare(old.roles, new.roles, _role_signature),
        kinds=_compare(old.kinds, new.kinds, _kind_signature),
    )


def _compare(
    old: Mapping[str, T], new: Mapping[str, T], signature: Callable[[T], Hashable]
) -> ItemChanges:
    return ItemChanges(
        added=tuple(sorted(set(new) - set(old))),
        removed=tuple(sorted(set(old) - set(new))),
        modified=tuple(
            sorted(k for k in set(old) & set(new) if signature(old[k]) != signature(new[k]))
        ),
    )


def _rule_signature(rule: RuleDef) -> Hashable:
    """Everything that decides what a rule does, as written and as expanded."""
    return (
        rule.effect,
        frozenset(rule.roles),
        frozenset(rule.grants),
        rule_reach(rule),
        rule.side,
        rule.written_roles,
        rule.written_kinds,
        rule.written_actions,
    )


def _role_signature(role: RoleDef) -> Hashable:
    return (role.side, frozenset(role.inherits))


def _kind_signature(kind: KindDef) -> Hashable:
    return frozenset(kind.actions)
