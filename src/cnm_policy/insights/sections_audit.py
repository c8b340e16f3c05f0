"""The report's security sections over governance fields: audited classes and actors.

Who used break-glass (and who crossed into a self-managed tenant) is the first question a
security review asks of a period; on-behalf-of decisions by actor the second. Both read the
decision event's `class`, `actor_id` and `actor_tenant` from the view `d` (sections.py).
"""

from __future__ import annotations

from typing import Any

import duckdb

from cnm_policy.insights.logs import fetch_dicts

__all__ = ["audited", "on_behalf"]


def _iso_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`first` and `last` as ISO 8601 UTC text with milliseconds."""
    for row in rows:
        for key in ("first", "last"):
            moment = row[key]
            row[key] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return rows


def audited(con: duckdb.DuckDBPyConnection, limit: int) -> dict[str, Any]:
    """Decisions with an audited class (`break_glass`, `self_managed_crossing`): counted by
    class, and by class, principal and tenant (the `limit` with the most decisions)."""
    by_class = {
        row["class"]: row["decisions"]
        for row in fetch_dicts(
            con,
            "SELECT audit_class AS class, count(*) AS decisions FROM d "
            "WHERE audit_class IS NOT NULL GROUP BY 1 ORDER BY 1",
        )
    }
    principals = fetch_dicts(
        con,
        "SELECT audit_class AS class, principal_id, principal_tenant AS tenant, "
        "count(*) AS decisions, count(DISTINCT resource_tenant) AS target_tenants, "
        "list_sort(list_distinct(list(resource_tenant)))[1:3] AS examples, "
        "min(ts) AS first, max(ts) AS last FROM d WHERE audit_class IS NOT NULL "
        "GROUP BY 1, 2, 3 ORDER BY decisions DESC, class, principal_id, tenant LIMIT ?",
        limit,
    )
    return {"by_class": by_class, "principals": _iso_rows(principals)}


def on_behalf(con: duckdb.DuckDBPyConnection, limit: int) -> dict[str, Any]:
    """Decisions an actor asked for on a principal's behalf: totals, and by actor (the
    `limit` with the most decisions)."""
    totals = fetch_dicts(
        con,
        "SELECT count(*) AS decisions, count(*) FILTER (WHERE outcome = 'allow') AS allowed, "
        "count(DISTINCT (actor_id, actor_tenant)) AS actors FROM d "
        "WHERE actor_id IS NOT NULL AND outcome <> 'rejected'",
    )[0]
    actors = fetch_dicts(
        con,
        "SELECT actor_id, actor_tenant, count(*) AS decisions, "
        "count(*) FILTER (WHERE outcome = 'allow') AS allowed, "
        "count(*) FILTER (WHERE outcome = 'deny') AS denied, "
        "count(DISTINCT (principal_id, principal_tenant)) AS principals, "
        "count(DISTINCT resource_tenant) AS target_tenants FROM d "
        "WHERE actor_id IS NOT NULL AND outcome <> 'rejected' GROUP BY 1, 2 "
        "ORDER BY decisions DESC, actor_id, actor_tenant LIMIT ?",
        limit,
    )
    return {**totals, "by_actor": actors}
