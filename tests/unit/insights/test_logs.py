"""Reading logs: every line is a decision, another event, or a problem with its file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnm_policy.insights.logs import fetch_dicts, load_logs
from cnm_policy.insights.sources import expand_logs
from tests.unit.insights.scenario import write_day

OPERATIONAL = b'{"timestamp":"2026-03-02T10:00:00.000Z","level":"info","event":"policy_reloaded"}'


@pytest.fixture(scope="module")
def day_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The scenario's 16 logged lines."""
    path = tmp_path_factory.mktemp("logs") / "day.jsonl"
    write_day(path)
    return path.read_bytes().splitlines()


def _damaged(day_lines: list[bytes]) -> bytes:
    """Three good lines among every kind of bad one (lines 2-8)."""
    return b"\n".join(
        [
            day_lines[0],
            b"",  # 2
            b"not json",  # 3
            b"[1, 2]",  # 4
            b'{"x": "\xff"}',  # 5: not UTF-8
            b'{"x": "a\x01b"}',  # 6: a control byte no JSON text holds
            b'{"event":"decision","timestamp":"yesterday","allowed":true}',  # 7
            b"   ",  # 8
            OPERATIONAL,
            day_lines[1],
            day_lines[2],
        ]
    )


EXPECTED = [
    (2, "empty_line"),
    (3, "malformed_json"),
    (4, "not_an_object"),
    (5, "unreadable_line"),
    (6, "unreadable_line"),
    (7, "invalid_decision_event"),
    (8, "empty_line"),
]


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_bad_lines_are_problems_with_their_line_numbers(
    day_lines: list[bytes], tmp_path: Path, packed: bool
) -> None:
    """Empty, malformed, unreadable and invalid lines each reported at their line; none dropped."""
    path = tmp_path / ("log.jsonl.gz" if packed else "log.jsonl")
    data = _damaged(day_lines)
    path.write_bytes(gzip.compress(data) if packed else data)
    con = duckdb.connect()
    loaded = load_logs(con, expand_logs([str(path)]))
    problems = fetch_dicts(con, "SELECT line, kind FROM problems ORDER BY line")
    decisions = fetch_dicts(con, "SELECT line FROM numbered_decisions ORDER BY line")
    assert [(p["line"], p["kind"]) for p in problems] == EXPECTED
    assert [d["line"] for d in decisions] == [1, 10, 11]
    assert (loaded.lines, loaded.decisions, loaded.other_events) == (11, 3, 1)


def test_line_numbers_restart_in_each_file(day_lines: list[bytes], tmp_path: Path) -> None:
    """Two damaged files: each problem is placed in its own file's numbering."""
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_bytes(_damaged(day_lines))
    con = duckdb.connect()
    load_logs(con, expand_logs([str(tmp_path / "*.jsonl")]))
    rows = fetch_dicts(con, "SELECT file, line, kind FROM problems ORDER BY file, line")
    expected = [
        (str(tmp_path / f), line, kind) for f in ("a.jsonl", "b.jsonl") for line, kind in EXPECTED
    ]
    assert expected == [(r["file"], r["line"], r["kind"]) for r in rows]


def test_a_problem_keeps_a_clipped_copy_of_its_text(tmp_path: Path) -> None:
    """The first 120 characters of a bad line are kept to show; the rest is not."""
    path = tmp_path / "log.jsonl"
    path.write_text("x" * 5000 + "\n", encoding="utf-8")
    con = duckdb.connect()
    load_logs(con, expand_logs([str(path)]))
    assert con.execute("SELECT snippet, line FROM problems").fetchall() == [("x" * 120, 1)]


def test_an_empty_file_has_nothing_and_no_problem(tmp_path: Path) -> None:
    """A file with no lines is read as zero events."""
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    loaded = load_logs(duckdb.connect(), expand_logs([str(path)]))
    assert (loaded.lines, loaded.decisions, loaded.other_events) == (0, 0, 0)


LINE_KINDS = {
    "decision": None,
    "empty": (b"", "empty_line"),
    "blank": (b" \t ", "empty_line"),
    "malformed": (b'{"event": "decision",', "malformed_json"),
    "list": (b"[1]", "not_an_object"),
    "text": (b'"decision"', "not_an_object"),
    "bad utf-8": (b'{"a": "\xc3\x28"}', "unreadable_line"),
    "control": (b'{"a": "\x01"}', "unreadable_line"),
    "no time": (b'{"event": "decision", "allowed": true}', "invalid_decision_event"),
    "operational": (OPERATIONAL, None),
}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.sampled_from(sorted(LINE_KINDS)), max_size=25),
    st.booleans(),
)
def test_every_line_is_counted_once_at_its_number(
    day_lines: list[bytes], tmp_path: Path, kinds: list[str], packed: bool
) -> None:
    """Any mix of lines: each decision and each problem at its own 1-based line, once."""
    lines = [day_lines[0] if kind == "decision" else LINE_KINDS[kind][0] for kind in kinds]  # type: ignore[index]
    data = b"\n".join(lines) + (b"\n" if lines else b"")
    path = tmp_path / f"mix-{len(kinds)}-{packed}.jsonl{'.gz' if packed else ''}"
    path.write_bytes(gzip.compress(data) if packed else data)
    con = duckdb.connect()
    loaded = load_logs(con, expand_logs([str(path)]))
    expected_problems = [
        (n, LINE_KINDS[kind][1])  # type: ignore[index]
        for n, kind in enumerate(kinds, 1)
        if LINE_KINDS[kind] is not None and LINE_KINDS[kind][1] is not None  # type: ignore[index]
    ]
    problems = con.execute("SELECT line, kind FROM problems ORDER BY line").fetchall()
    decisions = con.execute("SELECT line FROM numbered_decisions ORDER BY line").fetchall()
    assert problems == expected_problems
    assert [n for (n,) in decisions] == [n for n, k in enumerate(kinds, 1) if k == "decision"]
    assert loaded.lines == len(kinds)
    assert loaded.other_events == kinds.count("operational")


def test_a_line_past_the_scanners_limit_is_a_bounded_problem(
    day_lines: list[bytes], tmp_path: Path
) -> None:
    """A 3 MB line costs no more than its refusal: a located problem, the next line read."""
    path = tmp_path / "long.jsonl"
    path.write_bytes(b'{"a": "' + b"x" * 3_000_000 + b'"}\n' + day_lines[0] + b"\n")
    con = duckdb.connect()
    load_logs(con, expand_logs([str(path)]))
    assert con.execute("SELECT line, kind, detail FROM problems").fetchall() == [
        (1, "unreadable_line", "line_size_over_maximum")
    ]
    assert con.execute("SELECT line FROM numbered_decisions").fetchall() == [(2,)]
