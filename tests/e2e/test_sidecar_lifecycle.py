"""Start, reload and stop like an operator would: signals on a real `cnm-policy serve` process."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cnm_policy.engine import Engine, PolicySnapshot, load_snapshot
from cnm_policy.model import Decision, Principal, Resource
from cnm_policy.policy import BundleSource
from cnm_policy.reload import PolicyReloader
from cnm_policy.server.app import ServerConfig, build_sidecar
from cnm_policy.server.runtime import Runtime, RuntimeOptions
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import copy_bundle, device, health_status, policy_stub, principal

pytestmark = pytest.mark.e2e

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
READ = pb.CheckRequest(principal=principal(), action="read", resource=device())


def _eventually(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll `condition` until true; fail (never hang) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.05)


def _serving(channel: grpc.Channel) -> bool:
    try:
        return bool(health_status(channel) == SERVING)
    except grpc.RpcError:
        return False


class _GatedEngine(Engine):
    """A real engine, except that checks on resource id `slow` wait until released."""

    def __init__(self, bundle: Path) -> None:
        super().__init__(load_snapshot(bundle))
        self.entered = threading.Event()
        self.release = threading.Event()

    def check_batch(
        self,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> list[Decision]:
        if any(resource.id == "slow" for _, resource in items):
            self.entered.set()
            assert self.release.wait(30)
        return super().check_batch(principal, items, context, explain=explain, actor=actor)


def test_graceful_stop_reports_not_serving_and_drains_in_flight_calls(bundle: Path) -> None:
    """Stopping flips health to NOT_SERVING, lets the in-flight call finish, then refuses."""
    engine = _GatedEngine(bundle)
    sidecar = build_sidecar(engine, config=ServerConfig(listen="127.0.0.1:0", grace_seconds=20))
    channel = grpc.insecure_channel(sidecar.start())
    stub = policy_stub(channel)
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
    assert next(watch).status == SERVING
    slow = stub.Check.future(
        pb.CheckRequest(principal=principal(), action="read", resource=device(device_id="slow")),
        timeout=30,
    )
    assert engine.entered.wait(10)
    stopper = threading.Thread(target=sidecar.stop)
    stopper.start()
    try:
        assert next(watch).status == NOT_SERVING
        watch.cancel()  # a watcher would otherwise hold the drain open until the grace ends
        engine.release.set()
        assert slow.result(timeout=10).allowed
    finally:
        engine.release.set()
        stopper.join(timeout=30)
    assert not stopper.is_alive()
    with pytest.raises(grpc.RpcError) as raised:
        stub.Check(READ, timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()


def test_stop_reports_not_serving_without_waiting_for_a_reload_in_progress(bundle: Path) -> None:
    """Shutdown flips health at once, even while a slow candidate version is still loading."""
    loading, release = threading.Event(), threading.Event()

    def slow_load(source: BundleSource) -> PolicySnapshot:
        loading.set()
        assert release.wait(30)
        return load_snapshot(source)

    engine = Engine(load_snapshot(bundle))
    runtime = Runtime(
        engine=engine,
        reloader=PolicyReloader(engine, bundle, load=slow_load, run_tests=None),
        sidecar=build_sidecar(engine, config=ServerConfig(listen="127.0.0.1:0", grace_seconds=20)),
        options=RuntimeOptions(policies=bundle, watch_interval=None),
    )
    with grpc.insecure_channel(runtime.start()) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), timeout=20
        )
        assert next(watch).status == SERVING
        runtime.reloader.request_reload()
        assert loading.wait(10)
        stopper = threading.Thread(target=runtime.stop)
        stopper.start()
        try:
            assert next(watch).status == NOT_SERVING
            watch.cancel()
        finally:
            release.set()
            stopper.join(timeout=30)
    assert not stopper.is_alive()


@contextmanager
def _serve_process(*args: str, cwd: Path) -> Iterator[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "cnm_policy", "serve", "--log-format", "json", *args]
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def test_serve_process_reloads_on_sighup_and_exits_0_on_sigterm(
    bundle: Path, tmp_path: Path, socket_path: Path
) -> None:
    """The real process serves, logs JSON decisions, reloads on SIGHUP, drains on SIGTERM."""
    address = f"unix:{socket_path}"
    args = ("--policies", str(bundle), "--listen", address, "--watch-interval", "0")
    with _serve_process(*args, cwd=tmp_path) as process, grpc.insecure_channel(address) as channel:
        _eventually(lambda: _serving(channel), what="SERVING")
        stub = policy_stub(channel)
        stub.Check(READ, metadata=(("x-request-id", "proc-1"),), timeout=5)
        copy_bundle(bundle, "v2-overlay")
        process.send_signal(signal.SIGHUP)
        _eventually(
            lambda: (
                stub.GetPolicyInfo(pb.GetPolicyInfoRequest(), timeout=5).policy.version == "2.0.0"
            ),
            what="version 2 after SIGHUP",
        )
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    names = [event["event"] for event in events]
    assert {"sidecar_started", "decision", "policy_reload", "sidecar_stopped"} <= set(names)
    assert names.index("sidecar_stopping") < names.index("sidecar_stopped")
    (decision,) = [event for event in events if event["event"] == "decision"]
    assert (decision["request_id"], decision["allowed"]) == ("proc-1", True)
    assert all("timestamp" in event for event in events)


def test_sigint_also_stops_gracefully(bundle: Path, tmp_path: Path, socket_path: Path) -> None:
    """Ctrl-C (SIGINT) is a graceful stop with exit status 0, like SIGTERM."""
    address = f"unix:{socket_path}"
    with _serve_process("--policies", str(bundle), "--listen", address, cwd=tmp_path) as process:
        with grpc.insecure_channel(address) as channel:
            _eventually(lambda: _serving(channel), what="SERVING")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err


def test_serve_refuses_to_start_on_a_broken_bundle(tmp_path: Path, socket_path: Path) -> None:
    """A bundle that fails validation is never served: exit 4 with the problem on stderr."""
    bundle = copy_bundle(tmp_path / "bundle", "broken-overlay")
    address = f"unix:{socket_path}"
    with _serve_process("--policies", str(bundle), "--listen", address, cwd=tmp_path) as process:
        out, err = process.communicate(timeout=30)
    assert process.returncode == 4
    assert "ghost-role" in err
    assert not socket_path.exists()
    assert "sidecar_start_failed" in out


@pytest.mark.parametrize(
    ("module", "signum"),
    [
        ("cnm_policy._early_signals", signal.SIGTERM),
        ("grpc", signal.SIGINT),
        ("cnm_policy.server.runtime", signal.SIGTERM),
    ],
)
def test_a_stop_signal_while_importing_exits_0_without_serving(
    bundle: Path, tmp_path: Path, socket_path: Path, module: str, signum: signal.Signals
) -> None:
    """A stop signal at any moment of start-up is a clean exit 0, never a kill or an abort."""
    command = [
        sys.executable, "-X", "importtime", "-m", "cnm_policy", "serve", "--log-format", "json",
        "--policies", str(bundle), "--listen", f"unix:{socket_path}", "--watch-interval", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(30, process.kill)  # bounded even if the module never shows
    watchdog.start()
    try:
        assert process.stderr is not None
        # -X importtime reports each module once it is imported: signal right after `module`.
        for line in process.stderr:
            if line.rpartition("|")[2].strip() == module:
                process.send_signal(signum)
                break
        out, _ = process.communicate(timeout=30)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    names = [json.loads(line)["event"] for line in out.splitlines()]
    assert (process.returncode, names[-1:]) == (0, ["sidecar_stopped"])
    assert "sidecar_started" not in names
    assert not socket_path.exists()


def test_sigterm_answers_and_logs_every_call_already_received(
    bundle: Path, tmp_path: Path, socket_path: Path
) -> None:
    """Calls sent before SIGTERM end OK and logged, or UNAVAILABLE (never run): none CANCELLED."""
    address, log_file = f"unix:{socket_path}", tmp_path / "sidecar.log"
    # Many workers contend for the GIL with grpc's own thread, so calls queue up inside it.
    args = ["--policies", str(bundle), "--listen", address, "--workers", "8", "--no-cache"]
    args += ["--log-file", str(log_file)]
    items = [
        pb.CheckBatchItem(action="read", resource=device(device_id=f"d{i}")) for i in range(300)
    ]
    batch = pb.CheckBatchRequest(principal=principal(), items=items)
    with _serve_process(*args, cwd=tmp_path) as process, grpc.insecure_channel(address) as channel:
        _eventually(lambda: _serving(channel), what="SERVING")
        stub = policy_stub(channel)
        calls = [
            stub.CheckBatch.future(batch, metadata=(("x-request-id", f"call-{n}"),), timeout=60)
            for n in range(100)
        ]
        # Once one batch is logged, the sidecar is busy and the other calls are queued in it.
        _eventually(lambda: log_file.exists() and '"decision"' in log_file.read_text(), what="log")
        process.send_signal(signal.SIGTERM)
        outcomes = {f"call-{n}": _outcome(call) for n, call in enumerate(calls)}
        _, err = process.communicate(timeout=60)
        with pytest.raises(grpc.RpcError) as raised:
            stub.CheckBatch(batch, timeout=10)
    assert process.returncode == 0, err
    assert set(outcomes.values()) <= {"OK", "UNAVAILABLE"}, outcomes
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    logged = [event["request_id"] for event in events if event["event"] == "decision"]
    answered = {request_id for request_id, code in outcomes.items() if code == "OK"}
    assert sorted(logged) == sorted(request_id for request_id in answered for _ in items)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


def _outcome(call: Any) -> str:
    """The status name a finished call ended with."""
    try:
        call.result()
    except grpc.RpcError as error:
        return str(error.code().name)
    return "OK"
