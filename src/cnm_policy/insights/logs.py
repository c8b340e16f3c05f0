"""Decision logs into DuckDB: every line read, every problem kept with its file and line.

JSON lines (plain or gzip) are scanned as raw text so that an empty, malformed or unreadable line
becomes a located problem instead of vanishing; Parquet rows go through the same JSON path. The
result: the `decisions` view (`numbered_decisions` adds line numbers) and the `problems` table.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from cnm_policy.insights import _log_sql as sql
from cnm_policy.insights.sources import LogFiles

__all__ = ["LoadedLogs", "connect", "fetch_dicts", "load_logs"]


@dataclass(frozen=True, slots=True)
class LoadedLogs:
    """What a load read: lines, decision events, input-capture records, other events."""

    lines: int
    decisions: int
    inputs: int
    other_events: int


@contextmanager
def connect(memory_limit: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB bounded to `memory_limit`, spilling to a private temporary folder
    (removed afterwards) rather than to `.tmp` in the working directory."""
    with tempfile.TemporaryDirectory(prefix="cnm-policy-logs-") as spill:
        con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": spill})
        try:
            yield con
        finally:
            con.close()


def load_logs(
    con: duckdb.DuckDBPyConnection, files: LogFiles, *, replay: bool = False
) -> LoadedLogs:
    """Read `files` into `con`; `replay` also extracts the fields only replay reads.

    Every line is accounted for: a decision, another event, or a row of `problems` (file,
    1-based line, kind, detail, a clipped copy of the text).
    """
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    sources = []
    if files.json_lines:
        sources.append(sql.RAW_JSON_LINES.replace("$files", _sql_list(files.json_lines)))
    if files.parquet:
        sources.append(sql.RAW_PARQUET.replace("$files", _sql_list(files.parquet)))
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS {' UNION ALL '.join(sources)}")
    fields = sql.FIELDS if replay else tuple(f for f in sql.FIELDS if f not in sql.REPLAY_ONLY)
    con.execute(sql.parse(fields))
    for statement in sql.VIEWS:
        con.execute(statement)
    rejects = _rejects(con) if files.json_lines else []
    _shift(con, rejects)
    con.execute(sql.PROBLEMS)
    if rejects:
        con.executemany(
            "INSERT INTO problems VALUES (?, ?, 'unreadable_line', ?, ?)",
            [
                (f, n, kind.lower().replace(" ", "_"), text.strip()[: sql.SNIPPET_CHARS])
                for f, n, kind, text in rejects
            ],
        )
    lines, decisions, inputs, others = (int(v) for v in con.execute(sql.COUNTS).fetchall()[0])
    return LoadedLogs(lines + len(rejects), decisions, inputs, others)


def _sql_list(paths: tuple[str, ...]) -> str:
    """Paths as a SQL list literal (quotes doubled: a file name is data, not SQL)."""
    return "[" + ", ".join("'" + path.replace("'", "''") + "'" for path in paths) + "]"


def _rejects(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, str, str]]:
    """Lines the text scan refused (bad UTF-8, over-long): file, true line, kind, text."""
    try:
        rows = con.execute(
            "SELECT s.file_path, e.line, any_value(e.error_type), any_value(e.csv_line) "
            "FROM insight_rejects e JOIN insight_scans s USING (scan_id, file_id) "
            "GROUP BY ALL ORDER BY 1, 2"
        ).fetchall()
    except duckdb.CatalogException:  # nothing refused: no table
        return []
    return [(str(f), int(n), str(kind), str(text or "")) for f, n, kind, text in rows]


def _shift(con: duckdb.DuckDBPyConnection, rejects: list[tuple[str, int, str, str]]) -> None:
    """Fill `shifts`: the scan numbers only the rows it emits, so row k of a file comes after
    its j-th refused line (true line r_j) exactly when k > r_j - j."""
    table: list[tuple[str, int, int]] = []
    seen: dict[str, int] = {}
    for file, line, _, _ in rejects:
        seen[file] = seen.get(file, 0) + 1
        table.append((file, line, line - seen[file]))
    if table:
        con.executemany("INSERT INTO shifts VALUES (?, ?, ?)", table)


def fetch_dicts(con: duckdb.DuckDBPyConnection, query: str, *params: Any) -> list[dict[str, Any]]:
    """Rows of `query` as dicts keyed by column name."""
    cursor = con.execute(query, list(params))
    names = [column[0] for column in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
