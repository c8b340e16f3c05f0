"""The HTTP/JSON API on a real listener: native and AuthZEN requests, errors, ids, principals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from cnm_policy.principals import JwtConfig
from cnm_policy.server.doors import FrontDoorOptions
from tests.conftest import DEFAULT_BUNDLE
from tests.e2e.front_doors import Doors, serve_doors
from tests.unit.principals.jwt_keys import AUDIENCE, ISSUER, Keys

pytestmark = pytest.mark.e2e

VIEWER = {"id": "u-17", "tenant": "acme/emea", "roles": ["customer-viewer"]}
DEVICE = {"kind": "device", "id": "dev-9", "tenant": "acme/emea/paris"}
CHECK = {"principal": VIEWER, "action": "read", "resource": DEVICE}


@pytest.fixture(scope="module")
def doors() -> Iterator[Doors]:
    """The default bundle, no principal sources."""
    with serve_doors(DEFAULT_BUNDLE) as served:
        yield served


def test_v1_check_answers_in_the_proto_json_mapping(doors: Doors) -> None:
    """POST /v1/check: the CheckResponse's fields, names as in the .proto."""
    status, answer = doors.post("/v1/check", CHECK)
    assert (status, answer["allowed"], answer["rule_ids"]) == (
        200,
        True,
        ["customer-read-network"],
    )
    assert (answer["policy"]["name"], len(answer["decision_id"])) == ("cnm", 32)


def test_attributes_are_plain_json_objects(doors: Doors) -> None:
    """`attributes: {mfa: true}` reaches the policy (a guardrail reads it)."""
    admin = {**VIEWER, "roles": ["customer-admin"]}
    body = {"principal": admin, "action": "configure", "resource": DEVICE}
    with_mfa = {**body, "principal": {**admin, "attributes": {"mfa": True}}}
    assert [doors.post("/v1/check", b)[1]["allowed"] for b in (body, with_mfa)] == [False, True]


def test_v1_check_batch_answers_in_order(doors: Doors) -> None:
    """POST /v1/check-batch: one result per item, in order."""
    items = [{"action": a, "resource": DEVICE} for a in ("read", "configure", "read")]
    status, answer = doors.post("/v1/check-batch", {"principal": VIEWER, "items": items})
    assert (status, [r["allowed"] for r in answer["results"]]) == (200, [True, False, True])


def test_v1_policy_names_the_serving_bundle(doors: Doors) -> None:
    """GET /v1/policy: GetPolicyInfo in JSON."""
    status, _, answer = doors.request("GET", "/v1/policy")
    assert (status, answer["policy"]["name"], answer["limits"]["max_batch_items"]) == (
        200,
        "cnm",
        1000,
    )


def test_errors_are_json_bodies_naming_the_field(doors: Doors) -> None:
    """An invalid request: 400, the stable code, the field."""
    status, answer = doors.post("/v1/check", {**CHECK, "resource": {**DEVICE, "tenant": "acme/"}})
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (
        400,
        "invalid_request",
        "resource.tenant",
    )


def test_a_batch_over_the_limit_is_413(doors: Doors) -> None:
    """limit_exceeded is RESOURCE_EXHAUSTED on gRPC, 413 here."""
    items = [{"action": "read", "resource": DEVICE}] * 1001
    status, answer = doors.post("/v1/check-batch", {"principal": VIEWER, "items": items})
    assert (status, answer["error"]["code"]) == (413, "limit_exceeded")


def test_the_request_id_is_echoed_and_logged(doors: Doors) -> None:
    """X-Request-ID comes back and names the decision event."""
    with capture_logs() as events:
        status, headers, _ = doors.request("POST", "/v1/check", CHECK, {"x-request-id": "req-42"})
    decision = next(e for e in events if e.get("event") == "decision")
    assert (status, headers["x-request-id"], decision["request_id"]) == (200, "req-42", "req-42")
    assert decision["principal_source"] == "request"


def test_json_is_required(doors: Doors) -> None:
    """A form post is refused (a web page cannot reach the API without a preflight)."""
    status, _, answer = doors.request("POST", "/v1/check", CHECK, {"content-type": "text/plain"})
    assert (status, answer["error"]["field"]) == (400, "content-type")


def test_unknown_paths_and_methods(doors: Doors) -> None:
    """404 for no endpoint, 405 for the wrong method."""
    assert [doors.request(m, p)[0] for m, p in (("GET", "/nope"), ("GET", "/v1/check"))] == [
        404,
        405,
    ]


def authzen(subject: dict[str, Any], action: str, resource: dict[str, Any]) -> dict[str, Any]:
    """An AuthZEN evaluation request."""
    return {"subject": subject, "action": {"name": action}, "resource": resource}


SUBJECT = {
    "type": "user",
    "id": "u-17",
    "properties": {"tenant": "acme/emea", "roles": ["customer-viewer"]},
}
RESOURCE = {"type": "device", "id": "dev-9", "properties": {"tenant": "acme/emea/paris"}}


def test_authzen_evaluation_carries_reasons_in_its_context(doors: Doors) -> None:
    """decision, and a context with id, rule ids, admin and user reasons."""
    status, answer = doors.post("/access/v1/evaluation", authzen(SUBJECT, "read", RESOURCE))
    context = answer["context"]
    assert (status, answer["decision"], context["rule_ids"]) == (
        200,
        True,
        ["customer-read-network"],
    )
    assert "customer-read-network" in context["reason_admin"]["en"]
    assert context["reason_user"]["en"] == "allowed by rule `customer-read-network`"


@pytest.mark.parametrize(
    ("semantic", "expected"),
    [
        ("execute_all", [True, False, True]),
        ("deny_on_first_deny", [True, False]),
        ("permit_on_first_permit", [True]),
    ],
)
def test_authzen_evaluations_semantics(doors: Doors, semantic: str, expected: list[bool]) -> None:
    """Defaults at the top, one action per item, and where each semantic stops."""
    body = {
        "subject": SUBJECT,
        "resource": RESOURCE,
        "options": {"evaluations_semantic": semantic},
        "evaluations": [{"action": {"name": a}} for a in ("read", "reboot", "read")],
    }
    status, answer = doors.post("/access/v1/evaluations", body)
    assert (status, [e["decision"] for e in answer["evaluations"]]) == (200, expected)


def test_an_evaluation_item_error_is_that_items_deny(doors: Doors) -> None:
    """A bad item: decision false and its error, the others decided."""
    body = {
        "subject": SUBJECT,
        "evaluations": [
            {"action": {"name": "read"}, "resource": RESOURCE},
            {
                "action": {"name": "read"},
                "resource": {"type": "device", "id": "x", "properties": {"tenant": "acme/"}},
            },
        ],
    }
    _, answer = doors.post("/access/v1/evaluations", body)
    first, second = answer["evaluations"]
    assert (first["decision"], second["decision"]) == (True, False)
    assert second["context"]["error"]["status"] == 400


def test_authzen_without_a_tenant_is_refused_naming_the_field(doors: Doors) -> None:
    """No tenant and no default tenant: 400 `subject.properties.tenant`."""
    subject = {"type": "user", "id": "u-17", "properties": {"roles": ["customer-viewer"]}}
    status, answer = doors.post("/access/v1/evaluation", authzen(subject, "read", RESOURCE))
    assert (status, answer["error"]["field"]) == (400, "subject.properties.tenant")


def test_action_search_lists_the_buttons_to_show(doors: Doors) -> None:
    """The actions of the kind the subject may do."""
    body = {"subject": SUBJECT, "resource": RESOURCE}
    status, answer = doors.post("/access/v1/search/action", body)
    assert (status, answer["results"]) == (200, [{"name": "read"}])


def test_well_known_configuration_points_at_the_endpoints(doors: Doors) -> None:
    """GET /.well-known/authzen-configuration."""
    status, _, answer = doors.request("GET", "/.well-known/authzen-configuration")
    base = f"http://{doors.http_address}"
    assert (status, answer["access_evaluation_endpoint"]) == (200, f"{base}/access/v1/evaluation")


def test_the_same_request_has_the_same_decision_through_every_http_door(doors: Doors) -> None:
    """Native and AuthZEN share the decision path (and its cache)."""
    native = doors.post("/v1/check", CHECK)[1]
    zen = doors.post("/access/v1/evaluation", authzen(SUBJECT, "read", RESOURCE))[1]
    assert (native["allowed"], native["rule_ids"]) == (zen["decision"], zen["context"]["rule_ids"])


DIRECTORY = """\
principals:
  u-17: {tenant: acme/emea, roles: [customer-viewer]}
"""


def test_a_directory_completes_and_overrides_principals(tmp_path: Path) -> None:
    """Named by id alone it is completed; roles it sends are ignored; the log says so."""
    path = tmp_path / "directory.yaml"
    path.write_text(DIRECTORY)
    with serve_doors(DEFAULT_BUNDLE, FrontDoorOptions(directory=path)) as served:
        by_id = {"principal": {"id": "u-17"}, "action": "read", "resource": DEVICE}
        greedy = {
            "principal": {**VIEWER, "roles": ["customer-admin"]},
            "action": "configure",
            "resource": DEVICE,
        }
        with capture_logs() as events:
            answers = [served.post("/v1/check", b)[1]["allowed"] for b in (by_id, greedy)]
        stranger = served.post("/v1/check", {**by_id, "principal": {"id": "u-99"}})
    sources = [e["principal_source"] for e in events if e.get("event") == "decision"]
    assert (answers, sources) == ([True, False], ["directory", "directory"])
    assert (stranger[0], stranger[1]["error"]["code"]) == (401, "principal_unknown")


def test_a_token_names_the_principal_and_bounds_valid_until(tmp_path: Path) -> None:
    """Bearer token: principal from its claims, valid_until no later than its exp."""
    keys = Keys(tmp_path)
    exp = int(time.time()) + 120
    good = keys.token(sub="u-17", tenant="acme/emea", roles=["customer-viewer"], iat=None, exp=exp)
    jwt = JwtConfig(jwks=str(keys.jwks), issuer=ISSUER, audience=AUDIENCE)
    body = {"action": "read", "resource": DEVICE}
    with serve_doors(DEFAULT_BUNDLE, FrontDoorOptions(jwt=jwt)) as served:
        status, answer = served.post("/v1/check", body, authorization=f"Bearer {good}")
        missing = served.post("/v1/check", body)
        expired = keys.token(sub="u-17", tenant="acme/emea", iat=None, exp=int(time.time()) - 60)
        late = served.post("/v1/check", body, authorization=f"Bearer {expired}")
    assert (status, answer["allowed"]) == (200, True)
    assert answer["valid_until"].startswith(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(exp)))
    assert [(s, a["error"]["code"]) for s, a in (missing, late)] == [
        (401, "token_missing"),
        (401, "token_expired"),
    ]
