"""The PolicyService contract over a real channel: health, reflection, decisions, errors, limits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from structlog.testing import capture_logs

from cnm_policy.server.app import SERVICE_NAME
from cnm_policy.server.errors import ERROR_CODE_METADATA, ERROR_FIELD_METADATA
from cnm_policy.server.limits import Limits
from cnm_policy.server.wire.convert import dict_to_struct, timestamp_to_epoch
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import Served, device, health_status, principal, serve

pytestmark = pytest.mark.e2e


def _rpc_error(call: object) -> grpc.RpcError:
    """The RpcError a failed call raised (grpc's exception is also a Call)."""
    assert isinstance(call, grpc.RpcError)
    assert isinstance(call, grpc.Call)
    return call


def test_health_is_serving_once_a_policy_is_loaded(sidecar: Served) -> None:
    """The standard health service reports SERVING, overall and for PolicyService."""
    assert health_status(sidecar.channel) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(sidecar.channel, SERVICE_NAME) == health_pb2.HealthCheckResponse.SERVING


def test_reflection_describes_the_service(sidecar: Served) -> None:
    """Stock tools can discover PolicyService and its methods through server reflection."""
    database = ProtoReflectionDescriptorDatabase(sidecar.channel)
    assert {SERVICE_NAME, "grpc.health.v1.Health"} <= set(database.get_services())
    service = descriptor_pool.DescriptorPool(database).FindServiceByName(SERVICE_NAME)
    methods = {"Check", "CheckBatch", "GetPolicyInfo", "CanGrant", "PlanResources"}
    assert methods == {m.name for m in service.methods}


def test_check_allows_with_the_deciding_rule_and_policy(sidecar: Served) -> None:
    """An allow names its rule and the exact policy version (digest) that decided it."""
    info = sidecar.stub.GetPolicyInfo(pb.GetPolicyInfoRequest(), timeout=5)
    response = sidecar.stub.Check(
        pb.CheckRequest(principal=principal(), action="read", resource=device()), timeout=5
    )
    assert (response.allowed, list(response.rule_ids)) == (True, ["customer-read"])
    assert (response.policy.version, response.policy.digest) == ("1.0.0", info.policy.digest)
    assert response.decision_id


def test_a_deny_is_an_ok_response(sidecar: Served) -> None:
    """Another customer's device is denied in a normal response, not an error status."""
    response = sidecar.stub.Check(
        pb.CheckRequest(principal=principal(), action="read", resource=device("globex")),
        timeout=5,
    )
    assert (response.allowed, list(response.rule_ids)) == (False, [])
    assert "read" in response.reason


def test_time_bound_allow_says_until_when(sidecar: Served) -> None:
    """A decision that depends on a maintenance window carries the window's end."""
    now = time.time()
    end = int(now) + 3600
    window = {"start": int(now) - 3600, "end": end}
    response = sidecar.stub.Check(
        pb.CheckRequest(
            principal=principal(("customer-admin",)),
            action="reboot",
            resource=device(),
            context=dict_to_struct({"maintenance_window": window}),
        ),
        timeout=5,
    )
    assert response.allowed
    assert timestamp_to_epoch(response.valid_until) == end


def test_explain_reports_every_rule(sidecar: Served) -> None:
    """With explain, the response says how each rule matched or not."""
    response = sidecar.stub.Check(
        pb.CheckRequest(
            principal=principal(("noc-engineer",), tenant="provider", mfa=False),
            action="reboot",
            resource=device(),
            explain=True,
        ),
        timeout=5,
    )
    traces = {trace.rule_id: trace for trace in response.trace}
    assert not response.allowed
    assert set(traces) == {"customer-read", "customer-reboot-in-window", "noc-operate"}
    noc = traces["noc-operate"]
    assert (noc.role_matched, noc.scope_matched, noc.condition, noc.applied) == (
        True,
        True,
        False,
        False,
    )


def test_batch_answers_in_request_order_like_single_checks(sidecar: Served) -> None:
    """CheckBatch returns one result per item, in order, equal to the single-check answers."""
    items = [
        pb.CheckBatchItem(action="read", resource=device("acme/emea", "a")),
        pb.CheckBatchItem(action="read", resource=device("globex", "b")),
        pb.CheckBatchItem(action="reboot", resource=device("acme", "c")),
        pb.CheckBatchItem(
            action="read", resource=pb.Resource(kind="ticket", id="t", tenant="acme")
        ),
    ]
    batch = sidecar.stub.CheckBatch(
        pb.CheckBatchRequest(principal=principal(), items=items), timeout=5
    )
    singles = [
        sidecar.stub.Check(
            pb.CheckRequest(principal=principal(), action=item.action, resource=item.resource),
            timeout=5,
        )
        for item in items
    ]
    assert [r.allowed for r in batch.results] == [True, False, False, True]
    assert [(r.allowed, list(r.rule_ids)) for r in batch.results] == [
        (r.allowed, list(r.rule_ids)) for r in singles
    ]


def test_repeated_checks_are_cached_and_counted(sidecar: Served) -> None:
    """The second identical check is served from the cache, and GetPolicyInfo counts it."""
    request = pb.CheckRequest(principal=principal(), action="read", resource=device())
    first = sidecar.stub.Check(request, timeout=5)
    second = sidecar.stub.Check(request, timeout=5)
    info = sidecar.stub.GetPolicyInfo(pb.GetPolicyInfoRequest(), timeout=5)
    assert (first.cached, second.cached) == (False, True)
    assert info.cache.enabled
    assert info.cache.hits >= 1


def test_policy_info_describes_the_serving_bundle(sidecar: Served) -> None:
    """GetPolicyInfo names the bundle, its version, digest, rules, source and limits."""
    info = sidecar.stub.GetPolicyInfo(pb.GetPolicyInfoRequest(), timeout=5)
    assert (info.policy.name, info.policy.version, info.rule_count) == (
        "sidecar-fixture",
        "1.0.0",
        3,
    )
    assert info.policy.digest.startswith("sha256:")
    assert info.source == str(sidecar.bundle)
    assert info.reload.last_error == ""
    assert info.limits.max_batch_items == Limits().max_batch_items


def test_request_id_metadata_reaches_the_decision_log(sidecar: Served) -> None:
    """The caller's x-request-id is logged with the decision, under the returned decision id."""
    with capture_logs() as logs:
        response = sidecar.stub.Check(
            pb.CheckRequest(principal=principal(), action="read", resource=device()),
            metadata=(("x-request-id", "req-e2e-1"),),
            timeout=5,
        )
    decisions = [entry for entry in logs if entry["event"] == "decision"]
    assert [(d["request_id"], d["decision_id"]) for d in decisions] == [
        ("req-e2e-1", response.decision_id)
    ]


@pytest.mark.parametrize(
    ("request_message", "message"),
    [
        (
            pb.CheckRequest(principal=principal(), action="read", resource=device(tenant="")),
            "resource.tenant: must not be empty",
        ),
        (pb.CheckRequest(principal=principal(), action="read"), "resource: is required"),
        (
            pb.CheckRequest(principal=principal(tenant=""), action="read", resource=device()),
            "principal.tenant: must not be empty",
        ),
    ],
)
def test_malformed_check_is_invalid_argument_naming_the_field(
    sidecar: Served, request_message: pb.CheckRequest, message: str
) -> None:
    """Malformed input is INVALID_ARGUMENT whose message starts with the field path."""
    with pytest.raises(grpc.RpcError) as raised:
        sidecar.stub.Check(request_message, timeout=5)
    error = _rpc_error(raised.value)
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    # Text metadata arrives as str (grpc-stubs says bytes, which only "-bin" keys carry).
    trailing: dict[str, str | bytes] = {
        item.key: item.value for item in error.trailing_metadata() or ()
    }
    assert trailing[ERROR_CODE_METADATA] == "invalid_request"
    assert trailing[ERROR_FIELD_METADATA] == message.split(":", maxsplit=1)[0]


def test_rejected_calls_leave_one_rejected_decision_event_each(small_limits: Served) -> None:
    """INVALID_ARGUMENT and RESOURCE_EXHAUSTED calls are logged as rejected, with code and field."""
    malformed = pb.CheckRequest(principal=principal(), action="read", resource=device(tenant=""))
    too_many = pb.CheckBatchRequest(
        principal=principal(), items=[pb.CheckBatchItem(action="read", resource=device())] * 4
    )
    with capture_logs() as logs:
        for call, request in (
            (small_limits.stub.Check, malformed),
            (small_limits.stub.CheckBatch, too_many),
        ):
            with pytest.raises(grpc.RpcError):
                call(request, metadata=(("x-request-id", "bad-1"),), timeout=5)
    rejected = [
        (e["outcome"], e["error_code"], e["error_field"], e["request_id"])
        for e in logs
        if e["event"] == "decision"
    ]
    assert rejected == [
        ("rejected", "invalid_request", "resource.tenant", "bad-1"),
        ("rejected", "limit_exceeded", "items", "bad-1"),
    ]


def test_malformed_batch_item_is_named_by_index(sidecar: Served) -> None:
    """In a batch, the bad item is named as items[i]."""
    items = [
        pb.CheckBatchItem(action="read", resource=device()),
        pb.CheckBatchItem(action="", resource=device()),
    ]
    with pytest.raises(grpc.RpcError) as raised:
        sidecar.stub.CheckBatch(pb.CheckBatchRequest(principal=principal(), items=items), timeout=5)
    error = _rpc_error(raised.value)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "items[1].action: must not be empty",
    )


@pytest.fixture
def small_limits(bundle: Path) -> Iterator[Served]:
    """A sidecar with tight limits, to hit each one cheaply."""
    limits = Limits(
        max_batch_items=3, max_attribute_depth=2, max_attribute_bytes=256, max_message_bytes=2048
    )
    with serve(bundle, limits=limits) as served:
        yield served


def test_batch_over_the_limit_is_refused(small_limits: Served) -> None:
    """More items than the limit is RESOURCE_EXHAUSTED on `items`, before any evaluation."""
    items = [pb.CheckBatchItem(action="read", resource=device())] * 4
    with pytest.raises(grpc.RpcError) as raised:
        small_limits.stub.CheckBatch(
            pb.CheckBatchRequest(principal=principal(), items=items), timeout=5
        )
    error = _rpc_error(raised.value)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "items: 4 items exceed the limit of 3 per batch"


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"a": {"b": {"c": 1}}}, "context.a.b"),
        ({"notes": "x" * 400}, "context"),
    ],
)
def test_attribute_limits_name_the_field(
    small_limits: Served, context: dict[str, object], field: str
) -> None:
    """Too deep or too large attributes are RESOURCE_EXHAUSTED naming where."""
    request = pb.CheckRequest(
        principal=principal(), action="read", resource=device(), context=dict_to_struct(context)
    )
    with pytest.raises(grpc.RpcError) as raised:
        small_limits.stub.Check(request, timeout=5)
    error = _rpc_error(raised.value)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (error.details() or "").startswith(f"{field}: ")


def test_oversized_message_is_refused_by_grpc(small_limits: Served) -> None:
    """Over max_message_bytes, grpc refuses the call before the servicer sees it: no trailer.

    docs/sidecar.md says so: the transport reads only the length prefix, which is what keeps
    the memory an oversized message can cost bounded, and no handler runs to add metadata.
    """
    request = pb.CheckRequest(
        principal=principal(), action="read", resource=device(device_id="d" * 4096)
    )
    with pytest.raises(grpc.RpcError) as raised:
        small_limits.stub.Check(request, timeout=5)
    error = _rpc_error(raised.value)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == "SERVER: Received message larger than max (4174 vs. 2048)"
    trailing = {item.key for item in error.trailing_metadata() or ()}
    assert ERROR_CODE_METADATA not in trailing


@pytest.mark.parametrize("method", ["Check", "CheckBatch", "GetPolicyInfo"])
def test_bytes_that_are_not_a_request_are_invalid_argument(sidecar: Served, method: str) -> None:
    """Every RPC parses its request itself: undecodable bytes are the caller's error."""
    call = sidecar.channel.unary_unary(f"/cnm_policy.v1.PolicyService/{method}", None, None)
    with pytest.raises(grpc.RpcError) as raised:
        call(b"\xff\xff\xff", timeout=5)
    error = _rpc_error(raised.value)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "request: is not a valid protobuf message",
    )


def test_repeated_checks_answer_alike_but_each_with_its_own_decision_id(sidecar: Served) -> None:
    """The second, cached answer carries the same decision and a new id."""
    request = pb.CheckRequest(principal=principal(), action="read", resource=device())
    first, second = (sidecar.stub.Check(request, timeout=5) for _ in range(2))
    assert (first.cached, second.cached) == (False, True)
    assert first.decision_id != second.decision_id
    second.ClearField("decision_id")
    second.cached = False
    first.ClearField("decision_id")
    assert first == second
