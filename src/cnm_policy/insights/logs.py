"""Decision logs into DuckDB: every line read, every problem kept with its file and line.

JSON lines (plain or gzip) are scanned as raw text so that an empty, malformed or unreadable line
becomes a located problem instead of vanishing; Parquet rows go through the same JSON path. The
result is one `decisions` table and one `problems` table (docs/design/insights.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import duckdb

from cnm_policy.insights.capture import INPUT_EVENT
from cnm_policy.insights.sources import LogFiles

__all__ = ["FIELDS", "LoadedLogs", "load_logs"]

# The decision event's fields (cnm_policy.audit), extracted with one JSON parse per line.
FIELDS: Final = (
    "event",
    "timestamp",
    "outcome",
    "allowed",
    "principal_id",
    "principal_tenant",
    "principal_roles",
    "action",
    "resource_kind",
    "resource_id",
    "resource_tenant",
    "rule_ids",
    "matched_denies",
    "policy_name",
    "policy_version",
    "policy_digest",
    "cached",
    "latency_ms",
    "error_code",
    "error_count",
    "batch_size",
    "decision_id",
    "request_id",
    "reason",
    "principal_attributes",
    "resource_attributes",
    "context",
)
_SNIPPET_CHARS: Final = 120  # of a bad line kept to show; the rest is only counted
_TEXT = chr(1)  # no column split: never in valid JSON, a line holding one is refused


@dataclass(frozen=True, slots=True)
class LoadedLogs:
    """What a load read: lines, decision events, input-capture records, other events."""

    lines: int
    decisions: int
    inputs: int
    other_events: int


def _field(name: str) -> str:
    """The SQL reading field `name` from the extracted list `f` (1-based)."""
    return f"f[{FIELDS.index(name) + 1}]"


def _list(name: str) -> str:
    """A JSON list of strings as VARCHAR[] (anything else: an empty list)."""
    return f"coalesce(try_cast(try_cast({_field(name)} AS JSON) AS VARCHAR[]), [])"


_RAW_JSON_LINES: Final = f"""
SELECT filename AS file, ordinality AS ord, line
FROM read_csv($files, columns={{'line': 'VARCHAR'}}, header=false, delim='{_TEXT}', quote='',
  escape='', auto_detect=false, filename=true, strict_mode=true, ignore_errors=true,
  store_rejects=true,
  rejects_table='insight_rejects', rejects_scan='insight_scans') WITH ORDINALITY
"""
_RAW_PARQUET: Final = """
SELECT filename AS file, file_row_number + 1 AS ord, to_json(p)::VARCHAR AS line
FROM read_parquet($files, filename=true, file_row_number=true, union_by_name=true) p
"""
_PARSE: Final = f"""
CREATE OR REPLACE TEMP TABLE parsed AS
WITH v AS (
  SELECT file, ord, line, CASE
    WHEN line IS NULL OR trim(line) = '' THEN 'empty_line'
    WHEN NOT json_valid(line) THEN 'malformed_json'
    WHEN json_type(line) <> 'OBJECT' THEN 'not_an_object'
  END AS problem FROM raw)
SELECT file, ord, problem,
  CASE WHEN problem IS NOT NULL THEN left(line, {_SNIPPET_CHARS}) END AS snippet,
  CASE WHEN problem IS NULL THEN json_extract_string(line, {["$." + f for f in FIELDS]!r}) END AS f
FROM v
"""
_DECISIONS: Final = f"""
CREATE OR REPLACE TEMP TABLE decisions AS
SELECT file, line, {_field("event")} AS event,
  try_cast({_field("timestamp")} AS TIMESTAMPTZ) AS ts,
  CASE WHEN {_field("outcome")} = 'rejected' THEN 'rejected'
       WHEN {_field("allowed")} = 'true' THEN 'allow'
       WHEN {_field("allowed")} = 'false' THEN 'deny' END AS outcome,
  CASE WHEN {_field("batch_size")} IS NULL THEN 'Check' ELSE 'CheckBatch' END AS method,
  {_field("principal_id")} AS principal_id,
  {_field("principal_tenant")} AS principal_tenant,
  {_list("principal_roles")} AS principal_roles,
  {_field("action")} AS action,
  {_field("resource_kind")} AS resource_kind,
  {_field("resource_id")} AS resource_id,
  {_field("resource_tenant")} AS resource_tenant,
  {_list("rule_ids")} AS rule_ids,
  {_list("matched_denies")} AS matched_denies,
  {_field("policy_name")} AS policy_name,
  {_field("policy_version")} AS policy_version,
  {_field("policy_digest")} AS policy_digest,
  {_field("cached")} = 'true' AS cached,
  try_cast({_field("latency_ms")} AS DOUBLE) AS latency_ms,
  {_field("error_code")} AS error_code,
  coalesce(try_cast({_field("error_count")} AS INTEGER), 0) AS error_count,
  {_field("decision_id")} AS decision_id,
  {_field("request_id")} AS request_id,
  {_field("reason")} AS logged_reason,
  {_field("principal_attributes")} AS principal_attributes,
  {_field("resource_attributes")} AS resource_attributes,
  {_field("context")} AS context
FROM (SELECT *, ord - min(ord) OVER (PARTITION BY file) + 1 AS line FROM parsed)
WHERE problem IS NULL AND {_field("event")} IN ('decision', '{INPUT_EVENT}')
"""
_INVALID_DECISIONS: Final = """
INSERT INTO problems
SELECT file, line, 'invalid_decision_event',
  CASE WHEN ts IS NULL THEN 'no valid `timestamp`' ELSE 'no boolean `allowed`' END, NULL
FROM decisions WHERE ts IS NULL OR outcome IS NULL
"""


def load_logs(con: duckdb.DuckDBPyConnection, files: LogFiles) -> LoadedLogs:
    """Read `files` into the `decisions` and `problems` tables of `con`.

    Every line is accounted for: a decision, another event, or a row of `problems` (kind,
    file, 1-based line, detail, a clipped copy of the text).
    """
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    sources = []
    if files.json_lines:
        sources.append(_RAW_JSON_LINES.replace("$files", _sql_list(files.json_lines)))
    if files.parquet:
        sources.append(_RAW_PARQUET.replace("$files", _sql_list(files.parquet)))
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS {' UNION ALL '.join(sources)}")
    con.execute(_PARSE)
    rejects = _rejects(con) if files.json_lines else []
    con.execute(_DECISIONS)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE problems AS SELECT file, ord - min(ord) OVER "
        "(PARTITION BY file) + 1 AS line, problem AS kind, NULL::VARCHAR AS detail, snippet "
        "FROM parsed QUALIFY problem IS NOT NULL"
    )
    if rejects:
        _renumber(con, rejects)
    con.execute(_INVALID_DECISIONS)
    con.execute("DELETE FROM decisions WHERE ts IS NULL OR outcome IS NULL")
    row = con.execute(
        "SELECT (SELECT count(*) FROM parsed), "
        "(SELECT count(*) FROM decisions WHERE event = 'decision'), "
        "(SELECT count(*) FROM decisions WHERE event <> 'decision'), "
        "(SELECT count(*) FROM parsed WHERE problem IS NULL) - "
        "(SELECT count(*) FROM decisions) - (SELECT count(*) FROM problems "
        "WHERE kind = 'invalid_decision_event')"
    ).fetchall()
    lines, decisions, inputs, others = (int(value) for value in row[0])
    return LoadedLogs(lines + len(rejects), decisions, inputs, others)


def _sql_list(paths: tuple[str, ...]) -> str:
    """Paths as a SQL list literal (quotes doubled: a file name is data, not SQL)."""
    return "[" + ", ".join("'" + path.replace("'", "''") + "'" for path in paths) + "]"


def _rejects(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, str, str]]:
    """Lines the text scan refused (bad UTF-8, over-long): file, true line, kind, detail."""
    try:
        rows = con.execute(
            "SELECT s.file_path, e.line, any_value(e.error_type), any_value(e.csv_line) "
            "FROM insight_rejects e JOIN insight_scans s USING (scan_id, file_id) "
            "GROUP BY ALL ORDER BY 1, 2"
        ).fetchall()
    except duckdb.CatalogException:  # nothing rejected, no table
        return []
    return [(str(f), int(n), str(kind), str(text or "")) for f, n, kind, text in rows]


def _renumber(con: duckdb.DuckDBPyConnection, rejects: list[tuple[str, int, str, str]]) -> None:
    """Put the refused lines back into each file's numbering, and list them as problems.

    The scan numbers only the rows it emits: a row k of a file comes after its j-th refused
    line (true line r_j) exactly when k > r_j - j, the rows emitted before that one.
    """
    table: list[tuple[str, int, int]] = []
    seen: dict[str, int] = {}
    for file, line, _, _ in rejects:
        seen[file] = seen.get(file, 0) + 1
        table.append((file, line, line - seen[file]))
    con.execute("CREATE OR REPLACE TEMP TABLE shifts (file VARCHAR, line BIGINT, before BIGINT)")
    con.executemany("INSERT INTO shifts VALUES (?, ?, ?)", table)
    for name in ("decisions", "problems"):
        con.execute(
            f"UPDATE {name} t SET line = t.line + (SELECT count(*) FROM shifts s "
            "WHERE s.file = t.file AND s.before < t.line) "
            "WHERE t.file IN (SELECT file FROM shifts)"
        )
    con.executemany(
        "INSERT INTO problems VALUES (?, ?, 'unreadable_line', ?, ?)",
        [
            (f, n, kind.lower().replace(" ", "_"), text.strip()[:_SNIPPET_CHARS])
            for f, n, kind, text in rejects
        ],
    )


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of `sql` as dicts keyed by column name."""
    cursor = con.execute(sql, list(params))
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
