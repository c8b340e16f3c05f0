"""The JSON request `explain` reads, parsed into model values with errors that name the field.

The shape is the JSON form of the sidecar's ``CheckRequest`` (an ``explain`` flag is accepted
and ignored), so a request file written for `cnm-policy check` works here unchanged. Only the
shape is checked here; values (tenant paths, lengths) are validated by the engine, which
raises :class:`InvalidRequestError` naming the field too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import AccessRequest, Principal, Resource

__all__ = ["parse_access_request"]

_TOP = {"principal": True, "action": True, "resource": True, "context": False, "explain": False}
_PRINCIPAL = {"id": True, "tenant": True, "roles": False, "attributes": False}
_RESOURCE = {"kind": True, "id": False, "tenant": True, "attributes": False}


def parse_access_request(text: str) -> AccessRequest:
    """Parse one JSON request; raises InvalidRequestError naming the offending field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError("request", f"not valid JSON: {exc}") from None
    top = _object(data, "request", _TOP)
    principal = _object(top["principal"], "principal", _PRINCIPAL)
    resource = _object(top["resource"], "resource", _RESOURCE)
    return AccessRequest(
        principal=Principal(
            id=_string(principal["id"], "principal.id"),
            tenant=_string(principal["tenant"], "principal.tenant"),
            roles=_roles(principal.get("roles", [])),
            attributes=_mapping(principal.get("attributes", {}), "principal.attributes"),
        ),
        action=_string(top["action"], "action"),
        resource=Resource(
            kind=_string(resource["kind"], "resource.kind"),
            id=_string(resource.get("id", ""), "resource.id"),
            tenant=_string(resource["tenant"], "resource.tenant"),
            attributes=_mapping(resource.get("attributes", {}), "resource.attributes"),
        ),
        context=_mapping(top.get("context", {}), "context"),
    )


def _object(value: Any, field: str, fields: Mapping[str, bool]) -> Mapping[str, Any]:
    """A JSON object with only known keys and every required one."""
    if not isinstance(value, dict):
        raise InvalidRequestError(field, "must be a JSON object")
    for key in value:
        if key not in fields:
            known = ", ".join(f"`{name}`" for name in fields)
            raise InvalidRequestError(_join(field, key), f"unknown field (known: {known})")
    for key, required in fields.items():
        if required and key not in value:
            raise InvalidRequestError(_join(field, key), "is required")
    return value


def _join(parent: str, key: str) -> str:
    return key if parent == "request" else f"{parent}.{key}"


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(field, f"must be a string, got `{json.dumps(value)}`")
    return value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequestError(field, "must be a JSON object")
    return value


def _roles(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidRequestError("principal.roles", "must be a list of role names")
    return tuple(_string(role, f"principal.roles[{i}]") for i, role in enumerate(value))
