"""The one table from cnm-policy errors to gRPC status codes, and the handler that applies it.

Every RPC failure goes through `status_for`, so a client sees the same status for the same
kind of failure whichever RPC raised it. Known errors keep their message (it names the field
and is safe to return) and their stable ``code`` travels in the ``cnm-error-code`` trailing
metadata. Anything else is a bug: the caller gets ``INTERNAL`` with a generic message and an
incident id, the detail goes to the log under that id. No error path ever yields a response,
so no error can turn into ``allowed: true`` (fail closed).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

import grpc
import structlog

from cnm_policy.errors import (
    BundleChangingError,
    BundleInvalidError,
    BundleLockInvalidError,
    BundleLockMismatchError,
    BundleTestsFailedError,
    CnmPolicyError,
    ConditionSyntaxError,
    DeadlineExceededError,
    DirectoryInvalidError,
    InvalidRequestError,
    LimitExceededError,
    PlanUnsupportedError,
    PolicySourceError,
    PolicyStaleError,
    UnauthenticatedError,
    YamlError,
)

__all__ = [
    "ERROR_CODE_METADATA",
    "ERROR_FIELD_METADATA",
    "STATUS_BY_ERROR",
    "RpcStatus",
    "abort_with",
    "status_for",
]

ERROR_CODE_METADATA = "cnm-error-code"
ERROR_FIELD_METADATA = "cnm-error-field"


# INVARIANT: the only place an error class meets a status code. Lookup walks the class's MRO,
# so a subclass maps like its nearest listed ancestor unless it is listed itself.
STATUS_BY_ERROR: Mapping[type[CnmPolicyError], grpc.StatusCode] = {
    LimitExceededError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    InvalidRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    DirectoryInvalidError: grpc.StatusCode.UNAVAILABLE,
    # Not confirmed by its source within --max-policy-age: callers fail closed, then retry.
    PolicyStaleError: grpc.StatusCode.UNAVAILABLE,
    # The policy has a condition a plan cannot express: the caller falls back to CheckBatch.
    PlanUnsupportedError: grpc.StatusCode.FAILED_PRECONDITION,
    # The serving policy cannot be read or is invalid: nothing to decide with, retry later.
    PolicySourceError: grpc.StatusCode.UNAVAILABLE,
    BundleInvalidError: grpc.StatusCode.UNAVAILABLE,
    YamlError: grpc.StatusCode.UNAVAILABLE,
    ConditionSyntaxError: grpc.StatusCode.UNAVAILABLE,
    BundleLockInvalidError: grpc.StatusCode.UNAVAILABLE,
    BundleLockMismatchError: grpc.StatusCode.UNAVAILABLE,
    BundleTestsFailedError: grpc.StatusCode.UNAVAILABLE,
    BundleChangingError: grpc.StatusCode.UNAVAILABLE,
}

_INTERNAL_MESSAGE = "internal error: the decision could not be made (incident `{}`)"
# Status details and metadata travel in HTTP/2 headers (8 KiB by default, shared): an error
# echoing a huge attribute key must not make the error itself undeliverable.
_MAX_MESSAGE_CHARS = 1024
_MAX_METADATA_CHARS = 256


@dataclass(frozen=True, slots=True)
class RpcStatus:
    """What the caller is told: status code, message, and trailing metadata."""

    code: grpc.StatusCode
    message: str
    metadata: tuple[tuple[str, str], ...]


def status_for(
    error: BaseException, *, new_incident_id: Callable[[], str] = lambda: uuid.uuid4().hex
) -> RpcStatus:
    """The status for `error`; unexpected errors are logged here with their traceback."""
    if isinstance(error, CnmPolicyError):
        for cls in type(error).__mro__:
            code = STATUS_BY_ERROR.get(cls)
            if code is not None:
                metadata = [(ERROR_CODE_METADATA, _header_safe(error.code))]
                if isinstance(error, InvalidRequestError):
                    metadata.append((ERROR_FIELD_METADATA, _header_safe(error.field)))
                return RpcStatus(code, _clip(str(error)), tuple(metadata))
    incident = new_incident_id()
    structlog.get_logger(__name__).error(
        "internal_error",
        incident_id=incident,
        error_type=type(error).__qualname__,
        error_code=getattr(error, "code", None),
        exc_info=error,
    )
    return RpcStatus(
        grpc.StatusCode.INTERNAL,
        _INTERNAL_MESSAGE.format(incident),
        ((ERROR_CODE_METADATA, "internal"),),
    )


def _clip(text: str, limit: int = _MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _header_safe(text: str) -> str:
    """ASCII only (non-binary metadata must be), clipped."""
    return _clip(text.encode("ascii", "backslashreplace").decode("ascii"), _MAX_METADATA_CHARS)


def abort_with(context: grpc.ServicerContext, error: BaseException) -> NoReturn:
    """End the RPC with the status for `error` (raises, as `context.abort` does)."""
    status = status_for(error)
    context.set_trailing_metadata(status.metadata)
    context.abort(status.code, status.message)
