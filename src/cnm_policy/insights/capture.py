"""Input capture (`serve --log-inputs FILE`): every request's full inputs, for exact replays.

One JSON line per decision, with the decision event's field names plus the whole attribute and
context mappings (the actor's too): SENSITIVE (customer data), a separate file that operators
protect and expire on their own terms. `replay` prefers it to the decision line of the same id.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Final

import orjson

from cnm_policy.log_pipeline import log_timestamp
from cnm_policy.model import Decision, Principal, Resource

__all__ = ["INPUT_EVENT", "InputCapture", "encode_input_line", "input_record"]

INPUT_EVENT: Final = "decision_input"


def input_record(
    *,
    principal: Principal,
    action: str,
    resource: Resource,
    context: Mapping[str, Any] | None,
    decision: Decision,
    decision_id: str,
    at: float,
    actor: Principal | None = None,
) -> dict[str, Any]:
    """The capture record of one decision (`at`: when it was decided, epoch seconds), with
    the whole `actor` when someone acted on the principal's behalf."""
    record: dict[str, Any] = {
        "timestamp": log_timestamp(int(at * 1000)),
        "event": INPUT_EVENT,
        "decision_id": decision_id,
        "principal_id": principal.id,
        "principal_tenant": principal.tenant,
        "principal_roles": list(principal.roles),
        "principal_attributes": dict(principal.attributes),
        "action": action,
        "resource_kind": resource.kind,
        "resource_id": resource.id,
        "resource_tenant": resource.tenant,
        "resource_attributes": dict(resource.attributes),
        "context": dict(context or {}),
        "allowed": decision.allowed,
        "rule_ids": list(decision.rule_ids),
        "policy_name": decision.policy_name,
        "policy_version": decision.policy_version,
        "policy_digest": decision.policy_digest,
    }
    if actor is not None:
        record["actor_id"], record["actor_tenant"] = actor.id, actor.tenant
        record["actor_roles"] = list(actor.roles)
        record["actor_attributes"] = dict(actor.attributes)
    return record


_FALLBACK: Final = json.JSONEncoder(default=repr, separators=(",", ":"), ensure_ascii=True)


def encode_input_line(record: Mapping[str, Any]) -> bytes:
    """`record` as one JSON line (newline included); a value orjson refuses is written by repr."""
    try:
        return orjson.dumps(record, default=repr, option=orjson.OPT_APPEND_NEWLINE)
    except (orjson.JSONEncodeError, TypeError):
        return _FALLBACK.encode(_text_keys(record)).encode("ascii") + b"\n"


def _text_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _text_keys(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_text_keys(item) for item in value]
    return value


class InputCapture:
    """Appends capture lines to one file, each written whole under a lock and flushed.

    The file is created with mode 0600: it holds customer data.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._file: IO[bytes] = _open_private(path)

    def record(
        self,
        *,
        principal: Principal,
        action: str,
        resource: Resource,
        context: Mapping[str, Any] | None,
        decision: Decision,
        decision_id: str,
        actor: Principal | None = None,
    ) -> None:
        """Write the capture line of one decision (acted by `actor`, if anyone)."""
        line = encode_input_line(
            input_record(
                principal=principal,
                action=action,
                resource=resource,
                context=context,
                decision=decision,
                decision_id=decision_id,
                at=self._clock(),
                actor=actor,
            )
        )
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        with self._lock:
            self._file.close()


def _open_private(path: Path) -> IO[bytes]:
    """`path` opened for appending, created readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    return os.fdopen(descriptor, "ab")
