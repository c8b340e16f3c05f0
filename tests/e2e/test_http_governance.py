"""The HTTP doors carry the CNM depth: actors, obligations, limits, plans and delegation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.protobuf import json_format

from cnm_policy.server.wire.plans import node_from_proto
from cnm_policy.v1 import policy_pb2 as pb
from tests.conftest import DEFAULT_BUNDLE
from tests.e2e.front_doors import Doors, serve_doors

pytestmark = pytest.mark.e2e

NOW = 1_768_478_400.0
ADMIN = {"id": "u-101", "tenant": "acme/emea", "roles": ["customer-admin"]}
CIRCUIT = {"kind": "circuit", "id": "c-1", "tenant": "acme/emea/paris"}
CLERK = {"id": "s-930", "tenant": "provider/billing", "roles": ["billing-clerk"]}
ACCOUNT = {"kind": "billing_account", "id": "ba-1", "tenant": "acme"}


@pytest.fixture(scope="module")
def doors() -> Iterator[Doors]:
    """The default bundle at a fixed instant, no principal sources."""
    with serve_doors(DEFAULT_BUNDLE, clock=lambda: NOW) as served:
        yield served


def test_an_actor_sent_over_http_reaches_the_policy(doors: Doors) -> None:
    """The on-behalf-of guardrail denies a billing change with an actor, not without one."""
    clerk = {**CLERK, "attributes": {"mfa": True}}
    body = {"principal": clerk, "action": "update", "resource": ACCOUNT}
    alone = doors.post("/v1/check", body)[1]
    acting = doors.post("/v1/check", {**body, "actor": {**clerk, "id": "s-931"}})[1]
    assert (alone["allowed"], acting["allowed"]) == (True, False)
    assert acting["rule_ids"] == ["deny-billing-changes-on-behalf"]
    items = [{"action": "update", "resource": ACCOUNT}]
    batch = doors.post("/v1/check-batch", {"principal": clerk, "items": items, "actor": clerk})
    assert [r["allowed"] for r in batch[1]["results"]] == [False]


def test_authzen_answers_carry_step_up_and_limits(doors: Doors) -> None:
    """A deny that MFA lifts says step_up; asking above the contract says limit_exceeded."""
    properties: dict[str, object] = {
        "tenant": "acme/emea",
        "roles": ["customer-admin"],
        "contracted_mbps": 100,
    }
    subject = {"type": "user", "id": "u-101", "properties": properties}
    resource = {"type": "circuit", "id": "c-1", "properties": {"tenant": "acme/emea/paris"}}
    no_mfa = {"subject": subject, "action": {"name": "configure"}, "resource": resource}
    _, step_up = doors.post("/access/v1/evaluation", no_mfa)
    assert step_up["decision"] is False
    assert [o["type"] for o in step_up["context"]["obligations"]] == ["step_up"]
    properties["mfa"] = True
    too_much = {
        "subject": subject,
        "action": {"name": "change_bandwidth"},
        "resource": resource,
        "context": {"bandwidth_mbps": 500},
    }
    _, limited = doors.post("/access/v1/evaluation", too_much)
    assert limited["decision"] is False
    assert limited["context"]["limits_exceeded"][0]["asked"] == 500


def test_v1_plan_answers_as_the_library(doors: Doors) -> None:
    """POST /v1/plan: a viewer's device list is the subtree filter, in the proto JSON mapping."""
    body = {
        "principal": {**ADMIN, "roles": ["customer-viewer"]},
        "action": "read",
        "kind": "device",
    }
    status, answer = doors.post("/v1/plan", body)
    assert (status, answer["kind"]) == (200, "CONDITIONAL")
    message = json_format.ParseDict({"filter": answer["filter"]}, pb.PlanResourcesResponse())
    node = node_from_proto(message.filter)
    assert "acme/emea" in str(node) and answer["decision_id"]


def test_v1_can_grant_answers_and_refuses(doors: Doors) -> None:
    """POST /v1/can-grant: inside the subtree within 90 days yes; a sibling tenant no."""
    until = "2026-02-01T00:00:00Z"
    yes = {"granter": ADMIN, "role": "customer-viewer", "grantee_tenant": "acme/emea/x",
           "valid_until": until}  # fmt: skip
    no = {**yes, "grantee_tenant": "acme/apac"}
    assert doors.post("/v1/can-grant", yes)[1]["allowed"] is True
    status, refused = doors.post("/v1/can-grant", no)
    assert (status, refused.get("allowed", False)) == (200, False)
    assert "outside" in refused["reason"]
    bad_status, error = doors.post("/v1/can-grant", {"granter": ADMIN, "role": 5})
    assert bad_status == 400 and error["error"]["code"] == "invalid_request"
