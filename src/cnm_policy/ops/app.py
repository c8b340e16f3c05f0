"""The ops listener's ASGI app: `GET /metrics`, `GET /healthz`, `GET /readyz`, nothing else.

Served by `server/http/runner.py` on `--ops-listen`, apart from the decision API, so probes and
scrapers can reach the pod address while decisions stay on loopback or a unix socket. It
serves no decision and reads no request body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["OpsApp", "ReadinessView"]

Message = MutableMapping[str, Any]


class ReadinessView(Protocol):
    """What /readyz asks: one sidecar's `Readiness`, or the `--processes` supervisor's."""

    def check(self) -> tuple[bool, str]:
        """(ready, reason) now; reason ``ok`` when ready."""
        ...

    def policy_age(self) -> float | None:
        """Seconds since the serving policy was confirmed (``None``: not known)."""
        ...


class OpsApp:
    """An ASGI application over one registry and one readiness state."""

    def __init__(self, registry: CollectorRegistry, readiness: ReadinessView) -> None:
        self._registry = registry
        self._readiness = readiness

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        """Route one request; anything but GET/HEAD on the three paths is 404 or 405."""
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        routes = {"/metrics": self._metrics, "/healthz": _alive, "/readyz": self._ready}
        route = routes.get(path)
        if route is None:
            status, body, content_type = 404, _json({"error": "not_found"}), "application/json"
        elif method not in ("GET", "HEAD"):
            status, body, content_type = (
                405,
                _json({"error": "method_not_allowed"}),
                "application/json",
            )
        else:
            status, body, content_type = route()
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        if status == 405:
            headers.append((b"allow", b"GET, HEAD"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

    def _metrics(self) -> tuple[int, bytes, str]:
        return 200, generate_latest(self._registry), CONTENT_TYPE_LATEST

    def _ready(self) -> tuple[int, bytes, str]:
        ready, reason = self._readiness.check()
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "reason": reason}
        age = self._readiness.policy_age()
        if age is not None:
            body["policy_age_seconds"] = round(age, 3)
        return (200 if ready else 503), _json(body), "application/json"


def _alive() -> tuple[int, bytes, str]:
    return 200, _json({"status": "alive"}), "application/json"


def _json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value)
