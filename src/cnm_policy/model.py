"""The nouns of an access decision, shared by the library, the sidecar and the review tools.

Everything here is a frozen dataclass: no field of a request or decision can be rebound once
made. The attribute and context mappings stay the caller's, and a library caller may change
them at any time: the decision cache therefore evaluates its own copy of what it keys (see
docs/design/cache.md). Only the fingerprinted cache methods, whose caller vouches for the
request, take the objects as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AccessRequest",
    "Decision",
    "GrantDecision",
    "LimitExceeded",
    "Obligation",
    "Principal",
    "Resource",
    "RuleTrace",
]


def _empty() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who asks: a user or service account, the organisation it belongs to, and its roles.

    `tenant` is an organisation path such as ``acme/emea``. Staff assigned to customers carry
    the customer tenants in ``attributes["assigned_tenants"]`` (used by scope ``assigned``).
    """

    id: str
    tenant: str
    roles: tuple[str, ...] = ()
    attributes: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class Resource:
    """What is acted on: a device, circuit, ticket, invoice... owned by one organisation."""

    kind: str
    id: str
    tenant: str
    attributes: Mapping[str, Any] = field(default_factory=_empty)


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """One question: may `principal` do `action` on `resource`, in `context`?"""

    principal: Principal
    action: str
    resource: Resource
    context: Mapping[str, Any] = field(default_factory=_empty)
    actor: Principal | None = None  # who acts on the principal's behalf, if anyone


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """How one rule fared against a request, for `explain` output.

    Each ``*_matched`` flag says whether that part of the rule matched; ``condition`` is
    ``None`` when the rule has no condition or evaluation stopped before reaching it.
    """

    rule_id: str
    effect: str
    role_matched: bool
    kind_matched: bool
    action_matched: bool
    scope_matched: bool
    condition: bool | None
    error: str | None = None

    @property
    def applied(self) -> bool:
        """True when every part matched, so the rule's effect counted in the decision."""
        return (
            self.role_matched
            and self.kind_matched
            and self.action_matched
            and self.scope_matched
            and self.condition is not False
            and self.error is None
        )


@dataclass(frozen=True, slots=True)
class Obligation:
    """What the caller must do with a decision, declared by the rule `rule_id` that decided it.

    `type` is ``notify`` (tell `params["tenant"]`'s `params["audience"]` about the action; on
    allows) or ``step_up`` (this deny is lifted by authenticating at `params["assurance"]`).
    """

    type: str
    rule_id: str
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        """The value of parameter `name`, if the obligation has it."""
        return next((value for key, value in self.params if key == name), None)


@dataclass(frozen=True, slots=True)
class LimitExceeded:
    """An allow rule that would have applied, had the request not asked above its limit."""

    rule_id: str
    name: str
    limit: float
    asked: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer, with the reasons that make it auditable.

    `rule_ids` are the rules that decided it: the matching allow rules for an allow; the deny
    rules (and failed conditions) that overrode an applicable allow; empty for the default deny,
    where no allow applied. `matched_denies` lists every deny rule whose condition held, deciding
    or not. `errors` lists condition failures. `valid_until` is the epoch second at which a
    time-dependent decision may change (``None``: it does not depend on the clock). `reason` is
    safe to show the caller. `obligations` come from the deciding rules; `limits_exceeded` names
    the allows a request asked too much of (docs/design/obligations.md). `audit_class` marks
    allows that need an audit trail: ``break_glass``, ``self_managed_crossing``.
    """

    allowed: bool
    rule_ids: tuple[str, ...]
    reason: str
    policy_name: str
    policy_version: str
    policy_digest: str
    errors: tuple[str, ...] = ()
    valid_until: float | None = None
    cached: bool = False
    trace: tuple[RuleTrace, ...] = ()
    matched_denies: tuple[str, ...] = ()
    obligations: tuple[Obligation, ...] = ()
    limits_exceeded: tuple[LimitExceeded, ...] = ()
    audit_class: str | None = None


@dataclass(frozen=True, slots=True)
class GrantDecision:
    """May a granter give a role to a user of a tenant (`Engine.can_grant`), and why."""

    allowed: bool
    reason: str
    policy_name: str
    policy_version: str
    policy_digest: str
