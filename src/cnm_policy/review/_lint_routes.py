"""Lint for `routes.yaml`: routes that can never match, and routes that overlap.

Unknown kinds and actions are validation errors already (the loader refuses the bundle); what
is left is order: routes are tried in file order, so a route that an earlier one covers never
decides, and two that overlap decide by position, which a reviewer should see.
"""

from __future__ import annotations

from collections.abc import Iterator

from cnm_policy.policy import Bundle
from cnm_policy.policy._routes import ROUTES_FILE, RouteDef

__all__ = ["RouteFinding", "route_findings"]

# (code, message, file, line)
RouteFinding = tuple[str, str, str, int]


def route_findings(bundle: Bundle) -> Iterator[RouteFinding]:
    """`route_unreachable` for a route an earlier one covers, else `route_overlap`."""
    routes = bundle.routes.routes if bundle.routes is not None else ()
    for index, later in enumerate(routes):
        for earlier in routes[:index]:
            if _covers(earlier, later):
                message = (
                    f"route `{_name(later)}` never matches: `{_name(earlier)}` (line "
                    f"{earlier.line}) comes first and matches every request it would"
                )
                yield ("route_unreachable", message, ROUTES_FILE, later.line)
                break
            if _overlap(earlier, later):
                message = (
                    f"route `{_name(later)}` overlaps `{_name(earlier)}` (line {earlier.line}): "
                    "requests both match are decided by the earlier one"
                )
                yield ("route_overlap", message, ROUTES_FILE, later.line)
                break


def _name(route: RouteDef) -> str:
    return f"{'|'.join(sorted(route.methods))} {route.template}"


def _param(segment: str) -> bool:
    return segment.startswith("{")


def _overlap(a: RouteDef, b: RouteDef) -> bool:
    if len(a.segments) != len(b.segments):
        return False
    if "*" not in a.methods and "*" not in b.methods and a.methods.isdisjoint(b.methods):
        return False
    return all(
        _param(x) or _param(y) or x == y for x, y in zip(a.segments, b.segments, strict=True)
    )


def _covers(a: RouteDef, b: RouteDef) -> bool:
    """Every request `b` matches, `a` matches too (same length, `a` as general everywhere)."""
    if len(a.segments) != len(b.segments):
        return False
    if "*" not in a.methods and not b.methods <= a.methods:
        return False
    return all(_param(x) or x == y for x, y in zip(a.segments, b.segments, strict=True))
