"""Rule entries -> :class:`RuleDef`: wildcards expanded, names resolved, conditions compiled.

This is where the customer-reach guardrail lives: a customer-side role can never be *granted*
scope ``any`` or ``assigned``, so customer access cannot leave the customer's own tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cnm_policy.errors import ConditionSyntaxError
from cnm_policy.policy._fields import (
    WILDCARD,
    Report,
    check_fields,
    entries,
    enum,
    excerpt,
    identifier,
    names,
    text,
)
from cnm_policy.policy._governance import GOVERNANCE_RULE_FIELDS, RuleGovernance, rule_governance
from cnm_policy.policy._limits import parse_limits
from cnm_policy.policy._obligations import parse_obligations
from cnm_policy.policy._yaml import LineDict
from cnm_policy.policy.bundle import RULES_DIR, Effect, KindDef, RoleDef, RuleDef, Scope, Side
from cnm_policy.policy.conditions import Condition, compile_condition
from cnm_policy.policy.tenancy import tenant_problem

__all__ = ["parse_rules"]

_RULE_REQUIRED = ("id", "description", "effect", "resources", "actions", "scope")
_RULE_OPTIONAL = ("roles", "side", "tenants", "when", "obligations", "limits")
_OPTIONAL_FIELDS = (*_RULE_OPTIONAL, *GOVERNANCE_RULE_FIELDS)


def parse_rules(
    docs: Mapping[str, Any],
    roles: Mapping[str, RoleDef],
    kinds: Mapping[str, KindDef],
    report: Report,
) -> list[RuleDef]:
    rules: list[RuleDef] = []
    seen: dict[str, str] = {}
    for file in sorted(name for name in docs if name.startswith(RULES_DIR + "/")):
        for entry, line in entries(docs[file], "rules", file, report):
            rule = _rule(entry, line, file, roles, kinds, report)
            if rule is None:
                continue
            if rule.id in seen:
                report.error(
                    "duplicate_rule_id",
                    f"rule id `{rule.id}` is already used in {seen[rule.id]}",
                    file,
                    line,
                )
                continue
            seen[rule.id] = f"{file}:{line}"
            rules.append(rule)
    return rules


def _rule(
    node: LineDict,
    line: int,
    file: str,
    roles: Mapping[str, RoleDef],
    kinds: Mapping[str, KindDef],
    report: Report,
) -> RuleDef | None:
    if not check_fields(node, "a rule", _RULE_REQUIRED, _OPTIONAL_FIELDS, file, report):
        return None
    if "roles" not in node and "side" not in node:
        report.error("missing_field", "a rule needs `roles`, `side`, or both", file, line)
        return None
    before = report.count
    rule_id = identifier(node, "id", "rule id", file, report)
    description = text(node, "description", file, report)
    if not description.strip():
        report.error(
            "missing_field",
            f"rule `{rule_id}` needs a non-empty description",
            file,
            node.line_of("description"),
        )
    effect = enum(Effect, node, "effect", file, report, "unknown_effect")
    scope = enum(Scope, node, "scope", file, report, "unknown_scope")
    side = enum(Side, node, "side", file, report, "unknown_side") if "side" in node else None
    written_roles = names(node, "roles", file, report) if "roles" in node else (WILDCARD,)
    written_kinds = names(node, "resources", file, report)
    written_actions = names(node, "actions", file, report)
    tenants = _tenants(node, file, report)
    condition = _condition(node, file, report)
    obligations = parse_obligations(node, rule_id or "?", effect, file, report)
    limits = parse_limits(node, rule_id or "?", effect, file, report)
    if (
        obligations is None
        or limits is None
        or rule_id is None
        or effect is None
        or scope is None
        or written_roles is None
        or written_kinds is None
        or written_actions is None
        or tenants is None
        or report.count > before
    ):
        return None
    role_ids = _expand_roles(written_roles, side, roles, node, file, report)
    grants = _expand_grants(written_kinds, written_actions, kinds, node, file, report)
    if role_ids is None or grants is None:
        return None
    _check_customer_reach(rule_id, effect, scope, role_ids, roles, node, file, report)
    terms = rule_governance(node, rule_id, effect, obligations, roles, role_ids, file, report)
    if terms is None:
        return None
    return RuleDef(
        id=rule_id,
        description=description,
        effect=effect,
        roles=role_ids,
        grants=grants,
        scope=scope,
        tenants=tenants,
        condition=condition,
        side=side,
        written_roles=written_roles,
        written_kinds=written_kinds,
        written_actions=written_actions,
        file=file,
        line=line,
        obligations=obligations,
        limits=limits,
        actor=terms.actor,
        crosses_self_managed=terms.crosses_self_managed,
        break_glass=terms.break_glass,
        governed=bool(limits) or terms != RuleGovernance(),
    )


def _expand_roles(
    written: tuple[str, ...],
    side: Side | None,
    roles: Mapping[str, RoleDef],
    node: LineDict,
    file: str,
    report: Report,
) -> tuple[str, ...] | None:
    line = node.line_of("roles")
    if WILDCARD in written:
        if len(written) > 1:
            report.error("invalid_value", "`*` cannot be combined with role names", file, line)
            return None
        chosen = [r.id for r in roles.values() if side is None or r.side is side]
    else:
        chosen = []
        for role in written:
            definition = roles.get(role)
            if definition is None:
                report.error("unknown_role", f"unknown role `{excerpt(role)}`", file, line)
            elif side is not None and definition.side is not side:
                report.error(
                    "side_mismatch",
                    f"role `{role}` is {definition.side}-side but the rule says `side: {side}`",
                    file,
                    line,
                )
            else:
                chosen.append(role)
        if len(chosen) != len(written):
            return None
    if not chosen:
        report.error("invalid_value", "the rule's roles select no role", file, line)
        return None
    return tuple(dict.fromkeys(chosen))


def _expand_grants(
    written_kinds: tuple[str, ...],
    written_actions: tuple[str, ...],
    kinds: Mapping[str, KindDef],
    node: LineDict,
    file: str,
    report: Report,
) -> tuple[tuple[str, str], ...] | None:
    if WILDCARD in written_kinds:
        chosen = list(kinds.values())
    else:
        chosen = []
        for name in written_kinds:
            if name in kinds:
                chosen.append(kinds[name])
            else:
                report.error(
                    "unknown_kind",
                    f"unknown resource kind `{excerpt(name)}`",
                    file,
                    node.line_of("resources"),
                )
        if len(chosen) != len(written_kinds):
            return None
    if WILDCARD not in written_actions:
        defined = {action for kind in kinds.values() for action in kind.actions}
        for action in written_actions:
            if action not in defined:
                report.error(
                    "unknown_action",
                    f"unknown action `{excerpt(action)}`",
                    file,
                    node.line_of("actions"),
                )
                return None
            if not any(action in kind.actions for kind in chosen):
                names = ", ".join(f"`{k.name}`" for k in chosen)
                report.error(
                    "action_not_applicable",
                    f"action `{excerpt(action)}` is not defined for {names}",
                    file,
                    node.line_of("actions"),
                )
                return None
    grants = tuple(
        (kind.name, action)
        for kind in chosen
        for action in kind.actions
        if WILDCARD in written_actions or action in written_actions
    )
    return grants


def _tenants(node: LineDict, file: str, report: Report) -> tuple[str, ...] | None:
    if "tenants" not in node:
        return ()
    tenants = names(node, "tenants", file, report)
    if tenants is None:
        return None
    for tenant in tenants:
        problem = tenant_problem(tenant)
        if problem is not None:
            report.error(
                "invalid_tenant",
                f"tenant `{excerpt(tenant)}` {problem}",
                file,
                node.line_of("tenants"),
            )
            return None
    return tenants


@lru_cache(maxsize=4096)
def _compile_shared(text: str) -> Condition:
    # Large generated bundles repeat a handful of conditions tens of thousands of times; a
    # compiled Condition is immutable, so identical texts can share one (memory and load time).
    return compile_condition(text)


def _condition(node: LineDict, file: str, report: Report) -> Condition | None:
    if "when" not in node:
        return None
    text = node["when"]
    try:
        return _compile_shared(text) if isinstance(text, str) else compile_condition(text)
    except ConditionSyntaxError as exc:
        message = f"condition `{excerpt(text)}` {exc}"
        report.error(exc.code, message, file, node.line_of("when"))
        return None


def _check_customer_reach(
    rule_id: str,
    effect: Effect,
    scope: Scope,
    role_ids: tuple[str, ...],
    roles: Mapping[str, RoleDef],
    node: LineDict,
    file: str,
    report: Report,
) -> None:
    """Customer-side grants may only reach the customer's own organisation tree.

    Deny rules are exempt: they can only take access away, and guardrails such as "customers
    never touch shared infrastructure" need to apply wherever the resource lives.
    """
    if effect is not Effect.ALLOW or scope not in (Scope.ANY, Scope.ASSIGNED):
        return
    customer = [r for r in role_ids if roles[r].side is Side.CUSTOMER]
    if customer:
        listed = ", ".join(f"`{r}`" for r in customer)
        report.error(
            f"customer_scope_{scope}",
            f"rule `{rule_id}` gives customer-side role(s) {listed} scope `{scope}`; customer "
            "roles reach only their own organisation (`own` or `subtree`)",
            file,
            node.line_of("scope"),
        )
