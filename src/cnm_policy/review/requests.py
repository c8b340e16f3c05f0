"""The JSON request form (`check`, `explain`): one parser, model values, errors naming the field.

The JSON form of the sidecar's ``CheckRequest``, values read as the sidecar reads them, so one
request file works for `check`, `explain` and ``grpcurl -d`` alike; size and nesting are bounded
while parsing (the rules: docs/design/policy-language.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import AccessRequest, Principal, Resource

__all__ = [
    "MAX_REQUEST_BYTES",
    "MAX_VALUE_DEPTH",
    "JsonBatch",
    "JsonRequest",
    "json_batch_from_object",
    "json_request_from_object",
    "load_json",
    "parse_access_request",
    "parse_json_request",
]

# The sidecar's defaults (`server.limits.DEFAULT_LIMITS`; a test keeps them equal).
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_VALUE_DEPTH = 8
_MAX_EXACT_INT = 2**53

_TOP = {
    "principal": True,
    "action": True,
    "resource": True,
    "context": False,
    "explain": False,
    "actor": False,
}
_PRINCIPAL = {"id": True, "tenant": True, "roles": False, "attributes": False}
_RESOURCE = {"kind": True, "id": False, "tenant": True, "attributes": False}
# A principal the server completes (from a token or its directory) may be named by id alone.
_PARTIAL = {
    "principal": False,
    "action": True,
    "resource": True,
    "context": False,
    "explain": False,
    "actor": False,
}
_PARTIAL_PRINCIPAL = {"id": False, "tenant": False, "roles": False, "attributes": False}
_BATCH = {"principal": True, "items": True, "context": False, "explain": False, "actor": False}
_ITEM = {"action": True, "resource": True}


@dataclass(frozen=True, slots=True)
class JsonRequest:
    """A parsed request and its ``explain`` flag."""

    request: AccessRequest
    explain: bool = False


def parse_access_request(text: str) -> AccessRequest:
    """Parse one JSON request; raises InvalidRequestError naming the offending field."""
    return parse_json_request(text).request


@dataclass(frozen=True, slots=True)
class JsonBatch:
    """A parsed batch (the JSON form of ``CheckBatchRequest``)."""

    principal: Principal
    items: list[tuple[str, Resource]]
    context: dict[str, Any]
    explain: bool = False
    actor: Principal | None = None


def parse_json_request(text: str) -> JsonRequest:
    """Parse one JSON request with its ``explain`` flag; errors name the offending field."""
    return json_request_from_object(load_json(text))


def json_request_from_object(data: Any, *, partial_principal: bool = False) -> JsonRequest:
    """One request from parsed JSON; `partial_principal`: the principal (or its tenant) may be
    left for the server to complete (HTTP front doors with a token or a directory)."""
    top = _object(data, "request", _PARTIAL if partial_principal else _TOP)
    return JsonRequest(
        AccessRequest(
            principal=_principal(top.get("principal", {}), partial_principal),
            action=_string(top["action"], "action"),
            resource=_resource(top["resource"], "resource"),
            context=_struct(top.get("context"), "context"),
            actor=_actor(top),
        ),
        _explain(top),
    )


def json_batch_from_object(data: Any, *, partial_principal: bool = False) -> JsonBatch:
    """A batch from parsed JSON; item errors name the item (``items[3].resource.kind``)."""
    top = _object(data, "request", _BATCH)
    items = top["items"]
    if not isinstance(items, list):
        raise InvalidRequestError("items", "must be a list")
    parsed = []
    for index, item in enumerate(items):
        fields = _object(item, f"items[{index}]", _ITEM)
        action = _string(fields["action"], f"items[{index}].action")
        parsed.append((action, _resource(fields["resource"], f"items[{index}].resource")))
    return JsonBatch(
        _principal(top["principal"], partial_principal),
        parsed,
        _struct(top.get("context"), "context"),
        _explain(top),
        _actor(top),
    )


def _principal(value: Any, partial: bool, field: str = "principal") -> Principal:
    principal = _object(value, field, _PARTIAL_PRINCIPAL if partial else _PRINCIPAL)
    return Principal(
        id=_string(principal.get("id", ""), f"{field}.id"),
        tenant=_string(principal.get("tenant", ""), f"{field}.tenant"),
        roles=_roles(principal.get("roles", []), field),
        attributes=_struct(principal.get("attributes"), f"{field}.attributes"),
    )


def _actor(top: Mapping[str, Any]) -> Principal | None:
    """Who acts on the principal's behalf: a whole principal, never completed by the server."""
    return None if top.get("actor") is None else _principal(top["actor"], False, "actor")


def _resource(value: Any, field: str) -> Resource:
    resource = _object(value, field, _RESOURCE)
    return Resource(
        kind=_string(resource["kind"], f"{field}.kind"),
        id=_string(resource.get("id", ""), f"{field}.id"),
        tenant=_string(resource["tenant"], f"{field}.tenant"),
        attributes=_struct(resource.get("attributes"), f"{field}.attributes"),
    )


def _explain(top: Mapping[str, Any]) -> bool:
    explain = top.get("explain", False)
    if not isinstance(explain, bool):
        raise InvalidRequestError("explain", f"must be true or false, got {_shown(explain)}")
    return explain


def load_json(text: str | bytes) -> Any:
    """JSON text to Python, bounded: size first, then nesting (by the parser itself)."""
    return _load(text)


def _load(text: str | bytes) -> Any:
    """JSON text to Python: the size is bounded first, the nesting by the parser itself."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8"))
    if len(text) > MAX_REQUEST_BYTES or size > MAX_REQUEST_BYTES:
        raise InvalidRequestError("request", f"is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:  # the C parser stops at the interpreter's recursion limit
        raise InvalidRequestError("request", "nests too deeply") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequestError("request", f"not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidRequestError("request", "is not UTF-8 text") from None
    except ValueError:  # an integer too long to convert (`sys.int_info.default_max_str_digits`)
        raise InvalidRequestError("request", "has a number with too many digits") from None


def _no_constant(name: str) -> Any:
    raise InvalidRequestError("request", f"`{name}` is not a JSON number")


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
    return _short(key) if parent == "request" else f"{parent}.{_short(key)}"


def _short(key: str) -> str:
    """A user-supplied key, cut to a length that is safe to put in a message."""
    return key if len(key) <= 64 else f"{key[:61]}..."


def _shown(value: Any) -> str:
    """A user-supplied value for a message: JSON in backticks, cut to a bounded length."""
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "a list"
    text = json.dumps(value)
    return f"`{text}`" if len(text) <= 40 else f"`{text[:37]}...`"


def _string(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(field, f"must be a string, got {_shown(value)}")
    return value


def _roles(value: Any, field: str = "principal") -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidRequestError(f"{field}.roles", "must be a list of strings")
    return tuple(_string(role, f"{field}.roles[{i}]") for i, role in enumerate(value))


def _struct(value: Any, field: str) -> dict[str, Any]:
    """Attributes or context: a JSON object (null or absent: empty), read as the sidecar does."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequestError(field, "must be a JSON object")
    return {key: _value(item, f"{field}.{_short(key)}", 1) for key, item in value.items()}


def _value(value: Any, field: str, depth: int) -> Any:
    """One attribute value; numbers as a double carries them, nesting bounded."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return _number(value, field)
    if depth >= MAX_VALUE_DEPTH:
        raise InvalidRequestError(field, f"values nest deeper than {MAX_VALUE_DEPTH} levels")
    if isinstance(value, dict):
        return {k: _value(v, f"{field}.{_short(k)}", depth + 1) for k, v in value.items()}
    return [_value(item, f"{field}[{i}]", depth + 1) for i, item in enumerate(value)]


def _number(value: float, field: str) -> float | int:
    """What the number becomes over gRPC: a double, handed to policies as an int if integral."""
    try:
        number = float(value)
    except OverflowError:  # an int beyond any double
        raise InvalidRequestError(field, "is too large for a number") from None
    if not math.isfinite(number):
        raise InvalidRequestError(field, "must be a finite number")
    if number.is_integer() and abs(number) <= _MAX_EXACT_INT:
        return int(number)
    return number
