"""The ops listener: /metrics parsed by prometheus_client moves with decisions, rejects and
reloads; /healthz and /readyz answer as probes expect; nothing else is served."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cnm_policy.ops.unix_http import http_connection
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.http import HttpListenerConfig
from cnm_policy.server.runtime import Runtime, RuntimeOptions, open_runtime
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import copy_bundle, device, policy_stub, principal

pytestmark = pytest.mark.e2e

ALLOW = pb.CheckRequest(principal=principal(), action="read", resource=device())
DENY = pb.CheckRequest(principal=principal(), action="read", resource=device("globex"))
MALFORMED = pb.CheckRequest(principal=principal(), action="read", resource=device(tenant=""))


@contextmanager
def ops_sidecar(bundle: Path, **options: Any) -> Iterator[tuple[Runtime, Any, str]]:
    """A sidecar with an ops listener on a free loopback port: (runtime, stub, ops address)."""
    runtime = open_runtime(
        RuntimeOptions(
            policies=bundle,
            watch_interval=options.pop("watch_interval", None),
            ops=HttpListenerConfig(listen="127.0.0.1:0", flag="--ops-listen", allow_remote=True),
            **options,
        ),
        ServerConfig(listen="127.0.0.1:0", grace_seconds=2.0),
    )
    address = runtime.start()
    channel = grpc.insecure_channel(address)
    try:
        assert runtime.ops is not None and runtime.ops.address is not None
        yield runtime, policy_stub(channel), runtime.ops.address
    finally:
        channel.close()
        runtime.stop(grace=2.0)


def http_get(address: str, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request to HOST:PORT or unix:PATH: (status, lower-cased headers, body)."""
    connection = http_connection(address, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        headers = {key.lower(): value for key, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        connection.close()


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, parsed by prometheus_client, by (name, sorted labels)."""
    status, headers, body = http_get(address, "/metrics")
    assert (status, headers["content-type"].split(";")[0]) == (200, "text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def poll(condition: Any, seconds: float = 10.0) -> Any:
    """Call `condition` until it returns something truthy, or fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_counters_move_with_decisions_rejects_and_reloads(tmp_path: Path) -> None:
    """Allows, denies, a rejected request and a reload each show up in the next scrape."""
    bundle = copy_bundle(tmp_path / "bundle")
    with ops_sidecar(bundle) as (runtime, stub, ops):
        before = scrape(ops)
        stub.Check(ALLOW, timeout=5)
        stub.Check(ALLOW, timeout=5)
        stub.Check(DENY, timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.Check(MALFORMED, timeout=5)
        middle = scrape(ops)
        copy_bundle(bundle, "v2-overlay")
        runtime.reloader.reload_now()
        after = scrape(ops)
    check = (("method", "Check"),)
    assert after[("cnm_policy_decisions_total", (*check, ("outcome", "allow")))] == 2
    assert after[("cnm_policy_decisions_total", (*check, ("outcome", "deny")))] == 1
    rejected = ("cnm_policy_requests_rejected_total", (("code", "invalid_request"), *check))
    assert after[rejected] == 1
    assert after[("cnm_policy_decision_duration_seconds_count", check)] == 4
    assert after[("cnm_policy_decision_duration_seconds_bucket", (("le", "+Inf"), *check))] == 4
    assert (
        after[("cnm_policy_cache_misses_total", ())] - before[("cnm_policy_cache_misses_total", ())]
        == 2
    )
    assert after[("cnm_policy_cache_hits_total", ())] == 1
    # A new version starts with an empty cache (entries are keyed by the policy digest).
    entries = ("cnm_policy_cache_entries", ())
    assert (middle[entries], after[entries]) == (2, 0)
    success = ("cnm_policy_reloads_total", (("outcome", "success"),))
    assert (before[success], after[success]) == (0, 1)
    versions = [
        dict(labels)["version"]
        for metrics in (before, after)
        for (name, labels) in metrics
        if name == "cnm_policy_bundle_info"
    ]
    assert versions == ["1.0.0", "2.0.0"]
    assert after[("cnm_policy_requests_in_flight", ())] == 0
    loaded = after[("cnm_policy_last_successful_load_timestamp_seconds", ())]
    assert loaded > before[("cnm_policy_last_successful_load_timestamp_seconds", ())]


def test_no_label_names_a_tenant_or_principal(tmp_path: Path) -> None:
    """Cardinality and privacy: no sample carries a tenant, principal or resource label."""
    with ops_sidecar(copy_bundle(tmp_path / "bundle")) as (_runtime, stub, ops):
        stub.Check(ALLOW, timeout=5)
        labels = {name for (_metric, pairs) in scrape(ops) for name, _value in pairs}
    assert labels <= {"method", "outcome", "code", "le", "name", "version", "digest", "class"}


def test_a_break_glass_check_is_counted_as_audited(tmp_path: Path) -> None:
    """A break-glass allow moves cnm_policy_audited_decisions_total{class="break_glass"} by one."""
    support = pb.Principal(id="s-910", tenant="provider/support", roles=["support-agent"])
    support.attributes.update({"mfa": True, "assigned_tenants": ["acme"]})
    request = pb.CheckRequest(
        principal=support,
        action="configure",
        resource=pb.Resource(kind="circuit", id="c-1", tenant="globex"),
    )
    request.context.update({"break_glass": {"incident": "INC-1", "reason": "outage"}})
    default_bundle = Path(__file__).resolve().parents[2] / "policies" / "cnm"
    with ops_sidecar(default_bundle) as (_runtime, stub, ops):
        before = scrape(ops)
        assert stub.Check(request, timeout=5).allowed
        stub.Check(ALLOW, timeout=5)  # an everyday decision is not audited
        after = scrape(ops)
    audited = "cnm_policy_audited_decisions_total"
    moved = {
        dict(labels)["class"]: after[(name, labels)] - before[(name, labels)]
        for (name, labels) in after
        if name == audited
    }
    assert moved == {"break_glass": 1, "self_managed_crossing": 0}


def test_health_and_readiness_answer_probes(tmp_path: Path) -> None:
    """/healthz says alive, /readyz says ready once serving; HEAD works, POST is 405."""
    with ops_sidecar(copy_bundle(tmp_path / "bundle")) as (_runtime, _stub, ops):
        alive = http_get(ops, "/healthz")
        ready = http_get(ops, "/readyz")
        head = http_get(ops, "/readyz", "HEAD")
        post = http_get(ops, "/metrics", "POST")
        missing = http_get(ops, "/check")
    assert (alive[0], orjson.loads(alive[2])) == (200, {"status": "alive"})
    assert (ready[0], orjson.loads(ready[2])["status"]) == (200, "ready")
    assert (head[0], head[2]) == (200, b"")
    assert (post[0], post[1]["allow"]) == (405, "GET, HEAD")
    assert missing[0] == 404


def test_readiness_is_not_ready_during_the_stop(tmp_path: Path) -> None:
    """Once the stop begins, /readyz answers 503 `stopping` while the listener still serves."""
    with ops_sidecar(copy_bundle(tmp_path / "bundle")) as (runtime, _stub, ops):
        runtime.readiness.stopping()
        status, _headers, body = http_get(ops, "/readyz")
    assert (status, orjson.loads(body)["reason"]) == (503, "stopping")
