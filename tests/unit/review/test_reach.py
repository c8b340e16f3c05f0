"""The reach order: scopes, tenant pins and conditions."""

from __future__ import annotations

import pytest

from cnm_policy.policy import Scope, compile_condition
from cnm_policy.review.reach import (
    Reach,
    condition_text,
    scope_covers,
    tenants_cover,
)


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        (Scope.ANY, Scope.OWN, True),
        (Scope.ANY, Scope.ASSIGNED, True),
        (Scope.SUBTREE, Scope.OWN, True),
        (Scope.OWN, Scope.SUBTREE, False),
        (Scope.SUBTREE, Scope.ASSIGNED, False),
        (Scope.ASSIGNED, Scope.SUBTREE, False),
        (Scope.SUBTREE, Scope.ANY, False),
        (Scope.ASSIGNED, Scope.ASSIGNED, True),
    ],
)
def test_scope_order(outer: Scope, inner: Scope, expected: bool) -> None:
    """own < subtree < any and assigned < any; assigned is incomparable with own/subtree."""
    assert expected == scope_covers(outer, inner)


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ((), (), True),
        ((), ("acme",), True),
        (("acme",), (), False),
        (("acme",), ("acme/emea",), True),
        (("acme/emea",), ("acme",), False),
        (("acme",), ("acme-evil",), False),
        (("acme", "globex"), ("globex/x", "acme"), True),
    ],
)
def test_tenant_pins(outer: tuple[str, ...], inner: tuple[str, ...], expected: bool) -> None:
    """No pins admit everything; pins cover only tenants inside them, segment-wise."""
    assert expected == tenants_cover(outer, inner)


def test_no_condition_covers_a_condition_but_not_the_reverse() -> None:
    """A condition can only narrow a reach; different conditions are unrelated."""
    plain = Reach(Scope.SUBTREE)
    mfa = Reach(Scope.SUBTREE, condition="principal.attributes.mfa == true")
    other = Reach(Scope.SUBTREE, condition="has(context.change_ticket)")
    assert (
        plain.covers(mfa),
        mfa.covers(plain),
        mfa.covers(other),
        mfa.covers(mfa),
    ) == (True, False, False, True)


def test_condition_text_ignores_spacing_and_redundant_parentheses() -> None:
    """Reformatting a condition is not a change."""
    first = compile_condition("(principal.attributes.mfa==true)")
    second = compile_condition("principal.attributes.mfa  ==  true")
    assert condition_text(first) == condition_text(second) == "principal.attributes.mfa == true"


def test_describe_scope_lists_pins() -> None:
    """A pinned reach names its tenants."""
    assert Reach(Scope.ANY, ("acme", "globex")).describe_scope() == "any within `acme`, `globex`"
