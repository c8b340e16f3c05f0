"""A plan's filter allows exactly what the decision allows, in Python and in SQL.

Random bundles (scopes, tenant pins, inherited roles, conditions over the resource, the
principal, the context and the clock, denies, conditions that raise) and random resources with
hostile tenants and values: `plan.matches(r) == check(r).allowed`, and a query with the compiled
filter returns exactly the allowed rows on SQLite and PostgreSQL.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql import JSONB

from cnm_policy import Principal, Resource, load_snapshot
from cnm_policy.engine import PolicySnapshot, compile_bundle, decide_batch
from cnm_policy.engine.plan import Plan, plan
from cnm_policy.policy import BundleSource, parse_bundle
from cnm_policy.sql import to_sqlalchemy
from tests.conftest import DEFAULT_BUNDLE
from tests.strategies import (
    CUSTOMER_ROLES,
    NOW,
    ROLES,
    WINDOWS,
    GeneratedRule,
    bundle_files,
)
from tests.support_postgres import postgres_url

HOSTILE_TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=6
) | st.sampled_from(("%", "_", "a%", "'", '"', "\\", "\\%", "é", "日本", "a_c", "ÅÄ"))
PLAN_CONDITIONS = (
    None,
    "resource.attributes.flag == true",
    "resource.attributes.level > 2",
    "resource.attributes.region in ['eu', 'us']",
    "resource.attributes.region not in context.regions",
    "resource.attributes.owner == principal.id",
    "resource.tenant == principal.tenant",
    "resource.id in context.ids",
    "has(resource.attributes.flag) and resource.attributes.flag != false",
    "resource.attributes.name >= 'm' or resource.attributes.level <= 1",
    "not (resource.attributes.region == null)",
    "resource.attributes.flag",
    "principal.attributes.mfa == true and resource.attributes.level != 3",
    "within_window(context.window) and resource.attributes.flag == true",
    "principal.attributes.level > 2",
    "has(context.ticket) or resource.attributes.level < 0",
    "resource.attributes.name == context.tag",
    "resource.kind == 'device' and resource.attributes.level >= 2.5",
    "resource.attributes.level in [1, 2.5, 'x', null]",
    "resource.attributes.name != 'a%_\\'\"\\\\é'",
    "resource.attributes.flag == true or resource.attributes.level > 2",
    "not (resource.attributes.level <= 'b' and resource.id != 'r-1')",
    "ip_in(context.ip, ['10.0.0.0/8']) or resource.attributes.flag == false",
)
GLASS_ROLE = "i-support"
LIMITS = (
    {"bandwidth": 100},
    {"bandwidth": "resource.attributes.level"},
    {"bandwidth": "principal.attributes.level", "ports": 4},
)
TENANTS = (
    "acme",
    "acme/emea",
    "acme/emea/paris",
    "acme-evil",
    "acmex",
    "ACME/emea",
    "ac_e",
    "ac_e/x",
    "acme_",
    "a.c",
    "globex",
)
LEVELS = (None, 1, 2, 3, 2.5, -1, "high", "a", True, [1], {"a": 1})
FLAGS = (True, False, None, "true", 1)
REGIONS = ("eu", "us", "EU", 1, None)


@dataclass(frozen=True)
class LimitedRule(GeneratedRule):
    """A generated rule that may also declare limits and governance terms."""

    limits: dict[str, Any] | None = None
    actor: str | None = None
    crosses: bool = False
    glass: bool = False

    def as_yaml_dict(self) -> dict[str, Any]:
        """The rule for the loader, with its limits and governance terms."""
        data = super().as_yaml_dict()
        if self.limits:
            data["limits"] = self.limits
        if self.actor:
            data["actor"] = self.actor
        if self.crosses:
            data["crosses_self_managed"] = True
        if self.glass:
            data["break_glass"] = {"max_duration": "4h"}
            data["obligations"] = [{"type": "notify", "audience": "tenant-admins"}]
        return data


@st.composite
def plan_rules(draw: st.DrawFn, index: int) -> GeneratedRule:
    """One valid rule with a plan-shaped condition; customer allows stay own/subtree."""
    roles = tuple(
        draw(st.lists(st.sampled_from(sorted(ROLES)), min_size=1, max_size=2, unique=True))
    )
    effect = draw(st.sampled_from(("allow", "allow", "allow", "deny")))
    scope = draw(st.sampled_from(("own", "subtree", "assigned", "any")))
    if (
        effect == "allow"
        and any(r in CUSTOMER_ROLES for r in roles)
        and scope in ("any", "assigned")
    ):
        scope = draw(st.sampled_from(("own", "subtree")))
    pins = st.lists(st.sampled_from(TENANTS), min_size=1, max_size=2, unique=True)
    tenants = tuple(draw(pins)) if draw(st.integers(0, 5)) == 5 else ()
    condition = draw(st.sampled_from((None, None, None, *PLAN_CONDITIONS)))
    limits = draw(st.sampled_from((None, None, None, *LIMITS))) if effect == "allow" else None
    glass = effect == "allow" and draw(st.integers(0, 7)) == 7
    if glass:
        roles, scope = (GLASS_ROLE,), draw(st.sampled_from(("any", "assigned", "subtree")))
    return LimitedRule(
        f"r{index}",
        effect,
        roles,
        ("device",),
        ("read",),
        scope,
        tenants,
        condition,
        limits,
        actor=draw(st.sampled_from((None, None, None, None, "forbidden", "required"))),
        crosses=effect == "allow" and draw(st.booleans()),
        glass=glass,
    )


@st.composite
def plan_snapshots(draw: st.DrawFn) -> PolicySnapshot:
    """A compiled random policy of 2..8 rules over `device`/`read`, with self-managed tenants,
    sometimes internal ones, and a break-glass eligible role."""
    count = draw(st.integers(min_value=2, max_value=8))
    files = bundle_files([draw(plan_rules(i)) for i in range(count)])
    roles = json.loads(files["roles.yaml"])
    for role in roles["roles"]:
        role["break_glass"] = role["id"] == GLASS_ROLE
    files["roles.yaml"] = json.dumps(roles)
    managed = draw(st.lists(st.sampled_from(TENANTS), max_size=2, unique=True))
    internal = draw(st.sampled_from(((), (), (), ("acme", "ac_e"), ("globex",))))
    entries = [{"path": t, "self_managed": True} for t in managed]
    entries += [{"path": t, "internal": True} for t in internal if t not in managed]
    files["tenants.yaml"] = json.dumps({"tenants": entries})
    bundle, problems = parse_bundle(BundleSource("generated", files))
    assert bundle is not None, problems
    return compile_bundle(bundle, loaded_at=NOW)


@st.composite
def plan_principals(draw: st.DrawFn) -> Principal:
    """A principal from one side (mostly), with MFA, level and assignments."""
    side: dict[str, tuple[str, ...]] = draw(
        st.sampled_from((CUSTOMER_ROLES, {r: () for r in ROLES if r not in CUSTOMER_ROLES}))
    )
    attributes: dict[str, Any] = {}
    for name, values in (("mfa", (True, False)), ("level", (1, 5, "high"))):
        if draw(st.booleans()):
            attributes[name] = draw(st.sampled_from(values))
    assigned = draw(st.lists(st.sampled_from(TENANTS), max_size=2, unique=True))
    if assigned:
        attributes["assigned_tenants"] = assigned
    some = st.lists(st.sampled_from((*sorted(side), "ghost")), min_size=1, max_size=3, unique=True)
    roles = draw(st.just(sorted(side)) | some)
    return Principal(
        id=draw(st.sampled_from(("u-1", "u-2"))),
        tenant=draw(st.sampled_from(TENANTS)),
        roles=tuple(roles),
        attributes=attributes,
    )


@st.composite
def plan_contexts(draw: st.DrawFn) -> dict[str, Any]:
    """A context whose values feed the conditions: some well-typed, some not."""
    context: dict[str, Any] = {}
    options: dict[str, Any] = {
        "window": st.sampled_from([w for w in WINDOWS if w is not None]),
        "regions": st.sampled_from((["eu"], {"us": 1}, "eu", [1, "eu"], [])),
        "ids": st.sampled_from((["r-1"], ["r-1", "%"], {"r-2": True}, None)),
        "ticket": st.just("CHG-1"),
        "tag": HOSTILE_TEXT,
        "ip": st.sampled_from(("10.1.2.3", "192.0.2.1", "nonsense", 7)),
        "bandwidth": st.sampled_from((50, 150, 2.5, "x", None)),
        "ports": st.sampled_from((1, 8)),
        "break_glass": st.sampled_from(
            ({"incident": "INC-1", "reason": "outage"}, {"incident": "", "reason": "x"}, "yes")
        ),
    }
    for key, strategy in options.items():
        if draw(st.booleans()):
            context[key] = draw(strategy)
    return context


@st.composite
def plan_resources(draw: st.DrawFn, index: int, near: str = "acme") -> Resource:
    """A device (sometimes another kind) with hostile tenant, id and attribute values."""
    attributes: dict[str, Any] = {}
    for name, values in (("flag", FLAGS), ("level", LEVELS), ("region", REGIONS)):
        if draw(st.booleans()):
            attributes[name] = draw(st.sampled_from(values))
    for name in ("name", "owner"):
        if draw(st.booleans()):
            attributes[name] = draw(HOSTILE_TEXT | st.sampled_from(("u-1", "u-2", "m", "z")))
    return Resource(
        kind=draw(st.sampled_from(("device",) * 7 + ("ticket",))),
        id=draw(st.sampled_from((f"r-{index}", "r-1", "%", "a_b", "é"))),
        tenant=draw(st.sampled_from((near, near, f"{near}/x", f"{near}/x/y", *TENANTS))),
        attributes=attributes,
    )


Scenario = tuple[PolicySnapshot, Principal, dict[str, Any], list[Resource]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A policy, a principal, a context and a handful of resources to list."""
    principal = draw(plan_principals())
    count = draw(st.integers(1, 8))
    resources = [draw(plan_resources(i, principal.tenant)) for i in range(count)]
    return draw(plan_snapshots()), principal, draw(plan_contexts()), resources


def allowed(
    snapshot: PolicySnapshot, principal: Principal, context: dict[str, Any], r: Resource
) -> bool:
    """The engine's decision for reading `r`, at the fixed instant."""
    return decide_batch(snapshot, principal, (("read", r),), context, NOW)[0].allowed


def device_plan(snapshot: PolicySnapshot, principal: Principal, context: dict[str, Any]) -> Plan:
    """The plan for reading devices, at the fixed instant."""
    return plan(snapshot, principal, "read", "device", context, NOW)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_a_plan_matches_exactly_the_resources_the_engine_allows(
    scenario: Scenario,
) -> None:
    """For every generated resource, plan.matches(r) equals the decision's `allowed`."""
    snapshot, principal, context, resources = scenario
    device = device_plan(snapshot, principal, context)
    expected = [allowed(snapshot, principal, context, r) for r in resources]
    assert expected == [device.matches(r) for r in resources]


def table_for(metadata: sa.MetaData) -> sa.Table:
    """Devices with typed tenant/id/owner columns and every other attribute in JSON."""
    return sa.Table(
        "devices",
        metadata,
        sa.Column("row", sa.Integer, primary_key=True),
        sa.Column("tenant", sa.String(256), nullable=False, index=True),
        sa.Column("id", sa.String(256), nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("attributes", sa.JSON().with_variant(JSONB(), "postgresql")),
    )


def rows_selected(engine: sa.Engine, scenario: Scenario) -> tuple[list[int], list[int]]:
    """(rows the engine allows, rows the compiled filter selects) for one scenario."""
    snapshot, principal, context, resources = scenario
    device = device_plan(snapshot, principal, context)
    metadata = sa.MetaData()
    table = table_for(metadata)
    devices = [(i, r) for i, r in enumerate(resources) if r.kind == "device"]
    expected = [i for i, r in devices if allowed(snapshot, principal, context, r)]
    columns = {
        "tenant": table.c.tenant,
        "id": table.c.id,
        "attributes.owner": table.c.owner,
        "attributes": table.c.attributes,
    }
    where = to_sqlalchemy(device, columns)
    with engine.begin() as connection:
        metadata.drop_all(connection)
        metadata.create_all(connection)
        if devices:
            connection.execute(sa.insert(table), [_row(i, r) for i, r in devices])
        found = connection.execute(sa.select(table.c.row).where(where).order_by(table.c.row))
        return expected, [row for (row,) in found]


def _row(index: int, resource: Resource) -> dict[str, Any]:
    attributes = dict(resource.attributes)
    owner = attributes.pop("owner", None)
    return {
        "row": index,
        "tenant": resource.tenant,
        "id": resource.id,
        "owner": owner,
        "attributes": attributes,
    }


@pytest.fixture(scope="module")
def sqlite_engine() -> sa.Engine:
    """An in-memory SQLite database for the module."""
    return sa.create_engine("sqlite://")


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_sqlite_returns_exactly_the_allowed_rows(
    sqlite_engine: sa.Engine, scenario: Scenario
) -> None:
    """On SQLite, the compiled filter selects exactly the rows the engine allows."""
    expected, actual = rows_selected(sqlite_engine, scenario)
    assert expected == actual


@pytest.fixture(scope="module")
def postgres_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """The session's PostgreSQL server, through psycopg 3."""
    engine = sa.create_engine(postgres_url)
    yield engine
    engine.dispose()


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_postgresql_returns_exactly_the_allowed_rows(
    postgres_engine: sa.Engine, scenario: Scenario
) -> None:
    """On PostgreSQL, the compiled filter selects exactly the rows the engine allows."""
    expected, actual = rows_selected(postgres_engine, scenario)
    assert expected == actual


__all__ = ["postgres_url"]  # the fixture, imported so pytest finds it here


@functools.cache
def snapshot_for_default() -> PolicySnapshot:
    """The shipped bundle, compiled once."""
    return load_snapshot(DEFAULT_BUNDLE)


DEFAULT_PRINCIPALS = (
    Principal("u-1", "acme", ("customer-viewer",)),
    Principal("u-2", "acme/emea", ("customer-admin",), {"mfa": True, "contracted_mbps": 500}),
    Principal("u-3", "acme", ("customer-billing",)),
    Principal("n-1", "provider/noc", ("noc-engineer",), {"mfa": True}),
    Principal(
        "s-1", "provider/support", ("support-agent",), {"mfa": True, "assigned_tenants": ["acme"]}
    ),
    Principal("b-1", "provider/billing", ("billing-clerk",), {"mfa": False}),
    Principal("x-1", "acme", ("noc-engineer",), {"mfa": True}),
)
DEFAULT_CONTEXTS = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from(("portal", "api")),
        "change_ticket": st.just("CHG-1"),
        "source_ip": st.sampled_from(("10.255.0.9", "192.0.2.1", "bad")),
        "maintenance_window": st.sampled_from(WINDOWS),
        "bandwidth_mbps": st.sampled_from((100, 1000, "x")),
        "break_glass": st.sampled_from(({"incident": "INC-9", "reason": "outage"}, {})),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(DEFAULT_PRINCIPALS),
    st.sampled_from(
        sorted({(k, a) for k, d in snapshot_for_default().bundle.kinds.items() for a in d.actions})
    ),
    DEFAULT_CONTEXTS,
    st.lists(
        st.builds(
            dict,
            tenant=st.sampled_from(
                ("acme", "acme/emea", "acme/emea/labs", "acme/emea/labs/x", "acme-evil", "globex")
            ),
            attributes=st.fixed_dictionaries(
                {},
                optional={
                    "shared": st.sampled_from((True, False, "yes")),
                    "change_freeze": st.sampled_from((True, False, None)),
                },
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_the_default_bundle_plans_what_it_decides(
    principal: Principal,
    kind_action: tuple[str, str],
    context: dict[str, Any],
    rows: list[dict[str, Any]],
) -> None:
    """Every kind and action of the shipped bundle: plan.matches(r) equals the decision."""
    snapshot = snapshot_for_default()
    kind, action = kind_action
    found = plan(snapshot, principal, action, kind, context, NOW)
    resources = [
        Resource(kind, f"r-{i}", row["tenant"], row["attributes"]) for i, row in enumerate(rows)
    ]
    expected = [
        decide_batch(snapshot, principal, ((action, r),), context, NOW)[0].allowed
        for r in resources
    ]
    assert [found.matches(r) for r in resources] == expected
