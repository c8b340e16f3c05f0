"""The report as Markdown (a pull request, a ticket) or JSON (other tools).

Every value from a log is hostile text: in Markdown it is escaped so that it can neither close a
table cell, start a link or an HTML tag, nor break a line. The HTML renderer is in `html.py`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from cnm_policy.insights.layout import Table, layout

__all__ = ["cell_text", "markdown_table", "md", "render_json", "render_markdown"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Enough to keep a value inside its cell and out of links, code and emphasis (never at a line
# start: cells open with "| ", and prose with our own words).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MAX_CELL = 200  # characters of one value shown; a longer one ends with an ellipsis


def cell_text(value: Any) -> str:
    """A value as one short line: lists joined, control characters shown as escapes."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        text = ", ".join(cell_text(item) for item in value)
    else:
        text = str(value)
    text = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def md(value: Any) -> str:
    """Escaped for Markdown: markup characters backslashed, `<`, `>` and `&` as entities."""
    text = cell_text(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def markdown_table(table: Table) -> list[str]:
    """A table as Markdown lines (``(none)`` for no rows), then a blank line."""
    lines = [f"*{md(table.caption)}*", ""] if table.caption else []
    if not table.rows:
        return [*lines, "(none)", ""]
    lines.append("| " + " | ".join(md(h) for h in table.headers) + " |")
    lines.append("|" + "---|" * len(table.headers))
    lines.extend("| " + " | ".join(md(cell) for cell in row) + " |" for row in table.rows)
    return [*lines, ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown."""
    lines = ["# Decision report", ""]
    for section in layout(report):
        lines += [f"## {md(section.title)}", ""]
        for note in section.notes:
            lines += [md(note), ""]
        for table in section.tables:
            lines += markdown_table(table)
    return "\n".join(lines)


def render_json(report: Mapping[str, Any]) -> str:
    """The report as indented JSON (its `schema` names the shape)."""
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode("utf-8") + "\n"
