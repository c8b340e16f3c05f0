"""Role inheritance, resolved in one place for the loader, the engine and the review tools.

A principal holding a role holds every role that role inherits, transitively; the loader
refuses cycles and chains deeper than the engine allows before anything resolves them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from cnm_policy.policy.bundle import RoleDef

__all__ = ["inheritance_depths", "role_closures"]


def role_closures(roles: Mapping[str, RoleDef]) -> dict[str, frozenset[str]]:
    """For each role, itself plus every role it inherits, transitively (a cycle ends the walk).

    A rule naming any role of R's closure applies to a holder of R, allows and denies alike.
    """
    closures: dict[str, frozenset[str]] = {}
    for role in roles:
        seen = {role}
        pending = [role]
        while pending:
            definition = roles.get(pending.pop())
            for parent in definition.inherits if definition is not None else ():
                if parent not in seen:
                    seen.add(parent)
                    pending.append(parent)
        closures[role] = frozenset(seen)
    return closures


def inheritance_depths(roles: Mapping[str, RoleDef]) -> dict[str, int | None]:
    """The longest chain of inherited roles below each role; ``None`` if it reaches a cycle.

    Each role is walked once (a depth-first walk with memory), so a bundle of many roles that
    share ancestors costs linear time, and long chains need no recursion.
    """
    depths: dict[str, int | None] = {}
    for start in roles:
        if start not in depths:
            _walk(start, roles, depths)
    return depths


def _walk(start: str, roles: Mapping[str, RoleDef], depths: dict[str, int | None]) -> None:
    """Fill `depths` for `start` and every role it reaches that has none yet."""
    stack: list[tuple[str, Iterator[str]]] = [(start, iter(roles[start].inherits))]
    on_path = {start}
    cyclic: set[str] = set()
    while stack:
        role, parents = stack[-1]
        parent = next(parents, None)
        if parent is None:
            stack.pop()
            on_path.discard(role)
            below = [depths.get(p, 0) for p in roles[role].inherits]
            cycle = role in cyclic or None in below
            depths[role] = (
                None if cycle else max((1 + d for d in below if d is not None), default=0)
            )
        elif parent in on_path:
            cyclic.add(role)
        elif parent in roles and parent not in depths:
            on_path.add(parent)
            stack.append((parent, iter(roles[parent].inherits)))
