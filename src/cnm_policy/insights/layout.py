"""The report as titled sections of tables: what the Markdown and HTML renderers both draw.

Laying out once keeps the two formats saying the same thing; each renderer only escapes and
formats. Cells are raw values: escaping is the renderer's job, never done here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Section", "Table", "layout"]


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of cells under a header; `chart` names the chart the HTML draws from it, if any."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str = ""
    chart: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """One titled part of the report: a few lines of prose, then its tables."""

    title: str
    notes: tuple[str, ...] = ()
    tables: tuple[Table, ...] = field(default_factory=tuple)


_OUTCOME_HEADERS = ("allow", "deny", "rejected")
_UNUSED_SHOWN = 50  # unused rules listed in Markdown and HTML (JSON has them all)


def _rows(items: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(item.get(key) for key in keys) for item in items)


def _table(
    items: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    headers: Sequence[str] | None = None,
    **extra: str,
) -> Table:
    return Table(tuple(headers or keys), _rows(items, keys), **extra)


def layout(report: Mapping[str, Any]) -> list[Section]:
    """The report's sections, in reading order."""
    return [
        _overview(report),
        _problems(report["problems"]),
        _decisions(report),
        Section(
            "Top deny reasons and rules",
            tables=(
                _table(report["deny_reasons"], ("reason", "denies")),
                _table(report["deny_rules"], ("rule_id", "denies"), ("rule", "denies")),
            ),
        ),
        Section(
            "Who is stuck: most denies",
            tables=(
                _table(report["most_denied"]["tenants"], ("tenant", "denies", "principals")),
                _table(
                    report["most_denied"]["principals"],
                    ("principal_id", "tenant", "denies", "allows"),
                    ("principal", "tenant", "denies", "allows"),
                ),
            ),
        ),
        Section(
            "Who probes other tenants",
            ("Customer-side requests for resources outside the principal's own subtree.",),
            (
                _table(
                    report["cross_tenant"],
                    ("principal_id", "tenant", "requests", "target_tenants", "allowed", "examples"),
                    ("principal", "tenant", "requests", "tenants aimed at", "allowed", "e.g."),
                ),
            ),
        ),
        _audited(report["audited"]),
        _on_behalf(report["on_behalf"]),
        _rule_usage(report["rule_usage"]),
        Section(
            "Policy versions seen",
            tables=(
                _table(
                    report["policy_versions"],
                    ("name", "version", "digest", "first", "last", "decisions"),
                ),
            ),
        ),
        _operations(report),
        _shadow(report["shadow"]),
    ]


def _overview(report: Mapping[str, Any]) -> Section:
    period, sources = report["period"], report["sources"]
    return Section(
        "Overview",
        (
            f"Period: {period['first'] or '-'} to {period['last'] or '-'} "
            f"(asked: since {period['since'] or 'the start'}, "
            f"until {period['until'] or 'the end'}).",
            f"Read {sources['lines']} lines from {len(sources['files'])} files: "
            f"{sources['decision_events']} decision events, {sources['other_events']} other "
            f"events, {report['problems']['total']} problem lines.",
            f"Roles' sides and rules from the bundle: {sources['policies'] or '(none)'}.",
        ),
        (Table(("file",), tuple((name,) for name in sources["files"])),),
    )


def _problems(problems: Mapping[str, Any]) -> Section:
    shown = len(problems["first"])
    return Section(
        "Problems",
        (
            f"{problems['total']} lines were not events; the first {shown} are listed."
            if problems["total"]
            else "Every line was an event.",
        ),
        (
            Table(("kind", "lines"), tuple(problems["by_kind"].items())),
            _table(problems["first"], ("file", "line", "kind", "detail", "text")),
        ),
    )


def _decisions(report: Mapping[str, Any]) -> Section:
    totals, over_time = report["totals"], report["over_time"]
    tables = [
        Table(_OUTCOME_HEADERS, ((totals["allow"], totals["deny"], totals["rejected"]),)),
        _table(
            over_time["rows"],
            ("start", *_OUTCOME_HEADERS),
            (over_time["bucket"], *_OUTCOME_HEADERS),
            chart="time",
        ),
    ]
    for name, rows in report["breakdowns"].items():
        label = name.replace("resource_", "")
        keys = ("value", *_OUTCOME_HEADERS, "total")
        tables.append(_table(rows, keys, (label, *keys[1:]), caption=f"by {label}", chart="bars"))
    return Section("Decisions over time", tables=tuple(tables))


_AUDITED = ("decisions", "target_tenants", "examples", "first", "last")
_AUDITED_HEADERS = ("decisions", "tenants aimed at", "e.g.", "first", "last")
_ACTED = ("decisions", "allowed", "denied", "principals", "target_tenants")


def _audited(audited: Mapping[str, Any]) -> Section:
    by_class = audited["by_class"]
    return Section(
        "Audited access: break-glass and self-managed crossings",
        (
            f"Break-glass decisions: {by_class.get('break_glass', 0)}; crossings into "
            f"self-managed tenants: {by_class.get('self_managed_crossing', 0)}. Who, below.",
        ),
        (
            _table(
                audited["principals"],
                ("class", "principal_id", "tenant", *_AUDITED),
                ("class", "principal", "tenant", *_AUDITED_HEADERS),
            ),
        ),
    )


def _on_behalf(on_behalf: Mapping[str, Any]) -> Section:
    return Section(
        "On behalf of: decisions by actor",
        (
            f"{on_behalf['decisions']} decisions were asked by an actor for a principal "
            f"({on_behalf['allowed']} allowed), by {on_behalf['actors']} actors.",
        ),
        (
            _table(
                on_behalf["by_actor"],
                ("actor_id", "actor_tenant", *_ACTED),
                ("actor", "actor tenant", *_ACTED[:-1], "tenants aimed at"),
            ),
        ),
    )


def _rule_usage(usage: Mapping[str, Any]) -> Section:
    return Section(
        "Least privilege",
        (
            f"Allow rules that granted nothing in the period: {len(usage['unused'])}. "
            f"Grants used by {usage['rare_threshold']} principals or fewer: {len(usage['rare'])}.",
        ),
        (
            Table(
                ("unused allow rule",),
                tuple((rule,) for rule in usage["unused"][:_UNUSED_SHOWN])
                + ((f"... and {len(usage['unused']) - _UNUSED_SHOWN} more",),)
                * (len(usage["unused"]) > _UNUSED_SHOWN),
            ),
            _table(
                usage["rare"],
                ("rule_id", "principals", "decisions"),
                ("rule", "principals", "decisions"),
            ),
        ),
    )


def _operations(report: Mapping[str, Any]) -> Section:
    latency, cache = report["latency_ms"], report["cache"]
    return Section(
        "Latency, cache and rejected requests",
        (
            f"Cache hit ratio: {cache['ratio'] if cache['ratio'] is not None else '-'} "
            f"({cache['hits']} of {cache['decisions']} decisions).",
        ),
        (
            Table(
                ("p50 ms", "p90 ms", "p99 ms", "max ms", "events"),
                (
                    (
                        latency["p50"],
                        latency["p90"],
                        latency["p99"],
                        latency["max"],
                        latency["count"],
                    ),
                ),
            ),
            _table(report["rejected"], ("error_code", "calls"), ("error code", "calls")),
        ),
    )


def _shadow(shadow: Mapping[str, Any]) -> Section:
    directions = shadow["by_direction"]
    return Section(
        "Shadow divergences",
        (
            f"{shadow['total']} requests the shadow policy decided otherwise "
            f"({directions.get('allow_to_deny', 0)} allow -> deny, "
            f"{directions.get('deny_to_allow', 0)} deny -> allow).",
        ),
        (
            _table(
                shadow["targets"],
                ("kind", "action", "allow_to_deny", "deny_to_allow", "principals"),
                ("kind", "action", "allow -> deny", "deny -> allow", "principals"),
            ),
        ),
    )
