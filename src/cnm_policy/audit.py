"""Decision events: one canonical ``decision`` log event per access decision.

An access decision is an audit fact ("who was allowed what, by which rule, under which policy
version"), so every decision the sidecar makes leaves exactly one structured event, with the
same keys every time, that a log pipeline can index without parsing prose. Attribute values are
left out unless allow-listed: they can carry customer data (site addresses, contract numbers)
that has no business in a log.

This module only builds and emits events through ``structlog.get_logger()``; where they go
(JSON on stdout, a file, a console) is decided by the process entry point (``cnm-policy serve``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

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


def format_timestamp(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.000Z``."""
    stamp = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class DecisionLog:
    """Emits the canonical ``decision`` event; clock and id source are injectable for tests."""

    def __init__(
        self,
        *,
        allow: AttributeAllowList | None = None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        logger_name: str = "cnm_policy.audit",
    ) -> None:
        self._allow = allow or AttributeAllowList()
        self._clock = clock
        self._new_id = new_id
        self._logger = structlog.get_logger(logger_name)

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
        for fields in self.events(
            principal=principal,
            items=((action, resource),),
            context=context,
            decisions=(decision,),
            decision_ids=(decision_id,),
            request_id=request_id,
            latency_seconds=latency_seconds,
            batch=False,
        ):
            self._logger.info(DECISION_EVENT, **fields)

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
        """Log every decision of a CheckBatch call, one event each (`latency_ms` is the batch's)."""
        for fields in self.events(
            principal=principal,
            items=items,
            context=context,
            decisions=decisions,
            decision_ids=decision_ids,
            request_id=request_id,
            latency_seconds=latency_seconds,
            batch=True,
        ):
            self._logger.info(DECISION_EVENT, **fields)

    def events(
        self,
        *,
        principal: Principal,
        items: Sequence[tuple[str, Resource]],
        context: Mapping[str, Any],
        decisions: Sequence[Decision],
        decision_ids: Sequence[str],
        request_id: str | None,
        latency_seconds: float,
        batch: bool,
    ) -> Iterator[dict[str, Any]]:
        """The key/value pairs of each decision event, in item order (what `record*` log).

        What the items share (time, caller, principal, context) is computed once per call.
        """
        shared: dict[str, Any] = {
            "timestamp": format_timestamp(self._clock()),
            "request_id": request_id[:_MAX_REQUEST_ID_CHARS] if request_id else None,
            "principal_id": principal.id,
            "principal_tenant": principal.tenant,
            "principal_roles": list(principal.roles),
        }
        latency_ms = round(latency_seconds * 1000, 3)
        allowed_extras = _allowed(
            principal_attributes=(principal.attributes, self._allow.principal),
            context=(context, self._allow.context),
        )
        size = len(items)
        for index, ((action, resource), decision, decision_id) in enumerate(
            zip(items, decisions, decision_ids, strict=True)
        ):
            fields: dict[str, Any] = {
                "decision_id": decision_id,
                **shared,
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
                "latency_ms": latency_ms,
            }
            if decision.errors:
                # Only the count: condition errors can quote attribute values.
                fields["error_count"] = len(decision.errors)
            if batch:
                fields["batch_index"] = index
                fields["batch_size"] = size
            if self._allow.resource:
                fields.update(
                    _allowed(resource_attributes=(resource.attributes, self._allow.resource))
                )
            fields.update(allowed_extras)
            yield fields


def _allowed(**sections: tuple[Mapping[str, Any], frozenset[str]]) -> dict[str, Any]:
    """Per section, only the allow-listed keys present; sections with none are left out."""
    kept: dict[str, Any] = {}
    for name, (values, allowed) in sections.items():
        chosen = {key: values[key] for key in allowed if key in values}
        if chosen:
            kept[name] = chosen
    return kept
