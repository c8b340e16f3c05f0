"""The decision API over HTTP/JSON: an ASGI app routing to the native and AuthZEN handlers.

Deliberately framework-free (a route table and two response shapes): every request is read
with its body bounded by the gRPC message limit, must be ``application/json`` (so a web page
cannot post to it without a CORS preflight we never grant), gets its ``X-Request-ID`` echoed,
and every failure becomes the gRPC status table's answer as a JSON body naming the field.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final, cast

import orjson

from cnm_policy.errors import InvalidRequestError, LimitExceededError
from cnm_policy.ops.metrics import DecisionMetrics
from cnm_policy.principals import bearer_token
from cnm_policy.review.requests import load_json
from cnm_policy.server.http import authzen, native
from cnm_policy.server.http.decide import HttpCall, HttpDecider
from cnm_policy.server.http.statuses import http_error

__all__ = ["Handler", "HttpApi"]

# A handler: the decider, the parsed body (None for GET), the call, the request's origin.
Handler = Callable[[HttpDecider, Any, HttpCall, str], Mapping[str, Any]]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_MAX_REQUEST_ID: Final = 128
_JSON: Final = (b"content-type", b"application/json")


def _routes() -> dict[tuple[str, str], Handler]:
    return {
        ("POST", "/v1/check"): native.check,
        ("POST", "/v1/check-batch"): native.check_batch,
        ("GET", "/v1/policy"): native.policy,
        ("POST", "/v1/plan"): native.plan,
        ("POST", "/v1/can-grant"): native.can_grant,
        ("POST", "/access/v1/evaluation"): authzen.evaluation,
        ("POST", "/access/v1/evaluations"): authzen.evaluations,
        ("POST", "/access/v1/search/action"): authzen.search_action,
        ("GET", "/.well-known/authzen-configuration"): authzen.configuration,
    }


class HttpApi:
    """The ASGI app of the HTTP decision listener (`--http-listen`)."""

    def __init__(self, decider: HttpDecider, *, metrics: DecisionMetrics | None = None) -> None:
        self.decider = decider
        self._metrics = metrics
        self._routes = _routes()
        self._paths = {path for _, path in self._routes}
        self._max_body = decider.limits.max_message_bytes

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        """Serve one HTTP request."""
        if scope["type"] != "http":
            return
        headers = _headers(scope)
        request_id = _request_id(headers.get("x-request-id"))
        handler = self._routes.get((scope["method"], scope["path"]))
        if handler is None:
            await _respond(send, *self._not_routed(scope["method"], scope["path"]), request_id)
            return
        call_status, payload = 200, cast(Mapping[str, Any], {})
        call = HttpCall(request_id=request_id)
        metrics = self._metrics
        if metrics is not None:
            metrics.begin()
        try:
            call = HttpCall(request_id, bearer_token(headers.get("authorization")), call.started)
            body = None
            if scope["method"] == "POST":
                if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                    raise InvalidRequestError("content-type", "must be `application/json`")
                body = load_json(await self._body(receive))
            payload = handler(self.decider, body, call, _origin(scope, headers))
        except Exception as exc:
            self.decider.rejected(exc, call)  # one `outcome: rejected` event per refused call
            call_status, payload = http_error(exc)
        if metrics is not None:
            _count(metrics, scope["path"], call, call_status, payload)
        await _respond(send, call_status, payload, request_id)

    def _not_routed(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        if path in self._paths:
            message = f"`{method[:16]}` is not allowed on `{path[:200]}`"
            return 405, {"error": {"code": "method_not_allowed", "message": message}}
        return 404, {"error": {"code": "not_found", "message": f"no endpoint `{path[:200]}`"}}

    async def _body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                raise LimitExceededError("request", f"body exceeds {self._max_body} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _count(
    metrics: DecisionMetrics, path: str, call: HttpCall, status: int, payload: Mapping[str, Any]
) -> None:
    """Exactly one metrics ending per call: its decisions, or its refusal's code."""
    seconds = time.perf_counter() - call.started
    if status != 200:
        metrics.rejected(path, str(payload["error"]["code"]), seconds)
    elif call.allowed + call.denied == 1:
        metrics.decided(path, call.allowed == 1, seconds, next(iter(call.audited), None))
    else:
        metrics.decided_batch(path, call.allowed, call.denied, seconds, call.audited)


def _headers(scope: Any) -> dict[str, str]:
    """Header names lowercased (ASGI already does), values latin-1; the first of repeats."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def _request_id(value: str | None) -> str | None:
    if not value:
        return None
    clipped = value[:_MAX_REQUEST_ID]
    return clipped if clipped.isprintable() and clipped.isascii() else None


def _origin(scope: Any, headers: Mapping[str, str]) -> str:
    host = headers.get("host", "")[:256]
    return f"{scope.get('scheme', 'http')}://{host}" if host else ""


async def _respond(
    send: Send, status: int, payload: Mapping[str, Any], request_id: str | None
) -> None:
    body = orjson.dumps(payload)
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode("ascii")))
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="cnm-policy"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
