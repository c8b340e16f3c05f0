"""Condition texts from hostile bundles: bounded depth and length, located codes, good hints."""

from __future__ import annotations

import pytest

from cnm_policy.errors import ConditionSyntaxError
from cnm_policy.policy.conditions import (
    MAX_CONDITION_DEPTH,
    MAX_CONDITION_LENGTH,
    compile_condition,
)
from tests.conftest import BundleFactory
from tests.unit.policy.test_loader import only_problem, rule_file


def refusal(source: str) -> ConditionSyntaxError:
    """The syntax error compiling `source` raises."""
    with pytest.raises(ConditionSyntaxError) as caught:
        compile_condition(source)
    return caught.value


@pytest.mark.parametrize(
    "source",
    [
        "not " * 500 + "principal.attributes.mfa == true",
        "-" * 1000 + "1 == 1",
        "(" * 300 + "true" + ")" * 300,
        "len(" * 100 + "context.x" + ")" * 100 + " == 1",
        "[" * 100 + "]" * 100 + " == context.x",
    ],
)
def test_deep_conditions_are_refused_with_their_own_code(source: str) -> None:
    """Nesting past MAX_CONDITION_DEPTH is `condition_too_deep`, never a RecursionError."""
    error = refusal(source)
    assert error.code == "condition_too_deep"
    assert len(str(error)) < 200


def test_nesting_at_the_limit_still_compiles() -> None:
    """A condition just inside the depth limit is ordinary."""
    depth = MAX_CONDITION_DEPTH - 3  # `not`s, then the comparison and its two operands
    source = "not " * depth + "context.x == true"
    assert compile_condition(source).evaluate is not None


def test_a_condition_longer_than_the_limit_is_refused() -> None:
    """A huge condition text is refused before parsing, without echoing it."""
    source = " or ".join(["context.x == 1"] * (MAX_CONDITION_LENGTH // 10))
    error = refusal(source)
    assert error.code == "condition_too_long"
    assert len(str(error)) < 200


def test_a_misspelt_root_field_suggests_the_real_one() -> None:
    """`principal.atributes.mfa` suggests `attributes`, not `principal.attributes.atributes`."""
    error = refusal("principal.atributes.mfa == true")
    expected = "unknown field `atributes` of `principal`; did you mean `attributes`?"
    assert expected == str(error)


def test_an_attribute_written_as_a_field_suggests_attributes() -> None:
    """`resource.shared` is probably an attribute: the hint says where attributes live."""
    error = refusal("resource.shared == true")
    expected = "unknown field `shared` of `resource`; did you mean `resource.attributes.shared`?"
    assert expected == str(error)


def test_a_deep_condition_in_a_bundle_is_located(make_bundle: BundleFactory) -> None:
    """The rule file and the `when:` line carry the condition_too_deep code."""
    deep = "not " * 500 + "principal.attributes.mfa == true"
    path = make_bundle({"rules/x.yaml": rule_file(extra=f"    when: {deep}\n")})
    problem = only_problem(path)
    assert (problem.code, problem.file, problem.line) == ("condition_too_deep", "rules/x.yaml", 9)
    assert len(problem.message) < 300
