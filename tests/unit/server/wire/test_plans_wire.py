"""Plans on the wire: every filter node survives the trip through `PlanNode` unchanged."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cnm_policy.server.wire.plans import node_from_proto, node_to_proto

_FIELDS = st.sampled_from(["tenant", "id", "attributes.site", "attributes.vlan"])
_SCALARS = st.one_of(st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=8), st.just(1.5))
_LEAVES = st.one_of(
    st.booleans(),
    st.builds(lambda f, v, o: {"op": o, "field": f, "value": v}, _FIELDS, _SCALARS,
              st.sampled_from(["eq", "lt", "le", "gt", "ge"])),
    st.builds(lambda f, vs: {"op": "in", "field": f, "values": vs}, _FIELDS,
              st.lists(st.text(max_size=5), max_size=4)),
    st.builds(lambda f: {"op": "is_null", "field": f}, _FIELDS),
    st.builds(lambda f: {"op": "present", "field": f}, _FIELDS),
    st.builds(lambda f, t: {"op": "is_type", "field": f, "type": t}, _FIELDS,
              st.sampled_from(["boolean", "number", "string", "list", "object"])),
    st.builds(lambda r: {"op": "within", "field": "tenant", "root": r},
              st.sampled_from(["acme", "acme/emea", "a%_b"])),
)  # fmt: skip
_NODES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.builds(lambda a: {"op": "and", "args": a}, st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda a: {"op": "or", "args": a}, st.lists(inner, min_size=2, max_size=3)),
        st.builds(lambda a: {"op": "not", "arg": a}, inner),
    ),
    max_leaves=12,
)


@given(node=_NODES)
def test_every_node_round_trips(node: Any) -> None:
    """`node_from_proto(node_to_proto(n)) == n` for the whole node set, nested."""
    assert node_from_proto(node_to_proto(node)) == node
