"""Hypothesis strategies: small random policies and requests over a tricky tenant universe.

The tenant universe deliberately contains string-prefix traps (``acme`` / ``acme-evil`` /
``acmex``); conditions include ones that can fail at run time, and a clock-based one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from cnm_policy import Decision, Principal, Resource
from cnm_policy.engine import PolicySnapshot, compile_bundle, decide_batch
from cnm_policy.policy import BundleSource, parse_bundle

TENANTS = (
    "acme",
    "acme/emea",
    "acme/emea/paris",
    "acme/apac",
    "acme-evil",
    "acme-evil/emea",
    "acmex",
    "globex",
    "globex/us",
    "provider/noc",
)
# (principal tenant, resource tenant): inside the subtree, and string-prefix lookalikes outside it.
TENANT_PAIRS = (
    ("acme", "acme/emea/paris"),
    ("acme/emea", "acme/emea"),
    ("acme", "acme-evil"),
    ("acme", "acmex"),
    ("acme", "acme-evil/emea"),
    ("acme/emea", "acme/apac"),
    ("acme/emea", "acme"),
    ("globex", "globex/us"),
)
CUSTOMER_ROLES = {"c-view": (), "c-admin": ("c-view",), "c-bill": ()}
INTERNAL_ROLES = {"i-noc": (), "i-lead": ("i-noc",), "i-support": ()}
ROLES = {**CUSTOMER_ROLES, **INTERNAL_ROLES}
KINDS = {
    "device": ("read", "configure"),
    "invoice": ("read", "export"),
    "ticket": ("read", "close"),
}
ACTIONS = tuple(sorted({a for actions in KINDS.values() for a in actions}))
CONDITIONS = (
    None,
    "principal.attributes.mfa == true",
    "resource.attributes.flag == true",
    "principal.attributes.level > 2",  # errors when level is a string: must fail closed
    "within_window(context.window)",
    "has(context.ticket)",
)
NOW = 1_768_478_400.0
WINDOWS = (
    None,
    {"start": NOW - 60, "end": NOW + 60},
    {"start": NOW + 60, "end": NOW + 120},
    {"start": "garbage", "end": NOW},
)


@dataclass(frozen=True)
class GeneratedRule:
    """A rule in plain data form, written to YAML for the loader."""

    id: str
    effect: str
    roles: tuple[str, ...]
    kinds: tuple[str, ...]
    actions: tuple[str, ...]
    scope: str
    tenants: tuple[str, ...]
    condition: str | None

    def as_yaml_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "description": f"generated rule {self.id}",
            "effect": self.effect,
            "roles": list(self.roles),
            "resources": list(self.kinds),
            "actions": list(self.actions),
            "scope": self.scope,
        }
        if self.tenants:
            data["tenants"] = list(self.tenants)
        if self.condition:
            data["when"] = self.condition
        return data


def json_like(leaves: st.SearchStrategy[Any], max_leaves: int) -> st.SearchStrategy[Any]:
    """Values built of `leaves`, nested in lists and text-keyed objects (three items at most)."""
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=max_leaves,
    )


@st.composite
def rules(draw: st.DrawFn, index: int) -> GeneratedRule:
    """One valid rule: customer-side allow rules never get scope any/assigned."""
    roles = tuple(
        draw(st.lists(st.sampled_from(sorted(ROLES)), min_size=1, max_size=3, unique=True))
    )
    kinds = tuple(
        draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=2, unique=True))
    )
    possible = sorted({a for k in kinds for a in KINDS[k]})
    actions = tuple(draw(st.lists(st.sampled_from(possible), min_size=1, max_size=2, unique=True)))
    effect = draw(st.sampled_from(("allow", "allow", "deny")))
    scope = draw(st.sampled_from(("own", "subtree", "assigned", "any")))
    if (
        effect == "allow"
        and any(r in CUSTOMER_ROLES for r in roles)
        and scope in ("any", "assigned")
    ):
        scope = draw(st.sampled_from(("own", "subtree")))
    tenants = tuple(draw(st.lists(st.sampled_from(TENANTS), max_size=2, unique=True)))
    condition = draw(st.sampled_from(CONDITIONS))
    return GeneratedRule(f"r{index}", effect, roles, kinds, actions, scope, tenants, condition)


def bundle_files(rule_list: list[GeneratedRule], version: str = "1") -> dict[str, str]:
    """The files of a bundle holding `rule_list` (JSON, which is valid YAML and fast to write)."""
    roles = [
        {
            "id": role,
            "side": "customer" if role in CUSTOMER_ROLES else "internal",
            "inherits": list(parents),
        }
        for role, parents in ROLES.items()
    ]
    kinds = [{"name": kind, "actions": list(actions)} for kind, actions in KINDS.items()]
    return {
        "bundle.yaml": json.dumps({"name": "generated", "version": version}),
        "roles.yaml": json.dumps({"roles": roles}),
        "resources.yaml": json.dumps({"kinds": kinds}),
        "rules/generated.yaml": json.dumps({"rules": [r.as_yaml_dict() for r in rule_list]}),
    }


def snapshot_of(rule_list: list[GeneratedRule], version: str = "1") -> PolicySnapshot:
    """Validate and compile generated rules; generated policies must always be valid."""
    bundle, problems = parse_bundle(BundleSource("generated", bundle_files(rule_list, version)))
    assert bundle is not None, problems
    return compile_bundle(bundle, loaded_at=NOW)


@st.composite
def snapshots(draw: st.DrawFn, max_rules: int = 8) -> PolicySnapshot:
    """A compiled random policy of 1..max_rules rules."""
    count = draw(st.integers(min_value=1, max_value=max_rules))
    return snapshot_of([draw(rules(i)) for i in range(count)])


@st.composite
def principals(
    draw: st.DrawFn, role_pool: tuple[str, ...] = (*sorted(ROLES), "ghost")
) -> Principal:
    """A principal with random roles, tenant, MFA, level and assignments."""
    attributes: dict[str, Any] = {}
    mfa = draw(st.sampled_from((True, False, None)))
    if mfa is not None:
        attributes["mfa"] = mfa
    level = draw(st.sampled_from((None, 1, 5, "high")))
    if level is not None:
        attributes["level"] = level
    assigned = draw(st.lists(st.sampled_from(TENANTS), max_size=2, unique=True))
    if assigned:
        attributes["assigned_tenants"] = assigned
    return Principal(
        id=draw(st.sampled_from(("u-1", "u-2"))),
        tenant=draw(st.sampled_from(TENANTS)),
        roles=tuple(
            draw(st.lists(st.sampled_from(role_pool), min_size=0, max_size=3, unique=True))
        ),
        attributes=attributes,
    )


customer_principals = principals(role_pool=tuple(sorted(CUSTOMER_ROLES)))


@st.composite
def resources(draw: st.DrawFn, kinds: tuple[str, ...] = (*sorted(KINDS), "ghost-kind")) -> Resource:
    """A resource of a random kind and tenant, sometimes flagged."""
    flag = draw(st.sampled_from((True, False, None)))
    return Resource(
        kind=draw(st.sampled_from(kinds)),
        id=draw(st.sampled_from(("r-1", "r-2"))),
        tenant=draw(st.sampled_from(TENANTS)),
        attributes={} if flag is None else {"flag": flag},
    )


actions = st.sampled_from((*ACTIONS, "ghost-action"))


@st.composite
def contexts(draw: st.DrawFn) -> dict[str, Any]:
    """A request context with or without a window and a ticket."""
    context: dict[str, Any] = {}
    window = draw(st.sampled_from(WINDOWS))
    if window is not None:
        context["window"] = window
    if draw(st.booleans()):
        context["ticket"] = "CHG-1"
    return context


@dataclass(frozen=True)
class Check:
    """One generated question against one generated policy, at the fixed instant NOW."""

    snapshot: PolicySnapshot
    principal: Principal
    action: str
    resource: Resource
    context: dict[str, Any]

    def decide(self, *, explain: bool = False) -> Decision:
        """The engine's decision for this check."""
        items = ((self.action, self.resource),)
        return decide_batch(
            self.snapshot, self.principal, items, self.context, NOW, explain=explain
        )[0]


@st.composite
def checks(
    draw: st.DrawFn,
    principal_strategy: st.SearchStrategy[Principal] | None = None,
    action_strategy: st.SearchStrategy[str] | None = None,
    resource_strategy: st.SearchStrategy[Resource] | None = None,
) -> Check:
    """A random policy plus a random request against it."""
    return Check(
        snapshot=draw(snapshots()),
        principal=draw(principals() if principal_strategy is None else principal_strategy),
        action=draw(actions if action_strategy is None else action_strategy),
        resource=draw(resources() if resource_strategy is None else resource_strategy),
        context=draw(contexts()),
    )
