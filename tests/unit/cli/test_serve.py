"""`cnm-policy serve` set-up: configuration errors exit 2 before serving; logs go where asked."""

from __future__ import annotations

import io
import json
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import structlog

from cnm_policy._early_signals import is_serve_process
from cnm_policy.cli import main
from cnm_policy.cli._args import shipped_policy_dir
from cnm_policy.cli.serve import EXIT_CONFIG, EXIT_OK, EXIT_POLICY
from cnm_policy.log_pipeline import configure_logging
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.runtime import Runtime, RuntimeOptions
from cnm_policy.server.runtime import open_runtime as real_open_runtime
from tests.e2e.harness import copy_bundle

BUNDLE = Path(__file__).resolve().parents[2] / "e2e" / "bundles" / "v1"
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """`serve` configures structlog process-wide; put the defaults back for other tests."""
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--listen", "0.0.0.0:50051"], "--allow-remote"),
        (["--listen", "nonsense"], "--listen: `nonsense` is not `HOST:PORT` or `unix:PATH`"),
        (["--tls-cert", "cert.pem"], "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "ca.pem"], "--tls-client-ca needs --tls-cert"),
        (["--tls-cert", "missing.pem", "--tls-key", "missing.key"], "cannot read"),
        (["--max-batch-items", "0"], "--max-batch-items: must be at least 1"),
        (["--max-message-bytes", "10"], "--max-message-bytes: must be at least 1024"),
        (["--workers", "0"], "--workers: must be at least 1"),
        (["--log-attribute", "site"], "--log-attribute: `site` is not"),
        (["--watch-interval", "-1"], "--watch-interval must be 0 (off) or at least"),
        (["--watch-interval", "0.001"], "--watch-interval must be 0 (off) or at least"),
        (["--cache-size", "-1"], "--cache-size must be 0 (off)"),
        (["--cache-ttl", "0"], "--cache-ttl must be a positive number"),
        (["--grace", "-1"], "--grace must be a number of seconds"),
        (["--settle", "-1"], "--settle must be a number of seconds"),
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


def test_a_port_in_use_is_one_clean_line_and_exit_2(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A taken port is reported in one line of ours, without gRPC's own log lines."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        log_file = str(tmp_path / "sidecar.log")
        arguments = ["--policies", str(BUNDLE), "--log-file", log_file, "--listen", address]
        code = main(["serve", *arguments])
    assert code == EXIT_CONFIG
    assert capfd.readouterr().err == (
        f"cnm-policy serve: cannot listen on `{address}`: `{address}` is already in use\n"
    )


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
    """Non-interactive output: JSON lines, below-level filtered, in the file as logged."""
    configure_logging(tmp_path / "out.log", "auto", "info")
    logger = structlog.get_logger("test")
    logger.debug("hidden")
    logger.info("shown", answer=42)
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


def test_console_logging_to_a_file_has_no_colours(tmp_path: Path) -> None:
    """`--log-format console --log-file F` writes plain text: colours only on a terminal."""
    configure_logging(tmp_path / "out.log", "console", "info")
    structlog.get_logger("test").info("shown", answer=42)
    text = (tmp_path / "out.log").read_text()
    assert "shown" in text
    assert "\x1b[" not in text


def _installed(signum: int) -> Callable[[int, FrameType | None], Any]:
    """The Python handler for `signum`; fails while the default action (terminate) is in place."""
    handler = signal.getsignal(signum)
    assert callable(handler), f"no handler for {signal.Signals(signum).name}"
    return handler


def _serve_events(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    after_load: Callable[[Runtime], None],
    *arguments: str,
) -> tuple[int, list[dict[str, Any]]]:
    """Run `serve` in-process, calling `after_load` once the first version is loaded."""

    def open_runtime(options: RuntimeOptions, config: ServerConfig) -> Runtime:
        runtime = real_open_runtime(options, config)
        after_load(runtime)
        return runtime

    monkeypatch.setattr("cnm_policy.cli.serve.open_runtime", open_runtime)
    log_file = tmp_path / "sidecar.log"
    common = ["--policies", str(BUNDLE), "--watch-interval", "0", "--log-file", str(log_file)]
    code = main(["serve", *common, *arguments])
    return code, [json.loads(line) for line in log_file.read_text().splitlines()]


def test_signals_during_start_up_are_handled_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGHUP/SIGTERM while the first version loads neither kill the process nor serve it."""
    before = {signum: signal.getsignal(signum) for signum in _SIGNALS}

    def signals_arrive(runtime: Runtime) -> None:
        _installed(signal.SIGINT)  # installed too, not called
        _installed(signal.SIGHUP)(signal.SIGHUP, None)
        _installed(signal.SIGTERM)(signal.SIGTERM, None)

    code, events = _serve_events(tmp_path, monkeypatch, signals_arrive, "--listen", "127.0.0.1:0")
    assert code == EXIT_OK
    assert [event["event"] for event in events] == ["sidecar_stopped"]
    assert before == {signum: signal.getsignal(signum) for signum in _SIGNALS}


def test_sighup_during_start_up_reloads_once_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGHUP that arrives while loading is not lost: the reloader is asked once serving."""
    requested: list[str] = []

    def sighup_arrives(runtime: Runtime) -> None:
        _installed(signal.SIGHUP)(signal.SIGHUP, None)
        stop = _installed(signal.SIGTERM)

        def request_reload() -> None:
            requested.append("reload")
            stop(signal.SIGTERM, None)

        monkeypatch.setattr(runtime.reloader, "request_reload", request_reload)

    code, events = _serve_events(tmp_path, monkeypatch, sighup_arrives, "--listen", "127.0.0.1:0")
    assert code == EXIT_OK
    assert requested == ["reload"]
    assert [event["event"] for event in events] == [
        "sidecar_started",
        "sidecar_stopping",
        "sidecar_stopped",
    ]


def test_remote_listening_without_tls_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--allow-remote without TLS works, but says loudly that the traffic is plaintext."""

    def stop_at_once(runtime: Runtime) -> None:
        _installed(signal.SIGTERM)(signal.SIGTERM, None)

    arguments = ("--listen", "0.0.0.0:0", "--allow-remote")
    code, events = _serve_events(tmp_path, monkeypatch, stop_at_once, *arguments)
    assert code == EXIT_OK
    assert [(event["event"], event["level"]) for event in events] == [
        ("insecure_listen", "warning"),
        ("sidecar_stopped", "info"),
    ]


@pytest.mark.parametrize(
    ("argv", "orig_argv", "expected"),
    [
        (["/venv/bin/cnm-policy", "serve"], ["python", "/venv/bin/cnm-policy", "serve"], True),
        (["/venv/bin/cnm-policy", "check", "-"], ["python", "cnm-policy", "check", "-"], False),
        (["-m"], ["python", "-X", "importtime", "-m", "cnm_policy", "serve", "--grace", "1"], True),
        (["-m"], ["python", "-m", "cnm_policy", "validate"], False),
        (["app.py", "serve"], ["python", "app.py", "serve"], False),
        ([], [], False),
    ],
)
def test_only_a_serve_process_handles_signals_before_its_imports(
    argv: list[str], orig_argv: list[str], expected: bool
) -> None:
    """Early signal handlers are for `cnm-policy serve` only; a library user keeps its own."""
    assert is_serve_process(argv, orig_argv) is expected


def test_no_bundle_tests_serves_but_warns_about_failing_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--no-bundle-tests` still runs the tests: a failing one is a warning, not a refusal."""
    bundle = copy_bundle(tmp_path / "bundle", "failing-tests-overlay")

    def stop_at_once(runtime: Runtime) -> None:
        _installed(signal.SIGTERM)(signal.SIGTERM, None)

    arguments = ("--policies", str(bundle), "--no-bundle-tests", "--listen", "127.0.0.1:0")
    code, events = _serve_events(tmp_path, monkeypatch, stop_at_once, *arguments)
    warnings = [
        (event["event"], event["policy_version"], event["failed_cases"], event["gate"])
        for event in events
        if event["level"] == "warning"
    ]
    assert code == EXIT_OK
    assert warnings == [("bundle_tests_failed", "1.0.0", 1, "off (--no-bundle-tests)")]


def test_serving_the_shipped_bundle_without_policies_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --policies, serve says loudly that it serves the default bundle, and which one."""

    def open_runtime(options: RuntimeOptions, config: ServerConfig) -> Runtime:
        runtime = real_open_runtime(options, config)
        _installed(signal.SIGTERM)(signal.SIGTERM, None)
        return runtime

    monkeypatch.setattr("cnm_policy.cli.serve.open_runtime", open_runtime)
    monkeypatch.chdir(tmp_path)  # no ./policies/cnm here: the shipped bundle is the default
    log_file = tmp_path / "sidecar.log"
    code = main(["serve", "--watch-interval", "0", "--log-file", str(log_file)])
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert code == EXIT_OK
    assert [(event["event"], event["level"]) for event in events] == [
        ("default_bundle_in_use", "warning"),
        ("sidecar_stopped", "info"),
    ]
    assert events[0]["source"] == str(shipped_policy_dir())


def test_serve_help_states_every_default_and_the_exit_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`serve --help` names the defaults of the tuning flags and what each exit status means."""
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in (
        "no cache; default: 10000)",
        "TTL (default: 60.0)",
        "CheckBatch (default: 1000)",
        "request message (default: 4194304)",
        "in-flight calls (default: 10.0)",
        "2 for a configuration error, 4 when the policy bundle cannot be loaded",
    ):
        assert expected in text
