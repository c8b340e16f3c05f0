"""A newcomer's install: the wheel built from this checkout works from an empty folder.

The wheel is built offline (no build isolation, no index) and installed into a fresh venv that
borrows only the dependencies from the test's own environment, so it takes seconds and needs no
network. Every command then runs from an empty directory, where no `policies/` is in reach.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import grpc
import pytest
from grpc_health.v1 import health_pb2

from tests.conftest import DEFAULT_BUNDLE, REPO_ROOT
from tests.e2e.harness import health_status

pytestmark = pytest.mark.e2e

_BUILD_INPUTS = ("pyproject.toml", "README.md", "src", "policies", "proto")
REQUEST = {
    "principal": {
        "id": "u-17",
        "tenant": "acme/emea",
        "roles": ["customer-viewer"],
        "attributes": {"mfa": True},
    },
    "action": "read",
    "resource": {"kind": "device", "id": "dev-9", "tenant": "acme/emea/paris"},
}


@dataclass(frozen=True)
class Installed:
    """A venv with the wheel installed, and an empty directory to run it from."""

    bin: Path
    site_packages: Path
    empty: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run `cnm-policy ARGS` from the empty directory."""
        return subprocess.run(
            [str(self.bin / "cnm-policy"), *args],
            cwd=self.empty,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def _call(*command: str | Path) -> str:
    done = subprocess.run(
        [str(part) for part in command],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel from a copy of the checkout and install it into a fresh venv."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in _BUILD_INPUTS:  # a copy: the build writes build/ and *.egg-info beside it
        path = REPO_ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(path, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    _call(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", root / "dist", source)  # fmt: skip
    (wheel,) = (root / "dist").glob("cnm_policy-*.whl")
    venv = root / "venv"
    _call(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    _call(*pip, "--python", python, "install", "--no-deps", "--no-index", "-q", wheel)
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = Path(_call(python, "-c", code).strip())
    # The dependencies (grpcio, pycasbin, ...) come from this environment; only as a path, so
    # its editable-install hook for the checkout is never run.
    (site_packages / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    empty = root / "empty"
    empty.mkdir()
    env = _clean_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Installed(venv / "bin", site_packages, empty, env)


def _clean_env() -> dict[str, str]:
    """This environment without PYTHONPATH and friends: nothing may lead back to the checkout."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}


def test_the_installed_package_runs_from_an_empty_folder(installed: Installed) -> None:
    """--version, validate and init use the data shipped in the wheel, not the checkout."""
    package = installed.site_packages / "cnm_policy"
    imported = _call(
        installed.bin / "python", "-c", "import cnm_policy; print(cnm_policy.__file__)"
    )
    assert Path(imported.strip()) == package / "__init__.py"

    version = installed.run("--version")
    assert (version.returncode, version.stdout) == (0, "cnm-policy 0.1.0\n")

    shipped = package / "_data" / "policies" / "cnm"
    validate = installed.run("validate", "--format", "json")
    assert (validate.returncode, json.loads(validate.stdout)["origin"]) == (0, str(shipped))

    init = installed.run("init", "x")
    assert (init.returncode, init.stderr) == (0, "")
    written = installed.empty / "x"
    assert _tree(written) == _tree(DEFAULT_BUNDLE)
    proto = package / "_data" / "proto" / "cnm_policy" / "v1" / "policy.proto"
    assert proto.read_bytes() == (REPO_ROOT / "proto/cnm_policy/v1/policy.proto").read_bytes()


def test_the_installed_sidecar_serves_and_answers_check_server(installed: Installed) -> None:
    """`serve` on the shipped bundle reaches SERVING; the README's `check --server` asks it."""
    command = [str(installed.bin / "cnm-policy"), "serve", "--listen", "127.0.0.1:0"]
    with _process(command, installed) as (process, lines):
        started = _wait_for_event(lines, "sidecar_started", deadline=time.monotonic() + 30)
        address = str(started["address"])
        with grpc.insecure_channel(address) as channel:
            assert health_status(channel) == health_pb2.HealthCheckResponse.SERVING
        check = installed.run("check", "--server", address, stdin=json.dumps(REQUEST))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert (check.returncode, json.loads(check.stdout)["rule_ids"]) == (
        0,
        ["customer-read-network"],
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@contextmanager
def _process(
    command: list[str], installed: Installed
) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str | None]]]:
    """Start `command` in the empty folder; a thread queues its stdout lines."""
    process = subprocess.Popen(
        command,
        cwd=installed.empty,
        env=installed.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=_queue_lines, args=(stdout, lines), daemon=True).start()
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        stdout.close()


def _queue_lines(stream: TextIO, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)  # end of output: the process has exited


def _wait_for_event(
    lines: queue.Queue[str | None], event: str, *, deadline: float
) -> dict[str, object]:
    """The first JSON log line for `event`; fails (never hangs) at `deadline`."""
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no `{event}` log line in time"
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        assert line is not None, f"the process exited before logging `{event}`"
        record = json.loads(line)
        if record.get("event") == event:
            return dict(record)
