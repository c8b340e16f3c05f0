"""The report's sections, one SQL query each over the `decisions` table `load_logs` fills.

Each function returns plain JSON-ready data (str, int, float, lists, dicts), so the three
renderers and other tools read one structure. The view `d` is the period's decisions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import duckdb

from cnm_policy.insights.logs import fetch_dicts

__all__ = [
    "BREAKDOWNS",
    "breakdown",
    "cache_ratio",
    "cross_tenant",
    "deny_reasons",
    "deny_rules",
    "latency",
    "over_time",
    "policy_versions",
    "rejected_codes",
    "rule_usage",
    "shadow_divergences",
    "top_denied",
    "totals",
]

BREAKDOWNS: Final = ("method", "side", "resource_kind", "action")
_OUTCOMES: Final = (
    "count(*) FILTER (WHERE outcome = 'allow') AS allow, "
    "count(*) FILTER (WHERE outcome = 'deny') AS deny, "
    "count(*) FILTER (WHERE outcome = 'rejected') AS rejected"
)
# What a deny's reason was, from the logged fields (the same words as Decision.reason).
_REASON: Final = """coalesce(logged_reason, CASE
  WHEN error_count > 0 THEN 'denied: a condition could not be evaluated'
  WHEN len(rule_ids) = 1 THEN 'denied by rule `' || rule_ids[1] || '`'
  WHEN len(rule_ids) > 1 THEN 'denied by rules ' || array_to_string(
    list_transform(rule_ids, lambda r: '`' || r || '`'), ', ')
  ELSE 'no rule allows `' || coalesce(action, '?') || '` on `' || coalesce(resource_kind, '?')
    || '` here' END)"""


def _iso(value: Any) -> str | None:
    """A timestamp as ISO 8601 UTC text with milliseconds (``None`` stays ``None``)."""
    if value is None:
        return None
    return str(value.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def totals(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Decisions by outcome, and the first and last event of the period."""
    row = fetch_dicts(con, f"SELECT {_OUTCOMES}, min(ts) AS first, max(ts) AS last FROM d")[0]
    return {**row, "first": _iso(row["first"]), "last": _iso(row["last"])}


def over_time(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Decisions per hour (a period up to two days) or per day, by outcome."""
    span = fetch_dicts(con, "SELECT max(ts) - min(ts) <= INTERVAL 2 DAY AS short FROM d")
    bucket = "day" if span[0]["short"] is False else "hour"
    rows = fetch_dicts(
        con,
        f"SELECT date_trunc('{bucket}', ts) AS start, {_OUTCOMES} FROM d GROUP BY 1 ORDER BY 1",
    )
    return {"bucket": bucket, "rows": [{**r, "start": _iso(r["start"])} for r in rows]}


def breakdown(con: duckdb.DuckDBPyConnection, column: str, limit: int) -> list[dict[str, Any]]:
    """Decisions by outcome for the `limit` most frequent values of `column` (one of
    BREAKDOWNS); the rest summed in one ``(others)`` row: a log may name any kind or action."""
    if column not in BREAKDOWNS:
        raise ValueError(f"`{column}` is not a breakdown")
    rows = fetch_dicts(
        con,
        f"SELECT coalesce({column}, '(none)') AS value, {_OUTCOMES}, count(*) AS total FROM d "
        "GROUP BY 1 ORDER BY total DESC, value",
    )
    if len(rows) <= limit:
        return rows
    rest = rows[limit:]
    others = {key: sum(row[key] for row in rest) for key in ("allow", "deny", "rejected", "total")}
    return [*rows[:limit], {"value": f"({len(rest)} others)", **others}]


def deny_reasons(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """The most frequent reasons for a deny."""
    return fetch_dicts(
        con,
        f"SELECT {_REASON} AS reason, count(*) AS denies FROM d WHERE outcome = 'deny' "
        "GROUP BY 1 ORDER BY denies DESC, reason LIMIT ?",
        limit,
    )


def deny_rules(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """The rules named by the most denies (the default deny names none)."""
    return fetch_dicts(
        con,
        "SELECT rule_id, count(*) AS denies FROM (SELECT unnest(rule_ids) AS rule_id FROM d "
        "WHERE outcome = 'deny') GROUP BY 1 ORDER BY denies DESC, rule_id LIMIT ?",
        limit,
    )


def top_denied(con: duckdb.DuckDBPyConnection, limit: int) -> dict[str, list[dict[str, Any]]]:
    """The tenants and the principals with the most denies: who is stuck."""
    tenants = fetch_dicts(
        con,
        "SELECT principal_tenant AS tenant, count(*) AS denies, "
        "count(DISTINCT principal_id) AS principals FROM d WHERE outcome = 'deny' "
        "GROUP BY 1 ORDER BY denies DESC, tenant LIMIT ?",
        limit,
    )
    principals = fetch_dicts(
        con,
        "SELECT principal_id, principal_tenant AS tenant, "
        "count(*) FILTER (WHERE outcome = 'deny') AS denies, "
        "count(*) FILTER (WHERE outcome = 'allow') AS allows FROM d WHERE outcome <> 'rejected' "
        "GROUP BY 1, 2 HAVING denies > 0 ORDER BY denies DESC, principal_id, tenant LIMIT ?",
        limit,
    )
    return {"tenants": tenants, "principals": principals}


def cross_tenant(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """Customer-side requests aimed outside the principal's own subtree, by principal."""
    return fetch_dicts(
        con,
        "SELECT principal_id, principal_tenant AS tenant, count(*) AS requests, "
        "count(DISTINCT resource_tenant) AS target_tenants, "
        "count(*) FILTER (WHERE outcome = 'allow') AS allowed, "
        "list_sort(list_distinct(list(resource_tenant)))[1:3] AS examples FROM d "
        "WHERE side = 'customer' AND outcome <> 'rejected' AND resource_tenant <> "
        "principal_tenant AND NOT starts_with(resource_tenant, principal_tenant || '/') "
        "GROUP BY 1, 2 ORDER BY requests DESC, principal_id, tenant LIMIT ?",
        limit,
    )


def rule_usage(
    con: duckdb.DuckDBPyConnection, allow_rules: Sequence[str], rare: int, limit: int
) -> dict[str, Any]:
    """Allow rules that granted nothing in the period, and grants used by `rare` or fewer."""
    used = {
        row["rule_id"]: row
        for row in fetch_dicts(
            con,
            "SELECT rule_id, count(DISTINCT principal_id) AS principals, count(*) AS decisions "
            "FROM (SELECT unnest(rule_ids) AS rule_id, principal_id FROM d "
            "WHERE outcome = 'allow') GROUP BY 1",
        )
    }
    unused = sorted(rule for rule in allow_rules if rule not in used)
    few = sorted(
        (row for row in used.values() if row["principals"] <= rare),
        key=lambda row: (row["principals"], row["decisions"], row["rule_id"]),
    )
    return {"unused": unused, "rare_threshold": rare, "rare": few[:limit]}


def policy_versions(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """The policy versions seen, and when: first and last decision (the first `limit` seen)."""
    rows = fetch_dicts(
        con,
        "SELECT policy_name AS name, policy_version AS version, policy_digest AS digest, "
        "min(ts) AS first, max(ts) AS last, count(*) AS decisions FROM d "
        "WHERE outcome <> 'rejected' GROUP BY 1, 2, 3 ORDER BY first, name, version, digest "
        "LIMIT ?",
        limit,
    )
    return [{**r, "first": _iso(r["first"]), "last": _iso(r["last"])} for r in rows]


def latency(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Latency percentiles in milliseconds (each event's own; a batch's items share it)."""
    row = fetch_dicts(
        con,
        "SELECT count(latency_ms) AS count, quantile_cont(latency_ms, 0.5) AS p50, "
        "quantile_cont(latency_ms, 0.9) AS p90, quantile_cont(latency_ms, 0.99) AS p99, "
        "max(latency_ms) AS max FROM d",
    )[0]
    return {
        key: (round(value, 3) if isinstance(value, float) else value) for key, value in row.items()
    }


def cache_ratio(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """How many decisions the cache answered, of all decisions made."""
    row = fetch_dicts(
        con,
        "SELECT count(*) FILTER (WHERE cached) AS hits, count(*) AS decisions FROM d "
        "WHERE outcome <> 'rejected'",
    )[0]
    ratio = row["hits"] / row["decisions"] if row["decisions"] else None
    return {**row, "ratio": round(ratio, 4) if ratio is not None else None}


def rejected_codes(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    """Calls refused before any decision, by error code (the `limit` most frequent)."""
    return fetch_dicts(
        con,
        "SELECT coalesce(error_code, '(none)') AS error_code, count(*) AS calls FROM d "
        "WHERE outcome = 'rejected' GROUP BY 1 ORDER BY calls DESC, error_code LIMIT ?",
        limit,
    )


def shadow_divergences(con: duckdb.DuckDBPyConnection, limit: int) -> dict[str, Any]:
    """`shadow_divergence` events of the period (view `shadow`): by direction, kind and action."""
    directions = {
        row["direction"]: row["events"]
        for row in fetch_dicts(
            con,
            "SELECT coalesce(direction, '(none)') AS direction, count(*) AS events FROM shadow "
            "GROUP BY 1 ORDER BY 1",
        )
    }
    targets = fetch_dicts(
        con,
        "SELECT resource_kind AS kind, action, "
        "count(*) FILTER (WHERE direction = 'allow_to_deny') AS allow_to_deny, "
        "count(*) FILTER (WHERE direction = 'deny_to_allow') AS deny_to_allow, "
        "count(DISTINCT principal_id) AS principals FROM shadow GROUP BY 1, 2 "
        "ORDER BY allow_to_deny + deny_to_allow DESC, kind, action LIMIT ?",
        limit,
    )
    return {"total": sum(directions.values()), "by_direction": directions, "targets": targets}


def side_expression(role_sides: Mapping[str, str]) -> str:
    """SQL giving a decision's side from its roles: customer, internal, mixed or unknown."""
    if not role_sides:
        return "'unknown'"
    pairs = ", ".join(
        f"{_quote(role)}: {_quote(side)}" for role, side in sorted(role_sides.items())
    )
    sides = (
        f"list_distinct(list_transform(principal_roles, lambda r: "
        f"coalesce(map_extract_value(MAP {{{pairs}}}, r), 'unknown')))"
    )
    return (
        f"CASE WHEN len(principal_roles) = 0 THEN 'unknown' WHEN len({sides}) = 1 "
        f"THEN {sides}[1] WHEN list_contains({sides}, 'unknown') THEN 'unknown' ELSE 'mixed' END"
    )


def _quote(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
