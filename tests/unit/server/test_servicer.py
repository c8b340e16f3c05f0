"""The servicer's order of work, against a fake engine: convert once, decide, log, fail closed."""

from __future__ import annotations

import functools
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import ReturnLogger, capture_logs

from cnm_policy.audit import DecisionLog
from cnm_policy.cache import CachedEngine
from cnm_policy.engine import Engine, PolicySnapshot, load_snapshot
from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import Decision, Principal, Resource
from cnm_policy.server.limits import Limits
from cnm_policy.server.servicer import PolicyServicer, rpc_handlers
from cnm_policy.server.wire.convert import dict_to_struct
from cnm_policy.v1 import policy_pb2 as pb
from tests.conftest import DEFAULT_BUNDLE, FIXED_NOW


class _Snapshot:
    name = "fake"
    version = "9"
    digest = "sha256:00"
    rule_count = 1
    loaded_at = 0.0
    source = "memory"


class FakeEngine:
    """Allows `read`, denies the rest; records every call; can be told to misbehave."""

    def __init__(self) -> None:
        self.snapshot = _Snapshot()
        self.batch_calls: list[tuple[Principal, list[tuple[str, Resource]], Any]] = []
        self.fail_with: Exception | None = None
        self.drop_last = False

    def check(
        self,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> Decision:
        return self.check_batch(principal, [(action, resource)], context, explain=explain)[0]

    def check_batch(
        self,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any] | None = None,
        *,
        explain: bool = False,
        actor: Principal | None = None,
    ) -> list[Decision]:
        self.batch_calls.append((principal, list(items), context))
        if self.fail_with is not None:
            raise self.fail_with
        for _, resource in items:
            if not resource.tenant:
                raise InvalidRequestError("resource.tenant", "must not be empty")
        decisions = [
            Decision(action == "read", ("r",) if action == "read" else (), "", "fake", "9", "d")
            for action, _ in items
        ]
        return decisions[:-1] if self.drop_last else decisions


class AbortedError(Exception):
    pass


class FakeContext:
    def __init__(self, *, remaining: float | None = 5.0, request_id: str | None = None) -> None:
        self.remaining = remaining
        self.metadata = (("x-request-id", request_id),) if request_id else ()
        self.trailing: Any = ()

    def time_remaining(self) -> float | None:
        return self.remaining

    def invocation_metadata(self) -> Any:
        return self.metadata

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = metadata

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise AbortedError(code, details)


@pytest.fixture
def engine() -> FakeEngine:
    """A fake engine recording what it was asked."""
    return FakeEngine()


@pytest.fixture
def servicer(engine: FakeEngine) -> PolicyServicer:
    """A servicer over the fake engine, with numbered decision ids."""
    ids = iter(f"dec-{n}" for n in range(100))
    return PolicyServicer(
        engine,
        limits=Limits(max_batch_items=3),
        decision_log=DecisionLog(new_id=lambda: next(ids)),
    )


def _principal() -> pb.Principal:
    return pb.Principal(id="u-1", tenant="acme", roles=["viewer"])


def _resource(tenant: str = "acme") -> pb.Resource:
    return pb.Resource(kind="device", id="dev-1", tenant=tenant)


def test_check_returns_the_decision_and_logs_one_event(
    servicer: PolicyServicer, engine: FakeEngine
) -> None:
    """Check converts the request, asks the engine once, logs once, answers with the id."""
    request = pb.CheckRequest(
        principal=_principal(),
        action="read",
        resource=_resource(),
        context=dict_to_struct({"attempt": 2}),
    )
    with capture_logs() as logs:
        response = servicer.Check(request, FakeContext(request_id="req-7"))  # type: ignore[arg-type]
    assert (
        response.allowed,
        list(response.rule_ids),
        response.decision_id,
    ) == (True, ["r"], "dec-0")
    assert engine.batch_calls[0][2] == {"attempt": 2}
    assert [(e["event"], e["decision_id"], e["request_id"]) for e in logs] == [
        ("decision", "dec-0", "req-7")
    ]


def test_a_deny_is_an_ok_response(servicer: PolicyServicer) -> None:
    """A deny comes back as allowed=false, not as an error status."""
    request = pb.CheckRequest(principal=_principal(), action="reboot", resource=_resource())
    response = servicer.Check(request, FakeContext())  # type: ignore[arg-type]
    assert not response.allowed


def test_expired_deadline_skips_the_engine(servicer: PolicyServicer, engine: FakeEngine) -> None:
    """A call whose deadline already passed is DEADLINE_EXCEEDED and never evaluated."""
    request = pb.CheckRequest(principal=_principal(), action="read", resource=_resource())
    with pytest.raises(AbortedError) as raised:
        servicer.Check(request, FakeContext(remaining=0.0))  # type: ignore[arg-type]
    assert raised.value.args[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert engine.batch_calls == []


def test_engine_failure_is_internal_never_allowed(
    servicer: PolicyServicer, engine: FakeEngine
) -> None:
    """An engine bug yields INTERNAL (fail closed), with no detail leaked."""
    engine.fail_with = KeyError("secret")
    request = pb.CheckRequest(principal=_principal(), action="read", resource=_resource())
    with capture_logs(), pytest.raises(AbortedError) as raised:
        servicer.Check(request, FakeContext())  # type: ignore[arg-type]
    assert raised.value.args[0] == grpc.StatusCode.INTERNAL
    assert "secret" not in raised.value.args[1]


def test_batch_uses_one_engine_call_in_order(servicer: PolicyServicer, engine: FakeEngine) -> None:
    """CheckBatch converts the principal once and makes one engine call; results keep order."""
    request = pb.CheckBatchRequest(
        principal=_principal(),
        items=[
            pb.CheckBatchItem(action="read", resource=_resource()),
            pb.CheckBatchItem(action="reboot", resource=_resource()),
            pb.CheckBatchItem(action="read", resource=_resource()),
        ],
    )
    with capture_logs() as logs:
        response = servicer.CheckBatch(request, FakeContext(request_id="r"))  # type: ignore[arg-type]
    assert [result.allowed for result in response.results] == [True, False, True]
    assert len(engine.batch_calls) == 1
    assert [(e["batch_index"], e["batch_size"]) for e in logs] == [(0, 3), (1, 3), (2, 3)]
    assert [r.decision_id for r in response.results] == [e["decision_id"] for e in logs]
    assert len({result.decision_id for result in response.results}) == 3


def test_batch_item_errors_name_the_item(servicer: PolicyServicer) -> None:
    """An invalid item is reported as items[i].<field>, so the caller knows which one."""
    request = pb.CheckBatchRequest(
        principal=_principal(),
        items=[
            pb.CheckBatchItem(action="read", resource=_resource()),
            pb.CheckBatchItem(action="read", resource=_resource(tenant="")),
        ],
    )
    with pytest.raises(AbortedError) as raised:
        servicer.CheckBatch(request, FakeContext())  # type: ignore[arg-type]
    assert raised.value.args == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "items[1].resource.tenant: must not be empty",
    )


def test_batch_over_limit_is_resource_exhausted(
    servicer: PolicyServicer, engine: FakeEngine
) -> None:
    """A batch larger than the limit is refused before the engine sees it."""
    request = pb.CheckBatchRequest(
        principal=_principal(), items=[pb.CheckBatchItem(action="read", resource=_resource())] * 4
    )
    with pytest.raises(AbortedError) as raised:
        servicer.CheckBatch(request, FakeContext())  # type: ignore[arg-type]
    assert raised.value.args[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert engine.batch_calls == []


def test_engine_returning_too_few_decisions_fails_closed(
    servicer: PolicyServicer, engine: FakeEngine
) -> None:
    """If the engine breaks its one-decision-per-item contract, the batch is INTERNAL."""
    engine.drop_last = True
    request = pb.CheckBatchRequest(
        principal=_principal(), items=[pb.CheckBatchItem(action="read", resource=_resource())] * 2
    )
    with capture_logs(), pytest.raises(AbortedError) as raised:
        servicer.CheckBatch(request, FakeContext())  # type: ignore[arg-type]
    assert raised.value.args[0] == grpc.StatusCode.INTERNAL


def test_policy_info_without_reloader_or_cache(servicer: PolicyServicer) -> None:
    """GetPolicyInfo works with neither reload status nor cache (library use)."""
    info = servicer.GetPolicyInfo(pb.GetPolicyInfoRequest(), FakeContext())  # type: ignore[arg-type]
    assert (info.policy.name, info.policy.version, info.cache.enabled) == ("fake", "9", False)


def test_latency_is_read_from_the_injected_timer_around_the_whole_call(
    engine: FakeEngine,
) -> None:
    """latency_ms spans the sidecar's share of the call: first reading before any work."""
    readings = iter([10.0, 10.25])
    order: list[str] = []

    def timer() -> float:
        order.append(f"timer:{len(engine.batch_calls)}")
        return next(readings)

    servicer = PolicyServicer(engine, limits=Limits(), decision_log=DecisionLog(), timer=timer)
    request = pb.CheckRequest(principal=_principal(), action="read", resource=_resource())
    with capture_logs() as logs:
        servicer.Check(request, FakeContext())  # type: ignore[arg-type]
    assert order == ["timer:0", "timer:1"]
    assert [event["latency_ms"] for event in logs] == [250.0]


def test_every_method_of_the_service_has_a_handler() -> None:
    """A method added to the proto without a handler here would be UNIMPLEMENTED at run time."""
    service = pb.DESCRIPTOR.services_by_name["PolicyService"]
    servicer = PolicyServicer(FakeEngine(), limits=Limits(), decision_log=DecisionLog())
    assert set(rpc_handlers(servicer)) == {method.name for method in service.methods}


def test_handlers_answer_grpcs_per_call_attribute_lookup_without_an_exception() -> None:
    """grpc looks up ``experimental_thread_pool`` on a handler's behaviour on every call. On a
    bound method that miss raises and swallows an AttributeError (a tenth of a cached Check),
    so the behaviours are partials of the servicer's methods, which still serve the servicer."""

    class Overriding(PolicyServicer):
        def check_bytes(self, request: bytes, context: grpc.ServicerContext) -> bytes:
            return b"overridden"

    servicer = Overriding(FakeEngine(), limits=Limits(), decision_log=DecisionLog())
    handlers = rpc_handlers(servicer)
    expected = {
        "Check": Overriding.check_bytes,
        "CheckBatch": PolicyServicer.check_batch_bytes,
        "GetPolicyInfo": PolicyServicer.policy_info_bytes,
    }
    for name, method in expected.items():
        behaviour = handlers[name].unary_unary
        assert not isinstance(behaviour, types.MethodType)
        assert isinstance(behaviour, functools.partial)
        assert (behaviour.func, behaviour.args, behaviour.keywords) == (method, (servicer,), {})
    check = handlers["Check"].unary_unary
    assert check is not None
    assert check(b"", FakeContext()) == b"overridden"  # type: ignore[arg-type]


def test_a_caching_engine_is_keyed_by_the_request_bytes(default_bundle: Path) -> None:
    """With a CachedEngine, a repeated Check or batch item is a hit on its wire encoding."""
    cached = CachedEngine(Engine(load_snapshot(default_bundle)))
    servicer = PolicyServicer(cached, limits=Limits(), decision_log=DecisionLog())
    request = pb.CheckRequest(
        principal=pb.Principal(id="u-1", tenant="acme", roles=["customer-viewer"]),
        action="read",
        resource=_resource(),
    )
    batch = pb.CheckBatchRequest(
        principal=request.principal,
        items=[pb.CheckBatchItem(action="read", resource=_resource())],
    )
    context: Any = FakeContext()
    answers = [servicer.Check(request, context).cached for _ in range(2)]
    batch_answers = [servicer.CheckBatch(batch, context).results[0].cached for _ in range(2)]
    assert (answers, batch_answers) == ([False, True], [False, True])
    assert cached.stats().size == 2  # one entry per wire encoding


@pytest.fixture(scope="module")
def default_snapshot() -> PolicySnapshot:
    """The default bundle, compiled once for the module's property test."""
    return load_snapshot(DEFAULT_BUNDLE)


_MFA = dict_to_struct({"mfa": True})
_PRINCIPALS = [
    pb.Principal(id="u-1", tenant="acme", roles=["customer-viewer"]),
    pb.Principal(id="u-1", tenant="acme", roles=["customer-admin"], attributes=_MFA),
    pb.Principal(id="u-2", tenant="acme/emea", roles=["customer-admin"]),
    pb.Principal(id="n-1", tenant="provider/noc", roles=["noc-engineer"], attributes=_MFA),
]
_RESOURCES = [
    pb.Resource(kind="device", id="dev-1", tenant="acme"),
    pb.Resource(kind="device", id="dev-1", tenant="acme/emea"),
    pb.Resource(
        kind="device", id="dev-1", tenant="acme", attributes=dict_to_struct({"change_freeze": True})
    ),
    pb.Resource(kind="device", id="dev-1", tenant="globex"),
    pb.Resource(kind="circuit", id="c-1", tenant="acme/emea"),
]
_OPEN_WINDOW = {"start": FIXED_NOW - 60, "end": FIXED_NOW + 60}
_CONTEXT_ENTRIES = [
    {"maintenance_window": _OPEN_WINDOW},
    {"maintenance_window": {"start": FIXED_NOW + 60, "end": FIXED_NOW + 120}},
    {"change_ticket": "CHG-1"},
    {"channel": "portal"},
]


@settings(max_examples=60, deadline=None)
@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(_PRINCIPALS),
            st.sampled_from(["read", "configure", "reboot"]),
            st.lists(st.sampled_from(_RESOURCES), min_size=1, max_size=3),
            st.lists(st.sampled_from(_CONTEXT_ENTRIES), max_size=3),
            st.booleans(),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_a_caching_sidecar_answers_exactly_like_an_uncached_one(
    default_snapshot: PolicySnapshot,
    calls: list[tuple[pb.Principal, str, list[pb.Resource], list[dict[str, Any]], bool]],
) -> None:
    """Over the wire, with repeats, near-duplicates and context entries in any order on the
    wire, the cached servicer's answers are the uncached servicer's (apart from `cached`)."""

    def clock() -> float:
        return FIXED_NOW  # one instant for both engines

    cached = PolicyServicer(
        CachedEngine(Engine(default_snapshot, clock=clock)),
        limits=Limits(),
        decision_log=DecisionLog(logger=ReturnLogger()),
    )
    plain = PolicyServicer(
        Engine(default_snapshot, clock=clock),
        limits=Limits(),
        decision_log=DecisionLog(logger=ReturnLogger()),
    )
    context: Any = FakeContext()
    for principal, action, resources, entries, as_batch in calls:
        # Each entry merged in as its own Struct: the wire order of the context keys varies.
        head = (
            pb.CheckBatchRequest(principal=principal)
            if as_batch
            else pb.CheckRequest(principal=principal, action=action, resource=resources[0])
        )
        data = head.SerializeToString() + b"".join(
            type(head)(context=dict_to_struct(entry)).SerializeToString() for entry in entries
        )
        answers: list[list[pb.CheckResponse]]
        if as_batch:
            data += pb.CheckBatchRequest(
                items=[pb.CheckBatchItem(action=action, resource=r) for r in resources]
            ).SerializeToString()
            answers = [
                list(
                    pb.CheckBatchResponse.FromString(
                        servicer.check_batch_bytes(data, context)
                    ).results
                )
                for servicer in (cached, plain)
            ]
        else:
            answers = [
                [pb.CheckResponse.FromString(servicer.check_bytes(data, context))]
                for servicer in (cached, plain)
            ]
        assert [_meaning(r) for r in answers[0]] == [_meaning(r) for r in answers[1]]


def _meaning(response: pb.CheckResponse) -> tuple[Any, ...]:
    return (
        response.allowed,
        tuple(response.rule_ids),
        response.reason,
        response.policy.digest,
        tuple(response.errors),
        response.HasField("valid_until") and response.valid_until.ToSeconds(),
    )
