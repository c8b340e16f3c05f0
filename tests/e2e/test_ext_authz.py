"""Envoy ext_authz over a real gRPC channel with the generated Envoy stubs (xds-protos)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from envoy.service.auth.v3 import external_auth_pb2 as envoy
from envoy.service.auth.v3 import external_auth_pb2_grpc as envoy_grpc
from google.rpc import code_pb2

from cnm_policy.principals import JwtConfig
from cnm_policy.server.doors import FrontDoorOptions
from cnm_policy.server.ext_authz import TrustedGateway
from tests.e2e.front_doors import TODO, Doors, serve_doors
from tests.unit.principals.jwt_keys import AUDIENCE, ISSUER, Keys

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """Signing keys made for this module, published in a JWKS file."""
    return Keys(tmp_path_factory.mktemp("jwks"))


@pytest.fixture(scope="module")
def todo(keys: Keys) -> Iterator[Doors]:
    """The Todo bundle behind ext_authz, principals from bearer tokens."""
    jwt = JwtConfig(jwks=str(keys.jwks), issuer=ISSUER, audience=AUDIENCE)
    with serve_doors(TODO / "bundle", FrontDoorOptions(jwt=jwt)) as doors:
        yield doors


def token(keys: Keys, email: str, *roles: str) -> str:
    """A good token for `email` in the `todo` tenant (its exp is real time + 10 minutes)."""
    return keys.token(
        sub=email, tenant="todo", roles=list(roles), iat=None, exp=int(time.time()) + 600
    )


def check(doors: Doors, method: str, path: str, **headers: str) -> Any:
    """One Authorization/Check, as Envoy sends it."""
    request = envoy.CheckRequest()
    http = request.attributes.request.http
    http.method, http.path = method, path
    http.headers.update(headers)
    stub = envoy_grpc.AuthorizationStub(doors.channel)
    return stub.Check(request, timeout=5)


def denied_body(response: Any) -> dict[str, Any]:
    """The JSON body Envoy returns to the caller."""
    return dict(json.loads(response.denied_response.body))


def test_an_allowed_request_is_ok_with_the_decision_id(todo: Doors, keys: Keys) -> None:
    """A viewer reads the todo list: OK, and the decision id travels upstream."""
    bearer = token(keys, "beth@the-smiths.com", "viewer")
    response = check(todo, "GET", "/todos?page=2", authorization=f"Bearer {bearer}")
    headers = {h.header.key: h.header.value for h in response.ok_response.headers}
    assert response.status.code == code_pb2.OK
    assert len(headers["x-cnm-decision-id"]) == 32


def test_a_denied_request_is_403_with_the_callers_reason(todo: Doors, keys: Keys) -> None:
    """A viewer may not create a todo: 403 and a JSON reason safe to show."""
    bearer = token(keys, "beth@the-smiths.com", "viewer")
    response = check(todo, "POST", "/todos", authorization=f"Bearer {bearer}")
    assert (response.status.code, response.denied_response.status.code) == (
        code_pb2.PERMISSION_DENIED,
        403,
    )
    body = denied_body(response)
    assert (body["code"], "can_create_todo" in body["reason"]) == ("denied", True)


def test_path_parameters_name_the_resource(todo: Doors, keys: Keys) -> None:
    """DELETE /todos/{id}: the admin may, an editor (not its owner here) may not."""
    admin = token(keys, "rick@the-citadel.com", "admin")
    editor = token(keys, "morty@the-citadel.com", "editor")
    allowed = check(todo, "DELETE", "/todos/t-1", authorization=f"Bearer {admin}")
    refused = check(todo, "DELETE", "/todos/t-1", authorization=f"Bearer {editor}")
    assert (allowed.status.code, refused.status.code) == (code_pb2.OK, code_pb2.PERMISSION_DENIED)


def test_an_unknown_route_is_denied(todo: Doors, keys: Keys) -> None:
    """No route for the request: denied, whoever asks."""
    bearer = token(keys, "rick@the-citadel.com", "admin")
    response = check(todo, "GET", "/admin/secrets", authorization=f"Bearer {bearer}")
    assert (response.denied_response.status.code, denied_body(response)["code"]) == (
        403,
        "not_routed",
    )


def test_a_bad_token_is_refused(todo: Doors, keys: Keys) -> None:
    """A token signed by another key: 401 with the reason."""
    forged = keys.token(key=keys.stranger, sub="rick@the-citadel.com", tenant="todo")
    response = check(todo, "GET", "/todos", authorization=f"Bearer {forged}")
    assert (response.denied_response.status.code, denied_body(response)["code"]) == (
        401,
        "token_invalid",
    )


def test_a_missing_token_is_refused(todo: Doors) -> None:
    """No token when tokens are how principals are known: 401 token_missing."""
    response = check(todo, "GET", "/todos")
    assert (response.denied_response.status.code, denied_body(response)["code"]) == (
        401,
        "token_missing",
    )


def test_gateway_headers_are_believed_only_when_configured(tmp_path: Path) -> None:
    """Without the option the headers name nobody; with it they are the principal."""
    headers = {"x-user": "beth@the-smiths.com", "x-tenant": "todo", "x-roles": "viewer"}
    with serve_doors(TODO / "bundle") as plain:
        ignored = check(plain, "GET", "/todos", **headers)
    gateway = TrustedGateway("x-user", "x-tenant", "x-roles")
    with serve_doors(TODO / "bundle", FrontDoorOptions(trusted_gateway=gateway)) as trusted:
        believed = check(trusted, "GET", "/todos", **headers)
    assert (ignored.status.code, believed.status.code) == (code_pb2.INVALID_ARGUMENT, code_pb2.OK)
