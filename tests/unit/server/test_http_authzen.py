"""The AuthZEN mapping: subject, resource, action and context to the native request form."""

from __future__ import annotations

import pytest

from cnm_policy.errors import InvalidRequestError, LimitExceededError, UnauthenticatedError
from cnm_policy.server.http.authzen import to_native
from cnm_policy.server.http.statuses import http_error

REQUEST = {
    "subject": {
        "type": "user",
        "id": "u-17",
        "identity": "abc",
        "properties": {"tenant": "acme", "roles": ["customer-viewer"], "mfa": True},
    },
    "action": {"name": "read"},
    "resource": {
        "type": "device",
        "id": "dev-9",
        "properties": {"tenant": "acme/emea", "shared": True},
    },
    "context": {"channel": "portal"},
}


def test_the_documented_mapping() -> None:
    """tenant and roles from properties, the rest (and extra keys) as attributes."""
    assert to_native(REQUEST, None) == {
        "principal": {
            "id": "u-17",
            "tenant": "acme",
            "roles": ["customer-viewer"],
            "attributes": {"identity": "abc", "mfa": True},
        },
        "action": "read",
        "resource": {
            "id": "dev-9",
            "tenant": "acme/emea",
            "kind": "device",
            "attributes": {"shared": True},
        },
        "context": {"channel": "portal"},
    }


def test_the_default_tenant_fills_only_missing_tenants() -> None:
    """A configured default tenant for single-tenant applications."""
    bare = {
        "subject": {"type": "user", "id": "u"},
        "action": {"name": "read"},
        "resource": {"type": "device", "id": "d", "properties": {"tenant": "acme"}},
    }
    native = to_native(bare, "todo")
    assert (native["principal"]["tenant"], native["resource"]["tenant"]) == ("todo", "acme")
    assert "tenant" not in to_native(bare, None)["principal"]


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ({"subject": None}, "subject"),
        ({"action": {}}, "action.name"),
        ({"resource": {"type": "device"}}, "resource.id"),
        ({"subject": {"type": "user", "id": "u", "properties": []}}, "subject.properties"),
    ],
)
def test_malformed_requests_name_the_authzen_field(broken: dict[str, object], field: str) -> None:
    """The field as the caller wrote it."""
    with pytest.raises(InvalidRequestError) as caught:
        to_native({**REQUEST, **broken}, None)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidRequestError("resource.tenant", "bad"), 400, "invalid_request"),
        (LimitExceededError("items", "too many"), 413, "limit_exceeded"),
        (UnauthenticatedError("expired", "token_expired"), 401, "token_expired"),
        (RuntimeError("boom"), 500, "internal"),
    ],
)
def test_http_errors_follow_the_status_table(error: Exception, status: int, code: str) -> None:
    """One table for every door: status, code, and the field when there is one."""
    got_status, body = http_error(error)
    assert (got_status, body["error"]["code"]) == (status, code)
    assert ("field" in body["error"]) == isinstance(error, InvalidRequestError)
