"""The CanGrant RPC over a real channel: answers, refusals, malformed input, the decision log."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import serve

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def _request(tenant: str, days: float | None = 30) -> pb.CanGrantRequest:
    """An ACME EMEA admin asking to give customer-viewer to a user of `tenant`."""
    granter = pb.Principal(id="u-101", tenant="acme/emea", roles=["customer-admin"])
    message = pb.CanGrantRequest(granter=granter, role="customer-viewer", grantee_tenant=tenant)
    if days is not None:
        message.valid_until.CopyFrom(Timestamp(seconds=int(2_000_000_000 + days * 86_400)))
    return message


def test_can_grant_answers_and_refuses_over_grpc() -> None:
    """Inside the subtree: allowed; a sibling: refused with a reason; both with decision ids."""
    with serve(ROOT / "policies" / "cnm", clock=lambda: 2_000_000_000.0) as served:
        allowed = served.stub.CanGrant(_request("acme/emea/paris"), timeout=10)
        refused = served.stub.CanGrant(_request("acme/apac"), timeout=10)
        forever = served.stub.CanGrant(_request("acme/emea/paris", None), timeout=10)
    assert (allowed.allowed, refused.allowed, forever.allowed) == (True, False, False)
    assert "outside" in refused.reason and "90 days" in forever.reason
    assert allowed.decision_id and allowed.decision_id != refused.decision_id
    assert allowed.policy.name == "cnm"


def test_a_malformed_question_is_invalid_argument() -> None:
    """A missing granter or a bad tenant is INVALID_ARGUMENT naming the field."""
    with serve(ROOT / "policies" / "cnm") as served:
        with pytest.raises(grpc.RpcError) as missing:
            served.stub.CanGrant(pb.CanGrantRequest(role="customer-viewer"), timeout=10)
        with pytest.raises(grpc.RpcError) as bad_tenant:
            served.stub.CanGrant(_request("acme//x"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "granter" in (missing.value.details() or "")
    assert bad_tenant.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "grantee_tenant" in (bad_tenant.value.details() or "")
