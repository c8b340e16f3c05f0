"""Every door gives the same answer: gRPC Check, HTTP /v1/check, AuthZEN and the library.

Generated requests (roles, kinds, actions and tenants of the default bundle, ghosts among them,
attributes and context that guardrails read) go through one running sidecar; each door's
outcome is the decision and rule ids, or the error's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnm_policy import AccessRequest, Engine, Principal, Resource
from cnm_policy.errors import CnmPolicyError
from cnm_policy.server.wire import convert
from tests.conftest import DEFAULT_BUNDLE
from tests.e2e.front_doors import Doors, serve_doors
from tests.e2e.harness import policy_stub

pytestmark = pytest.mark.e2e

NOW = 1_768_478_400.0
ROLES = (
    "customer-viewer",
    "customer-admin",
    "customer-billing",
    "noc-engineer",
    "support-agent",
    "ghost",
)
KINDS = ("device", "circuit", "ticket", "invoice", "billing_account", "ghost-kind")
ACTIONS = ("read", "configure", "reboot", "create", "close", "export", "ghost-action")
TENANTS = ("acme", "acme/emea", "acme/emea/paris", "acme-evil", "acmex", "provider")
Outcome = tuple[Any, ...]
LIBRARY = Engine.from_path(DEFAULT_BUNDLE, clock=lambda: NOW)


@pytest.fixture(scope="module")
def doors() -> Iterator[Doors]:
    """One sidecar on the default bundle, its clock pinned."""
    with serve_doors(DEFAULT_BUNDLE, clock=lambda: NOW) as served:
        yield served


@st.composite
def requests(draw: st.DrawFn) -> tuple[Principal, str, Resource, dict[str, Any]]:
    """A request over the default bundle's names, with the attributes guardrails read."""
    attributes: dict[str, Any] = {}
    for key, values in (
        ("mfa", (True, False, "yes")),
        ("assigned_tenants", (["acme"], ["acme-evil"])),
    ):
        if draw(st.booleans()):
            attributes[key] = draw(st.sampled_from(values))
    principal = Principal(
        id=draw(st.sampled_from(("u-1", "u-2"))),
        tenant=draw(st.sampled_from(TENANTS)),
        roles=tuple(draw(st.lists(st.sampled_from(ROLES), max_size=2, unique=True))),
        attributes=attributes,
    )
    resource = Resource(
        kind=draw(st.sampled_from(KINDS)),
        id="r-1",
        tenant=draw(st.sampled_from((*TENANTS, "acme/"))),
        attributes=draw(st.sampled_from(({}, {"shared": True}, {"change_freeze": True}))),
    )
    context: dict[str, Any] = {}
    if draw(st.booleans()):
        context["change_ticket"] = "CHG-1"
    if draw(st.booleans()):
        context["maintenance_window"] = {"start": NOW - 60, "end": NOW + 60}
    return principal, draw(st.sampled_from(ACTIONS)), resource, context


def library(
    principal: Principal, action: str, resource: Resource, context: dict[str, Any]
) -> Outcome:
    """The engine's own answer."""
    try:
        decision = LIBRARY.check(principal, action, resource, context)
    except CnmPolicyError as exc:
        return ("error", exc.code)
    return ("decision", decision.allowed, tuple(decision.rule_ids))


def grpc_check(
    doors: Doors, principal: Principal, action: str, resource: Resource, context: dict[str, Any]
) -> Outcome:
    """gRPC Check."""
    message = convert.access_request_to_proto(AccessRequest(principal, action, resource, context))
    try:
        answer = policy_stub(doors.channel).Check(message, timeout=5)
    except grpc.RpcError as exc:
        codes: dict[str, Any] = dict(cast(Any, exc).trailing_metadata() or ())
        return ("error", codes.get("cnm-error-code"))
    return ("decision", answer.allowed, tuple(answer.rule_ids))


def http_check(
    doors: Doors, principal: Principal, action: str, resource: Resource, context: dict[str, Any]
) -> Outcome:
    """POST /v1/check."""
    body = {
        "principal": {
            "id": principal.id,
            "tenant": principal.tenant,
            "roles": list(principal.roles),
            "attributes": dict(principal.attributes),
        },
        "action": action,
        "resource": {
            "kind": resource.kind,
            "id": resource.id,
            "tenant": resource.tenant,
            "attributes": dict(resource.attributes),
        },
        "context": context,
    }
    status, answer = doors.post("/v1/check", body)
    if status != 200:
        return ("error", answer["error"]["code"])
    return ("decision", answer["allowed"], tuple(answer["rule_ids"]))


def authzen_check(
    doors: Doors, principal: Principal, action: str, resource: Resource, context: dict[str, Any]
) -> Outcome:
    """POST /access/v1/evaluation."""
    body = {
        "subject": {
            "type": "user",
            "id": principal.id,
            "properties": {
                "tenant": principal.tenant,
                "roles": list(principal.roles),
                **principal.attributes,
            },
        },
        "action": {"name": action},
        "resource": {
            "type": resource.kind,
            "id": resource.id,
            "properties": {"tenant": resource.tenant, **resource.attributes},
        },
        "context": context,
    }
    status, answer = doors.post("/access/v1/evaluation", body)
    if status != 200:
        return ("error", answer["error"]["code"])
    return ("decision", answer["decision"], tuple(answer["context"]["rule_ids"]))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=requests())
def test_every_door_gives_the_same_decision_and_rule_ids(
    doors: Doors, request: tuple[Principal, str, Resource, dict[str, Any]]
) -> None:
    """Library, gRPC, HTTP native and AuthZEN agree on every generated request."""
    expected = library(*request)
    answers = [door(doors, *request) for door in (grpc_check, http_check, authzen_check)]
    assert answers == [expected] * 3
