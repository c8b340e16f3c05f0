"""`cnm-policy report` and `cnm-policy replay`: outputs, gates and exit statuses."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from cnm_policy.cli import main
from tests.unit.insights.scenario import POLICIES, write_day
from tests.unit.insights.test_replay import EDITS, LOGGED, _edited, _record

FLAGS = [
    f"--log-attribute={section}.{key}"
    for section in ("principal", "resource", "context")
    for key in sorted(getattr(LOGGED, section))
]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scenario's day."""
    path = tmp_path_factory.mktemp("logs") / "day.jsonl"
    write_day(path)
    return path


def test_report_writes_json_to_output(day: Path, tmp_path: Path) -> None:
    """--format json --output FILE writes the report there and exits 0."""
    out = tmp_path / "report.json"
    code = main(
        ["report", str(day), "--policies", str(POLICIES), "--format", "json", "--output", str(out)]
    )
    assert code == 0
    assert orjson.loads(out.read_bytes())["totals"] == {"allow": 6, "deny": 7, "rejected": 3}


def test_report_prints_markdown_for_the_period(
    day: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Markdown by default, on stdout; --since and --until take ISO 8601 with an offset."""
    code = main(
        [
            "report",
            str(day),
            "--since",
            "2026-03-02T11:00:00Z",
            "--until",
            "2026-03-02T12:00:00+00:00",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith("# Decision report")
    assert "| 2 | 3 | 0 |" in text


def test_report_on_a_missing_log_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log that names no file is a usage error, named on stderr."""
    assert main(["report", str(tmp_path / "gone.jsonl")]) == 2
    assert "gone.jsonl` is not a readable file" in capsys.readouterr().err


def test_report_refuses_a_naive_time(day: Path) -> None:
    """A time without an offset is ambiguous: argparse exits 2."""
    with pytest.raises(SystemExit) as exited:
        main(["report", str(day), "--since", "2026-03-02T11:00:00"])
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("edit", "gate", "expected"),
    [
        ("widened-grant", "--fail-on-widen", 1),
        ("narrowed-scope", "--fail-on-widen", 0),
        ("narrowed-scope", "--fail-on-change", 1),
        ("narrowed-scope", None, 0),
    ],
)
def test_replay_gates(edit: str, gate: str | None, expected: int, tmp_path: Path) -> None:
    """--fail-on-widen fails on deny -> allow only; --fail-on-change on any flip."""
    candidate = _edited(tmp_path / "candidate", *EDITS[edit])
    _record(tmp_path / "log.jsonl", LOGGED)
    argv = ["replay", "--policies", str(candidate), str(tmp_path / "log.jsonl"), *FLAGS]
    out = tmp_path / "replay.md"
    assert main([*argv, *([gate] if gate else []), "--output", str(out)]) == expected
    assert out.read_text("utf-8").startswith("# Replay against a candidate policy")


def test_replay_json_names_the_unlogged_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the allow-list flags the JSON counts undetermined decisions and what they read."""
    candidate = _edited(tmp_path / "candidate", *EDITS["narrowed-scope"])
    _record(tmp_path / "log.jsonl", None)
    assert (
        main(
            [
                "replay",
                "--policies",
                str(candidate),
                str(tmp_path / "log.jsonl"),
                "--format",
                "json",
            ]
        )
        == 0
    )
    result = orjson.loads(capsys.readouterr().out)
    assert (result["undetermined"], result["unlogged_inputs"]["principal.mfa"]) == (9, 4)


def test_replay_refuses_a_malformed_allow_list_entry(
    day: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--log-attribute takes section.key, like serve's flag."""
    assert main(["replay", "--policies", str(POLICIES), str(day), "--log-attribute", "mfa"]) == 2
    assert "--log-attribute" in capsys.readouterr().err


def test_replay_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    """The statuses a CI job keys on are in --help."""
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 replayed" in help_text
    assert "--fail-on-widen: any deny -> allow" in help_text
