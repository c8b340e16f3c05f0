"""Hostile bundles hot-reloaded into a live sidecar process: rejected, bounded, still serving.

One real `cnm-policy serve` process serves a good bundle. For every case of the hostile corpus
the live bundle is turned hostile and SIGHUP sent: the rejection must show in `GetPolicyInfo`
with the case's code within a bounded time, the process's peak RSS (VmHWM) must stay bounded,
the good version must keep answering, and a later good version must still go live.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from structlog.testing import capture_logs

from cnm_policy.engine import Engine, load_snapshot
from cnm_policy.policy.commit import load_tree
from cnm_policy.reload import PolicyReloader, ReloadOutcome
from cnm_policy.testing import run_suite
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import device, health_status, policy_stub, principal
from tests.hostile.corpus import CASES, GOOD_BUNDLE, copy_good_bundle

pytestmark = pytest.mark.e2e

REJECTED_WITHIN = 15.0  # seconds from SIGHUP to the rejection in GetPolicyInfo
PEAK_RSS_BOUND_KB = 256 * 1024  # the alias bombs of issue #17 reached ~1.2 GB
READ = pb.CheckRequest(principal=principal(), action="read", resource=device())


def _eventually(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` until true; fail (never hang) after `timeout`; returns the seconds."""
    started = time.monotonic()
    pause = threading.Event()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        pause.wait(0.05)
    return time.monotonic() - started


def _peak_rss_kb(pid: int) -> int:
    """VmHWM: the process's peak resident set size so far, in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    assert match is not None, "no VmHWM in /proc/<pid>/status"
    return int(match.group(1))


@dataclass
class Live:
    """The sidecar process, a channel to it, and the bundle directory it serves."""

    process: subprocess.Popen[bytes]
    stub: Any
    channel: grpc.Channel
    bundle: Path

    def info(self) -> Any:
        return self.stub.GetPolicyInfo(pb.GetPolicyInfoRequest(), timeout=5)

    def reload(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    def reset(self) -> None:
        """Put a fresh copy of the good bundle in place (links and loops removed, not followed)."""
        shutil.rmtree(self.bundle)
        shutil.copytree(GOOD_BUNDLE, self.bundle)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One sidecar process for the whole corpus (starting one costs about a second)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak RSS is read from /proc (Linux)")
    work = Path(tmp_path_factory.mktemp("hostile"))
    bundle = Path(shutil.copytree(GOOD_BUNDLE, work / "bundle"))
    socket = Path(f"/tmp/cnm-hostile-{os.getpid()}.sock")
    command = [
        sys.executable, "-m", "cnm_policy", "serve", "--policies", str(bundle),
        "--listen", f"unix:{socket}", "--watch-interval", "0", "--log-format", "json",
        "--log-file", str(work / "sidecar.log"),
    ]  # fmt: skip
    with (work / "stderr").open("wb") as stderr:
        process = subprocess.Popen(command, cwd=work, stdout=subprocess.DEVNULL, stderr=stderr)
    channel = grpc.insecure_channel(f"unix:{socket}")
    try:
        _eventually(lambda: _serving(channel), 60.0, "the sidecar to serve")
        yield Live(process, policy_stub(channel), channel, bundle)
    finally:
        channel.close()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        socket.unlink(missing_ok=True)


def _serving(channel: grpc.Channel) -> bool:
    try:
        return health_status(channel) == 1  # SERVING
    except grpc.RpcError:
        return False


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_hostile_reload_is_rejected_in_bounded_time_and_memory(live: Live, case: Any) -> None:
    """Rejected with the case's located code; the good version keeps answering; RSS bounded."""
    live.reset()
    good = live.info()
    case.build(live.bundle)
    live.reload()
    seconds = _eventually(
        lambda: live.info().reload.failures > good.reload.failures,
        REJECTED_WITHIN,
        f"`{case.name}` to be rejected",
    )
    info = live.info()
    answer = live.stub.Check(READ, timeout=5)
    peak = _peak_rss_kb(live.process.pid)
    print(f"hostile reload `{case.name}`: rejected in {seconds:.2f} s, VmHWM {peak // 1024} MB")
    assert live.process.poll() is None
    assert f"{case.where}: error [{case.expected_code}]" in info.reload.last_error
    assert (info.policy.digest, answer.policy.digest) == (good.policy.digest, good.policy.digest)
    assert peak < PEAK_RSS_BOUND_KB


def test_a_good_version_still_goes_live_after_the_whole_corpus(live: Live) -> None:
    """After every hostile reload, the reloader still works: a new good version serves."""
    for case in CASES:  # the corpus once more, back to back, as a burst of bad pushes
        live.reset()
        case.build(live.bundle)
        live.reload()
    live.reset()
    manifest = live.bundle / "bundle.yaml"
    manifest.write_text(re.sub(r"(?m)^version: .*$", 'version: "99.0.0"', manifest.read_text()))
    live.reload()
    _eventually(lambda: live.info().policy.version == "99.0.0", 60.0, "the good version")
    answer = live.stub.Check(READ, timeout=5)
    assert (live.process.poll(), answer.policy.version) == (None, "99.0.0")
    assert live.info().reload.last_error == ""


POLLED = ("symlink-loop", "link-out-dir", "alias-bomb-version-8")


@pytest.mark.parametrize("case", [c for c in CASES if c.name in POLLED], ids=POLLED)
def test_the_directory_watcher_rejects_a_hostile_tree_once_and_keeps_polling(
    tmp_path: Path, case: Any
) -> None:
    """Polling (not SIGHUP) sees the hostile tree, rejects it once, then loads a fixed one."""
    bundle = copy_good_bundle(tmp_path / "bundle")
    snapshot, fingerprint = load_tree(bundle, load=load_snapshot, run_tests=run_suite)
    engine = Engine(snapshot)
    reloader = PolicyReloader(
        engine,
        bundle,
        load=load_snapshot,
        run_tests=run_suite,
        settle_seconds=0.0,
        initial_fingerprint=fingerprint,
    )
    case.build(bundle)
    with capture_logs():
        outcomes = [reloader.poll(), reloader.poll()]
        shutil.rmtree(bundle)
        copy_good_bundle(bundle)
        manifest = bundle / "bundle.yaml"
        manifest.write_text(manifest.read_text().replace('version: "', 'version: "99.', 1))
        outcomes.append(reloader.poll())
    assert outcomes == [ReloadOutcome.REJECTED, None, ReloadOutcome.SWAPPED]
    assert reloader.status.last_error_code is None
    assert engine.snapshot.version.startswith("99.")
