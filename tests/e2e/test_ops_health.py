"""Staleness and probes: readiness, gRPC health and checks follow --max-policy-age both ways,
and `cnm-policy healthcheck` exits 0 or 1 from the ops listener or gRPC health."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import grpc
import orjson
import pytest
from grpc_health.v1 import health_pb2

from cnm_policy.cli import main
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.errors import ERROR_CODE_METADATA
from cnm_policy.server.http.runner import HttpListenerConfig
from cnm_policy.server.runtime import RuntimeOptions, open_runtime
from tests.e2e.harness import copy_bundle, health_status
from tests.e2e.test_ops_metrics import ALLOW, http_get, ops_sidecar, poll, scrape

pytestmark = pytest.mark.e2e

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _ready(ops: str) -> tuple[int, str]:
    status, _headers, body = http_get(ops, "/readyz")
    return status, orjson.loads(body)["reason"]


def test_readiness_health_and_checks_follow_the_policy_age(tmp_path: Path) -> None:
    """Source gone past the max age: not ready, NOT_SERVING, UNAVAILABLE; back once it loads."""
    bundle = copy_bundle(tmp_path / "bundle")
    aside = tmp_path / "aside"
    with ops_sidecar(bundle, watch_interval=0.1, settle_seconds=0.0, max_policy_age=0.5) as (
        runtime,
        stub,
        ops,
    ):
        assert _ready(ops) == (200, "ok")
        channel = grpc.insecure_channel(runtime.sidecar.address or "")
        shutil.move(bundle, aside)  # the source disappears: no load can confirm the policy
        poll(lambda: _ready(ops) == (503, "policy_stale"))
        assert health_status(channel) == NOT_SERVING
        with pytest.raises(grpc.RpcError) as raised:
            stub.Check(ALLOW, timeout=5)
        error: grpc.Call = raised.value  # type: ignore[assignment]
        trailing = dict(error.trailing_metadata() or ())
        assert (error.code(), trailing[ERROR_CODE_METADATA]) == (
            grpc.StatusCode.UNAVAILABLE,
            "policy_stale",
        )
        assert scrape(ops)[("cnm_policy_ready", ())] == 0
        shutil.move(aside, bundle)  # back: the next load confirms the policy again
        poll(lambda: _ready(ops) == (200, "ok"))
        assert health_status(channel) == SERVING
        assert stub.Check(ALLOW, timeout=5).allowed
        channel.close()


def test_a_policy_confirmed_by_each_poll_stays_ready(tmp_path: Path) -> None:
    """An unchanged, readable source confirms the policy on every poll: it never goes stale."""
    bundle = copy_bundle(tmp_path / "bundle")
    with ops_sidecar(bundle, watch_interval=0.05, max_policy_age=0.3) as (runtime, stub, ops):
        confirmed = runtime.reloader.status.last_confirmed_at
        poll(lambda: (runtime.reloader.status.last_confirmed_at or 0) > (confirmed or 0) + 0.4)
        assert _ready(ops) == (200, "ok")
        assert stub.Check(ALLOW, timeout=5).allowed


def test_healthcheck_exits_0_when_ready_and_1_when_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exec probe: 0 against a ready sidecar (ops or gRPC), 1 once stopping or unreachable."""
    with ops_sidecar(copy_bundle(tmp_path / "bundle")) as (runtime, _stub, ops):
        grpc_address = runtime.sidecar.address or ""
        codes = [
            main(["healthcheck", "--ops", ops]),
            main(["healthcheck", "--ops", ops, "--live"]),
            main(["healthcheck", "--grpc", grpc_address]),
        ]
        runtime.readiness.stopping()
        codes.append(main(["healthcheck", "--ops", ops]))
        codes.append(main(["healthcheck", "--ops", ops, "--live"]))
    codes.append(main(["healthcheck", "--ops", ops, "--timeout", "1"]))
    assert codes == [0, 0, 0, 1, 0, 1]
    lines = capsys.readouterr().err.splitlines()
    assert lines[3].startswith("cnm-policy healthcheck: unhealthy: /readyz 503")
    assert lines[5].startswith("cnm-policy healthcheck: unhealthy: unreachable:")


def test_a_sidecar_stale_from_its_start_is_not_serving(tmp_path: Path) -> None:
    """Confirmed too long ago before it starts: gRPC health NOT_SERVING from the start, 503."""
    runtime = open_runtime(
        RuntimeOptions(
            policies=copy_bundle(tmp_path / "bundle"),
            watch_interval=None,
            max_policy_age=3600.0,
            ops=HttpListenerConfig(listen="127.0.0.1:0", flag="--ops-listen", allow_remote=True),
        ),
        ServerConfig(listen="127.0.0.1:0", grace_seconds=1.0),
    )
    runtime.reloader.confirm(at=time.time() - 7200)  # as a restored, old archive is
    address = runtime.start()
    try:
        assert runtime.ops is not None and runtime.ops.address is not None
        with grpc.insecure_channel(address) as channel:
            assert (health_status(channel), _ready(runtime.ops.address)) == (
                NOT_SERVING,
                (503, "policy_stale"),
            )
    finally:
        runtime.stop(grace=1.0)
