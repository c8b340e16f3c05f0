"""The condition language: strict, total, data-only, and honest about time."""

from __future__ import annotations

from typing import Any

import pytest

from cnm_policy.errors import ConditionError, ConditionSyntaxError
from cnm_policy.policy.conditions import EvalEnv, compile_condition

NOW = 1_768_478_400.0  # 2026-01-15T12:00:00Z


def env(
    principal_attrs: dict[str, Any] | None = None,
    resource_attrs: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    now: float = NOW,
) -> EvalEnv:
    """An evaluation environment with these attributes, context and clock."""
    principal = {"id": "u-1", "tenant": "acme", "roles": ["r"], "attributes": principal_attrs or {}}
    resource = {
        "kind": "device",
        "id": "d-1",
        "tenant": "acme/x",
        "attributes": resource_attrs or {},
    }
    return EvalEnv(principal, "read", resource, context or {}, now)


def evaluate(source: str, environment: EvalEnv | None = None) -> bool:
    """Compile `source` and evaluate it in `environment` (a default one if None)."""
    return compile_condition(source).evaluate(environment or env())


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("principal.attributes.mfa == true", True),
        ("principal.attributes.mfa != true", False),
        ("resource.attributes.missing == null", True),
        ("resource.attributes.missing != true", True),
        ("principal.attributes.level >= 3 and principal.attributes.level < 5", True),
        ("principal.tenant == 'acme' or false", True),
        ("not (resource.kind == 'device')", False),
        ("action in ['read', 'export']", True),
        ("'noc' in principal.attributes.teams", True),
        ("context['x-y'] == 2", True),
        ("has(context.change_ticket)", False),
        ("lower(principal.attributes.name) == 'ada'", True),
        ("len(principal.attributes.teams) == 2", True),
        ("principal.attributes.teams[0] == 'noc'", True),
        ("principal.attributes.level == 3.0", True),
    ],
)
def test_expressions(source: str, expected: bool) -> None:
    """Each supported construct evaluates as documented."""
    environment = env(
        {"mfa": True, "level": 3, "teams": ["noc", "core"], "name": "Ada"},
        context={"x-y": 2},
    )
    assert evaluate(source, environment) is expected


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os').system('true')",
        "(lambda: True)()",
        "[x for x in [1]]",
        "principal.secret == 1",
        "resource",
        "1 < 2 < 3",
        "open('/etc/passwd')",
        "principal.attributes.mfa is True",
        "foo == 1",
        "principal.attributes[principal.id]",
        "",
    ],
)
def test_rejected_at_load(source: str) -> None:
    """Anything outside the allow-listed grammar is a load-time syntax error."""
    with pytest.raises(ConditionSyntaxError):
        compile_condition(source)


def test_dunder_attribute_reads_as_missing_data() -> None:
    """Attribute names are dictionary keys: `__class__` is just an absent key, not Python."""
    assert evaluate("principal.attributes.__class__ == null") is True


def test_request_values_are_never_code() -> None:
    """A request value that looks like an expression is compared as a plain string."""
    hostile = env({"role": "true or 1 == 1", "mfa": "__import__('os').system('x')"})
    assert evaluate("principal.attributes.role == 'admin'", hostile) is False
    assert evaluate("principal.attributes.mfa == 'x'", hostile) is False


@pytest.mark.parametrize(
    "source",
    [
        "principal.attributes.mfa",  # not a boolean result
        "principal.attributes.level and true",  # `and` on a number
        "principal.attributes.name < 3",  # ordering string vs number
        "'x' in principal.attributes.level",  # `in` on a number
        "principal.attributes.level.deeper == 1",  # field of a number
    ],
)
def test_runtime_errors_are_condition_errors(source: str) -> None:
    """Type confusion raises ConditionError (the engine turns it into a deny)."""
    with pytest.raises(ConditionError):
        evaluate(source, env({"mfa": "yes", "level": 3, "name": "ada"}))


WINDOW = "within_window(context.window)"


def window(start: str, end: str) -> dict[str, Any]:
    """A context with a window from `start` to `end`."""
    return {"window": {"start": start, "end": end}}


def test_window_open_expires_at_end() -> None:
    """Inside the window: true, and the answer is valid only until the window ends."""
    environment = env(context=window("2026-01-15T11:00:00Z", "2026-01-15T13:00:00+00:00"))
    assert evaluate(WINDOW, environment) is True
    assert environment.valid_until == NOW + 3600


def test_window_future_expires_at_start() -> None:
    """Before the window: false until it opens."""
    environment = env(context=window("2026-01-15T14:00:00Z", "2026-01-15T15:00:00Z"))
    assert evaluate(WINDOW, environment) is False
    assert environment.valid_until == NOW + 7200


def test_window_past_never_expires() -> None:
    """After the window: false for good."""
    environment = env(context=window("2026-01-14T14:00:00Z", "2026-01-14T15:00:00Z"))
    assert evaluate(WINDOW, environment) is False
    assert environment.valid_until is None


def test_window_missing_is_false() -> None:
    """No window in the request means not inside one."""
    assert evaluate(WINDOW) is False


@pytest.mark.parametrize(
    "value",
    [
        {"start": "tomorrow", "end": "2026-01-15T15:00:00Z"},
        {"start": "2026-01-15T15:00:00", "end": "2026-01-15T16:00:00Z"},  # no offset
        {"start": "2026-01-15T15:00:00Z", "end": "2026-01-15T14:00:00Z"},  # end before start
        "all day",
    ],
)
def test_bad_windows_error(value: Any) -> None:
    """Malformed windows are errors, never silently open."""
    with pytest.raises(ConditionError):
        evaluate(WINDOW, env(context={"window": value}))


def test_before_and_after() -> None:
    """`before`/`after` compare with the injected clock and record the flip time."""
    environment = env(context={"t": NOW + 60})
    assert evaluate("before(context.t)", environment) is True
    assert environment.valid_until == NOW + 60
    assert evaluate("after(context.t)", env(context={"t": NOW + 60})) is False


def test_uses_clock_flag() -> None:
    """Conditions that read the clock say so (the cache relies on it)."""
    assert compile_condition(WINDOW).uses_clock is True
    assert compile_condition("principal.attributes.mfa == true").uses_clock is False


# --- typed comparisons (issue #17 item 9): mismatched types are errors, never false ----------

TYPED = {
    "flag": True,
    "count": 3,
    "ratio": 3.0,
    "name": "ada",
    "teams": ["noc", "core"],
    "nested": {"a": 1},
    "empty": None,
}


@pytest.mark.parametrize(
    "source",
    [
        "principal.attributes.name == true",  # string vs boolean
        "principal.attributes.count == true",  # number vs boolean: a boolean is no number
        "principal.attributes.flag == 1",
        "principal.attributes.flag != 1",
        "principal.attributes.name != 3",
        "principal.attributes.count == '3'",
        "principal.attributes.teams == 'noc'",
        "principal.attributes.nested == []",
        "principal.attributes.teams == [1, 2]",  # element types differ
        "[1, 2, 3] == [1, 'a']",  # a mismatch raises whatever the lengths
        "[1, 'a'] != [1, 2, 3]",
        "principal.attributes.teams == ['noc', 1, 2]",
        "[true] == [1]",
        "[[1]] == [['1']]",
        "principal.attributes.count in ['3', '4']",
        "principal.attributes.flag in [1, 2]",
        "principal.attributes.flag not in ['true']",
        "'noc' in ['noc', 1]",  # every element is checked, wherever the match is
        "3 in principal.attributes.nested",  # object keys are strings
    ],
)
def test_mismatched_types_are_errors(source: str) -> None:
    """Comparing values of different types raises ConditionError instead of answering."""
    with pytest.raises(ConditionError):
        evaluate(source, env(TYPED))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("principal.attributes.count == 3.0", True),  # int and float are both numbers
        ("principal.attributes.ratio != 3", False),
        ("principal.attributes.missing == null", True),  # a missing attribute reads as null
        ("principal.attributes.empty == null", True),
        ("principal.attributes.missing != null", False),
        ("principal.attributes.missing == true", False),  # null vs a value: unequal, no error
        ("principal.attributes.missing != true", True),
        ("principal.attributes.flag != null", True),
        ("principal.attributes.missing in ['a', 'b']", False),
        ("principal.attributes.missing in ['a', null]", True),
        ("'a' in ['a', null]", True),
        ("principal.attributes.teams == ['noc', 'core']", True),
        ("principal.attributes.teams == ['noc']", False),  # lengths differ: unequal
        ("[[1]] == [[1.0]]", True),
        ("'a' in principal.attributes.nested", True),
        ("principal.attributes.missing in principal.attributes.nested", False),
    ],
)
def test_typed_comparisons(source: str, expected: bool) -> None:
    """Same-type comparisons answer; null compares unequal to any value, without error."""
    assert evaluate(source, env(TYPED)) is expected


def test_object_equality_is_typed() -> None:
    """Objects are equal when their keys match and each value compares equal, strictly."""
    same = env({"a": {"x": 1, "y": [True]}, "b": {"x": 1.0, "y": [True]}})
    assert evaluate("principal.attributes.a == principal.attributes.b", same) is True
    differ = env({"a": {"x": 1}, "b": {"x": "1"}})
    with pytest.raises(ConditionError):
        evaluate("principal.attributes.a == principal.attributes.b", differ)
    other_keys = env({"a": {}, "b": {"z": 1}})
    assert evaluate("principal.attributes.a == principal.attributes.b", other_keys) is False


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"x": 1}, {"x": "1", "y": 2}),  # key sets differ; the shared key still compares
        ({"x": [1, 2, 3]}, {"x": [True]}),
        ([{"x": 1}, {}], [{"x": False}]),
    ],
)
def test_a_nested_type_mismatch_raises_whatever_the_shapes(a: object, b: object) -> None:
    """A mismatch at any position both sides fill raises, before lengths or key sets answer."""
    for source in (
        "principal.attributes.a == principal.attributes.b",
        "principal.attributes.b != principal.attributes.a",
    ):
        with pytest.raises(ConditionError):
            evaluate(source, env({"a": a, "b": b}))


def test_collections_of_other_shapes_without_a_mismatch_are_unequal() -> None:
    """No position both sides fill disagrees in type: lengths and key sets answer, no error."""
    pairs = [([1, 2, 3], [1, 2]), ({"x": 1}, {"y": "1"}), ({"x": None}, {}), ([], ["a"])]
    actual = [
        evaluate("principal.attributes.a == principal.attributes.b", env({"a": a, "b": b}))
        for a, b in pairs
    ]
    assert actual == [False, False, False, False]


def test_mismatch_error_names_types_not_values() -> None:
    """The message names the operator and the two types; the request value is never echoed."""
    with pytest.raises(ConditionError) as caught:
        evaluate("principal.attributes.name == true", env({"name": "x" * 10_000}))
    assert str(caught.value) == "`==` compares a string with a boolean"
