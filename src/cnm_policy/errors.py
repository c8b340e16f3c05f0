"""One error tree for the whole product, each class with a stable snake_case `code`.

Codes are the contract (CI gates, dashboards and the gRPC status mapping key on them); messages
may improve over time. Messages are lowercase with user input in backticks and no final period.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BundleInvalidError",
    "CnmPolicyError",
    "InvalidRequestError",
    "PolicyProblem",
    "PolicySourceError",
]


class CnmPolicyError(Exception):
    """Root of every error cnm-policy raises on purpose."""

    code = "cnm_policy_error"


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong (or risky) in a bundle, located precisely enough to fix in review."""

    code: str
    message: str
    file: str
    line: int | None = None
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.severity} [{self.code}] {self.message}"


class PolicySourceError(CnmPolicyError):
    """A bundle (or a revision of one) could not be read at all."""

    code = "policy_source_error"


class BundleInvalidError(CnmPolicyError):
    """A bundle failed validation; it is never compiled, so it can never serve a decision."""

    code = "bundle_invalid"

    def __init__(self, problems: tuple[PolicyProblem, ...]) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"policy bundle is invalid ({len(problems)} problem(s)):\n{listed}")


class InvalidRequestError(CnmPolicyError):
    """A check request is malformed; `field` names the offending field (dotted path)."""

    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
