"""PolicyService with principal sources: gRPC callers are completed and overridden like HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from cnm_policy.principals import JwtConfig
from cnm_policy.server.doors import FrontDoorOptions
from cnm_policy.v1 import policy_pb2 as pb
from tests.conftest import DEFAULT_BUNDLE
from tests.e2e.front_doors import serve_doors
from tests.e2e.harness import policy_stub
from tests.unit.principals.jwt_keys import AUDIENCE, ISSUER, Keys

pytestmark = pytest.mark.e2e

DEVICE = pb.Resource(kind="device", id="dev-9", tenant="acme/emea/paris")


def test_grpc_principals_come_from_the_directory(tmp_path: Path) -> None:
    """By id alone: completed; with roles it does not hold: they are ignored; unknown: refused."""
    directory = tmp_path / "directory.yaml"
    directory.write_text("principals:\n  u-17: {tenant: acme/emea, roles: [customer-viewer]}\n")
    with serve_doors(DEFAULT_BUNDLE, FrontDoorOptions(directory=directory)) as served:
        stub = policy_stub(served.channel)
        by_id = stub.Check(
            pb.CheckRequest(principal=pb.Principal(id="u-17"), action="read", resource=DEVICE)
        )
        greedy = pb.Principal(id="u-17", tenant="acme", roles=["customer-admin"])
        change = stub.Check(pb.CheckRequest(principal=greedy, action="configure", resource=DEVICE))
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(
                pb.CheckRequest(principal=pb.Principal(id="u-99"), action="read", resource=DEVICE)
            )
    assert (by_id.allowed, change.allowed) == (True, False)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_bearer_tokens_travel_as_authorization_metadata(tmp_path: Path) -> None:
    """The token's claims are the principal; its exp bounds valid_until; none is refused."""
    keys = Keys(tmp_path)
    exp = int(time.time()) + 300
    token = keys.token(sub="u-17", tenant="acme/emea", roles=["customer-viewer"], iat=None, exp=exp)
    jwt = JwtConfig(jwks=str(keys.jwks), issuer=ISSUER, audience=AUDIENCE)
    request = pb.CheckRequest(principal=pb.Principal(), action="read", resource=DEVICE)
    with serve_doors(DEFAULT_BUNDLE, FrontDoorOptions(jwt=jwt)) as served:
        stub = policy_stub(served.channel)
        answer = stub.Check(request, metadata=[("authorization", f"Bearer {token}")])
        batch = stub.CheckBatch(
            pb.CheckBatchRequest(
                principal=pb.Principal(), items=[pb.CheckBatchItem(action="read", resource=DEVICE)]
            ),
            metadata=[("authorization", f"Bearer {token}")],
        )
        with pytest.raises(grpc.RpcError) as caught:
            stub.Check(request)
    assert (answer.allowed, answer.valid_until.seconds, batch.results[0].allowed) == (
        True,
        exp,
        True,
    )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
