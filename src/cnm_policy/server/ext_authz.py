"""Envoy's external authorization (`envoy.service.auth.v3.Authorization/Check`) on the gRPC port.

The bundle's `routes.yaml` turns the HTTP request Envoy saw into a check; the principal comes
from its bearer token, or from headers a trusted gateway sets (only when configured, never by
default). Allowed: OK with ``x-cnm-decision-id``. Anything else, an unknown route included, is
a denied response with a JSON body carrying the caller-safe reason (fail closed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import grpc
import orjson
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as envoy
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2

from cnm_policy.errors import CnmPolicyError, UnauthenticatedError
from cnm_policy.model import AccessRequest, Principal, Resource
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.policy._routes import RouteTable
from cnm_policy.principals import bearer_token
from cnm_policy.server.http.decide import HttpCall, HttpDecider
from cnm_policy.server.http.statuses import http_error

__all__ = [
    "DECISION_ID_HEADER",
    "EXT_AUTHZ_SERVICE",
    "ExtAuthzServicer",
    "TrustedGateway",
    "ext_authz_handlers",
]

EXT_AUTHZ_SERVICE: Final = "envoy.service.auth.v3.Authorization"
DECISION_ID_HEADER: Final = "x-cnm-decision-id"
_METHOD: Final = "ext_authz"
_MAX_ROLES: Final = 64


@dataclass(frozen=True, slots=True)
class TrustedGateway:
    """Headers a trusted gateway sets for an authenticated caller (lowercase names).

    Only configure this when every request reaches Envoy through that gateway: anyone who can
    send these headers straight to Envoy is whoever they claim to be.
    """

    principal_header: str
    tenant_header: str | None = None
    roles_header: str | None = None

    def principal(self, headers: Mapping[str, str]) -> Principal | None:
        """The principal the headers name (None without the principal header)."""
        principal_id = headers.get(self.principal_header)
        if not principal_id:
            return None
        tenant = headers.get(self.tenant_header, "") if self.tenant_header else ""
        roles = headers.get(self.roles_header, "") if self.roles_header else ""
        names = tuple(r.strip() for r in roles.split(",") if r.strip())[:_MAX_ROLES]
        return Principal(principal_id, tenant, names)


class ExtAuthzServicer:
    """Answers Envoy's checks with `decider` (the HTTP doors' decision path)."""

    def __init__(
        self,
        decider: HttpDecider,
        *,
        routes: Callable[[], RouteTable | None],
        gateway: TrustedGateway | None = None,
        metrics: DecisionMetrics | None = None,
    ) -> None:
        self._decider = decider
        self._routes = routes
        self._gateway = gateway
        self._metrics = metrics

    def Check(  # noqa: N802 - the generated service's method name
        self, request: envoy.CheckRequest, context: grpc.ServicerContext
    ) -> envoy.CheckResponse:
        """One gateway request: allowed (OK) or denied (a status and a JSON reason)."""
        http = request.attributes.request.http
        headers = {key.lower(): value for key, value in http.headers.items()}
        call = HttpCall(request_id=(headers.get("x-request-id") or "")[:128] or None)
        if self._metrics is not None:
            self._metrics.begin()
        try:
            call.token = bearer_token(headers.get("authorization"))
            table = self._routes()
            match = table.match(http.method, http.path, headers.get) if table is not None else None
            if match is None:
                return self._end(call, _denied(403, "not_routed", "no route allows this request"))
            principal = Principal("", "")
            if call.token is None and self._gateway is not None:
                principal = self._gateway.principal(headers) or principal
            if call.token is None and not principal.id and self._decider.completes_principals:
                raise UnauthenticatedError("a bearer token is required", "token_missing")
            resource = Resource(match.kind, match.id, match.tenant)
            decision, decision_id = self._decider.check(
                AccessRequest(principal, match.action, resource), call
            )
        except CnmPolicyError as exc:
            self._decider.rejected(exc, call)
            status, body = http_error(exc)
            error = body["error"]
            return self._end(call, _denied(status, error["code"], error["message"]), error["code"])
        if not decision.allowed:
            return self._end(call, _denied(403, "denied", decision.reason, decision_id))
        ok = envoy.CheckResponse(status=status_pb2.Status(code=code_pb2.OK))
        ok.ok_response.headers.append(_header(DECISION_ID_HEADER, decision_id))
        return self._end(call, ok)

    def _end(
        self, call: HttpCall, response: envoy.CheckResponse, code: str | None = None
    ) -> envoy.CheckResponse:
        metrics = self._metrics
        if metrics is not None:
            seconds = time.perf_counter() - call.started
            if code is not None:
                metrics.rejected(_METHOD, code, seconds)
            else:
                allowed = response.status.code == code_pb2.OK
                metrics.decided(_METHOD, allowed, seconds, next(iter(call.audited), None))
        return response


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value))


def _denied(status: int, code: str, reason: str, decision_id: str = "") -> envoy.CheckResponse:
    """A denied response: the HTTP status Envoy returns, and a JSON body with the reason."""
    body: dict[str, Any] = {"code": code, "reason": reason}
    if decision_id:
        body["decision_id"] = decision_id
    rpc_code = _RPC_CODE.get(status, code_pb2.UNAVAILABLE)
    response = envoy.CheckResponse(status=status_pb2.Status(code=rpc_code))
    denied = response.denied_response
    denied.status.code = _ENVOY_STATUS.get(status, http_status_pb2.Forbidden)
    denied.body = orjson.dumps(body).decode("utf-8")
    denied.headers.append(_header("content-type", "application/json"))
    if decision_id:
        denied.headers.append(_header(DECISION_ID_HEADER, decision_id))
    return response


_RPC_CODE: Final[Mapping[int, Any]] = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    413: code_pb2.RESOURCE_EXHAUSTED,
}
_ENVOY_STATUS: Final[Mapping[int, Any]] = {
    400: http_status_pb2.BadRequest,
    401: http_status_pb2.Unauthorized,
    403: http_status_pb2.Forbidden,
    413: http_status_pb2.PayloadTooLarge,
    500: http_status_pb2.InternalServerError,
    503: http_status_pb2.ServiceUnavailable,
    504: http_status_pb2.GatewayTimeout,
}


def ext_authz_handlers(
    servicer: ExtAuthzServicer,
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    """The Authorization service's handlers, by method name (for the sidecar's gRPC server)."""
    return {
        "Check": grpc.unary_unary_rpc_method_handler(
            servicer.Check,
            request_deserializer=envoy.CheckRequest.FromString,
            response_serializer=envoy.CheckResponse.SerializeToString,
        )
    }
