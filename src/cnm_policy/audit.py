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
from collections.abc import Callable, Iterable, Mapping
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
        batch: tuple[int, int] | None = None,
    ) -> None:
        """Log one decision. `batch` is ``(index, size)`` for an item of a CheckBatch call,
        whose `latency_seconds` is then the whole batch's."""
        fields = self.event_fields(
            principal=principal,
            action=action,
            resource=resource,
            context=context,
            decision=decision,
            decision_id=decision_id,
            request_id=request_id,
            latency_seconds=latency_seconds,
            batch=batch,
        )
        self._logger.info(DECISION_EVENT, **fields)

    def event_fields(
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
        batch: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """The key/value pairs of one decision event (what `record` logs)."""
        fields: dict[str, Any] = {
            "timestamp": format_timestamp(self._clock()),
            "decision_id": decision_id,
            "request_id": request_id[:_MAX_REQUEST_ID_CHARS] if request_id else None,
            "principal_id": principal.id,
            "principal_tenant": principal.tenant,
            "principal_roles": list(principal.roles),
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
            "latency_ms": round(latency_seconds * 1000, 3),
        }
        if decision.errors:
            fields["error_count"] = len(decision.errors)
        if batch is not None:
            fields["batch_index"], fields["batch_size"] = batch
        for name, values, allowed in (
            ("principal_attributes", principal.attributes, self._allow.principal),
            ("resource_attributes", resource.attributes, self._allow.resource),
            ("context", context, self._allow.context),
        ):
            kept = {key: values[key] for key in allowed if key in values}
            if kept:
                fields[name] = kept
        return fields
