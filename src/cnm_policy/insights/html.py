"""The report as one self-contained HTML file: inline CSS, inline SVG charts, no script.

Readable offline and from an attachment: nothing is fetched. Every value is escaped with
`html.escape`, and the page's Content-Security-Policy forbids scripts and remote content, so a
hostile id in a log cannot run or load anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from cnm_policy.insights.layout import Table, layout
from cnm_policy.insights.render import cell_text

__all__ = ["render_html"]

_COLOURS = {"allow": "#2e7d32", "deny": "#c62828", "rejected": "#f9a825"}
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}td{font-variant-numeric:tabular-nums}
caption{text-align:left;font-style:italic}
svg{display:block;margin:.5em 0;max-width:100%;height:auto}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:10px;
height:10px;margin-right:4px}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(value: Any) -> str:
    return escape(cell_text(value), quote=True)


def _table(table: Table) -> str:
    caption = f"<caption>{_e(table.caption)}</caption>" if table.caption else ""
    if not table.rows:
        return f"<table>{caption}<tr><td>(none)</td></tr></table>"
    head = "".join(f"<th>{_e(h)}</th>" for h in table.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in table.rows
    )
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _time_chart(rows: Sequence[tuple[Any, ...]]) -> str:
    """Stacked columns: allow, deny, rejected per time bucket."""
    width, height, pad = 1000, 220, 30
    peak = max((sum(_number(v) for v in row[1:4]) for row in rows), default=0) or 1
    step = (width - pad) / max(len(rows), 1)
    bars = []
    for index, row in enumerate(rows):
        y = float(height - pad)
        for name, value in zip(("allow", "deny", "rejected"), row[1:4], strict=True):
            size = _number(value) * (height - 2 * pad) / peak
            y -= size
            bars.append(
                f'<rect x="{pad + index * step:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}" '
                f'height="{size:.1f}" fill="{_COLOURS[name]}"><title>{_e(row[0])} {name}: '
                f"{_number(value)}</title></rect>"
            )
    axis = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width}" y2="{height - pad}" stroke="#888"/>'
        f'<text x="{pad}" y="{height - 8}" font-size="11">{_e(rows[0][0] if rows else "")}</text>'
        f'<text x="2" y="{pad - 8}" font-size="11">{peak}</text>'
    )
    return _svg(width, height, "decisions over time by outcome", axis + "".join(bars))


def _bar_chart(rows: Sequence[tuple[Any, ...]]) -> str:
    """One stacked bar per value: allow, deny, rejected (at most 15 values)."""
    shown = rows[:15]
    width, line, label = 1000, 18, 220
    peak = max((sum(_number(v) for v in row[1:4]) for row in shown), default=0) or 1
    parts = []
    for index, row in enumerate(shown):
        y = index * line
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="12">{escape(cell_text(row[0])[:40])}</text>'
        )
        x = float(label)
        for name, value in zip(("allow", "deny", "rejected"), row[1:4], strict=True):
            size = _number(value) * (width - label - 10) / peak
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="{size:.1f}" height="{line - 4}" '
                f'fill="{_COLOURS[name]}"><title>{name}: {_number(value)}</title></rect>'
            )
            x += size
    return _svg(width, max(len(shown), 1) * line, "decisions by outcome", "".join(parts))


def _svg(width: int, height: int, title: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>{body}</svg>'
    )


def _legend() -> str:
    items = "".join(
        f'<span><i style="background:{colour}"></i>{name}</span>'
        for name, colour in _COLOURS.items()
    )
    return f'<div class="legend">{items}</div>'


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one HTML page with its charts drawn inline."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        "<title>cnm-policy decision report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Decision report</h1>",
    ]
    for section in layout(report):
        parts.append(f"<section><h2>{_e(section.title)}</h2>")
        parts.extend(f"<p>{_e(note)}</p>" for note in section.notes)
        for table in section.tables:
            if table.chart == "time" and table.rows:
                parts += [_legend(), _time_chart(table.rows)]
            elif table.chart == "bars" and table.rows:
                parts.append(_bar_chart(table.rows))
            parts.append(_table(table))
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
