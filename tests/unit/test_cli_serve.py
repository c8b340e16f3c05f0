"""`cnm-policy serve` set-up: configuration errors exit 2 before serving; logs go where asked."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from cnm_policy.cli import main
from cnm_policy.cli.serve import EXIT_CONFIG, EXIT_POLICY, configure_logging

BUNDLE = Path(__file__).resolve().parents[1] / "e2e" / "bundles" / "v1"


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """`serve` configures structlog process-wide; put the defaults back for other tests."""
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--listen", "0.0.0.0:50051"], "--allow-remote"),
        (["--listen", "nonsense"], "is not `HOST:PORT` or `unix:PATH`"),
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "ca.pem"], "--tls-client-ca needs --tls-cert"),
        (["--tls-cert", "missing.pem", "--tls-key", "missing.key"], "cannot read"),
        (["--max-batch-items", "0"], "max_batch_items must be at least 1"),
        (["--log-attribute", "site"], "`site` is not"),
    ],
)
def test_configuration_errors_exit_2_before_serving(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    """Every bad flag combination is refused with a message, never half-started."""
    log_file = tmp_path / "sidecar.log"
    code = main(["serve", "--policies", str(BUNDLE), "--log-file", str(log_file), *arguments])
    assert code == EXIT_CONFIG
    assert message in capsys.readouterr().err


def test_broken_bundle_exits_4_and_logs_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bundle that cannot be loaded is exit 4, on stderr and as a JSON log event."""
    log_file = tmp_path / "sidecar.log"
    code = main(["serve", "--policies", str(tmp_path / "nowhere"), "--log-file", str(log_file)])
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert code == EXIT_POLICY
    assert "is not a directory" in capsys.readouterr().err
    assert [(e["event"], e["level"], e["error_code"]) for e in events] == [
        ("sidecar_start_failed", "error", "policy_source_error")
    ]


def test_json_logging_writes_one_object_per_line(tmp_path: Path) -> None:
    """Non-interactive output is JSON lines with level and timestamp, below-level filtered."""
    stream = configure_logging(tmp_path / "out.log", "auto", "info")
    logger = structlog.get_logger("test")
    logger.debug("hidden")
    logger.info("shown", answer=42)
    stream.flush()
    (line,) = (tmp_path / "out.log").read_text().splitlines()
    event = json.loads(line)
    assert (event["event"], event["level"], event["answer"]) == ("shown", "info", 42)
    assert list(event)[:3] == ["timestamp", "level", "event"]
    assert event["timestamp"].endswith("Z")


def test_console_logging_is_human_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--log-format console` (or a terminal) renders key=value lines, not JSON."""
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    configure_logging(None, "console", "info")
    structlog.get_logger("test").info("shown", answer=42)
    line = out.getvalue()
    assert "shown" in line
    assert "answer" in line
    assert not line.lstrip().startswith("{")
