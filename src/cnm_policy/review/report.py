"""Output formats shared by every review report: plain text, JSON and Markdown.

JSON is the stable machine contract (each report's ``to_dict``); the helpers keep Markdown
tables safe from user text (a ``|`` or newline in a description) and wording consistent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from cnm_policy.errors import PolicyProblem

__all__ = [
    "Format",
    "counted",
    "location",
    "md_cell",
    "md_code",
    "md_table",
    "problem_lines",
    "problem_rows",
    "to_json",
]


class Format(StrEnum):
    """The output formats a report can be rendered in."""

    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"


def to_json(data: Mapping[str, Any]) -> str:
    """Pretty JSON with a final newline (stable key order: as built)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``1 error``, ``3 errors``."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def location(file: str, line: int | None) -> str:
    """``rules/x.yaml:12``, or just the file when the line is unknown."""
    return f"{file}:{line}" if line is not None else file


def md_cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")


def md_code(text: str) -> str:
    """Inline code that survives backticks inside `text`."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table; cells are expected to be escaped with :func:`md_cell` already."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def problem_lines(problems: Iterable[PolicyProblem]) -> list[str]:
    """One ``file:line: severity [code] message`` line per problem."""
    return [str(problem) for problem in problems]


def problem_rows(problems: Iterable[PolicyProblem]) -> list[list[str]]:
    """Markdown table rows (severity, code, location, message) for problems."""
    return [
        [
            p.severity,
            md_code(p.code),
            md_code(location(p.file, p.line)),
            md_cell(p.message),
        ]
        for p in problems
    ]
