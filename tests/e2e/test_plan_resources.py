"""PlanResources over a real channel: the sidecar plans as the library does."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from cnm_policy import Engine, Principal
from cnm_policy.server.wire.plans import node_from_proto
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import serve

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_768_478_400.0
pytestmark = pytest.mark.e2e


def _request(roles: list[str], tenant: str, kind: str = "device") -> pb.PlanResourcesRequest:
    """A plan request for a `read` list of `kind`."""
    principal = pb.Principal(id="u-1", tenant=tenant, roles=roles)
    principal.attributes.update({"mfa": True})
    return pb.PlanResourcesRequest(principal=principal, action="read", kind=kind)


@pytest.mark.parametrize(
    ("roles", "tenant"),
    [
        (["customer-viewer"], "acme/emea"),
        (["noc-engineer"], "provider/noc"),
        (["customer-billing"], "acme"),
    ],
)
def test_the_sidecar_plans_as_the_library_does(roles: list[str], tenant: str) -> None:
    """Kind, filter, rule ids and policy match `Engine.plan`; each plan has a decision id."""
    engine = Engine.from_path(ROOT / "policies" / "cnm", clock=lambda: NOW)
    expected = engine.plan(Principal("u-1", tenant, tuple(roles), {"mfa": True}), "read", "device")
    with serve(ROOT / "policies" / "cnm", clock=lambda: NOW) as served:
        response = served.stub.PlanResources(_request(roles, tenant), timeout=10)
    kind = pb.PlanResourcesResponse.PlanKind.Name(response.kind).lower()
    assert kind == expected.kind
    assert tuple(response.rule_ids) == expected.rule_ids
    assert response.policy.digest == expected.policy_digest and response.decision_id
    if expected.kind == "conditional":
        assert node_from_proto(response.filter) == expected.filter


def test_bad_requests_are_invalid_argument() -> None:
    """A missing principal or an empty kind names the field; nothing is planned."""
    with serve(ROOT / "policies" / "cnm") as served:
        with pytest.raises(grpc.RpcError) as missing:
            served.stub.PlanResources(pb.PlanResourcesRequest(action="read", kind="device"))
        with pytest.raises(grpc.RpcError) as no_kind:
            served.stub.PlanResources(_request(["customer-viewer"], "acme", kind=""), timeout=10)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "principal" in (missing.value.details() or "")
    assert no_kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT
