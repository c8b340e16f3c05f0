"""The lint checks themselves, one function per family, over a precomputed view of the bundle.

Each check yields ``(code, rule, message, rule_ids)`` for `lint` to locate; every coverage
question goes through :meth:`BundleView.covers`, so inheritance and the reach order apply alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from cnm_policy.policy import Bundle, Effect, RuleDef, Scope, Side
from cnm_policy.policy.roles import role_closures
from cnm_policy.review._absence import Kind, absence_of
from cnm_policy.review.reach import Reach, conditional, rule_reach

Raw = tuple[str, RuleDef, str, tuple[str, ...]]
Triple = tuple[str, str, str]  # (role, kind, action)

_LISTED = 4  # grants named in a message before "and N more"


@dataclass(frozen=True, slots=True)
class BundleView:
    """A bundle with what every check needs precomputed: closures and reaches."""

    bundle: Bundle
    closures: Mapping[str, frozenset[str]]
    reaches: Mapping[str, Reach]

    @classmethod
    def of(cls, bundle: Bundle) -> BundleView:
        """Precompute role closures and each rule's reach."""
        reaches = {rule.id: rule_reach(rule) for rule in bundle.rules}
        return cls(bundle, role_closures(bundle.roles), reaches)

    def side(self, role: str) -> Side:
        """The side of a role the bundle defines."""
        return self.bundle.roles[role].side

    def covers(self, other: RuleDef, rule: RuleDef, triple: Triple, *, by_reach: Reach) -> bool:
        """Whether `other` applies to every request `rule` applies to for `triple`.

        `other` applies to holders of `role` when it names `role` or any role `role` inherits.
        """
        role, kind, action = triple
        return (
            (kind, action) in other.grants
            and not self.closures[role].isdisjoint(other.roles)
            and by_reach.covers(self.reaches[rule.id])
        )


def triples(rule: RuleDef) -> list[Triple]:
    """Every concrete (role, kind, action) a rule names."""
    return [(role, kind, action) for role in rule.roles for kind, action in rule.grants]


def describe(found: Sequence[Triple]) -> str:
    """``configure` on `device` for `customer-admin`, ...`` (capped, for messages)."""
    named = [f"`{a}` on `{k}` for `{r}`" for r, k, a in found[:_LISTED]]
    more = f" and {len(found) - _LISTED} more" if len(found) > _LISTED else ""
    return ", ".join(named) + more


def _ids(rules: Sequence[str]) -> str:
    return ", ".join(f"`{rule_id}`" for rule_id in dict.fromkeys(rules))


def customer_wildcards(view: BundleView) -> Iterator[Raw]:
    """Allow rules that reach customer-side roles through a `*`."""
    for rule in view.bundle.rules:
        customer = [r for r in rule.roles if view.side(r) is Side.CUSTOMER]
        if rule.effect is not Effect.ALLOW or not customer:
            continue
        written = {
            "roles": rule.written_roles,
            "resources": rule.written_kinds,
            "actions": rule.written_actions,
        }
        wild = [name for name, values in written.items() if "*" in values]
        if wild:
            fields = " and ".join(f"`{name}`" for name in wild)
            yield (
                "customer_wildcard",
                rule,
                f"allow rule `{rule.id}` uses `*` for {fields} and reaches customer-side "
                f"role(s) {_ids(customer)}; list them so later additions are not granted silently",
                (rule.id,),
            )


def internal_any_unconditioned(view: BundleView) -> Iterator[Raw]:
    """Internal-side grants across every customer without a condition."""
    for rule in view.bundle.rules:
        if rule.effect is not Effect.ALLOW or rule.scope is not Scope.ANY or conditional(rule):
            continue
        internal = [r for r in rule.roles if view.side(r) is Side.INTERNAL]
        if internal:
            yield (
                "internal_any_unconditioned",
                rule,
                f"allow rule `{rule.id}` gives internal-side role(s) {_ids(internal)} scope "
                "`any` with no condition (add one, e.g. `principal.attributes.mfa == true`)",
                (rule.id,),
            )


def unguarded_destructive(view: BundleView, destructive: frozenset[str]) -> Iterator[Raw]:
    """Unconditional allows of destructive actions that no conditional deny guards."""
    guards = [r for r in view.bundle.rules if r.effect is Effect.DENY and conditional(r)]
    for rule in view.bundle.rules:
        if rule.effect is not Effect.ALLOW or conditional(rule):
            continue
        unguarded = [
            t
            for t in triples(rule)
            if t[2] in destructive
            and not any(
                view.covers(g, rule, t, by_reach=Reach(g.scope, view.reaches[g.id].tenants))
                for g in guards
            )
        ]
        if unguarded:
            yield (
                "unguarded_destructive_action",
                rule,
                f"allow rule `{rule.id}` grants {describe(unguarded)} with no condition and "
                "no conditional deny guardrail covers it",
                (rule.id,),
            )


def shadowed_allows(view: BundleView) -> Iterator[Raw]:
    """Allow grants that a deny always overrides (same or wider reach, no extra condition)."""
    denies = [r for r in view.bundle.rules if r.effect is Effect.DENY]
    for rule in view.bundle.rules:
        if rule.effect is not Effect.ALLOW:
            continue
        shadowed: dict[Triple, str] = {}
        for triple in triples(rule):
            deny = next(
                (d for d in denies if view.covers(d, rule, triple, by_reach=view.reaches[d.id])),
                None,
            )
            if deny is not None:
                shadowed[triple] = deny.id
        if not shadowed:
            continue
        by = _ids(list(shadowed.values()))
        if len(shadowed) == len(triples(rule)):
            message = f"allow rule `{rule.id}` can never allow: deny {by} always overrides it"
            yield ("dead_allow_rule", rule, message, (rule.id, *dict.fromkeys(shadowed.values())))
        else:
            message = (
                f"allow rule `{rule.id}` grants {describe(list(shadowed))}, "
                f"but deny {by} always overrides that"
            )
            yield (
                "shadowed_allow_grants",
                rule,
                message,
                (rule.id, *dict.fromkeys(shadowed.values())),
            )


# The remedy fits how absence decides: `x == true` -> `x != false`; `x in [...]` -> list null.
_DENY_ON_ABSENCE: Mapping[Kind, str] = {
    "true": "deny on absence (e.g. `!= false`)",
    "false": "deny on absence (e.g. `!= true`)",
    "list": "deny on absence by listing `null` among the values",
    "other": "deny on absence with `not has(...) or ...`",
}
_REQUIRE_THE_VALUE: Mapping[Kind, str] = {
    "true": "require the value (e.g. `== false`)",
    "false": "require the value (e.g. `== true`)",
    "list": "require the value with `has(...) and ...`",
    "other": "require the value with `has(...) and ...`",
}


def absence_decides(view: BundleView) -> Iterator[Raw]:
    """Deny rules a request skips, and allow rules it meets, by leaving a field out."""
    for rule in view.bundle.rules:
        if rule.condition is None:
            continue
        absence = absence_of(rule.condition.source)
        if rule.effect is Effect.DENY and absence.skips:
            yield (
                "deny_skipped_when_absent",
                rule,
                f"deny rule `{rule.id}` does not apply when the request leaves out "
                f"{_paths(absence.skips)} (or sends null); if that is meant, say so with "
                f"`has(...)` in the condition, else {_DENY_ON_ABSENCE[absence.skip_kind]}",
                (rule.id,),
            )
        elif rule.effect is Effect.ALLOW and absence.grants:
            yield (
                "allow_granted_when_absent",
                rule,
                f"allow rule `{rule.id}` applies when the request leaves out "
                f"{_paths(absence.grants)} (or sends null); if that is meant, say so with "
                f"`has(...)` in the condition, else {_REQUIRE_THE_VALUE[absence.grant_kind]}",
                (rule.id,),
            )


def _paths(paths: Sequence[str]) -> str:
    named = ", ".join(f"`{path}`" for path in paths[:_LISTED])
    return named + (f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else "")


def duplicates_and_redundancy(view: BundleView) -> Iterator[Raw]:
    """Exact duplicates, rules wholly covered by others, and partial overlaps.

    Each finding is reported once: duplicates on the later copies only; a rule is redundant
    only when rules not themselves copies or redundant cover it (so two rules never make each
    other redundant); overlaps are counted only against rules that stay.
    """
    groups: dict[tuple[object, ...], list[RuleDef]] = {}
    for rule in view.bundle.rules:
        key = (rule.effect, frozenset(rule.roles), frozenset(rule.grants), view.reaches[rule.id])
        groups.setdefault(key, []).append(rule)
    copies: set[str] = set()
    for original, *duplicates in groups.values():
        for copy in duplicates:
            copies.add(copy.id)
            message = f"rule `{copy.id}` repeats rule `{original.id}` exactly"
            yield ("duplicate_rule", copy, message, (copy.id, original.id))
    originals = [rule for rule in view.bundle.rules if rule.id not in copies]
    redundant: set[str] = set()
    for rule in originals:
        covered = _covered(view, rule, copies | redundant)
        if covered and len(covered) == len(triples(rule)):
            redundant.add(rule.id)
            verb = "grants" if rule.effect is Effect.ALLOW else "denies"
            by = _ids(list(covered.values()))
            message = f"everything rule `{rule.id}` {verb} is in {by}"
            yield ("redundant_rule", rule, message, (rule.id, *dict.fromkeys(covered.values())))
    for rule in originals:
        covered = _covered(view, rule, copies | redundant)
        if rule.id not in redundant and covered:
            verb = "grants" if rule.effect is Effect.ALLOW else "denies"
            by = _ids(list(covered.values()))
            message = f"rule `{rule.id}` {verb} {describe(list(covered))}, already in {by}"
            yield ("overlapping_rules", rule, message, (rule.id, *dict.fromkeys(covered.values())))


def _covered(view: BundleView, rule: RuleDef, excluded: set[str]) -> dict[Triple, str]:
    """Which of `rule`'s triples another same-effect rule (not `excluded`) always covers."""
    others = [
        o
        for o in view.bundle.rules
        if o.effect is rule.effect and o.id != rule.id and o.id not in excluded
    ]
    covered: dict[Triple, str] = {}
    for triple in triples(rule):
        other = next(
            (o for o in others if view.covers(o, rule, triple, by_reach=view.reaches[o.id])),
            None,
        )
        if other is not None:
            covered[triple] = other.id
    return covered
