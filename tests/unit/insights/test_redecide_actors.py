"""Replay's soundness with actors: determined means the engine's own decision, actor and all."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cnm_policy import Decision, Principal, Resource
from cnm_policy.engine import PolicySnapshot, compile_bundle, decide_batch
from cnm_policy.insights.redecide import LoggedRequest, Redecider
from cnm_policy.policy import BundleSource, parse_bundle
from tests.strategies import (
    CUSTOMER_ROLES,
    INTERNAL_ROLES,
    KINDS,
    NOW,
    TENANT_PAIRS,
    TENANTS,
    bundle_files,
    contexts,
    principals,
    resources,
    rules,
)
from tests.unit.insights.test_redecide import KEYS, logged_under

ACTOR_CONDITIONS = (
    "actor.attributes.clearance == 'high'",
    "has(actor.attributes.badge)",
    "actor.tenant == principal.tenant",
    "actor.attributes.level > 2",  # errors when level is a string: must fail closed
    "principal.attributes.mfa == true and actor.attributes.mfa != false",
)
ACTOR_KEYS = ("clearance", "badge", "level", "mfa")
# Mostly one side's roles (both sides' are refused before any rule is read).
one_sided = st.one_of(
    principals(role_pool=tuple(sorted(CUSTOMER_ROLES))),
    principals(role_pool=tuple(sorted(INTERNAL_ROLES))),
    principals(role_pool=tuple(sorted(CUSTOMER_ROLES))),
    principals(),
)


@st.composite
def actor_snapshots(draw: st.DrawFn) -> PolicySnapshot:
    """A random policy whose rules may require or forbid an actor and read `actor.*`, with
    self-managed and sometimes internal tenants."""
    files = bundle_files([draw(rules(i)) for i in range(draw(st.integers(1, 6)))])
    generated = json.loads(files["rules/generated.yaml"])
    for rule in generated["rules"]:
        if draw(st.integers(0, 3)):
            rule.pop("tenants", None)  # pinned rules seldom apply: keep a few
        term = draw(st.sampled_from((None, None, "required", "forbidden")))
        if term:
            rule["actor"] = term
        if draw(st.booleans()):
            rule["when"] = draw(st.sampled_from(ACTOR_CONDITIONS))
        elif draw(st.booleans()):
            rule.pop("when", None)
    files["rules/generated.yaml"] = json.dumps(generated)
    managed = draw(st.lists(st.sampled_from(TENANTS), max_size=2, unique=True))
    internal = draw(st.sampled_from(((), (), ("provider/noc",), ("acme",))))
    entries = [{"path": t, "self_managed": True} for t in managed]
    entries += [{"path": t, "internal": True} for t in internal if t not in managed]
    files["tenants.yaml"] = json.dumps({"tenants": entries})
    bundle, problems = parse_bundle(BundleSource("generated", files))
    assert bundle is not None, problems
    return compile_bundle(bundle, loaded_at=NOW)


@st.composite
def actors(draw: st.DrawFn, near: str) -> Principal | None:
    """Nobody, or an actor of either side (often of tenant `near`) with some of the attributes
    the conditions read."""
    if draw(st.integers(0, 3)) == 0:
        return None
    base = draw(one_sided)
    tenant = near if draw(st.booleans()) else base.tenant
    values: dict[str, Any] = {
        "clearance": st.sampled_from(("high", "low")),
        "badge": st.just("B-1"),
        "level": st.sampled_from((1, 5, "high")),
        "mfa": st.booleans(),
    }
    attributes = {key: draw(s) for key, s in values.items() if draw(st.booleans())}
    return Principal(f"actor-{base.id}", tenant, base.roles, attributes)


@st.composite
def acted_checks(draw: st.DrawFn) -> tuple[PolicySnapshot, LoggedRequest]:
    """A policy and one whole request to it (`complete`), with or without an actor; mostly
    aimed at one of its rules (its role, kind and action, a tenant inside the principal's)."""
    snapshot = draw(actor_snapshots())
    principal, resource = draw(one_sided), draw(resources())
    action = draw(st.sampled_from(KINDS.get(resource.kind, ("read", "ghost-action"))))
    if draw(st.integers(0, 3)):
        rule = draw(st.sampled_from(snapshot.bundle.rules))
        kind, action = draw(st.sampled_from(rule.grants))
        home, target = draw(st.sampled_from(TENANT_PAIRS[:2] * 3 + TENANT_PAIRS))
        principal = Principal(principal.id, home, rule.roles[:1], principal.attributes)
        resource = Resource(kind, resource.id, target, resource.attributes)
    near = resource.tenant if draw(st.booleans()) else principal.tenant
    request = LoggedRequest(
        principal=principal,
        action=action,
        resource=resource,
        context=draw(contexts()),
        now=NOW,
        complete=True,
        actor=draw(actors(near)),
    )
    return snapshot, request


allow_lists = st.fixed_dictionaries(
    {
        section: st.frozensets(st.sampled_from(keys))
        for section, keys in {**KEYS, "actor": ACTOR_KEYS}.items()
    }
)


def _full(snapshot: PolicySnapshot, request: LoggedRequest) -> Decision:
    """The engine's decision on the whole request."""
    items = ((request.action, request.resource),)
    principal, context, actor = request.principal, request.context, request.actor
    return decide_batch(snapshot, principal, items, context, NOW, actor=actor)[0]


@settings(max_examples=400, deadline=None)
@given(acted_checks(), allow_lists)
def test_a_determined_decision_with_an_actor_is_the_full_requests(
    check: tuple[PolicySnapshot, LoggedRequest], allow: dict[str, frozenset[str]]
) -> None:
    """Whatever the policy, actor and allow-list: determined implies the same decision."""
    snapshot, request = check
    result = Redecider(snapshot, allow).decide(logged_under(request, allow))
    assert result.invalid is None
    if result.decision is not None:
        full = _full(snapshot, request)
        assert (result.decision.allowed, result.decision.rule_ids) == (full.allowed, full.rule_ids)
    else:
        assert result.unlogged


@settings(max_examples=200, deadline=None)
@given(acted_checks())
def test_no_actor_attributes_logged_still_never_guesses(
    check: tuple[PolicySnapshot, LoggedRequest],
) -> None:
    """As on a real decision line (no actor attributes): an unlogged read names `actor.<key>`."""
    snapshot, request = check
    everything = {section: frozenset(keys) for section, keys in KEYS.items()}
    allow = {**everything, "actor": frozenset[str]()}
    result = Redecider(snapshot, everything).decide(logged_under(request, allow))
    if result.decision is not None:
        assert result.decision == _full(snapshot, request)
    else:
        assert request.actor is not None
        assert result.unlogged and all(read.startswith("actor.") for read in result.unlogged)


@settings(max_examples=200, deadline=None)
@given(acted_checks())
def test_a_complete_request_with_an_actor_is_decided_as_the_engine_does(
    check: tuple[PolicySnapshot, LoggedRequest],
) -> None:
    """Input-capture requests are whole, actor included: the engine's own decision."""
    snapshot, request = check
    assert Redecider(snapshot).decide(request).decision == _full(snapshot, request)
