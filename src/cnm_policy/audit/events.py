"""Decision events: one canonical ``decision`` log event per access decision.

An access decision is an audit fact ("who was allowed what, by which rule, under which policy
version"), so every decision the sidecar makes leaves exactly one structured event, with the
same keys every time, that a log pipeline can index without parsing prose. Attribute values are
left out unless allow-listed: they can carry customer data (site addresses, contract numbers)
that has no business in a log.

This module only builds the events and hands each call's events to a `DecisionSink` in one go;
where they go (structlog's pipeline, or JSON lines on a stream) is decided by whoever builds the
`DecisionLog` (``cnm-policy serve`` picks the sink from its logging flags). It runs once per
decision on the request path, so each event is one flat dict, the fields a call's decisions
share are computed once per call, and the per-second part of the timestamp is formatted once
per second, not once per event.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cnm_policy.audit.sinks import DecisionSink, StructlogSink
from cnm_policy.model import Decision, Principal, Resource

__all__ = ["DECISION_EVENT", "AttributeAllowList", "DecisionLog", "format_timestamp"]

DECISION_EVENT = "decision"
_SECTIONS = ("principal", "resource", "context")
_MAX_REQUEST_ID_CHARS = 128


@dataclass(frozen=True, slots=True)
class AttributeAllowList:
    """Top-level attribute keys whose *values* may be logged, per section.

    Written as ``principal.<key>``, ``resource.<key>`` or ``context.<key>`` (the CLI's
    ``--log-attribute``). Everything not listed is omitted from decision events.
    """

    principal: frozenset[str] = frozenset()
    resource: frozenset[str] = frozenset()
    context: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, names: Iterable[str]) -> AttributeAllowList:
        """Build from ``section.key`` names; raises ValueError naming a malformed entry."""
        chosen: dict[str, set[str]] = {section: set() for section in _SECTIONS}
        for name in names:
            section, _, key = name.partition(".")
            if section not in chosen or not key:
                raise ValueError(
                    f"`{name}` is not `principal.<key>`, `resource.<key>` or `context.<key>`"
                )
            chosen[section].add(key)
        return cls(**{section: frozenset(keys) for section, keys in chosen.items()})


# (epoch second, its "YYYY-MM-DDTHH:MM:SS" text): replaced whole, so threads never see a mix.
_last_second: tuple[float, str] = (math.nan, "")
# ".000Z" ... ".999Z": a lookup is a tenth of the cost of formatting the milliseconds each time.
_MILLISECONDS: Final = tuple(f".{milliseconds:03d}Z" for milliseconds in range(1000))


def format_timestamp(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.000Z``.

    Rounds to the microsecond and then truncates to the millisecond, exactly as
    ``datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")`` does.
    """
    global _last_second  # noqa: PLW0603 (a one-entry cache, swapped atomically)
    fraction, second = math.modf(epoch)
    micros = round(fraction * 1_000_000)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    cached_second, text = _last_second
    if cached_second != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second = (second, text)
    return text + _MILLISECONDS[micros // 1000]


def _random_id() -> str:
    """128 random bits as 32 hex digits: unique like a uuid4, never a secret.

    Drawn from `random` (seeded from the OS at start-up and again in every forked child), not
    from ``os.urandom``: decision ids only need to be unique, and a system call per decision
    releases the GIL, which under load hands the interpreter to another thread mid-request.
    """
    return random.getrandbits(128).to_bytes(16, "big").hex()


class DecisionLog:
    """Emits the canonical ``decision`` event; clock and id source are injectable for tests.

    `sink` defaults to a `StructlogSink` (every event through the process's structlog set-up).
    """

    def __init__(
        self,
        *,
        allow: AttributeAllowList | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = _random_id,
        sink: DecisionSink | None = None,
    ) -> None:
        self._allow = allow or AttributeAllowList()
        self._clock = clock
        self._new_id = new_id
        self._sink: DecisionSink = sink if sink is not None else StructlogSink()

    def new_decision_id(self) -> str:
        """A fresh id, returned to the caller in the response and logged with the event."""
        return self._new_id()

    def new_decision_ids(self, count: int) -> list[str]:
        """Ids for the items of one batch: one fresh id, suffixed ``-<index>`` per item.

        Unique like `new_decision_id`, at one random draw per call instead of one per item.
        """
        base = self._new_id()
        return [f"{base}-{index}" for index in range(count)]

    def record(
        self,
        *,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any],
        decision: Decision,
        decision_id: str,
        request_id: str | None,
        latency_seconds: float,
    ) -> None:
        """Log the one decision of a Check call."""
        shared = self._call_fields(principal, context, request_id, latency_seconds)
        self._sink.emit(shared, (self._item_fields(action, resource, decision, decision_id),))

    def record_batch(
        self,
        *,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any],
        decisions: Sequence[Decision],
        decision_ids: Sequence[str],
        request_id: str | None,
        latency_seconds: float,
    ) -> None:
        """Log every decision of a CheckBatch call, one event each (`latency_ms` is the batch's).

        What the items share (time, caller, principal, context) is computed once per call.
        """
        shared = self._call_fields(principal, context, request_id, latency_seconds)
        shared["batch_size"] = len(items)
        item_fields = self._item_fields
        events = [
            item_fields(action, resource, decision, decision_id, index)
            for index, ((action, resource), decision, decision_id) in enumerate(
                zip(items, decisions, decision_ids, strict=True)
            )
        ]
        self._sink.emit(shared, events)

    def _call_fields(
        self,
        principal: Principal,
        context: Mapping[str, Any],
        request_id: str | None,
        latency_seconds: float,
    ) -> dict[str, Any]:
        """The fields every decision of one call shares: when, who asked, how long it took."""
        fields: dict[str, Any] = {
            "timestamp": format_timestamp(self._clock()),
            "level": "info",
            "event": DECISION_EVENT,
            "request_id": request_id[:_MAX_REQUEST_ID_CHARS] if request_id else None,
            "principal_id": principal.id,
            "principal_tenant": principal.tenant,
            "principal_roles": list(principal.roles),
            "latency_ms": _milliseconds(latency_seconds),
        }
        allow = self._allow
        if allow.principal:
            _add_allowed(fields, "principal_attributes", principal.attributes, allow.principal)
        if allow.context:
            _add_allowed(fields, "context", context, allow.context)
        return fields

    def _item_fields(
        self,
        action: str,
        resource: Resource,
        decision: Decision,
        decision_id: str,
        batch_index: int | None = None,
    ) -> dict[str, Any]:
        """What one decision is about and its outcome (none of the call's shared keys)."""
        # One dict display, not a dozen stores: this runs for every decision the sidecar makes.
        event: dict[str, Any] = {
            "batch_index": batch_index,
            "decision_id": decision_id,
            "action": action,
            "resource_kind": resource.kind,
            "resource_id": resource.id,
            "resource_tenant": resource.tenant,
            "allowed": decision.allowed,
            "rule_ids": list(decision.rule_ids),
            "policy_name": decision.policy_name,
            "policy_version": decision.policy_version,
            "policy_digest": decision.policy_digest,
            "cached": decision.cached,
        }
        if batch_index is None:
            del event["batch_index"]
        if decision.errors:
            # Only the count: condition errors can quote attribute values.
            event["error_count"] = len(decision.errors)
        if self._allow.resource:
            _add_allowed(event, "resource_attributes", resource.attributes, self._allow.resource)
        return event


def _milliseconds(seconds: float) -> float:
    """`seconds` in milliseconds, to the microsecond, always a float.

    round(x, 3) would cost three times as much (it goes through text). A non-finite reading
    (an injected timer gone wrong) is logged as it is rather than failing the call.
    """
    try:
        return round(seconds * 1_000_000) / 1000
    except (ValueError, OverflowError):
        return float(seconds)


def _add_allowed(
    event: dict[str, Any], name: str, values: Mapping[str, Any], allowed: frozenset[str]
) -> None:
    """Add the allow-listed keys present in `values` under `name`; nothing when none is."""
    chosen = {key: values[key] for key in allowed if key in values}
    if chosen:
        event[name] = chosen
