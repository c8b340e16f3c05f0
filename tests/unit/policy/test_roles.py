"""Role inheritance: closures and depths, on small graphs, random graphs and hostile ones."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.policy import RoleDef, Side
from cnm_policy.policy.roles import inheritance_depths, role_closures


def roles_of(graph: dict[str, tuple[str, ...]]) -> dict[str, RoleDef]:
    """Customer roles inheriting as `graph` says (parents may be undefined)."""
    return {
        role: RoleDef(role, Side.CUSTOMER, parents, "", "roles.yaml", 1)
        for role, parents in graph.items()
    }


def longest_chain(
    role: str, graph: dict[str, tuple[str, ...]], path: tuple[str, ...]
) -> int | None:
    """The depth by its definition: every path tried, ``None`` when one comes back round."""
    if role in path:
        return None
    if not graph.get(role):
        return 0
    depths = [longest_chain(parent, graph, (*path, role)) for parent in graph[role]]
    return None if None in depths else 1 + max(d for d in depths if d is not None)


def reachable(role: str, graph: dict[str, tuple[str, ...]]) -> set[str]:
    """Every role reachable from `role` through one or more inherits, plus itself."""
    found = {role}
    for _ in graph:
        found |= {parent for known in found for parent in graph.get(known, ())}
    return found


def test_closures_follow_inheritance_transitively() -> None:
    """Each role's closure is itself and every role it inherits, directly or not."""
    graph = {"a": ("b",), "b": ("c",), "c": (), "d": ()}
    expected = {
        "a": frozenset({"a", "b", "c"}),
        "b": frozenset({"b", "c"}),
        "c": frozenset({"c"}),
        "d": frozenset({"d"}),
    }
    assert expected == role_closures(roles_of(graph))


def test_depths_count_the_longest_chain_and_mark_cycles() -> None:
    """A diamond counts its longer side; a role reaching a cycle has no depth."""
    graph = {"a": ("b", "c"), "b": ("d",), "c": (), "d": (), "x": ("y",), "y": ("z",), "z": ("y",)}
    expected = {"a": 2, "b": 1, "c": 0, "d": 0, "x": None, "y": None, "z": None}
    assert expected == inheritance_depths(roles_of(graph))


def test_an_undefined_parent_counts_as_one_level() -> None:
    """A parent with no definition (the loader reports it) ends the chain below it."""
    roles = roles_of({"a": ("ghost",)})
    assert (inheritance_depths(roles), role_closures(roles)) == (
        {"a": 1},
        {"a": frozenset({"a", "ghost"})},
    )


NAMES = st.sampled_from([f"r{n}" for n in range(7)])


@given(st.dictionaries(NAMES, st.lists(NAMES, max_size=3).map(tuple), max_size=7))
def test_closures_and_depths_match_their_definitions(graph: dict[str, tuple[str, ...]]) -> None:
    """On any graph, closures are the reachable roles and depths the longest chains."""
    assert {r: frozenset(reachable(r, graph)) for r in graph} == role_closures(roles_of(graph))
    assert {r: longest_chain(r, graph, ()) for r in graph} == inheritance_depths(roles_of(graph))


def test_many_roles_sharing_ancestors_are_walked_once_each() -> None:
    """Two thousand roles, each inheriting the next two, take well under a second.

    Trying every path instead takes exponential time (30 such roles took seconds).
    """
    size = 2000
    graph = {f"r{n}": tuple(f"r{m}" for m in (n + 1, n + 2) if m < size) for n in range(size)}
    started = time.monotonic()
    depths = inheritance_depths(roles_of(graph))
    assert time.monotonic() - started < 1.0
    assert (depths["r0"], depths[f"r{size - 1}"]) == (size - 1, 0)
