"""Who may act beyond the everyday grants: break-glass roles, delegable roles, self-managed tenants.

Roles may be marked `break_glass` (internal roles that may exceed their assignment under
break-glass rules) or `delegable` with a `max_validity` (customer admins grant them to their own
users); `tenants.yaml` marks tenants `self_managed`, barriers subtree reach does not cross.
Semantics in docs/design/governance.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cnm_policy.policy._fields import Report, check_fields, entries, excerpt, text
from cnm_policy.policy._obligations import ObligationDef
from cnm_policy.policy._yaml import LineDict
from cnm_policy.policy.bundle import Effect, Side
from cnm_policy.policy.tenancy import tenant_problem

__all__ = [
    "ACTOR_REQUIREMENTS",
    "GOVERNANCE_ROLE_FIELDS",
    "GOVERNANCE_RULE_FIELDS",
    "TENANTS_FILE",
    "RoleGovernance",
    "RuleGovernance",
    "parse_duration",
    "parse_tenants",
    "role_governance",
    "rule_governance",
]

TENANTS_FILE: Final = "tenants.yaml"
GOVERNANCE_ROLE_FIELDS: Final = ("break_glass", "delegable", "max_validity")
MAX_DURATION: Final = 366 * 86400.0  # a year: longer is a typo or not a bound at all
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class RoleLike(Protocol):
    """What rule checks read of a role."""

    @property
    def break_glass(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class RoleGovernance:
    """A role's break-glass eligibility and delegation terms."""

    break_glass: bool = False
    delegable: bool = False
    max_validity: float | None = None  # seconds a delegated grant may last at most


def parse_duration(value: Any) -> float | None:
    """Seconds for a duration such as ``4h``, ``90d``, ``30m`` (at most a year), else None."""
    if not isinstance(value, str):
        return None
    match = _DURATION.fullmatch(value)
    if match is None:
        return None
    seconds = float(int(match.group(1)) * _UNITS[match.group(2)])
    return seconds if seconds <= MAX_DURATION else None


def role_governance(
    entry: LineDict, role_id: str, side: Side, file: str, report: Report
) -> RoleGovernance:
    """The governance fields of one role entry (problems reported, defaults kept)."""
    flags = {}
    for name in ("break_glass", "delegable"):
        value = entry.get(name, False)
        if not isinstance(value, bool):
            report.error("invalid_type", f"`{name}` must be true or false", file, entry.line)
        flags[name] = value is True
    if flags["break_glass"] and side is not Side.INTERNAL:
        report.error(
            "invalid_value",
            f"role `{role_id}`: only internal-side roles may be break-glass eligible",
            file,
            entry.line_of("break_glass"),
        )
    max_validity = None
    if "max_validity" in entry:
        max_validity = parse_duration(entry["max_validity"])
        if max_validity is None:
            report.error(
                "invalid_value",
                f"`max_validity` `{excerpt(entry['max_validity'])}` is not a duration such as "
                "`90d` or `12h` (at most a year)",
                file,
                entry.line_of("max_validity"),
            )
    return RoleGovernance(flags["break_glass"], flags["delegable"], max_validity)


def parse_tenants(doc: Any, report: Report) -> tuple[frozenset[str], frozenset[str]]:
    """The self-managed and the internal (provider's own) tenants `tenants.yaml` declares."""
    if doc is None:
        return frozenset(), frozenset()
    found: set[str] = set()
    internal: set[str] = set()
    seen: set[str] = set()
    optional = ("self_managed", "internal", "description")
    for entry, line in entries(doc, "tenants", TENANTS_FILE, report):
        if not check_fields(entry, "a tenant", ("path",), optional, TENANTS_FILE, report):
            continue
        path = entry["path"]
        problem = tenant_problem(path)
        if problem is not None:
            report.error(
                "invalid_tenant", f"tenant `{excerpt(path)}` {problem}", TENANTS_FILE, line
            )
            continue
        if path in seen:
            report.error("duplicate_tenant", f"tenant `{path}` is listed twice", TENANTS_FILE, line)
            continue
        seen.add(path)
        text(entry, "description", TENANTS_FILE, report, default="")
        for name, into in (("self_managed", found), ("internal", internal)):
            flag = entry.get(name, False)
            if not isinstance(flag, bool):
                report.error("invalid_type", f"`{name}` must be true or false", TENANTS_FILE, line)
            elif flag:
                into.add(path)
    return frozenset(found), frozenset(internal)


GOVERNANCE_RULE_FIELDS: Final = ("actor", "crosses_self_managed", "break_glass")
ACTOR_REQUIREMENTS: Final = ("required", "forbidden")


@dataclass(frozen=True, slots=True)
class RuleGovernance:
    """A rule's actor requirement, barrier crossing and break-glass terms."""

    actor: str | None = None
    crosses_self_managed: bool = False
    break_glass: float | None = None  # the longest a break-glass allow may last (seconds)


def rule_governance(
    node: LineDict,
    rule_id: str,
    effect: Effect,
    obligations: tuple[ObligationDef, ...],
    roles: Mapping[str, RoleLike],
    role_ids: tuple[str, ...],
    file: str,
    report: Report,
) -> RuleGovernance | None:
    """The governance fields of one rule, or ``None`` after reporting what is wrong."""
    before = report.count
    allow = effect is Effect.ALLOW
    has_notify = any(o.type == "notify" for o in obligations)
    actor = node.get("actor")
    if actor is not None and actor not in ACTOR_REQUIREMENTS:
        report.error(
            "invalid_value",
            f"rule `{rule_id}`: `actor` must be required or forbidden, got `{excerpt(actor)}`",
            file,
            node.line_of("actor"),
        )
    crosses = node.get("crosses_self_managed", False)
    if not isinstance(crosses, bool) or (crosses and not allow):
        report.error(
            "invalid_value",
            f"rule `{rule_id}`: `crosses_self_managed` is true or false, and only on allow rules",
            file,
            node.line_of("crosses_self_managed"),
        )
    limit = None
    if "break_glass" in node:
        limit = _break_glass(node, rule_id, allow, roles, role_ids, has_notify, file, report)
    if report.count > before:
        return None
    return RuleGovernance(actor, crosses is True, limit)


def _break_glass(
    node: LineDict,
    rule_id: str,
    allow: bool,
    roles: Mapping[str, RoleLike],
    role_ids: tuple[str, ...],
    has_notify: bool,
    file: str,
    report: Report,
) -> float | None:
    line = node.line_of("break_glass")
    terms = node["break_glass"]
    duration = parse_duration(terms.get("max_duration")) if isinstance(terms, dict) else None
    problem = None
    if not allow:
        problem = "break-glass terms belong on allow rules"
    elif duration is None:
        problem = "a break-glass rule needs `max_duration` such as `4h` (at most a year)"
    elif not has_notify:
        problem = "a break-glass rule needs a `notify` obligation: the customer hears of it"
    else:
        ineligible = [r for r in role_ids if not roles[r].break_glass]
        if ineligible or not role_ids:
            problem = "break-glass rules name only break-glass roles, not " + ", ".join(
                f"`{r}`" for r in ineligible
            )
    if problem is not None:
        report.error("invalid_break_glass", f"rule `{rule_id}`: {problem}", file, line)
        return None
    return duration
