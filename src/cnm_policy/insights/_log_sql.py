"""The SQL that turns raw log lines into typed decision rows and located problems.

One pass parses each line once (`json_extract_string` over every field's path) and stores
typed columns: materialising the extracted list instead cost as much again. Line numbers are
computed only where shown (problems, replay examples). Why: docs/design/insights.md.
"""

from __future__ import annotations

from typing import Final

from cnm_policy.insights.capture import INPUT_EVENT

__all__ = [
    "FIELDS",
    "PROBLEMS",
    "RAW_JSON_LINES",
    "RAW_PARQUET",
    "REPLAY_ONLY",
    "SNIPPET_CHARS",
    "VIEWS",
    "parse",
]

# The decision event's fields (cnm_policy.audit), the capture record's (capture.py) and the
# shadow_divergence event's (shadow.py).
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
    "reason",
    "direction",
    "principal_attributes",
    "resource_attributes",
    "context",
    "actor_id",
    "actor_tenant",
    "actor_roles",
    "actor_attributes",
    "class",
)
# What the report does not read: extracted for replay only.
REPLAY_ONLY: Final = frozenset(
    {
        "resource_id",
        "matched_denies",
        "decision_id",
        "principal_attributes",
        "resource_attributes",
        "context",
        "actor_roles",
        "actor_attributes",
    }
)
SNIPPET_CHARS: Final = 120  # of a bad line kept to show; the rest is only counted
_TEXT: Final = chr(1)  # no column split: never in valid JSON, a line holding one is refused
_EVENTS: Final = f"('decision', '{INPUT_EVENT}')"
_VALID: Final = f"problem IS NULL AND event IN {_EVENTS} AND ts IS NOT NULL AND outcome IS NOT NULL"

RAW_JSON_LINES: Final = f"""
SELECT filename AS file, ordinality AS ord, line
FROM read_csv($files, columns={{'line': 'VARCHAR'}}, header=false, delim='{_TEXT}', quote='',
  escape='', auto_detect=false, filename=true, strict_mode=true, ignore_errors=true,
  store_rejects=true, rejects_table='insight_rejects', rejects_scan='insight_scans')
  WITH ORDINALITY
"""
RAW_PARQUET: Final = """
SELECT filename AS file, file_row_number + 1 AS ord, to_json(p)::VARCHAR AS line
FROM read_parquet($files, filename=true, file_row_number=true, union_by_name=true) p
"""


def parse(fields: tuple[str, ...]) -> str:
    """One pass over the raw lines: a problem kind, or the event's typed columns."""

    def field(name: str) -> str:
        return f"f[{fields.index(name) + 1}]" if name in fields else "NULL::VARCHAR"

    def strings(name: str) -> str:
        return f"coalesce(try_cast(try_cast({field(name)} AS JSON) AS VARCHAR[]), [])"

    paths = ["$." + name for name in fields]
    return f"""
CREATE OR REPLACE TEMP TABLE parsed AS
SELECT file, ord, CASE
    WHEN line IS NULL OR trim(line, ' ' || chr(9) || chr(13)) = '' THEN 'empty_line'
    WHEN f IS NULL THEN 'malformed_json'
    WHEN f[1] IS NULL AND json_type(line) <> 'OBJECT' THEN 'not_an_object' END AS problem,
  CASE WHEN f IS NULL OR f[1] IS NULL THEN left(line, {SNIPPET_CHARS}) END AS snippet,
  {field("event")} AS event,
  try_cast({field("timestamp")} AS TIMESTAMPTZ) AS ts,
  CASE WHEN {field("outcome")} = 'rejected' THEN 'rejected'
       WHEN {field("allowed")} = 'true' THEN 'allow'
       WHEN {field("allowed")} = 'false' THEN 'deny' END AS outcome,
  CASE WHEN {field("batch_size")} IS NULL THEN 'Check' ELSE 'CheckBatch' END AS method,
  {field("principal_id")} AS principal_id,
  {field("principal_tenant")} AS principal_tenant,
  {strings("principal_roles")} AS principal_roles,
  {field("action")} AS action,
  {field("resource_kind")} AS resource_kind,
  {field("resource_id")} AS resource_id,
  {field("resource_tenant")} AS resource_tenant,
  {strings("rule_ids")} AS rule_ids,
  {strings("matched_denies")} AS matched_denies,
  {field("policy_name")} AS policy_name,
  {field("policy_version")} AS policy_version,
  {field("policy_digest")} AS policy_digest,
  {field("cached")} = 'true' AS cached,
  try_cast({field("latency_ms")} AS DOUBLE) AS latency_ms,
  {field("error_code")} AS error_code,
  coalesce(try_cast({field("error_count")} AS INTEGER), 0) AS error_count,
  {field("decision_id")} AS decision_id,
  {field("reason")} AS logged_reason,
  {field("direction")} AS direction,
  {field("principal_attributes")} AS principal_attributes,
  {field("resource_attributes")} AS resource_attributes,
  {field("context")} AS context,
  {field("actor_id")} AS actor_id,
  {field("actor_tenant")} AS actor_tenant,
  {strings("actor_roles")} AS actor_roles,
  {field("actor_attributes")} AS actor_attributes,
  {field("class")} AS audit_class
FROM (SELECT file, ord, line, try(json_extract_string(line, {paths!r})) AS f FROM raw)
"""


# A row's line: its rank among the rows its file emitted, plus the refused lines before it.
VIEWS: Final = (
    "CREATE OR REPLACE TEMP TABLE offsets AS SELECT file, min(ord) - 1 AS base FROM parsed "
    "GROUP BY file",
    "CREATE OR REPLACE TEMP TABLE shifts (file VARCHAR, line BIGINT, before BIGINT)",
    "CREATE OR REPLACE TEMP VIEW numbered AS SELECT p.*, p.ord - o.base + coalesce(("
    "SELECT count(*) FROM shifts s WHERE s.file = p.file AND s.before < p.ord - o.base), 0) "
    "AS line FROM parsed p JOIN offsets o USING (file)",
    f"CREATE OR REPLACE TEMP VIEW decisions AS SELECT * FROM parsed WHERE {_VALID}",
    f"CREATE OR REPLACE TEMP VIEW numbered_decisions AS SELECT * FROM numbered WHERE {_VALID}",
)
PROBLEMS: Final = f"""
CREATE OR REPLACE TEMP TABLE problems AS
SELECT file, line, coalesce(problem, 'invalid_decision_event') AS kind,
  CASE WHEN problem IS NOT NULL THEN NULL WHEN ts IS NULL THEN 'no valid `timestamp`'
       ELSE 'no boolean `allowed`' END AS detail, snippet
FROM numbered WHERE problem IS NOT NULL
  OR (event IN {_EVENTS} AND (ts IS NULL OR outcome IS NULL))
"""
COUNTS: Final = f"""
SELECT count(*),
  count(*) FILTER (WHERE {_VALID} AND event = 'decision'),
  count(*) FILTER (WHERE {_VALID} AND event = '{INPUT_EVENT}'),
  count(*) FILTER (WHERE problem IS NULL AND (event IS NULL OR event NOT IN {_EVENTS}))
FROM parsed
"""
