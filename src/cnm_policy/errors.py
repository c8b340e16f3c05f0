"""One error tree for the whole product, each class with a stable snake_case `code`.

Codes are the contract (CI gates, dashboards and the gRPC status mapping key on them); messages
may improve over time. Messages are lowercase with user input in backticks and no final period.

    CnmPolicyError                      cnm_policy_error
    ├── PolicySourceError               policy_source_error
    │   ├── BundleArchiveError          bundle_archive_invalid
    │   │   └── BundleSignatureError    bundle_signature_invalid
    │   └── BundleFetchError            bundle_fetch_failed
    ├── BundleInvalidError              bundle_invalid
    ├── YamlError                       yaml_invalid (or the bound it broke)
    ├── ConditionSyntaxError            condition_syntax (or the limit it broke)
    ├── BundleLockInvalidError          bundle_lock_invalid
    ├── BundleLockMismatchError         bundle_lock_mismatch
    ├── BundleTestsFailedError          bundle_tests_failed
    ├── BundleChangingError             bundle_changing
    ├── ConditionError                  condition_error
    ├── InvalidRequestError             invalid_request
    │   └── LimitExceededError          limit_exceeded
    ├── DeadlineExceededError           deadline_exceeded
    ├── ServerConfigError               server_config_invalid
    ├── UnauthenticatedError            unauthenticated (or why: token_expired, ...)
    ├── DirectoryInvalidError           directory_invalid
    ├── PolicyStaleError                policy_stale
    ├── PlanUnsupportedError            plan_unsupported
    └── SqlMappingError                 sql_mapping_invalid
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BundleArchiveError",
    "BundleChangingError",
    "BundleFetchError",
    "BundleInvalidError",
    "BundleLockInvalidError",
    "BundleLockMismatchError",
    "BundleSignatureError",
    "BundleTestsFailedError",
    "CnmPolicyError",
    "ConditionError",
    "ConditionSyntaxError",
    "DeadlineExceededError",
    "DirectoryInvalidError",
    "InvalidRequestError",
    "LimitExceededError",
    "PlanUnsupportedError",
    "PolicyProblem",
    "PolicySourceError",
    "PolicyStaleError",
    "ServerConfigError",
    "SqlMappingError",
    "UnauthenticatedError",
    "YamlError",
]

_MAX_LISTED = 5  # differences or failures named in one message; the rest are counted
_LOCK_FILE = "bundle.lock.json"  # policy.lock.LOCK_FILE: this module imports nothing of ours


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


class BundleArchiveError(PolicySourceError):
    """A bundle archive is malformed, hostile or does not match its own manifest."""

    code = "bundle_archive_invalid"


class BundleSignatureError(BundleArchiveError):
    """A bundle archive is unsigned when a key is required, or its signature does not verify."""

    code = "bundle_signature_invalid"


class BundleFetchError(PolicySourceError):
    """A bundle archive could not be fetched (status, timeout, size bound, truncated body)."""

    code = "bundle_fetch_failed"


class BundleInvalidError(CnmPolicyError):
    """A bundle failed validation; it is never compiled, so it can never serve a decision."""

    code = "bundle_invalid"

    def __init__(self, problems: tuple[PolicyProblem, ...]) -> None:
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"policy bundle is invalid ({len(problems)} problem(s)):\n{listed}")


class YamlError(CnmPolicyError, ValueError):
    """A file is not valid (or not acceptable) YAML; `line` is 1-based when known.

    `code` is the problem the bundle reports it under (``yaml_invalid`` or the bound broken).
    """

    code = "yaml_invalid"

    def __init__(self, message: str, line: int | None, code: str = "yaml_invalid") -> None:
        super().__init__(message)
        self.line = line
        self.code = code


class ConditionSyntaxError(CnmPolicyError, ValueError):
    """A rule's condition is not in the language; `code` is the problem the bundle reports."""

    code = "condition_syntax"

    def __init__(self, message: str, code: str = "condition_syntax") -> None:
        super().__init__(message)
        self.code = code


class BundleLockInvalidError(CnmPolicyError):
    """`bundle.lock.json` exists but is not a lock this version can read."""

    code = "bundle_lock_invalid"


class BundleLockMismatchError(CnmPolicyError):
    """The tree on disk is not the tree its lock describes, so it must not go live."""

    code = "bundle_lock_mismatch"

    def __init__(self, differences: tuple[str, ...]) -> None:
        self.differences = differences
        super().__init__(f"bundle does not match `{_LOCK_FILE}`: {_listed(list(differences))}")


class BundleTestsFailedError(CnmPolicyError):
    """A candidate bundle is valid but its own tests fail, so it must not serve."""

    code = "bundle_tests_failed"

    def __init__(self, failed: int, total: int, failures: list[str]) -> None:
        self.failed = failed
        self.total = total
        shown = "; ".join(failures[:_MAX_LISTED]) or "no test cases"
        hidden = failed - _MAX_LISTED
        more = f" (and {hidden} more)" if hidden > 0 else ""
        super().__init__(
            f"bundle tests failed ({failed} failure(s) or problem(s), {total} case(s)): "
            f"{shown}{more}"
        )


class BundleChangingError(CnmPolicyError):
    """The bundle kept changing while it was read, so no consistent version could be taken."""

    code = "bundle_changing"


class ConditionError(CnmPolicyError):
    """A condition could not be evaluated for one request; the decision becomes a deny."""

    code = "condition_error"


class InvalidRequestError(CnmPolicyError):
    """A check request is malformed; `field` names the offending field (dotted path)."""

    code = "invalid_request"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class LimitExceededError(InvalidRequestError):
    """A request is well formed but larger than the sidecar accepts (`field` names what).

    An `InvalidRequestError` (the caller must change the request) with its own code and
    status, RESOURCE_EXHAUSTED, so a client can tell "fix your request" from "split your batch".
    """

    code = "limit_exceeded"


class DeadlineExceededError(CnmPolicyError):
    """The caller's deadline passed before the decision was made; the work was abandoned."""

    code = "deadline_exceeded"

    def __init__(self) -> None:
        super().__init__("deadline exceeded before the decision was made")


class ServerConfigError(CnmPolicyError):
    """The server cannot be set up as configured (address, TLS files, binding)."""

    code = "server_config_invalid"


class UnauthenticatedError(CnmPolicyError):
    """Who asks could not be established: a bearer token refused, or a principal unknown.

    `code` says why (``token_missing``, ``token_invalid``, ``token_expired``,
    ``token_not_yet_valid``, ``principal_unknown``, ``actor_unknown``); the message is safe to
    return.
    """

    code = "unauthenticated"

    def __init__(self, message: str, code: str = "unauthenticated") -> None:
        super().__init__(message)
        self.code = code


class DirectoryInvalidError(CnmPolicyError):
    """A principal directory file failed validation; the last good one keeps serving."""

    code = "directory_invalid"


class PolicyStaleError(CnmPolicyError):
    """No load has confirmed the serving policy within `--max-policy-age`: checks fail closed."""

    code = "policy_stale"


class PlanUnsupportedError(CnmPolicyError):
    """A rule in play has a condition no query-plan filter can express; no plan is given."""

    code = "plan_unsupported"

    def __init__(self, message: str, rule_id: str | None = None) -> None:
        self.reason = message
        self.rule_id = rule_id
        super().__init__(f"rule `{rule_id}`: {message}" if rule_id else message)


class SqlMappingError(CnmPolicyError):
    """A plan's filter needs a field the column mapping lacks (or maps unusably)."""

    code = "sql_mapping_invalid"


def _listed(items: list[str]) -> str:
    hidden = len(items) - _MAX_LISTED
    more = f" (and {hidden} more)" if hidden > 0 else ""
    return "; ".join(items[:_MAX_LISTED]) + more
