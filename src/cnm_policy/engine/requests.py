"""Validation of incoming requests, and the per-principal work a batch can share.

Malformed input raises :class:`InvalidRequestError` naming the field; what depends on the
principal alone (effective roles, side, assigned tenants) is computed once per batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from cnm_policy.engine.snapshot import PolicySnapshot
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import Principal, Resource
from cnm_policy.policy import ASSIGNED_TENANTS_ATTRIBUTE, Side, tenant_problem

__all__ = [
    "MAX_ID_LENGTH",
    "PreparedPrincipal",
    "prepare_actor",
    "prepare_principal",
    "validate_target",
]

MAX_ID_LENGTH = 256


class PreparedPrincipal(NamedTuple):  # a tuple: built on every check, cheaper than a dataclass
    """A validated principal with its roles resolved against one snapshot.

    `roles` includes inherited roles; `unknown_roles` are roles the bundle does not define
    (they grant nothing); `mixed_sides` is True when the principal holds both customer-side
    and internal-side roles, which the engine refuses (fail closed).
    """

    principal: Principal
    roles: tuple[str, ...]
    unknown_roles: tuple[str, ...]
    side: Side | None
    mixed_sides: bool
    assigned: tuple[str, ...]
    view: Mapping[str, Any]


def _require_text(value: object, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(field, "must be a string")
    if not value and not allow_empty:
        raise InvalidRequestError(field, "must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequestError(field, f"is longer than {MAX_ID_LENGTH} characters")
    return value


def _require_tenant(value: object, field: str) -> None:
    problem = tenant_problem(value)
    if problem is not None:
        raise InvalidRequestError(field, problem)


def _require_mapping(value: object, field: str) -> Mapping[str, Any]:
    if type(value) is not dict and not isinstance(value, Mapping):  # the ABC check is slow
        raise InvalidRequestError(field, "must be an object")
    return value


def prepare_principal(snapshot: PolicySnapshot, principal: object) -> PreparedPrincipal:
    """Validate `principal` and resolve its roles; raises InvalidRequestError."""
    if not isinstance(principal, Principal):
        raise InvalidRequestError("principal", "must be a Principal")
    _require_text(principal.id, "principal.id")
    _require_tenant(principal.tenant, "principal.tenant")
    if not isinstance(principal.roles, tuple | list):
        raise InvalidRequestError("principal.roles", "must be a list of role names")
    for i, role in enumerate(principal.roles):
        if type(role) is not str or not role or len(role) > MAX_ID_LENGTH:  # name it on error only
            _require_text(role, f"principal.roles[{i}]")
    attributes = _require_mapping(principal.attributes, "principal.attributes")
    assigned = _assigned_tenants(attributes.get(ASSIGNED_TENANTS_ATTRIBUTE))
    resolved = snapshot.resolve_roles(tuple(principal.roles))
    view = {
        "id": principal.id,
        "tenant": principal.tenant,
        "roles": list(principal.roles),
        "attributes": attributes,
    }
    sides = resolved.sides
    return PreparedPrincipal(  # positional: a named tuple builds faster so
        principal,
        resolved.effective,
        resolved.unknown,
        next(iter(sides)) if len(sides) == 1 else None,
        len(sides) > 1,
        assigned,
        view,
    )


def prepare_actor(snapshot: PolicySnapshot, actor: object) -> PreparedPrincipal:
    """:func:`prepare_principal` for who acts on the principal's behalf (fields `actor.*`)."""
    try:
        return prepare_principal(snapshot, actor)
    except InvalidRequestError as exc:
        field = "actor" + exc.field.removeprefix("principal")
        message = exc.message.replace("a Principal", "a Principal (the actor)")
        raise InvalidRequestError(field, message) from None


def _assigned_tenants(value: object) -> tuple[str, ...]:
    field = f"principal.attributes.{ASSIGNED_TENANTS_ATTRIBUTE}"
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidRequestError(field, "must be a list of tenant paths")
    for i, tenant in enumerate(value):
        _require_tenant(tenant, f"{field}[{i}]")
    return tuple(value)


def validate_target(action: object, resource: object, context: object) -> Mapping[str, Any]:
    """Validate the per-item part of a request; returns the context as a mapping."""
    _require_text(action, "action")
    if not isinstance(resource, Resource):
        raise InvalidRequestError("resource", "must be a Resource")
    _require_text(resource.kind, "resource.kind")
    _require_text(resource.id, "resource.id", allow_empty=True)
    _require_tenant(resource.tenant, "resource.tenant")
    _require_mapping(resource.attributes, "resource.attributes")
    return _require_mapping({} if context is None else context, "context")
