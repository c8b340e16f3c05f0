"""The validated, normalised form of a policy bundle: what the files *mean*, before compiling.

Every wildcard expanded, every name resolved, every condition compiled, each element still
pointing at its file and line: the engine compiles it, the review tools reason over it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from cnm_policy.errors import PolicyProblem
from cnm_policy.policy.conditions import Condition

if TYPE_CHECKING:
    from cnm_policy.policy._limits import LimitDef
    from cnm_policy.policy._obligations import ObligationDef
    from cnm_policy.policy._principal_mapping import ClaimsMapping
    from cnm_policy.policy._routes import RouteTable

__all__ = [
    "ASSIGNED_TENANTS_ATTRIBUTE",
    "MANIFEST_FILE",
    "RESOURCES_FILE",
    "ROLES_FILE",
    "RULES_DIR",
    "TESTS_DIR",
    "Bundle",
    "BundleSource",
    "Effect",
    "KindDef",
    "Manifest",
    "RoleDef",
    "RuleDef",
    "Scope",
    "Side",
]

MANIFEST_FILE = "bundle.yaml"
ROLES_FILE = "roles.yaml"
RESOURCES_FILE = "resources.yaml"
RULES_DIR = "rules"
TESTS_DIR = "tests"


class Side(StrEnum):
    """Which side of the provider boundary a role lives on."""

    CUSTOMER = "customer"
    INTERNAL = "internal"


class Scope(StrEnum):
    """Which resource tenants a rule reaches, relative to the principal's tenant."""

    OWN = "own"  # the principal's own tenant only
    SUBTREE = "subtree"  # the principal's tenant and its descendants
    ASSIGNED = "assigned"  # tenants (and their subtrees) in attributes["assigned_tenants"]
    ANY = "any"  # every tenant: internal staff only


class Effect(StrEnum):
    """What a matching rule does. An applicable deny overrides every allow."""

    ALLOW = "allow"
    DENY = "deny"


ASSIGNED_TENANTS_ATTRIBUTE = "assigned_tenants"


@dataclass(frozen=True, slots=True)
class BundleSource:
    """The raw text of every file of one bundle, read once so a load never mixes versions.

    `files` maps a path relative to the bundle root (always with ``/``) to its text;
    `problems` are what reading refused (links out, loops, oversized files): errors, and a
    warning for a dangling link that is not a bundle file.
    """

    origin: str
    files: Mapping[str, str]
    problems: tuple[PolicyProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class Manifest:
    """The bundle's identity: name and declared version, shown on every decision."""

    name: str
    version: str
    description: str


@dataclass(frozen=True, slots=True)
class RoleDef:
    """A role: its side and the roles it inherits (whose grants it also gets)."""

    id: str
    side: Side
    inherits: tuple[str, ...]
    description: str
    file: str
    line: int
    break_glass: bool = False  # may exceed its assignment under break-glass rules
    delegable: bool = False  # holders may grant it to others (`Engine.can_grant`)
    max_validity: float | None = None  # seconds a delegated grant may last at most


@dataclass(frozen=True, slots=True)
class KindDef:
    """A resource kind and the actions that make sense on it."""

    name: str
    actions: tuple[str, ...]
    description: str
    file: str
    line: int


@dataclass(frozen=True, slots=True)
class RuleDef:
    """One rule, as written (`written_*`) and as it applies (`roles`, `grants`).

    `roles` are concrete role ids after expanding ``*`` and `side`; `grants` are the concrete
    (kind, action) pairs after expanding ``*`` and dropping actions a kind does not define.
    `tenants` optionally pins the rule to resources inside those tenant subtrees.
    """

    id: str
    description: str
    effect: Effect
    roles: tuple[str, ...]
    grants: tuple[tuple[str, str], ...]
    scope: Scope
    tenants: tuple[str, ...]
    condition: Condition | None
    side: Side | None
    written_roles: tuple[str, ...]
    written_kinds: tuple[str, ...]
    written_actions: tuple[str, ...]
    file: str
    line: int
    obligations: tuple[ObligationDef, ...] = ()
    limits: tuple[LimitDef, ...] = ()
    actor: str | None = None  # "required" or "forbidden": whether the request names an actor
    crosses_self_managed: bool = False  # subtree reach crosses self-managed tenants (audited)
    break_glass: float | None = None  # a break-glass rule: the longest an allow may last (s)
    governed: bool = False  # any of actor, crossing, break-glass or limits (the slow path)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The concrete kinds this rule reaches, in first-seen order."""
        return tuple(dict.fromkeys(kind for kind, _ in self.grants))

    @property
    def actions(self) -> tuple[str, ...]:
        """The concrete actions this rule reaches, in first-seen order."""
        return tuple(dict.fromkeys(action for _, action in self.grants))


@dataclass(frozen=True, slots=True)
class Bundle:
    """A bundle that passed validation. Immutable; `digest` identifies its exact content."""

    source: BundleSource
    manifest: Manifest
    roles: Mapping[str, RoleDef]
    kinds: Mapping[str, KindDef]
    rules: tuple[RuleDef, ...]
    digest: str
    weight: int = 0  # of its parsed files: what the tests' budget starts from
    claims: ClaimsMapping | None = None  # principals.yaml: token claims -> principal
    routes: RouteTable | None = None  # routes.yaml: gateway requests -> checks
    self_managed: frozenset[str] = frozenset()  # tenants.yaml: barriers to subtree reach
    internal_tenants: frozenset[str] = frozenset()  # tenants.yaml: where staff may be
    obligated: bool = False  # some rule declares obligations

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action some kind defines, in first-seen order."""
        return tuple(dict.fromkeys(a for kind in self.kinds.values() for a in kind.actions))
