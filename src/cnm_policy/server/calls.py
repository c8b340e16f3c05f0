"""What a gRPC call carries besides its request: request id, trace context, client certificate.

Read once per call by the servicer (one pass over the metadata), bounded because every byte of
it is the caller's input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import grpc

from cnm_policy.errors import DeadlineExceededError

__all__ = [
    "REQUEST_ID_METADATA",
    "TRACEPARENT_METADATA",
    "call_metadata",
    "check_deadline",
    "peer_identity",
]

REQUEST_ID_METADATA = "x-request-id"
TRACEPARENT_METADATA = "traceparent"
_MAX_PEER_CHARS = 256
_MAX_PEER_NAMES = 16


def call_metadata(context: grpc.ServicerContext) -> tuple[str | None, str | None]:
    """The call's ``x-request-id`` and ``traceparent`` (``None`` when absent)."""
    request_id = traceparent = None
    for key, value in context.invocation_metadata():
        if key == REQUEST_ID_METADATA:
            request_id = value if isinstance(value, str) else value.decode("ascii", "replace")
        elif key == TRACEPARENT_METADATA:
            traceparent = value if isinstance(value, str) else value.decode("ascii", "replace")
    return request_id, traceparent


def peer_identity(context: grpc.ServicerContext) -> dict[str, Any] | None:
    """The caller's client certificate as logged: subject and SANs (None without one).

    Clipped: a certificate is the caller's input, and a log line must stay bounded.
    """
    # Each property is a list of values (grpc-stubs says one bytes value).
    auth: Mapping[str, Sequence[bytes]] = cast(Any, context.auth_context())
    subject = auth.get("x509_subject")
    if not subject:
        return None
    identity: dict[str, Any] = {"peer_subject": _clipped_text(subject[0])}
    names = auth.get("x509_subject_alternative_name") or []
    if names:
        identity["peer_san"] = [_clipped_text(name) for name in names[:_MAX_PEER_NAMES]]
    return identity


def _clipped_text(value: bytes) -> str:
    return value[: _MAX_PEER_CHARS * 4].decode("utf-8", "replace")[:_MAX_PEER_CHARS]


def check_deadline(context: grpc.ServicerContext) -> None:
    """Raise `DeadlineExceededError` when the caller's deadline has already passed."""
    remaining: Any = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceededError()
