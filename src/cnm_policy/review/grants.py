"""Effective grants: what each role can (or cannot) do once wildcards and inheritance resolve.

A role's access is spread over every rule naming it or a role it inherits; diffing these grants,
not the rules' text, shows a change to `customer-viewer` that widens `customer-admin`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from cnm_policy.policy import Bundle, Effect, Side
from cnm_policy.policy.roles import role_closures
from cnm_policy.review.reach import Reach, rule_reach

__all__ = ["GrantKey", "GrantSource", "Grants", "effective_grants"]


@dataclass(frozen=True, slots=True)
class GrantKey:
    """What is granted or denied, to whom: one (role, side, kind, action, effect)."""

    role: str
    side: Side
    kind: str
    action: str
    effect: Effect

    def sort_key(self) -> tuple[str, str, str, str, str]:
        """Stable report order: role, then effect, kind and action."""
        return (self.role, self.effect.value, self.kind, self.action, self.side.value)


@dataclass(frozen=True, slots=True)
class GrantSource:
    """A rule that contributes a grant; `via` names the inherited role the rule targets."""

    rule_id: str
    via: str | None = None

    def __str__(self) -> str:
        return self.rule_id if self.via is None else f"{self.rule_id} (via {self.via})"


Grants = Mapping[GrantKey, Mapping[Reach, tuple[GrantSource, ...]]]


def effective_grants(bundle: Bundle) -> Grants:
    """Every role's effective grants: key -> each distinct reach -> the rules giving it.

    A key can have several reaches (say, `subtree` unconditionally and `any` with MFA); the
    role's access for that key is their union.
    """
    closures = role_closures(bundle.roles)
    found: dict[GrantKey, dict[Reach, list[GrantSource]]] = defaultdict(lambda: defaultdict(list))
    for role_id, role in bundle.roles.items():
        closure = closures[role_id]
        for rule in bundle.rules:
            targets = [r for r in rule.roles if r in closure]
            if not targets:
                continue
            via = None if role_id in targets else targets[0]
            source = GrantSource(rule.id, via)
            reach = rule_reach(rule)
            for kind, action in rule.grants:
                key = GrantKey(role_id, role.side, kind, action, rule.effect)
                found[key][reach].append(source)
    return {
        key: {reach: tuple(sources) for reach, sources in reaches.items()}
        for key, reaches in found.items()
    }
