"""`serve --processes 2`: two processes answer on one address that no foreign socket can
share, the supervisor's /metrics and /readyz cover both, and a SIGHUP moves both to v2."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from cnm_policy.cli import main
from tests.e2e.harness import copy_bundle, policy_stub
from tests.e2e.test_ops_metrics import ALLOW, http_get, poll
from tests.e2e.test_ops_metrics import scrape as scrape_unix

pytestmark = pytest.mark.e2e


@contextmanager
def supervised(
    bundle: Path, count: int
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any], str]]:
    """`serve --processes count` on 127.0.0.1:0, HTTP doors too: (process, started, ops)."""
    private = Path(tempfile.mkdtemp(prefix="cnm-", dir="/tmp"))
    ops = f"unix:{private}/ops.sock"
    command = [sys.executable, "-m", "cnm_policy", "serve", "--policies", str(bundle)]
    command += ["--listen", "127.0.0.1:0", "--processes", str(count), "--ops-listen", ops]
    command += ["--log-format", "json", "--watch-interval", "0", "--http-listen", "127.0.0.1:0"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=private,
        start_new_session=True,  # its own process group: the cleanup reaches the children
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        started = _started(lines)
        poll(lambda: main(["healthcheck", "--ops", ops, "--timeout", "1"]) == 0, seconds=60)
        yield process, started, ops
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate(timeout=30)
        shutil.rmtree(private, ignore_errors=True)


def _started(lines: queue.Queue[str]) -> dict[str, Any]:
    while True:
        event = json.loads(lines.get(timeout=60))
        if event["event"] == "supervisor_started":
            return dict(event)


def _per_process(ops: str, metric: str, **labels: str) -> dict[str, float]:
    """One metric's value by `process` label, from the supervisor's /metrics."""
    return {
        dict(pairs)["process"]: value
        for (name, pairs), value in scrape_unix(ops).items()
        if name == metric and all(dict(pairs).get(k) == v for k, v in labels.items())
    }


def _check_on_new_connections(address: str, calls: int) -> None:
    for _ in range(calls):  # a new channel is a new connection: the kernel picks a process
        with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as c:
            assert policy_stub(c).Check(ALLOW, timeout=5).allowed


def test_two_processes_share_one_address_and_both_reload(tmp_path: Path) -> None:
    """Both processes answer; a foreign socket cannot bind the port; SIGHUP moves both to v2."""
    bundle = copy_bundle(tmp_path / "bundle")
    with supervised(bundle, 2) as (process, started, ops):
        address = started["address"]
        for shared in (address, started["http_address"]):
            host, _, port = shared.rpartition(":")
            with pytest.raises(OSError), socket.socket() as foreign:
                foreign.bind((host, int(port)))  # no SO_REUSEPORT: refused
        assert http_get(started["http_address"], "/v1/policy")[0] == 200

        def both_answered() -> bool:
            _check_on_new_connections(address, 8)
            counts = _per_process(ops, "cnm_policy_decisions_total", outcome="allow")
            return len(counts) == 2 and all(value > 0 for value in counts.values())

        poll(both_answered, seconds=60)
        copy_bundle(bundle, "v2-overlay")
        process.send_signal(signal.SIGHUP)

        def both_on_v2() -> bool:
            versions = {
                dict(pairs)["process"]: dict(pairs)["version"]
                for (name, pairs) in scrape_unix(ops)
                if name == "cnm_policy_bundle_info"
            }
            return versions == {"0": "2.0.0", "1": "2.0.0"}

        poll(both_on_v2, seconds=60)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err


def test_a_unix_socket_cannot_be_shared_by_processes(tmp_path: Path) -> None:
    """--processes needs a TCP address: a unix socket is a configuration error (exit 2)."""
    code = main(
        ["serve", "--policies", str(copy_bundle(tmp_path / "b")), "--processes", "2",
         "--listen", f"unix:{tmp_path}/s.sock"]
    )  # fmt: skip
    assert code == 2


def test_a_child_that_cannot_start_stops_the_supervisor(tmp_path: Path) -> None:
    """A broken bundle: the children exit 4, and so does the supervisor."""
    bundle = copy_bundle(tmp_path / "bundle", "broken-overlay")
    command = [sys.executable, "-m", "cnm_policy", "serve", "--policies", str(bundle)]
    command += ["--listen", "127.0.0.1:0", "--processes", "2"]
    result = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 4, result.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--bundle-url", "ftp://h/b.tar.gz", "--state-dir", "s"], "--bundle-url: bundle URL"),
        (["--state-dir", "s"], "--state-dir needs --bundle-url"),
        (["--bundle-url", "http://h/b", "--state-dir", "s", "--bundle-timeout", "soon"],
         "--bundle-timeout:"),
        (["--bundle-url", "http://h/b", "--state-dir", "s", "--bundle-public-key", "nokey.pem"],
         "nokey.pem"),
    ],
)  # fmt: skip
def test_the_supervisor_checks_the_bundle_flags_before_any_child(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    """A bad bundle flag is one error from the supervisor (exit 2), no child ever started."""
    command = [sys.executable, "-m", "cnm_policy", "serve", "--listen", "127.0.0.1:0"]
    command += ["--processes", "2", *flags]
    result = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("cnm-policy serve:")]
    assert (result.returncode, len(errors), message in result.stderr) == (2, 1, True), result.stderr
    assert ("supervisor_started" in result.stderr, (tmp_path / "s").exists()) == (False, False)
