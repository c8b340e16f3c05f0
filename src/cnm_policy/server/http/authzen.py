"""The OpenID AuthZEN Authorization API 1.0 over the engine: evaluation(s), action search,
metadata. Each AuthZEN request is mapped to the native JSON form and read by its one parser.

Mapping (docs/http-api.md): `subject` -> principal (`properties.tenant`, `properties.roles`,
the rest attributes), `resource.type` -> kind, `resource.properties.tenant` -> tenant,
`action.name` -> action, `context` -> context. Keys beside `type`/`id` are read as properties
too (the interop scenarios send them so). Errors name the AuthZEN field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cnm_policy.errors import CnmPolicyError, InvalidRequestError, LimitExceededError
from cnm_policy.model import Decision
from cnm_policy.review.requests import json_request_from_object
from cnm_policy.server.http.decide import HttpCall, HttpDecider
from cnm_policy.server.http.statuses import http_error

__all__ = ["SEMANTICS", "configuration", "evaluation", "evaluations", "search_action", "to_native"]

SEMANTICS: Final = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
_ENTITY_KEYS: Final = frozenset({"type", "id", "properties"})
# Native field prefixes -> the AuthZEN names a caller wrote, longest first.
_RENAMES: Final = (
    ("principal.attributes", "subject.properties"),
    ("principal.tenant", "subject.properties.tenant"),
    ("principal.roles", "subject.properties.roles"),
    ("principal", "subject"),
    ("resource.attributes", "resource.properties"),
    ("resource.tenant", "resource.properties.tenant"),
    ("resource.kind", "resource.type"),
    ("action", "action.name"),
)


def to_native(request: Any, default_tenant: str | None) -> dict[str, Any]:
    """An AuthZEN 4-tuple as the native JSON request form (validated by its parser after)."""
    if not isinstance(request, dict):
        raise InvalidRequestError("request", "must be a JSON object")
    for key in ("subject", "action", "resource"):
        if key not in request:
            raise InvalidRequestError(key, "is required")
    action = request["action"]
    if not isinstance(action, dict) or "name" not in action:
        raise InvalidRequestError("action.name", "is required")
    native: dict[str, Any] = {
        "principal": _entity(request["subject"], "subject", default_tenant, principal=True),
        "action": action["name"],
        "resource": _entity(request["resource"], "resource", default_tenant, principal=False),
    }
    if request.get("context") is not None:
        native["context"] = request["context"]
    return native


def _entity(
    value: Any, field: str, default_tenant: str | None, *, principal: bool
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequestError(field, "must be a JSON object")
    for key in ("type", "id"):
        if not isinstance(value.get(key), str):
            raise InvalidRequestError(f"{field}.{key}", "is required and must be a string")
    properties = value.get("properties")
    properties = {} if properties is None else properties
    if not isinstance(properties, dict):
        raise InvalidRequestError(f"{field}.properties", "must be a JSON object")
    attributes = {k: v for k, v in value.items() if k not in _ENTITY_KEYS}
    attributes.update(properties)
    entity: dict[str, Any] = {"id": value["id"]}
    tenant = attributes.pop("tenant", None) or default_tenant
    if tenant is not None:
        entity["tenant"] = tenant
    if principal:
        entity["roles"] = attributes.pop("roles", [])
    else:
        entity["kind"] = value["type"]
    entity["attributes"] = attributes
    return entity


def _renamed(error: InvalidRequestError, prefix: str = "") -> InvalidRequestError:
    for native, authzen in _RENAMES:
        if error.field == native or error.field.startswith((native + ".", native + "[")):
            field = authzen + error.field[len(native) :]
            return type(error)(prefix + field, error.message)
    return type(error)(prefix + error.field, error.message)


def _decide(decider: HttpDecider, request: Any, call: HttpCall) -> tuple[Decision, str]:
    try:
        native = to_native(request, decider.default_tenant)
        parsed = json_request_from_object(native, partial_principal=decider.completes_principals)
    except InvalidRequestError as exc:
        raise _renamed(exc) from None
    try:
        return decider.check(parsed.request, call)
    except InvalidRequestError as exc:  # the engine's validation, in native names
        raise _renamed(exc) from None


def _response(decision: Decision, decision_id: str) -> dict[str, Any]:
    rules = ", ".join(f"`{rule}`" for rule in decision.rule_ids) or "none (default deny)"
    admin = (
        f"rules {rules}; policy `{decision.policy_name}` {decision.policy_version} "
        f"({decision.policy_digest})"
    )
    context: dict[str, Any] = {
        "id": decision_id,
        "reason_admin": {"en": admin},
        "reason_user": {"en": decision.reason},
        "rule_ids": list(decision.rule_ids),
        "policy": {
            "name": decision.policy_name,
            "version": decision.policy_version,
            "digest": decision.policy_digest,
        },
    }
    if decision.obligations:  # what the caller must do: notify, step_up, expire
        context["obligations"] = [
            {"type": o.type, "rule_id": o.rule_id, "params": dict(o.params)}
            for o in decision.obligations
        ]
    if decision.limits_exceeded:
        context["limits_exceeded"] = [
            {"rule_id": o.rule_id, "name": o.name, "limit": o.limit, "asked": o.asked}
            for o in decision.limits_exceeded
        ]
    if decision.valid_until is not None:
        context["valid_until"] = decision.valid_until
    return {"decision": decision.allowed, "context": context}


def evaluation(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`POST /access/v1/evaluation`: one decision."""
    return _response(*_decide(decider, body, call))


def evaluations(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`POST /access/v1/evaluations`: many, with request-level defaults and a semantic."""
    if not isinstance(body, dict):
        raise InvalidRequestError("request", "must be a JSON object")
    items = body.get("evaluations")
    if items is None:  # without `evaluations` it is a single evaluation (the spec's fallback)
        return evaluation(decider, body, call, origin)
    if not isinstance(items, list):
        raise InvalidRequestError("evaluations", "must be a list")
    if len(items) > decider.limits.max_batch_items:
        raise LimitExceededError(
            "evaluations", f"{len(items)} exceed the limit of {decider.limits.max_batch_items}"
        )
    semantic = _semantic(body.get("options"))
    defaults = {k: body[k] for k in ("subject", "action", "resource", "context") if k in body}
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequestError(f"evaluations[{index}]", "must be a JSON object")
        try:
            result = _response(*_decide(decider, {**defaults, **item}, call))
        except CnmPolicyError as exc:  # an item's error is that item's deny (fail closed)
            decider.rejected(exc, call)
            result = {"decision": False, "context": {"error": _item_error(exc, index)}}
        results.append(result)
        if (semantic == "deny_on_first_deny" and not result["decision"]) or (
            semantic == "permit_on_first_permit" and result["decision"]
        ):
            break
    return {"evaluations": results}


def _semantic(options: Any) -> str:
    if options is None:
        return "execute_all"
    semantic = (
        options.get("evaluations_semantic", "execute_all") if isinstance(options, dict) else None
    )
    if semantic not in SEMANTICS:
        raise InvalidRequestError(
            "options.evaluations_semantic", f"must be one of {', '.join(SEMANTICS)}"
        )
    return str(semantic)


def _item_error(error: CnmPolicyError, index: int) -> dict[str, Any]:
    if isinstance(error, InvalidRequestError):
        error = _renamed(error, f"evaluations[{index}].")
    status, body = http_error(error)
    return {"status": status, **body["error"]}


def search_action(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`POST /access/v1/search/action`: the actions of the resource's kind the subject may do."""
    if not isinstance(body, dict):
        raise InvalidRequestError("request", "must be a JSON object")
    resource = body.get("resource")
    kind = resource.get("type") if isinstance(resource, dict) else None
    kinds: Mapping[str, Any] = getattr(
        getattr(decider.engine.snapshot, "bundle", None), "kinds", {}
    )
    if not isinstance(kind, str) or kind not in kinds:
        raise InvalidRequestError(
            "resource.type", f"is not a kind of the policy: `{str(kind)[:64]}`"
        )
    actions = kinds[kind].actions
    try:
        native = to_native({**body, "action": {"name": actions[0]}}, decider.default_tenant)
        parsed = json_request_from_object(native, partial_principal=decider.completes_principals)
    except InvalidRequestError as exc:
        raise _renamed(exc) from None
    request = parsed.request
    decisions, _ = decider.check_batch(
        request.principal, [(a, request.resource) for a in actions], request.context, call
    )
    allowed = [{"name": a} for a, d in zip(actions, decisions, strict=True) if d.allowed]
    return {"results": allowed, "page": {"next_token": ""}}


def configuration(decider: HttpDecider, body: Any, call: HttpCall, origin: str) -> dict[str, Any]:
    """`GET /.well-known/authzen-configuration`: where this PDP's endpoints are."""
    return {
        "policy_decision_point": origin,
        "access_evaluation_endpoint": f"{origin}/access/v1/evaluation",
        "access_evaluations_endpoint": f"{origin}/access/v1/evaluations",
        "search_action_endpoint": f"{origin}/access/v1/search/action",
    }
