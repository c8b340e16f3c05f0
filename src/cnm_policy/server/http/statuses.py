"""The gRPC status table, answered over HTTP: one status and one JSON error body per failure.

Every HTTP door maps errors through `server.errors.status_for` (so a failure has the same code
on every door, and unexpected ones are logged with an incident id), then to an HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import grpc

from cnm_policy.server.errors import ERROR_CODE_METADATA, ERROR_FIELD_METADATA, status_for

__all__ = ["HTTP_STATUS", "http_error"]

HTTP_STATUS: Final[Mapping[grpc.StatusCode, int]] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.INTERNAL: 500,
}


def http_error(error: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for `error`: ``{"error": {code, message, field?}}``."""
    status = status_for(error)
    metadata = dict(status.metadata)
    body: dict[str, Any] = {"code": metadata.get(ERROR_CODE_METADATA, "internal")}
    body["message"] = status.message
    if ERROR_FIELD_METADATA in metadata:
        body["field"] = metadata[ERROR_FIELD_METADATA]
    return HTTP_STATUS.get(status.code, 500), {"error": body}
