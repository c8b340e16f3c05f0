"""`routes.yaml`: how an HTTP request seen by a gateway (Envoy ext_authz) becomes a check.

Method + path template -> action and resource kind, the resource id and tenant taken from path
parameters (``{id}``), request headers (``header:x-tenant``) or written literally. Routes are
tried in file order and the first match decides; a request no route matches is denied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cnm_policy.policy._fields import Report, check_fields, excerpt, mapping
from cnm_policy.policy.bundle import KindDef

__all__ = ["MAX_ROUTES", "ROUTES_FILE", "RouteDef", "RouteMatch", "RouteTable", "parse_routes"]

ROUTES_FILE: Final = "routes.yaml"
MAX_ROUTES: Final = 1000
_MAX_SEGMENTS: Final = 32
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "*"})
_HEADER: Final = "header:"


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """What a matched request asks: the action on a resource of a kind, in a tenant."""

    route: int  # its index in the table, for logs
    action: str
    kind: str
    id: str
    tenant: str


@dataclass(frozen=True, slots=True)
class RouteDef:
    """One route: `segments` of the template (``{name}`` a parameter), where id/tenant come from."""

    methods: frozenset[str]
    template: str
    segments: tuple[str, ...]
    action: str
    kind: str
    id: str
    tenant: str
    line: int

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        """The path parameters when `method` and the path `parts` fit this route, else None."""
        if len(parts) != len(self.segments) or not (method in self.methods or "*" in self.methods):
            return None
        params: dict[str, str] = {}
        for segment, part in zip(self.segments, parts, strict=True):
            if segment.startswith("{"):
                if not part:
                    return None
                params[segment[1:-1]] = part
            elif segment != part:
                return None
        return params


@dataclass(frozen=True, slots=True)
class RouteTable:
    """The routes of a bundle, in file order."""

    routes: tuple[RouteDef, ...]

    def match(
        self, method: str, path: str, header: Callable[[str], str | None]
    ) -> RouteMatch | None:
        """The first route matching the request; `header(name)` reads a (lowercase) header."""
        parts = path.split("?", 1)[0].split("#", 1)[0].split("/")[1:]
        if len(parts) > _MAX_SEGMENTS:
            return None
        for index, route in enumerate(self.routes):
            params = route.match(method.upper(), parts)
            if params is None:
                continue
            resource_id = _value(route.id, params, header)
            tenant = _value(route.tenant, params, header)
            if resource_id is None or tenant is None:
                return None  # the route's header is absent: no resource to ask about
            return RouteMatch(index, route.action, route.kind, resource_id, tenant)
        return None


def _value(source: str, params: Mapping[str, str], header: Callable[[str], str | None]) -> Any:
    if source.startswith("{"):
        return params.get(source[1:-1])
    if source.startswith(_HEADER):
        return header(source[len(_HEADER) :])
    return source


def parse_routes(doc: Any, kinds: Mapping[str, KindDef], report: Report) -> RouteTable | None:
    """The table in a parsed `routes.yaml` (None: no file); problems go to `report`."""
    if doc is None:
        return None
    file = ROUTES_FILE
    top = mapping(doc, "routes.yaml", file, 1, report)
    if top is None or not check_fields(top, "routes.yaml", ["routes"], [], file, report):
        return None
    items = top["routes"]
    if not isinstance(items, list) or len(items) > MAX_ROUTES:
        report.error("invalid_type", f"`routes` must be a list of up to {MAX_ROUTES}", file, 1)
        return None
    routes = [_route(item, kinds, report) for item in items]
    return RouteTable(tuple(route for route in routes if route is not None))


def _route(item: Any, kinds: Mapping[str, KindDef], report: Report) -> RouteDef | None:
    file = ROUTES_FILE
    node = mapping(item, "a route", file, getattr(item, "line", 1), report)
    required = ["method", "path", "action", "kind", "tenant"]
    if node is None or not check_fields(node, "a route", required, ["id"], file, report):
        return None
    line = node.line
    method = node["method"]
    methods = [method] if isinstance(method, str) else method
    if not isinstance(methods, list) or not methods or not set(methods) <= _METHODS:
        report.error("invalid_method", f"`method` must be one of {sorted(_METHODS)}", file, line)
        return None
    segments = _segments(node["path"], file, line, report)
    if segments is None:
        return None
    kind, action = node["kind"], node["action"]
    if not isinstance(kind, str) or kind not in kinds:
        report.error("unknown_kind", f"route kind `{excerpt(kind)}` is not defined", file, line)
        return None
    if not isinstance(action, str) or action not in kinds[kind].actions:
        message = f"kind `{kind}` has no action `{excerpt(action)}`"
        report.error("unknown_action", message, file, line)
        return None
    params = {segment[1:-1] for segment in segments if segment.startswith("{")}
    sources = [
        _source(node.get(key, ""), key, params, file, line, report) for key in ("id", "tenant")
    ]
    if sources[0] is None or sources[1] is None:
        return None
    return RouteDef(
        frozenset(methods), node["path"], segments, action, kind, sources[0], sources[1], line
    )


def _segments(path: Any, file: str, line: int, report: Report) -> tuple[str, ...] | None:
    parts = path.split("/")[1:] if isinstance(path, str) and path.startswith("/") else None
    if parts is None or len(parts) > _MAX_SEGMENTS or any(_bad(part) for part in parts):
        report.error(
            "invalid_path",
            f"`path` `{excerpt(path)}` must start with `/`, have up to {_MAX_SEGMENTS} segments, "
            "and use `{name}` for a whole segment",
            file,
            line,
        )
        return None
    return tuple(parts)


def _bad(part: str) -> bool:
    if part.startswith("{"):
        return not (part.endswith("}") and part[1:-1].isidentifier())
    return "{" in part or "}" in part


def _source(
    value: Any, key: str, params: set[str], file: str, line: int, report: Report
) -> str | None:
    if not isinstance(value, str) or len(value) > 256:
        report.error("invalid_type", f"route `{key}` must be a string", file, line)
        return None
    if value.startswith("{") and value[1:-1] not in params:
        message = f"route `{key}` names `{excerpt(value)}`, which is not a parameter of its path"
        report.error("unknown_parameter", message, file, line)
        return None
    if value.startswith(_HEADER) and not value[len(_HEADER) :]:
        report.error("invalid_type", f"route `{key}` names no header", file, line)
        return None
    return value.lower() if value.startswith(_HEADER) else value
