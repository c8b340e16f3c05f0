"""The HTTP bundle source against a real local HTTP server, through every failure mode.

The server is started by the test and scripted per request (an archive with an ETag, 304 for
a matching If-None-Match, 500, a truncated body, a tampered or unsigned archive). The sidecar
is the real wiring (`open_runtime` on the source's directory, polls driven by the test), and
a real `cnm-policy serve` process restarts from `--state-dir` while the server is down.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cnm_policy.distribution.archive import build_archive
from cnm_policy.distribution.http_source import HttpBundleSource, PollOutcome
from cnm_policy.distribution.manifest import manifest_for
from cnm_policy.distribution.signing import load_private_key, load_public_key
from cnm_policy.engine import load_snapshot
from cnm_policy.policy import read_bundle_dir
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.runtime import Runtime, RuntimeOptions, open_runtime
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import copy_bundle, device, health_status, policy_stub, principal
from tests.e2e.test_ops_metrics import http_get, poll
from tests.e2e.test_ops_metrics import scrape as scrape_unix
from tests.unit.distribution.test_signing import write_keys

pytestmark = pytest.mark.e2e


@dataclass
class Script:
    """What the server answers next: `reply(handler)` writes one whole response."""

    body: bytes = b""
    etag: str | None = '"v1"'  # None: a server that sends no ETag (never 304)
    mode: str = "archive"  # archive | error | truncated
    seen_etags: list[str | None] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    script: Script

    def do_GET(self) -> None:
        """Answer as scripted."""
        script = self.script
        script.seen_etags.append(self.headers.get("If-None-Match"))
        if script.mode == "error":
            self.send_error(500)
        elif script.etag is not None and self.headers.get("If-None-Match") == script.etag:
            self.send_response(304)
            self.send_header("ETag", script.etag)
            self.end_headers()
        else:
            self.send_response(200)
            if script.etag is not None:
                self.send_header("ETag", script.etag)
            self.send_header("Content-Length", str(len(script.body)))
            self.end_headers()
            cut = len(script.body) // 2 if script.mode == "truncated" else len(script.body)
            self.wfile.write(script.body[:cut])
            if script.mode == "truncated":
                self.close_connection = True

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    """A threaded HTTP server on 127.0.0.1:<ephemeral> and its script."""
    script = Script()
    handler = type("Handler", (_Handler,), {"script": script})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/bundle.tar.gz", script
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Versions:
    """Archives of the fixture bundle's versions, and the key that signed them."""

    key: Ed25519PrivateKey
    public_pem: Path
    digests: dict[str, str]
    archive: Callable[..., bytes]


@pytest.fixture
def versions(tmp_path: Path) -> Versions:
    """v1, v2 and a version whose own tests fail, signed by one key."""
    private_pem, public_pem = write_keys(tmp_path)
    key = load_private_key(private_pem)
    trees = {
        "v1": copy_bundle(tmp_path / "v1"),
        "v2": copy_bundle(tmp_path / "v2", "v2-overlay"),
        "failing": copy_bundle(tmp_path / "failing", "failing-tests-overlay"),
    }

    def archive(name: str, signer: Ed25519PrivateKey | None = key) -> bytes:
        files = read_bundle_dir(trees[name]).files
        return build_archive(files, manifest_for(files, "fixture", name, None), signer)

    digests = {name: load_snapshot(tree).digest for name, tree in trees.items()}
    return Versions(key, public_pem, digests, archive)


class Clock:
    """A settable clock, so confirmations are checked without waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        """The current fake time."""
        return self.now


@dataclass
class Sidecar:
    """A started runtime on an HTTP source, polled by the test."""

    runtime: Runtime
    source: HttpBundleSource
    clock: Clock

    def digest(self) -> str:
        """The serving version's digest."""
        return self.runtime.engine.snapshot.digest


def start(url: str, state: Path, public_pem: Path | None, clock: Clock) -> Sidecar:
    """Prepare the source, load through the startup gate, start, attach (as `serve` does)."""
    key = None if public_pem is None else load_public_key(public_pem)
    source = HttpBundleSource(url, state, public_key=key, clock=clock, timeout=5.0)
    source.prepare()
    runtime = open_runtime(
        RuntimeOptions(policies=source.path, watch_interval=None, cache_size=None, clock=clock),
        ServerConfig(listen="127.0.0.1:0", grace_seconds=1.0),
    )
    runtime.start()
    source.attach(runtime.reloader, lambda: runtime.engine.snapshot.digest)
    return Sidecar(runtime, source, clock)


@pytest.fixture
def sidecar(
    server: tuple[str, Script], versions: Versions, tmp_path: Path
) -> Iterator[tuple[Sidecar, Script]]:
    """A sidecar serving signed v1 from the scripted server."""
    url, script = server
    script.body = versions.archive("v1")
    running = start(url, tmp_path / "state", versions.public_pem, Clock())
    try:
        yield running, script
    finally:
        running.runtime.stop(grace=1.0)


def test_the_first_start_serves_the_fetched_archive_and_persists_it(
    sidecar: tuple[Sidecar, Script], versions: Versions, tmp_path: Path
) -> None:
    """Fetched, gated, serving; the state directory holds it as the last good archive."""
    running, _ = sidecar
    good = json.loads((tmp_path / "state" / "good.json").read_text())
    assert (running.digest(), good["digest"], good["etag"]) == (
        versions.digests["v1"],
        versions.digests["v1"],
        '"v1"',
    )


def test_a_304_confirms_the_serving_version(sidecar: tuple[Sidecar, Script]) -> None:
    """If-None-Match carries the ETag; the 304 dates the version (for --max-policy-age)."""
    running, script = sidecar
    running.clock.now += 600
    assert running.source.poll() is PollOutcome.CONFIRMED
    assert (script.seen_etags[-1], running.runtime.reloader.status.last_confirmed_at) == (
        '"v1"',
        running.clock.now,
    )


def test_a_new_archive_goes_through_the_gate_and_serves(
    sidecar: tuple[Sidecar, Script], versions: Versions
) -> None:
    """A new ETag and archive: verified, gated, swapped; GetPolicyInfo reports it."""
    running, script = sidecar
    script.body, script.etag = versions.archive("v2"), '"v2"'
    assert running.source.poll() is PollOutcome.SWAPPED
    with grpc.insecure_channel(str(running.runtime.sidecar.address)) as channel:
        info = policy_stub(channel).GetPolicyInfo(pb.GetPolicyInfoRequest(), timeout=5)
    assert (info.policy.digest, info.reload.last_error) == (versions.digests["v2"], "")


FAILURES = {
    "http-500": ({"mode": "error"}, "bundle_fetch_failed"),
    "truncated": ({"mode": "truncated", "etag": '"t"'}, "bundle_fetch_failed"),
    "unsigned": ({"body": "v2-unsigned", "etag": '"u"'}, "bundle_signature_invalid"),
    "other-key": ({"body": "v2-other-key", "etag": '"o"'}, "bundle_signature_invalid"),
    "tampered": ({"body": "v2-tampered", "etag": '"x"'}, "bundle_archive_invalid"),
    "tests-fail": ({"body": "failing", "etag": '"f"'}, "bundle_tests_failed"),
}


def scripted_body(name: str, versions: Versions) -> bytes:
    """The archive a failure case serves."""
    bodies = {
        "v2-unsigned": lambda: versions.archive("v2", None),
        "v2-other-key": lambda: versions.archive("v2", Ed25519PrivateKey.generate()),
        "v2-tampered": lambda: _tampered(versions.archive("v2")),
        "failing": lambda: versions.archive("failing"),
    }
    return bodies[name]()


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_every_failure_keeps_the_last_good_version_and_is_not_a_confirmation(
    sidecar: tuple[Sidecar, Script],
    versions: Versions,
    case: str,
) -> None:
    """The old version serves, the failure is in the reload status, the age keeps growing."""
    running, script = sidecar
    confirmed = running.runtime.reloader.status.last_confirmed_at
    changes, code = FAILURES[case]
    script.mode = changes.get("mode", "archive")
    script.etag = changes.get("etag", script.etag)
    if "body" in changes:
        script.body = scripted_body(changes["body"], versions)
    running.clock.now += 600
    outcome = running.source.poll()
    status = running.runtime.reloader.status
    assert (running.digest(), status.last_error_code, status.last_confirmed_at) == (
        versions.digests["v1"],
        code,
        confirmed,
    )
    assert outcome in (PollOutcome.FAILED, PollOutcome.REJECTED)
    if script.mode == "archive":  # the refused archive is not fetched again, nor confirms
        assert running.source.poll() is PollOutcome.NOT_MODIFIED
        assert running.runtime.reloader.status.last_confirmed_at == confirmed


def test_a_rejected_version_leaves_current_on_the_last_good_tree(
    sidecar: tuple[Sidecar, Script], versions: Versions, tmp_path: Path
) -> None:
    """After a gate rejection, a restart would load the last good tree, not the rejected one."""
    running, script = sidecar
    script.body, script.etag = versions.archive("failing"), '"f"'
    assert running.source.poll() is PollOutcome.REJECTED
    assert load_snapshot(running.source.path).digest == versions.digests["v1"]
    script.body, script.etag = versions.archive("v1"), '"v1-again"'
    assert running.source.poll() is PollOutcome.CONFIRMED  # the source is back on v1
    assert running.runtime.reloader.status.last_error_code is None


def test_without_etags_a_rejected_archive_is_not_gated_again(
    sidecar: tuple[Sidecar, Script], versions: Versions
) -> None:
    """A server that sends no ETag re-sends the failing archive: it is recognised, not re-run."""
    running, script = sidecar
    script.body, script.etag = versions.archive("failing"), None
    outcomes = [running.source.poll(), running.source.poll()]
    script.body = versions.archive("v2")  # a good version, then the failing one once more
    outcomes += [running.source.poll()]
    script.body = versions.archive("failing")
    outcomes += [running.source.poll()]
    assert (outcomes, running.runtime.reloader.status.failures) == (
        [PollOutcome.REJECTED, PollOutcome.NOT_MODIFIED, PollOutcome.SWAPPED, PollOutcome.REJECTED],
        2,  # offered again after another version, it is gated (and reported) again
    )


def _tampered(archive: bytes) -> bytes:
    """The archive with one file's content changed and the manifest left as signed."""
    raw = bytearray(gzip.decompress(archive))
    index = raw.index(b"customer-viewer")
    raw[index] = ord("C")
    return gzip.compress(bytes(raw))


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            return health_status(channel) == 1
        except grpc.RpcError:
            return False


def _serve_process(
    url: str, state: Path, public_pem: Path, work: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    socket = f"/tmp/cnm-http-{os.getpid()}-{len(list(work.iterdir()))}.sock"
    command = [
        sys.executable, "-m", "cnm_policy", "serve", "--bundle-url", url, "--state-dir",
        str(state), "--bundle-public-key", str(public_pem), "--listen", f"unix:{socket}",
        "--bundle-poll-interval", "0.2", "--bundle-timeout", "1", "--log-format", "json",
        "--log-file", str(work / f"sidecar-{len(list(work.iterdir()))}.log"), *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), socket


def _started_readyz(ops: str) -> tuple[int, dict[str, str], bytes] | None:
    """/readyz once the sidecar is past "starting" (``None`` before)."""
    answer = http_get(ops, "/readyz")
    return None if b"starting" in answer[2] else answer


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_a_restart_while_the_server_is_down_serves_the_last_good_archive(
    versions: Versions, tmp_path: Path
) -> None:
    """A real `serve` restarts from --state-dir alone; an old confirmation makes it stale."""
    script = Script(body=versions.archive("v1"))
    handler = type("Handler", (_Handler,), {"script": script})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/bundle.tar.gz"
    state, work = tmp_path / "state", tmp_path / "work"
    work.mkdir()
    socket_dir = Path(tempfile.mkdtemp(prefix="cnm-", dir="/tmp"))
    process, socket = _serve_process(url, state, versions.public_pem, work)
    try:
        _wait(lambda: _serving(f"unix:{socket}"), 60, "the first start to serve")
    finally:
        _stop(process)
        httpd.shutdown()
        httpd.server_close()  # the URL now refuses connections
    process, socket = _serve_process(
        url, state, versions.public_pem, work, "--max-policy-age", "1h"
    )
    try:
        _wait(lambda: _serving(f"unix:{socket}"), 60, "the restart to serve the saved archive")
    finally:
        _stop(process)
    record = json.loads((state / "good.json").read_text())
    record["confirmed_at"] -= 7200  # the source last vouched for it two hours ago
    (state / "good.json").write_text(json.dumps(record))
    ops = f"unix:{socket_dir}/ops.sock"
    process, socket = _serve_process(
        url, state, versions.public_pem, work, "--max-policy-age", "1h", "--ops-listen", ops
    )
    try:
        _wait(lambda: Path(socket).exists(), 60, "the stale restart to listen")
        readyz = poll(lambda: _started_readyz(ops))
        assert (readyz[0], b"policy_stale" in readyz[2]) == (503, True)  # what the kubelet sees
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            request = pb.CheckRequest(principal=principal(), action="read", resource=device())
            with pytest.raises(grpc.RpcError) as refused:
                policy_stub(channel).Check(request, timeout=5)
            assert (refused.value.code(), "--max-policy-age" in str(refused.value.details())) == (
                grpc.StatusCode.UNAVAILABLE,
                True,
            )
    finally:
        _stop(process)
        shutil.rmtree(socket_dir, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


def test_two_processes_share_a_state_dir_and_a_sighup_moves_both_to_the_new_archive(
    versions: Versions, tmp_path: Path
) -> None:
    """`serve --processes 2 --bundle-url`: both serve v1; after a publish, one SIGHUP -> v2."""
    script = Script(body=versions.archive("v1"))
    handler = type("Handler", (_Handler,), {"script": script})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/bundle.tar.gz"
    private = Path(tempfile.mkdtemp(prefix="cnm-", dir="/tmp"))
    ops = f"unix:{private}/ops.sock"
    command = [
        sys.executable, "-m", "cnm_policy", "serve", "--bundle-url", url,
        "--state-dir", str(tmp_path / "state"), "--bundle-public-key", str(versions.public_pem),
        "--bundle-poll-interval", "1h", "--listen", "127.0.0.1:0", "--processes", "2",
        "--ops-listen", ops, "--log-format", "json", "--log-file", str(private / "log"),
    ]  # fmt: skip
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.DEVNULL)

    def digests() -> list[str]:
        try:
            samples = scrape_unix(ops)
        except OSError:
            return []
        return sorted(
            dict(labels)["digest"]
            for (name, labels), _ in samples.items()
            if name == "cnm_policy_bundle_info"
        )

    try:
        v1, v2 = versions.digests["v1"], versions.digests["v2"]
        poll(lambda: digests() == [v1, v1], seconds=60)
        state = tmp_path / "state"
        assert len(list(state.glob("proc-*"))) == 2  # one folder of trees per process
        script.body, script.etag = versions.archive("v2"), '"v2"'
        process.send_signal(signal.SIGHUP)  # forwarded to both; each source fetches now
        poll(lambda: digests() == [v2, v2], seconds=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        httpd.shutdown()
        httpd.server_close()
        shutil.rmtree(private, ignore_errors=True)
