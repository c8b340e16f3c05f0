"""The bounded YAML reader: aliases, nesting and keys cannot cost more than the text allows."""

from __future__ import annotations

import time

import pytest

from cnm_policy.errors import YamlError
from cnm_policy.policy._yaml import LineDict, load_yaml
from cnm_policy.policy._yaml_bounds import (
    MAX_ALIAS_EXPANSION,
    MAX_COLLECTION_ITEMS,
    MAX_FILE_WEIGHT,
    MAX_YAML_DEPTH,
    NodeBudget,
)


def alias_bomb(levels: int, key: str = "value", width: int = 9) -> str:
    """A billion-laughs document: each anchor lists `width` aliases of the previous one."""
    lines = ["a0: &a0 [lol]"]
    for level in range(1, levels + 1):
        aliases = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    lines.append(f"{key}: *a{levels}")
    return "\n".join(lines) + "\n"


def error_of(text: str) -> YamlError:
    """The YamlError loading `text` raises."""
    with pytest.raises(YamlError) as caught:
        load_yaml(text)
    return caught.value


def test_an_alias_bomb_is_refused_quickly_with_a_line() -> None:
    """Nine levels of nine aliases (387 million nodes) fail in well under a second."""
    started = time.monotonic()
    error = error_of(alias_bomb(9))
    assert (error.code, error.line) == ("alias_expansion_too_large", 6)
    assert time.monotonic() - started < 1.0
    assert len(str(error)) < 200


def test_an_alias_bomb_used_as_a_key_is_refused() -> None:
    """A mapping key made of aliases is refused before anything is constructed."""
    text = alias_bomb(9).replace("value: *a9", "? *a9\n: x")
    assert error_of(text).code == "alias_expansion_too_large"


def test_a_collection_as_a_mapping_key_is_refused() -> None:
    """Keys must be plain values: a list key would be formatted into messages as text."""
    error = error_of("top:\n  ? [a, b]\n  : x\n")
    assert (error.code, error.line) == ("invalid_key", 2)


def test_a_recursive_alias_is_refused() -> None:
    """An anchor that contains its own alias is a cycle, not an infinite structure."""
    error = error_of("a: &a [x, *a]\n")
    assert (error.code, error.line) == ("recursive_alias", 1)


def test_modest_alias_reuse_still_loads() -> None:
    """Sharing a small fixture through anchors is ordinary YAML and keeps working."""
    data, _ = load_yaml("base: &base {mfa: true}\none: *base\ntwo: {<<: *base, x: 1}\n")
    assert data == {"base": {"mfa": True}, "one": {"mfa": True}, "two": {"mfa": True, "x": 1}}


def test_alias_expansion_just_under_the_budget_loads() -> None:
    """The budget counts what aliases add: a document right under it is accepted."""
    width = MAX_ALIAS_EXPANSION // 3  # an alias of `[x]` adds 3: the list, the scalar, `x`

    def text(aliases: int) -> str:
        return "a: &a [x]\nb: [" + ", ".join(["*a"] * aliases) + "]\n"

    data, _ = load_yaml(text(width))
    assert width == len(data["b"])
    assert error_of(text(width + 1)).code == "alias_expansion_too_large"


def test_nesting_deeper_than_the_limit_is_refused_at_its_line() -> None:
    """Block mappings nested past MAX_YAML_DEPTH name the line where the limit is crossed."""
    text = "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "x\n"
    error = error_of(text)
    assert (error.code, error.line) == ("nesting_too_deep", MAX_YAML_DEPTH + 1)


def test_flow_nesting_deeper_than_libyaml_allows_is_nesting_too_deep() -> None:
    """Ten thousand `[` are refused with the same code, never a RecursionError."""
    error = error_of("a: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert error.code == "nesting_too_deep"


def test_nesting_through_aliases_counts() -> None:
    """An alias of a deep anchor placed deep again is as deep as the two together."""
    half = MAX_YAML_DEPTH // 2 + 1
    deep = "[" * half + "x" + "]" * half
    text = f"a: &a {deep}\nb: " + "[" * half + "*a" + "]" * half + "\n"
    assert error_of(text).code == "nesting_too_deep"


def test_a_number_too_long_to_convert_is_a_yaml_error() -> None:
    """An integer of 5,000 digits is an error with a line, not a ValueError traceback."""
    error = error_of("n: " + "9" * 5000 + "\n")
    assert (error.code, error.line) == ("yaml_invalid", 1)


def test_lines_are_still_recorded() -> None:
    """Mappings keep the line of each key after the shape check."""
    data, duplicates = load_yaml("a: 1\nb:\n  c: 2\na: 3\n")
    assert isinstance(data, LineDict)
    assert (data.line, data.line_of("b")) == (1, 2)
    assert duplicates == [("a", 4)]


@pytest.mark.parametrize("text", ["just text\n", "&a just text\n", ""])
def test_a_scalar_or_empty_document_loads(text: str) -> None:
    """Documents without collections pass both shape checks unchanged."""
    expected = "just text" if text else None
    assert (expected, []) == load_yaml(text)


def test_an_impossible_date_is_a_yaml_error() -> None:
    """`2026-02-30` matches YAML's timestamp pattern; it is a located error, not a crash."""
    error = error_of("a: 1\nnow: 2026-02-30\n")
    assert (error.code, error.line) == ("yaml_invalid", 2)


def test_a_file_too_heavy_is_refused_before_it_is_composed() -> None:
    """Dense YAML (`- {}` per line, 8 each) past MAX_FILE_WEIGHT fails at the line crossing it."""
    text = "- {}\n" * (MAX_FILE_WEIGHT // 8 + 1)
    started = time.monotonic()
    error = error_of(text)
    assert (error.code, error.line) == ("yaml_too_large", MAX_FILE_WEIGHT // 8)
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("text", ["a: [1, {b: 2}]\n", "a: [&x 1, {b: 2}]\n"])
def test_both_shape_checks_weigh_the_same(text: str) -> None:
    """With or without anchors (two code paths), a mapping weighs 8, a list 4, a scalar 1."""
    budget = NodeBudget(total=1000)
    load_yaml(text, budget)
    assert 1000 - budget.left == 8 + 1 + 4 + 1 + 8 + 1 + 1


def test_a_bundle_budget_is_shared_by_its_files() -> None:
    """Files that fit alone still may not hold more than the budget together."""
    budget = NodeBudget(total=20)
    assert load_yaml("a: [1, 2]\n", budget)[0] == {"a": [1, 2]}  # 8 + 1 + 4 + 2
    with pytest.raises(YamlError) as caught:
        load_yaml("b: [1, 2, 3]\n", budget)  # 16 more
    assert (caught.value.code, caught.value.line) == ("bundle_too_large", None)


def test_the_weight_is_checked_after_composing_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the per-character estimate that skips the event pass be wrong, the file is refused."""
    from cnm_policy.policy import _yaml  # noqa: PLC0415

    monkeypatch.setattr(_yaml, "MAX_FILE_WEIGHT", 20)
    monkeypatch.setattr(_yaml, "MAX_WEIGHT_PER_CHARACTER", 0)  # skip the event pass
    assert error_of("a: [{}, {}]\n").code == "yaml_too_large"


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!set {a, b}", "!!set"), ("!!binary aGVsbG8=", "!!binary"), ("!!omap [a: 1]", "!!omap")],
)
def test_types_no_json_request_carries_are_refused_at_their_line(value: str, tag: str) -> None:
    """Sets, bytes and ordered maps are located `unsupported_yaml_type` errors naming the tag."""
    error = error_of(f"a: 1\nb: {value}\n")
    assert (error.code, error.line, f"`{tag}`" in str(error)) == (
        "unsupported_yaml_type",
        2,
        True,
    )


def test_an_unquoted_timestamp_stays_the_string_written() -> None:
    """`2024-01-01` and `2026-01-15T10:00:00Z` unquoted are strings, as a request carries them."""
    data, _ = load_yaml("t: 2024-01-01\nnow: 2026-01-15T10:00:00Z\n")
    assert data == {"t": "2024-01-01", "now": "2026-01-15T10:00:00Z"}


def test_a_long_list_below_the_top_level_is_refused_at_its_start_quickly() -> None:
    """A 400,000-item `description` list fails at its line without being built."""
    text = "rules:\n  - id: r\n    description: [" + ", ".join(["1"] * 400_000) + "]\n"
    started = time.monotonic()
    error = error_of(text)
    assert (error.code, error.line) == ("collection_too_large", 3)
    assert time.monotonic() - started < 1.0


def test_top_level_lists_and_short_nested_ones_may_be_long() -> None:
    """`rules:` itself may hold more than MAX_COLLECTION_ITEMS items; a nested list up to it."""
    many = "[" + ", ".join(["1"] * (MAX_COLLECTION_ITEMS + 1)) + "]"
    nested = "[" + ", ".join(["1"] * MAX_COLLECTION_ITEMS) + "]"
    data, _ = load_yaml(f"rules: {many}\nfixtures: {{p: {{a: {nested}}}}}\n")
    assert (len(data["rules"]), len(data["fixtures"]["p"]["a"])) == (
        MAX_COLLECTION_ITEMS + 1,
        MAX_COLLECTION_ITEMS,
    )


def test_a_precheck_refuses_texts_surely_heavier_than_the_budget_left() -> None:
    """libyaml's event count bounds the weight from below: over the budget, refused unbuilt."""
    heavy = "a: [" + ", ".join(["1"] * 300) + "]\n"  # 300+ events, 300+ units
    budget = NodeBudget(total=1000, spent=800)
    assert (budget.precheck(["b: 1\n"]), budget.precheck([heavy, heavy]), budget.left) == (
        True,
        False,
        -1,
    )


def test_a_text_libyaml_refused_while_counting_is_not_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The precheck keeps libyaml's located error; loading that text raises it unparsed."""
    from cnm_policy.policy import _yaml  # noqa: PLC0415

    broken = "a: [" + ", ".join(["1"] * 30_000) + "]\nb: ]\n"
    budget = NodeBudget(total=1000)
    assert budget.precheck([broken]) is True  # an invalid text adds nothing to the bound

    def never(text: str) -> None:
        raise AssertionError("parsed a second time")

    monkeypatch.setattr(_yaml, "weigh_events", never)
    with pytest.raises(YamlError) as caught:
        load_yaml(broken, budget)
    assert (caught.value.code, caught.value.line) == ("yaml_invalid", 2)
