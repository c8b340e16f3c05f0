"""What a YAML document may cost, measured before anything is built from it.

The node graph is linear in the text (an alias is a second reference to one node), so each file
is weighed (events, then nodes, aliases expanded by arithmetic) against per-file and per-bundle
bounds: an alias bomb or a huge file fails in milliseconds (docs/design/hostile-bundles.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from cnm_policy.errors import YamlError

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_BUNDLE_WEIGHT",
    "MAX_COLLECTION_ITEMS",
    "MAX_FILE_WEIGHT",
    "MAX_WEIGHT_PER_CHARACTER",
    "MAX_YAML_DEPTH",
    "SAFE_LOADER",
    "NodeBudget",
    "check_depth",
    "check_shape",
    "clip",
    "invalid",
    "node_line",
    "too_heavy",
    "weigh_events",
]

MAX_ALIAS_EXPANSION = 200_000  # units aliases may add: one per node and per scalar character
MAX_YAML_DEPTH = 64  # nested collections, aliases expanded; bundle files need fewer than 10
# The weight of a document is the memory its values take once built, in units of a scalar: a
# mapping or a list carries line numbers too (8 and 4). 5,000 generated rules weigh 211,000
# and the 100,000-rule benchmark bundle 4.2 million. One budget covers rules and tests together.
MAX_FILE_WEIGHT = 500_000
MAX_BUNDLE_WEIGHT = 4_500_000
# Items (keys and values of a mapping) of one collection below a file's top-level values: the
# long lists are top-level (`rules`, `cases`, fixture maps); a rule or fixture is short.
MAX_COLLECTION_ITEMS = 10_000
_WEIGHTS: dict[type, int] = {
    yaml.ScalarNode: 1,
    yaml.SequenceNode: 4,
    yaml.MappingNode: 8,
    yaml.ScalarEvent: 1,
    yaml.AliasEvent: 1,
    yaml.SequenceStartEvent: 4,
    yaml.MappingStartEvent: 8,
}
MAX_WEIGHT_PER_CHARACTER = 4  # `{}` weighs 8 in two characters: nothing is heavier per character
SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml's own parser counts events at C speed (None: PyYAML built without libyaml).
_CParser: Any = getattr(getattr(yaml, "_yaml", None), "CParser", None)


def node_line(node: yaml.Node) -> int:
    """The 1-based line a node starts on."""
    return int(node.start_mark.line) + 1


def clip(text: str, limit: int = 160) -> str:
    """At most `limit` characters of `text`: messages never carry an unbounded value."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


class NodeBudget:
    """The weight the documents of one bundle (rules and tests) may still add.

    `spent`: weight already charged elsewhere (the rule files, when the tests load later).
    """

    def __init__(self, total: int | None = None, spent: int = 0) -> None:
        self.total = MAX_BUNDLE_WEIGHT if total is None else total
        self.left = self.total - spent
        # Texts libyaml already refused while counting: id -> (text, error), so a file whose
        # error is known is not parsed again (an invalid text adds nothing to the count).
        self.refused: dict[int, tuple[str, YamlError]] = {}

    @property
    def spent(self) -> int:
        return self.total - self.left

    def charge(self, weight: int) -> None:
        self.left -= weight
        if self.left < 0:
            raise YamlError(self.message(), None, "bundle_too_large")

    def message(self) -> str:
        return f"the bundle's files together weigh more than {self.total} once parsed"

    def precheck(self, texts: Iterable[str]) -> bool:
        """False (and the budget spent) when `texts` surely weigh more than is left.

        libyaml counts events at C speed; each event weighs at least 1 (a collection's start
        and end weigh 4 or 8 together), so the count bounds the weight from below.
        """
        texts = list(texts)
        if sum(len(text) for text in texts) * MAX_WEIGHT_PER_CHARACTER <= self.left:
            return True  # cannot weigh more than is left: nothing to count
        bound = 0
        for text in texts:
            count = _event_count(text)
            if isinstance(count, YamlError):
                self.refused[id(text)] = (text, count)
                continue
            bound += count
            if bound > self.left:
                self.left = -1
                return False
        return True

    def refusal(self, text: str) -> YamlError | None:
        """The error libyaml found in `text` while counting, if it did."""
        known = self.refused.get(id(text))
        return known[1] if known is not None and known[0] is text else None


def _event_count(text: str) -> int | YamlError:
    """Events in `text` minus the stream's and document's own four (0 without libyaml)."""
    if _CParser is None:
        return 0
    parser = _CParser(text)
    try:
        return max(0, int(parser.raw_parse()) - 4)
    except yaml.YAMLError as exc:
        return invalid(exc)
    finally:
        parser.dispose()


def invalid(exc: yaml.YAMLError) -> YamlError:
    """libyaml's error as a located YamlError (its message clipped)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = clip(str(exc.problem or exc.context))  # may quote an anchor name
        code = "nesting_too_deep" if "maximum nesting depth" in problem else "yaml_invalid"
        return YamlError(f"invalid YAML: {problem}", line, code)
    return YamlError(f"invalid YAML: {clip(str(exc))}", None)


def check_shape(root: yaml.Node) -> int:  # returns the weight as written
    """Measure the expanded document without expanding it; raise YamlError past a bound.

    Each node is measured once (memoised by identity), so a bomb costs time linear in its
    text. A node reached a second time is an alias: what it expands to counts against
    MAX_ALIAS_EXPANSION, and its nesting against MAX_YAML_DEPTH where it is placed.
    """
    shape = _Shape()
    if isinstance(root, yaml.ScalarNode):
        return 1
    # (collection, collections above it, line of the place it is used at, children measured?)
    stack: list[tuple[yaml.Node, int, int, bool]] = [(root, 0, node_line(root), False)]
    while stack:
        node, above, site, measured = stack.pop()
        key = id(node)
        if measured:
            shape.measured(node)
            continue
        if shape.seen(key, above, site):
            continue
        if above + 1 > MAX_YAML_DEPTH:
            raise _too_deep(node_line(node))
        shape.open_nodes.add(key)
        shape.weight += _WEIGHTS[type(node)]
        stack.append((node, above, site, True))
        mapping = isinstance(node, yaml.MappingNode)
        pairs = node.value if mapping else [(None, child) for child in node.value]
        for key_node, value_node in reversed(pairs):
            # An alias is reported at its key, or at the list it is an item of.
            place = node_line(key_node) if key_node is not None else site
            for child in (value_node, key_node) if key_node is not None else (value_node,):
                if not isinstance(child, yaml.ScalarNode):
                    stack.append((child, above + 1, place, False))
                elif not shape.seen(id(child), above + 1, place):
                    shape.cost[id(child)] = 1 + len(child.value)
                    shape.height[id(child)] = 0
                    shape.weight += 1
    return shape.weight


def weigh_events(text: str) -> None:
    """Refuse a text heavier than MAX_FILE_WEIGHT, or with a nested collection longer than
    MAX_COLLECTION_ITEMS, from its events: before composing it, at the first excess."""
    parser = SAFE_LOADER(text)
    try:
        weight = 0
        items: list[int] = []  # per open collection: items so far
        starts: list[int] = []  # per open collection: its line
        while (event := parser.get_event()) is not None:  # type: ignore[no-untyped-call]
            kind = type(event)
            weight += _WEIGHTS.get(kind, 0)
            line = event.start_mark.line + 1 if event.start_mark else None
            if weight > MAX_FILE_WEIGHT:
                raise too_heavy(line)
            if kind in _ENDS:
                items.pop()
                starts.pop()
                continue
            if kind in _ITEMS and items:
                items[-1] += 1
                if items[-1] > MAX_COLLECTION_ITEMS and len(items) >= _FIRST_SHORT_LEVEL:
                    raise _too_long(starts[-1])
            if kind in _STARTS:
                items.append(0)
                starts.append(line or 0)
    finally:
        parser.dispose()


_STARTS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_ENDS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
_ITEMS = (yaml.ScalarEvent, yaml.AliasEvent, *_STARTS)
_FIRST_SHORT_LEVEL = 3  # the file's mapping (1), its values such as `rules` (2), then short


def _too_long(line: int) -> YamlError:
    message = (
        f"a list or mapping here holds more than {MAX_COLLECTION_ITEMS} items "
        "(only a file's top-level lists and maps may be that long)"
    )
    return YamlError(message, line, "collection_too_large")


def too_heavy(line: int | None) -> YamlError:
    """The error for a file heavier than MAX_FILE_WEIGHT."""
    message = f"weighs more than {MAX_FILE_WEIGHT} once parsed (split the file)"
    return YamlError(message, line, "yaml_too_large")


def check_depth(root: yaml.Node) -> int:
    """The nesting bound alone, for a document that cannot have aliases; returns its weight."""
    if isinstance(root, yaml.ScalarNode):
        return 1
    weight = _WEIGHTS[type(root)]
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_YAML_DEPTH:
            raise _too_deep(node_line(node))
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = node.value
        for child in children:
            weight += _WEIGHTS[type(child)]
            if not isinstance(child, yaml.ScalarNode):
                stack.append((child, depth + 1))
    return weight


class _Shape:
    """What is known so far: expanded cost and height per node, and the aliases' total."""

    def __init__(self) -> None:
        self.cost: dict[int, int] = {}  # id(node) -> expanded units
        self.height: dict[int, int] = {}  # id(node) -> nested collections, itself included
        self.open_nodes: set[int] = set()
        self.added = 0
        self.weight = 0  # of the nodes as written (each counted once)

    def seen(self, key: int, above: int, site: int) -> bool:
        """True for a second reference (an alias), after charging what it expands to."""
        if key in self.open_nodes:
            message = "an alias refers to a collection that contains it"
            raise YamlError(message, site, "recursive_alias")
        cost = self.cost.get(key)
        if cost is None:
            return False
        self.added += cost
        if self.added > MAX_ALIAS_EXPANSION:
            raise YamlError(
                f"aliases expand the document by more than {MAX_ALIAS_EXPANSION} nodes "
                "and characters",
                site,
                "alias_expansion_too_large",
            )
        if above + self.height[key] > MAX_YAML_DEPTH:
            raise _too_deep(site)
        return True

    def measured(self, node: yaml.Node) -> None:
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = node.value
        key = id(node)
        self.open_nodes.discard(key)
        self.cost[key] = 1 + sum(self.cost[id(child)] for child in children)
        self.height[key] = 1 + max((self.height[id(child)] for child in children), default=0)


def _too_deep(line: int) -> YamlError:
    message = f"collections are nested more than {MAX_YAML_DEPTH} deep"
    return YamlError(message, line, "nesting_too_deep")
