"""YAML reading that remembers line numbers: every bundle and test file goes through `load_yaml`.

PyYAML's safe loader (no object construction from tags) yields :class:`LineDict` and
:class:`LineList`, which carry each key's and item's line; duplicate keys, which PyYAML
silently overwrites, are reported. What a document may cost is bounded first (`_yaml_bounds`).
"""

from __future__ import annotations

from typing import Any

import yaml

from cnm_policy.errors import YamlError
from cnm_policy.policy._yaml_bounds import (
    MAX_COLLECTION_ITEMS,
    MAX_FILE_WEIGHT,
    MAX_WEIGHT_PER_CHARACTER,
    SAFE_LOADER,
    NodeBudget,
    check_depth,
    check_shape,
    clip,
    invalid,
    node_line,
    too_heavy,
    weigh_events,
)

__all__ = ["LineDict", "LineList", "load_yaml"]


class LineDict(dict[str, Any]):
    """A mapping that knows the line it starts on and the line of each key."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """The line of `key`, or of the mapping itself when the key is absent."""
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence that knows the line it starts on and the line of each item."""

    line: int = 0
    item_lines: list[int]


class _LineLoader(SAFE_LOADER):  # type: ignore[valid-type,misc]
    duplicate_keys: list[tuple[str, int]]


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node_line(node)
    result.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            # A list or mapping as a key would be turned into text for every message about it.
            raise YamlError(
                "a mapping key must be a plain value", node_line(key_node), "invalid_key"
            )
        key = loader.construct_object(key_node, deep=True)
        key_line = node_line(key_node)
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            loader.duplicate_keys.append((key, key_line))
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_line
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node_line(node)
    result.item_lines = [node_line(child) for child in node.value]
    return result


def _scalar_constructor(name: str) -> Any:
    base = getattr(yaml.constructor.SafeConstructor, name)

    def construct(loader: _LineLoader, node: yaml.ScalarNode) -> Any:
        try:
            return base(loader, node)
        except (ValueError, OverflowError):  # `2026-02-30`, or an int past the digit limit
            value = clip(node.value, 40)
            message = f"invalid YAML: `{value}` is not a valid {name[15:]}"
            raise YamlError(message, node_line(node)) from None

    return construct


def _as_written(loader: _LineLoader, node: yaml.ScalarNode) -> str:
    # A request carries a time as a string, so a bundle's unquoted `2026-01-15` stays one
    # (checked first: `2026-02-30` is still a located error).
    _check_timestamp(loader, node)
    return str(node.value)


def _unsupported(loader: _LineLoader, node: yaml.Node) -> Any:
    tag = clip(str(node.tag).replace("tag:yaml.org,2002:", "!!"), 40)
    message = (
        f"YAML type `{tag}` is not supported: values are strings, numbers, booleans, null, "
        "lists and mappings"
    )
    raise YamlError(message, node_line(node), "unsupported_yaml_type")


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_check_timestamp = _scalar_constructor("construct_yaml_timestamp")
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _as_written)
for _kind in ("set", "binary", "omap", "pairs"):  # no JSON request could carry these
    _LineLoader.add_constructor(f"tag:yaml.org,2002:{_kind}", _unsupported)
for _kind in ("int", "float"):
    _LineLoader.add_constructor(
        f"tag:yaml.org,2002:{_kind}", _scalar_constructor(f"construct_yaml_{_kind}")
    )


def load_yaml(text: str, budget: NodeBudget | None = None) -> tuple[Any, list[tuple[str, int]]]:
    """Parse one YAML document; returns the data and the duplicate keys found (key, line).

    `budget`, shared by the files of one bundle, bounds the values they hold together.
    """
    loader = _LineLoader(text)
    loader.duplicate_keys = []
    try:
        if budget is not None:
            budget.charge(0)  # spent already: no need to read this file at all
            if (refusal := budget.refusal(text)) is not None:
                raise refusal  # libyaml found it while counting: not parsed a second time
        # Else it cannot weigh more, nor hold a collection that long (an item takes 2 chars).
        if len(text) * MAX_WEIGHT_PER_CHARACTER > MAX_FILE_WEIGHT or (
            len(text) > 2 * MAX_COLLECTION_ITEMS
        ):
            weigh_events(text)
        node = loader.get_single_node()
        if node is None:
            return None, []
        # With no `&` there are no anchors, so no aliases: only nesting needs a look.
        weight = check_shape(node) if "&" in text else check_depth(node)
        if weight > MAX_FILE_WEIGHT:  # only if the estimate per character above was wrong
            raise too_heavy(None)
        if budget is not None:
            budget.charge(weight)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise invalid(exc) from None
    except RecursionError:  # the pure-Python composer, before the shape check could run
        raise YamlError("invalid YAML: nested too deep", None, "nesting_too_deep") from None
    finally:
        loader.dispose()
    return data, loader.duplicate_keys
