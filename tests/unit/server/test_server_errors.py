"""The one error -> gRPC status table: known errors keep their message, unknown ones do not."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
import pytest
from structlog.testing import capture_logs

from cnm_policy.errors import (
    BundleInvalidError,
    CnmPolicyError,
    DeadlineExceededError,
    InvalidRequestError,
    LimitExceededError,
    PolicyProblem,
    PolicySourceError,
)
from cnm_policy.server.errors import (
    ERROR_CODE_METADATA,
    ERROR_FIELD_METADATA,
    abort_with,
    status_for,
)


class _UnmappedError(CnmPolicyError):
    code = "unmapped_error"


class _FieldError(InvalidRequestError):
    code = "special_invalid"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidRequestError("resource.tenant", "must not be empty"), "INVALID_ARGUMENT"),
        (_FieldError("action", "is odd"), "INVALID_ARGUMENT"),
        (LimitExceededError("items", "too many"), "RESOURCE_EXHAUSTED"),
        (DeadlineExceededError(), "DEADLINE_EXCEEDED"),
        (PolicySourceError("cannot read"), "UNAVAILABLE"),
        (
            BundleInvalidError((PolicyProblem("yaml_invalid", "bad", "rules/x.yaml"),)),
            "UNAVAILABLE",
        ),
    ],
)
def test_known_errors_map_to_their_status(error: CnmPolicyError, code: str) -> None:
    """Each error class (or its nearest listed ancestor) has exactly one status code."""
    status = status_for(error)
    assert grpc.StatusCode[code] == status.code
    assert str(error) == status.message
    assert (ERROR_CODE_METADATA, error.code) == status.metadata[0]


def test_invalid_request_names_the_field_in_message_and_metadata() -> None:
    """INVALID_ARGUMENT says which field is wrong, in the message and machine-readably."""
    status = status_for(InvalidRequestError("resource.tenant", "must not be empty"))
    assert status.message == "resource.tenant: must not be empty"
    assert (ERROR_FIELD_METADATA, "resource.tenant") in status.metadata


@pytest.mark.parametrize("error", [RuntimeError("db password is hunter2"), _UnmappedError("x")])
def test_unknown_errors_are_internal_with_a_generic_message(error: Exception) -> None:
    """Unexpected errors hide their detail from the caller and log it under an incident id."""
    with capture_logs() as logs:
        status = status_for(error, new_incident_id=lambda: "inc-42")
    assert status.code == grpc.StatusCode.INTERNAL
    assert "hunter2" not in status.message
    assert "inc-42" in status.message
    assert [(e["event"], e["incident_id"]) for e in logs] == [("internal_error", "inc-42")]
    assert error is logs[0]["exc_info"]


def test_metadata_stays_ascii_and_short() -> None:
    """A field path with non-ASCII or huge keys cannot make the error undeliverable."""
    status = status_for(InvalidRequestError("context.région" + "x" * 1000, "bad"))
    field = dict(status.metadata)[ERROR_FIELD_METADATA]
    assert field.isascii()
    assert len(field) <= 256
    assert len(status.message) <= 1024


class _Context:
    def __init__(self) -> None:
        self.trailing: Any = None

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = metadata

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise _AbortedError(code, details)


class _AbortedError(Exception):
    pass


def test_abort_with_sets_metadata_then_aborts() -> None:
    """abort_with ends the RPC with the mapped status and the error-code metadata."""
    context = _Context()
    with pytest.raises(_AbortedError) as raised:
        abort_with(context, LimitExceededError("items", "too many"))  # type: ignore[arg-type]
    assert raised.value.args == (grpc.StatusCode.RESOURCE_EXHAUSTED, "items: too many")
    assert (ERROR_CODE_METADATA, "limit_exceeded") in context.trailing
