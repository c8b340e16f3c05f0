"""The JSON request `explain` reads: model values, or an error naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import AccessRequest, Principal, Resource
from cnm_policy.review.requests import parse_access_request


def request(**changes: Any) -> str:
    """A valid request as JSON, with top-level fields replaced."""
    data: dict[str, Any] = {
        "principal": {"id": "u-1", "tenant": "acme", "roles": ["customer-viewer"]},
        "action": "read",
        "resource": {"kind": "device", "id": "dev-1", "tenant": "acme/emea"},
    }
    data.update(changes)
    return json.dumps(data)


def test_a_full_request_parses_into_model_values() -> None:
    """Attributes and context are carried through; `explain` is accepted and ignored."""
    text = request(
        principal={"id": "u-1", "tenant": "acme", "roles": ["a"], "attributes": {"mfa": True}},
        resource={"kind": "device", "id": "d", "tenant": "acme", "attributes": {"shared": 1}},
        context={"channel": "portal"},
        explain=True,
    )
    assert parse_access_request(text) == AccessRequest(
        Principal("u-1", "acme", ("a",), {"mfa": True}),
        "read",
        Resource("device", "d", "acme", {"shared": 1}),
        {"channel": "portal"},
    )


def test_optional_fields_default_to_empty() -> None:
    """Roles, attributes, resource id and context may be left out."""
    text = json.dumps(
        {
            "principal": {"id": "u-1", "tenant": "acme"},
            "action": "read",
            "resource": {"kind": "device", "tenant": "acme"},
        }
    )
    assert parse_access_request(text) == AccessRequest(
        Principal("u-1", "acme"), "read", Resource("device", "", "acme")
    )


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("{", "request", "not valid JSON"),
        ("[]", "request", "must be a JSON object"),
        (request(principal={"id": "u-1"}), "principal.tenant", "is required"),
        (request(resource=None), "resource", "must be a JSON object"),
        (request(action=3), "action", "must be a string, got `3`"),
        (request(extra=1), "extra", "unknown field"),
        (
            request(principal={"id": "u", "tenant": "t", "role": []}),
            "principal.role",
            "unknown field",
        ),
        (
            request(principal={"id": "u", "tenant": "t", "roles": "admin"}),
            "principal.roles",
            "must be a list",
        ),
        (
            request(principal={"id": "u", "tenant": "t", "roles": [1]}),
            "principal.roles[0]",
            "must be a string",
        ),
        (request(context=[1]), "context", "must be a JSON object"),
    ],
)
def test_malformed_requests_name_the_field(text: str, field: str, message: str) -> None:
    """Each error says which field is wrong and how."""
    with pytest.raises(InvalidRequestError, match=message) as caught:
        parse_access_request(text)
    assert caught.value.field == field
