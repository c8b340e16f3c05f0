"""Shared readers for bundle YAML: typed field access that reports problems instead of raising.

Every reader returns ``None`` (or an empty value) for something it had to reject, after adding
a located problem to the report, so validation can go on and list every mistake at once.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from cnm_policy.errors import PolicyProblem
from cnm_policy.policy._yaml import LineDict, LineList
from cnm_policy.policy.bundle import Effect, Scope, Side

IDENT = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,127}")
WILDCARD = "*"
EXCERPT_CHARS = 60
MAX_PROBLEMS_PER_FILE = 100


class _Excerpt(reprlib.Repr):
    """reprlib's bounded repr, taught that our line-annotated YAML values are dicts and lists."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxdict = self.maxlist = 4
        self.maxstring = self.maxother = EXCERPT_CHARS

    def repr_LineDict(self, value: dict[str, object], level: int) -> str:  # noqa: N802
        return self.repr_dict(value, level)

    def repr_LineList(self, value: list[object], level: int) -> str:  # noqa: N802
        return self.repr_list(value, level)


_EXCERPT = _Excerpt()


def excerpt(value: object) -> str:
    """`value` for a message, at most about EXCERPT_CHARS long whatever its size."""
    if isinstance(value, str):
        return value if len(value) <= EXCERPT_CHARS else value[: EXCERPT_CHARS - 3] + "..."
    return _EXCERPT.repr(value)


class Report:
    """Collects problems; helpers return ``None`` for a value they had to reject.

    At most MAX_PROBLEMS_PER_FILE are kept per file, then one `too_many_problems`; readers
    stop walking a file once it is `saturated`. `count` counts every problem, kept or not.
    """

    def __init__(self) -> None:
        self.problems: list[PolicyProblem] = []
        self.count = 0
        self._per_file: dict[str, int] = {}

    def error(self, code: str, message: str, file: str, line: int | None) -> None:
        self.add(PolicyProblem(code, message, file, line))

    def warning(self, code: str, message: str, file: str, line: int | None) -> None:
        self.add(PolicyProblem(code, message, file, line, "warning"))

    def saturated(self, file: str) -> bool:
        """True once `file` has more problems than are listed: reading it further is waste."""
        return self._per_file.get(file, 0) > MAX_PROBLEMS_PER_FILE

    def add(self, problem: PolicyProblem) -> None:
        """Keep `problem` unless its file already has more than are listed."""
        self.count += 1
        seen = self._per_file[problem.file] = self._per_file.get(problem.file, 0) + 1
        if seen <= MAX_PROBLEMS_PER_FILE:
            self.problems.append(problem)
        elif seen == MAX_PROBLEMS_PER_FILE + 1:
            message = f"more than {MAX_PROBLEMS_PER_FILE} problems; the file was not read further"
            self.problems.append(PolicyProblem("too_many_problems", message, problem.file, None))


def mapping(value: Any, what: str, file: str, line: int, report: Report) -> LineDict | None:
    if isinstance(value, LineDict):
        return value
    report.error("invalid_type", f"{what} must be a mapping", file, line)
    return None


def check_fields(
    node: LineDict,
    what: str,
    required: Iterable[str],
    optional: Iterable[str],
    file: str,
    report: Report,
) -> bool:
    """Report missing and unknown fields; True when every required field is present."""
    ok = True
    for name in required:
        if name not in node:
            report.error("missing_field", f"{what} has no `{name}`", file, node.line)
            ok = False
    known = set(required) | set(optional)
    for name in node:
        if report.saturated(file):
            return False
        if name not in known:
            allowed = ", ".join(sorted(known))
            report.error(
                "unknown_field",
                f"{what} has unknown field `{excerpt(name)}` (allowed: {allowed})",
                file,
                node.line_of(name),
            )
    return ok


def text(node: LineDict, key: str, file: str, report: Report, default: str | None = None) -> str:
    value = node.get(key, default)
    if isinstance(value, str):
        return value
    report.error(
        "invalid_type",
        f"`{key}` must be a string, got `{excerpt(value)}` (quote it in YAML)",
        file,
        node.line_of(key),
    )
    return ""


def identifier(node: LineDict, key: str, what: str, file: str, report: Report) -> str | None:
    value = text(node, key, file, report)
    if value and not IDENT.fullmatch(value):
        report.error(
            "invalid_value",
            f"{what} `{excerpt(value)}` must be lowercase letters, digits, `_`, `.`, `:` or `-`",
            file,
            node.line_of(key),
        )
        return None
    return value or None


def names(
    node: LineDict, key: str, file: str, report: Report, *, allow_empty: bool = False
) -> tuple[str, ...] | None:
    """A field holding one name or a list of names."""
    value = node.get(key)
    if isinstance(value, str):
        return (value,)
    if (
        isinstance(value, list)
        and (value or allow_empty)
        and all(isinstance(v, str) for v in value)
    ):
        return tuple(value)
    listing = "a list" if allow_empty else "a non-empty list"
    report.error(
        "invalid_type",
        f"`{key}` must be a name or {listing} of names",
        file,
        node.line_of(key),
    )
    return None


def entries(
    doc: Any, key: str, file: str, report: Report, siblings: tuple[str, ...] = ()
) -> Iterator[tuple[LineDict, int]]:
    """The list under `key` at the top of a document, as (entry, line) pairs.

    `siblings` are the other top-level fields the document may carry. Stops early once the
    file has more problems than are listed.
    """
    top = mapping(doc, f"`{file}`", file, 1, report)
    if top is None:
        return
    check_fields(top, f"`{file}`", (key,), siblings, file, report)
    items = top.get(key)
    if items is None:
        return
    if not isinstance(items, LineList):
        report.error("invalid_type", f"`{key}` must be a list", file, top.line_of(key))
        return
    for item, line in zip(items, items.item_lines, strict=True):
        if report.saturated(file):
            return
        entry = mapping(item, f"each entry of `{key}`", file, line, report)
        if entry is not None:
            yield entry, line


E = TypeVar("E", Side, Scope, Effect)


def enum(enum: type[E], node: LineDict, key: str, file: str, report: Report, code: str) -> E | None:
    """The enum member named by `key`, or ``None`` after reporting the allowed values."""
    value = node.get(key)
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in enum)
    message = f"unknown {key} `{excerpt(value)}` (one of: {allowed})"
    report.error(code, message, file, node.line_of(key))
    return None
