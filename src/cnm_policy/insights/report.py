"""`cnm-policy report`: decision logs in, one JSON-ready report out (the renderers format it).

Loads the logs into an in-memory DuckDB, restricts them to the period, and asks each section's
query in turn. The bundle names the roles' sides and the allow rules that might go unused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import duckdb

from cnm_policy.insights import sections, sections_audit
from cnm_policy.insights.logs import LoadedLogs, connect, fetch_dicts, load_logs
from cnm_policy.insights.shadow import SHADOW_DIVERGENCE_EVENT
from cnm_policy.insights.sources import expand_logs
from cnm_policy.policy import Bundle, Effect

__all__ = ["REPORT_SCHEMA", "ReportOptions", "build_report", "problems_section"]

REPORT_SCHEMA: Final = "cnm-policy.report/1"


@dataclass(frozen=True, slots=True)
class ReportOptions:
    """The period (epoch seconds, `until` excluded) and how long each list runs: every list is
    bounded, as a log may hold any number of distinct kinds, actions, versions or codes."""

    since: float | None = None
    until: float | None = None
    top: int = 10
    breakdown: int = 20  # values per breakdown before "(others)"
    versions: int = 50
    rare_principals: int = 2
    problems_shown: int = 20
    memory_limit: str = "2GB"


def build_report(
    logs: Iterable[str], bundle: Bundle | None, options: ReportOptions = ReportOptions()
) -> dict[str, Any]:
    """The whole report over the files `logs` names (paths or globs).

    Raises FileNotFoundError for a pattern naming no file, duckdb.Error for an unreadable one.
    """
    files = expand_logs(logs)
    with connect(options.memory_limit) as con:
        loaded = load_logs(con, files)
        role_sides = {r.id: str(r.side) for r in bundle.roles.values()} if bundle else {}
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW d AS SELECT *, {sections.side_expression(role_sides)} "
            f"AS side FROM decisions WHERE event = 'decision' AND {_period(options)}"
        )
        con.execute(
            "CREATE OR REPLACE TEMP VIEW shadow AS SELECT * FROM parsed WHERE problem IS NULL "
            f"AND event = '{SHADOW_DIVERGENCE_EVENT}' AND ts IS NOT NULL AND {_period(options)}"
        )
        return _sections(con, files.all, loaded, bundle, options)


def _period(options: ReportOptions) -> str:
    """The SQL condition keeping the period's decisions (numbers only: no user text)."""
    parts = ["TRUE"]
    if options.since is not None:
        parts.append(f"ts >= to_timestamp({float(options.since)!r})")
    if options.until is not None:
        parts.append(f"ts < to_timestamp({float(options.until)!r})")
    return " AND ".join(parts)


def _sections(
    con: duckdb.DuckDBPyConnection,
    files: tuple[str, ...],
    loaded: LoadedLogs,
    bundle: Bundle | None,
    options: ReportOptions,
) -> dict[str, Any]:
    top = options.top
    totals = sections.totals(con)
    allow_rules = [r.id for r in bundle.rules if r.effect is Effect.ALLOW] if bundle else []
    return {
        "schema": REPORT_SCHEMA,
        "period": {
            "since": _moment(options.since),
            "until": _moment(options.until),
            "first": totals.pop("first"),
            "last": totals.pop("last"),
        },
        "sources": {
            "files": list(files),
            "lines": loaded.lines,
            "decision_events": loaded.decisions,
            "input_records": loaded.inputs,
            "other_events": loaded.other_events,
            "policies": f"{bundle.manifest.name} {bundle.manifest.version}" if bundle else None,
        },
        "problems": problems_section(con, options.problems_shown),
        "totals": totals,
        "over_time": sections.over_time(con),
        "breakdowns": {
            c: sections.breakdown(con, c, options.breakdown) for c in sections.BREAKDOWNS
        },
        "deny_reasons": sections.deny_reasons(con, top),
        "deny_rules": sections.deny_rules(con, top),
        "most_denied": sections.top_denied(con, top),
        "cross_tenant": sections.cross_tenant(con, top),
        "audited": sections_audit.audited(con, top),
        "on_behalf": sections_audit.on_behalf(con, top),
        "rule_usage": sections.rule_usage(con, allow_rules, options.rare_principals, top),
        "policy_versions": sections.policy_versions(con, options.versions),
        "latency_ms": sections.latency(con),
        "cache": sections.cache_ratio(con),
        "rejected": sections.rejected_codes(con, top),
        "shadow": sections.shadow_divergences(con, top),
    }


def problems_section(con: duckdb.DuckDBPyConnection, shown: int) -> dict[str, Any]:
    """Lines that were not events: counted by kind, the first `shown` listed with file:line."""
    by_kind = {
        row["kind"]: row["lines"]
        for row in fetch_dicts(
            con, "SELECT kind, count(*) AS lines FROM problems GROUP BY 1 ORDER BY 1"
        )
    }
    first = fetch_dicts(
        con,
        "SELECT file, line, kind, detail, snippet AS text FROM problems "
        "ORDER BY file, line LIMIT ?",
        shown,
    )
    return {"total": sum(by_kind.values()), "by_kind": by_kind, "first": first}


def _moment(epoch: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC text."""
    if epoch is None:
        return None
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
