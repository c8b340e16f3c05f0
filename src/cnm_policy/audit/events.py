"""Decision events: one canonical ``decision`` log event per access decision.

An access decision is an audit fact ("who was allowed what, by which rule, under which policy
version"), so every decision the sidecar makes leaves exactly one structured event, with the
same keys every time, that a log pipeline can index without parsing prose. Attribute values are
left out unless allow-listed: they can carry customer data (site addresses, contract numbers)
that has no business in a log.

This module only builds the events and hands each call's events to a `DecisionSink` in one go;
where they go (structlog's pipeline, or JSON lines on a stream) is decided by whoever builds the
`DecisionLog` (``cnm-policy serve`` picks the sink from its logging flags). It runs once per
decision on the request path, so an event is built in parts: what changes on every call (time,
request id, latency, decision ids) is built each time; who asked, about what and with which
answer is prepared once per call, or once per distinct request when the caller passes request
fingerprints; and the per-second part of the timestamp is formatted once per second.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cnm_policy.audit.sinks import DECISION_EVENT, DecisionSink, StructlogSink
from cnm_policy.memo import BytesMemo
from cnm_policy.model import Decision, Principal, Resource

__all__ = [
    "DECISION_EVENT",
    "DEFAULT_REMEMBERED",
    "AttributeAllowList",
    "DecisionLog",
    "format_timestamp",
]

# Distinct requests (and batch items) whose prepared event parts are kept, per kind (Checks,
# batch principals, batch items): typically under 1 KB each with its fingerprint, at most about
# 2.5 KB (fingerprints longer than 2 KB are not kept), so 7.5-75 MB for all three at worst.
DEFAULT_REMEMBERED: Final = 10_000
_SECTIONS = ("principal", "resource", "context")
_MAX_REQUEST_ID_CHARS = 128
_MAX_FIELD_CHARS = 256


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
# (lowest, highest epoch, text): every epoch in between formats as text. Replaced whole.
_last_millisecond: tuple[float, float, str] = (math.inf, -math.inf, "")
_EXACT_EPOCHS: Final = 2.0**32
# ".000Z" ... ".999Z": a lookup is a tenth of the cost of formatting the milliseconds each time.
_MILLISECONDS: Final = tuple(f".{milliseconds:03d}Z" for milliseconds in range(1000))


def format_timestamp(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.000Z``.

    Rounds to the microsecond and then truncates to the millisecond, exactly as
    ``datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")`` does.

    A busy sidecar logs many decisions per millisecond, so the text of the latest millisecond
    is kept with a range of epochs known to give it, and a reading in that range costs two
    comparisons.
    """
    lowest, highest, text = _last_millisecond
    if lowest <= epoch <= highest:
        return text
    return _remember_millisecond(epoch)


def _remember_millisecond(epoch: float) -> str:
    """Format `epoch` and remember a range of epochs with the same text.

    The range runs from 2 to 997 microseconds into the millisecond. Between 1970 and 2106
    (epochs below 2**32) a float is exact to a quarter of a microsecond, so every epoch in that
    range rounds to a microsecond of the same millisecond; elsewhere, and when `epoch` itself is
    outside the range (the first and last microseconds of a millisecond), the range is `epoch`
    alone.
    """
    global _last_millisecond  # noqa: PLW0603 (a one-entry cache, swapped atomically)
    text = _format(epoch)
    lowest = highest = epoch
    if 0.0 <= epoch < _EXACT_EPOCHS:
        start = math.floor(epoch) + int(text[-4:-1]) / 1000
        if start + 0.000_002 <= epoch <= start + 0.000_997:
            lowest, highest = start + 0.000_002, start + 0.000_997
    _last_millisecond = (lowest, highest, text)
    return text


def _format(epoch: float) -> str:
    """`format_timestamp` without the millisecond cache (the per-second text is cached)."""
    global _last_second  # noqa: PLW0603 (a one-entry cache, swapped atomically)
    fraction, second = math.modf(epoch)
    micros = round(fraction * 1_000_000)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    elif micros < 0:
        second, micros = second - 1, micros + 1_000_000
    cached_second, text = _last_second
    if cached_second != second:
        utc = time.gmtime(second)  # not strftime: its %Y has no leading zeros before 1000
        text = (
            f"{utc.tm_year:04d}-{utc.tm_mon:02d}-{utc.tm_mday:02d}"
            f"T{utc.tm_hour:02d}:{utc.tm_min:02d}:{utc.tm_sec:02d}"
        )
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

    Callers that hold an exact encoding of each request (the sidecar: the deterministic request
    bytes its decision cache is keyed by) pass it as a *fingerprint*. The parts of an event that
    only depend on the request and its answer are then prepared by the sink once per distinct
    request and answer, and a repeated request costs the rendering of its time, ids and latency
    only. As for the cache, equal fingerprints must mean equal requests.
    """

    def __init__(
        self,
        *,
        allow: AttributeAllowList | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = _random_id,
        sink: DecisionSink | None = None,
        remembered: int = DEFAULT_REMEMBERED,
    ) -> None:
        self._allow = allow or AttributeAllowList()
        self._clock = clock
        self._new_id = new_id
        self._sink: DecisionSink = sink if sink is not None else StructlogSink()
        # Prepared parts by fingerprint: a Check's (decision, shared, outcome); a batch's shared
        # part by its shared fingerprint, and each item's (decision, outcome) by the item's.
        self._checks: BytesMemo[tuple[Decision, Any, Any]] = BytesMemo(remembered)
        self._batch_shared: BytesMemo[Any] = BytesMemo(remembered)
        self._batch_items: BytesMemo[tuple[Decision, Any]] = BytesMemo(remembered)

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
        fingerprint: bytes | None = None,
        peer: Mapping[str, Any] | None = None,
    ) -> None:
        """Log the one decision of a Check call (`fingerprint`: see the class docstring).

        `peer` holds the caller's transport identity (``peer_subject``, ``peer_san``) when known.
        """
        # Runs on every sidecar Check: `_same`, `_clipped` and `_milliseconds` are written out.
        remembered = self._checks.get(fingerprint) if type(fingerprint) is bytes else None
        if remembered is None or not (remembered[0] is decision or remembered[0] == decision):
            remembered = (
                decision,
                self._prepare_shared(principal, context),
                self._prepare_outcome(action, resource, decision),
            )
            if type(fingerprint) is bytes:
                self._checks.put(fingerprint, remembered)
        try:
            latency_ms = round(latency_seconds * 1_000_000) / 1000
        except (ValueError, OverflowError):
            latency_ms = float(latency_seconds)
        self._sink.emit(
            timestamp=format_timestamp(self._clock()),
            request_id=request_id[:_MAX_REQUEST_ID_CHARS] if request_id else None,
            latency_ms=latency_ms,
            # Who called is not part of the request: never taken from what was remembered.
            shared=remembered[1]
            if peer is None
            else self._prepare_shared(principal, context, peer),
            decisions=((decision_id, remembered[2]),),
            batch=False,
        )

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
        shared_fingerprint: bytes | None = None,
        item_fingerprints: Sequence[bytes] | None = None,
        peer: Mapping[str, Any] | None = None,
    ) -> None:
        """Log every decision of a CheckBatch call, one event each (`latency_ms` is the batch's).

        `shared_fingerprint` encodes the principal and context, ``item_fingerprints[i]`` the
        i-th item (see the class docstring). What the items share is prepared once per call.
        """
        if not len(items) == len(decisions) == len(decision_ids):
            raise ValueError(
                f"{len(items)} items, {len(decisions)} decisions, {len(decision_ids)} ids"
            )
        outcomes = self._batch_outcomes(item_fingerprints, items, decisions)
        self._sink.emit(
            timestamp=format_timestamp(self._clock()),
            request_id=_clipped(request_id),
            latency_ms=_milliseconds(latency_seconds),
            shared=self._batch_shared_part(shared_fingerprint, principal, context)
            if peer is None
            else self._prepare_shared(principal, context, peer),
            decisions=list(zip(decision_ids, outcomes, strict=True)),
            batch=True,
        )

    def record_rejected(
        self,
        *,
        error_code: str,
        error_field: str | None,
        request_id: str | None,
        latency_seconds: float,
        peer: Mapping[str, Any] | None = None,
    ) -> None:
        """Log a call refused before any decision (malformed, over a limit): ``outcome: rejected``.

        A ``decision``-family event, so the log accounts for every call; its `decision_id`
        names the event only (no decision was made, and none is returned).
        """
        fields: dict[str, Any] = {"outcome": "rejected", "error_code": error_code}
        if error_field:
            fields["error_field"] = error_field[:_MAX_FIELD_CHARS]
        fields.update(peer or {})
        self._sink.emit(
            timestamp=format_timestamp(self._clock()),
            request_id=_clipped(request_id),
            latency_ms=_milliseconds(latency_seconds),
            shared=self._sink.prepare(fields),
            decisions=((self._new_id(), self._sink.prepare({})),),
            batch=False,
        )

    def _batch_shared_part(
        self, fingerprint: bytes | None, principal: Principal, context: Mapping[str, Any]
    ) -> Any:
        """The prepared principal and context of a batch, remembered by `fingerprint`."""
        remembered = self._batch_shared.get(fingerprint) if type(fingerprint) is bytes else None
        if remembered is None:
            remembered = self._prepare_shared(principal, context)
            if type(fingerprint) is bytes:
                self._batch_shared.put(fingerprint, remembered)
        return remembered

    def _batch_outcomes(
        self,
        fingerprints: Sequence[bytes] | None,
        items: Sequence[tuple[str, Resource]],
        decisions: Sequence[Decision],
    ) -> list[Any]:
        """Each item's prepared outcome, remembered by its fingerprint with its decision."""
        if fingerprints is not None and len(fingerprints) != len(items):
            raise ValueError(f"{len(fingerprints)} fingerprints for {len(items)} items")
        if fingerprints is None or not all(type(f) is bytes for f in fingerprints):
            return [
                self._prepare_outcome(action, resource, decision)
                for (action, resource), decision in zip(items, decisions, strict=True)
            ]
        remembered = self._batch_items.get_many(fingerprints)
        outcomes: list[Any] = []
        fresh: list[tuple[bytes, tuple[Decision, Any]]] = []
        for index, entry in enumerate(remembered):
            decision = decisions[index]
            if entry is not None and _same(entry[0], decision):
                outcomes.append(entry[1])
                continue
            action, resource = items[index]
            outcome = self._prepare_outcome(action, resource, decision)
            fresh.append((fingerprints[index], (decision, outcome)))
            outcomes.append(outcome)
        if fresh:
            self._batch_items.put_many(fresh)
        return outcomes

    def _prepare_shared(
        self,
        principal: Principal,
        context: Mapping[str, Any],
        peer: Mapping[str, Any] | None = None,
    ) -> Any:
        """Who asked, and in which context (allow-listed values only), as the sink wants it."""
        fields: dict[str, Any] = {
            "principal_id": principal.id,
            "principal_tenant": principal.tenant,
            "principal_roles": list(principal.roles),
        }
        if peer:
            fields.update(peer)
        allow = self._allow
        if allow.principal:
            _add_allowed(fields, "principal_attributes", principal.attributes, allow.principal)
        if allow.context:
            _add_allowed(fields, "context", context, allow.context)
        return self._sink.prepare(fields)

    def _prepare_outcome(self, action: str, resource: Resource, decision: Decision) -> Any:
        """What one decision is about and what it was, as the sink wants it."""
        fields: dict[str, Any] = {
            "action": action,
            "resource_kind": resource.kind,
            "resource_id": resource.id,
            "resource_tenant": resource.tenant,
            "allowed": decision.allowed,
            "rule_ids": list(decision.rule_ids),
            "matched_denies": list(decision.matched_denies),
            "policy_name": decision.policy_name,
            "policy_version": decision.policy_version,
            "policy_digest": decision.policy_digest,
            "cached": decision.cached,
        }
        if decision.errors:
            # Only the count: condition errors can quote attribute values.
            fields["error_count"] = len(decision.errors)
        if self._allow.resource:
            _add_allowed(fields, "resource_attributes", resource.attributes, self._allow.resource)
        return self._sink.prepare(fields)


def _clipped(request_id: str | None) -> str | None:
    """The caller's request id as logged: at most 128 characters, ``None`` when absent."""
    return request_id[:_MAX_REQUEST_ID_CHARS] if request_id else None


def _same(remembered: Decision, decision: Decision) -> bool:
    """Whether a part prepared for `remembered` describes `decision` too.

    The decision cache hands out one object per distinct decision, so identity is the usual
    answer; equality covers uncached engines (every field is compared, `cached` included).
    """
    return remembered is decision or remembered == decision


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
