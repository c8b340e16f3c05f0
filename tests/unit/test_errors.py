"""The one error tree: every class in errors.py, drawn in its docstring, codes stable."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import grpc
import pytest

import cnm_policy
from cnm_policy import errors
from cnm_policy.server.errors import status_for

# The contract: codes never change (CI gates, dashboards and the gRPC trailer key on them).
STABLE_CODES = {
    "CnmPolicyError": "cnm_policy_error",
    "PolicySourceError": "policy_source_error",
    "BundleArchiveError": "bundle_archive_invalid",
    "BundleSignatureError": "bundle_signature_invalid",
    "BundleFetchError": "bundle_fetch_failed",
    "BundleInvalidError": "bundle_invalid",
    "BundleLockInvalidError": "bundle_lock_invalid",
    "BundleLockMismatchError": "bundle_lock_mismatch",
    "BundleTestsFailedError": "bundle_tests_failed",
    "BundleChangingError": "bundle_changing",
    "YamlError": "yaml_invalid",
    "ConditionSyntaxError": "condition_syntax",
    "ConditionError": "condition_error",
    "InvalidRequestError": "invalid_request",
    "LimitExceededError": "limit_exceeded",
    "DeadlineExceededError": "deadline_exceeded",
    "ServerConfigError": "server_config_invalid",
    "UnauthenticatedError": "unauthenticated",
    "DirectoryInvalidError": "directory_invalid",
    "PolicyStaleError": "policy_stale",
    "PlanUnsupportedError": "plan_unsupported",
    "SqlMappingError": "sql_mapping_invalid",
}

# What a caller would see if each reached an RPC: a policy that cannot become the serving
# version is UNAVAILABLE (retry later); what can only come from a bug is INTERNAL.
STATUS = {
    "CnmPolicyError": "INTERNAL",
    "PolicySourceError": "UNAVAILABLE",
    "BundleArchiveError": "UNAVAILABLE",
    "BundleSignatureError": "UNAVAILABLE",
    "BundleFetchError": "UNAVAILABLE",
    "BundleInvalidError": "UNAVAILABLE",
    "BundleLockInvalidError": "UNAVAILABLE",
    "BundleLockMismatchError": "UNAVAILABLE",
    "BundleTestsFailedError": "UNAVAILABLE",
    "BundleChangingError": "UNAVAILABLE",
    "YamlError": "UNAVAILABLE",
    "ConditionSyntaxError": "UNAVAILABLE",
    "ConditionError": "INTERNAL",
    "InvalidRequestError": "INVALID_ARGUMENT",
    "LimitExceededError": "RESOURCE_EXHAUSTED",
    "DeadlineExceededError": "DEADLINE_EXCEEDED",
    "ServerConfigError": "INTERNAL",
    "UnauthenticatedError": "UNAUTHENTICATED",
    "DirectoryInvalidError": "UNAVAILABLE",
    "PolicyStaleError": "UNAVAILABLE",
    "PlanUnsupportedError": "FAILED_PRECONDITION",
    "SqlMappingError": "INTERNAL",
}


def error_classes() -> dict[str, type[BaseException]]:
    """Every exception class errors.py defines, by name."""
    return {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == errors.__name__
    }


def instance(cls: type[BaseException]) -> BaseException:
    """An instance of `cls`, whatever its constructor takes."""
    arguments = {
        "BundleInvalidError": ((),),
        "BundleLockMismatchError": (("x",),),
        "BundleTestsFailedError": (1, 1, ["x"]),
        "YamlError": ("x", None),
        "InvalidRequestError": ("field", "x"),
        "LimitExceededError": ("field", "x"),
        "DeadlineExceededError": (),
    }
    return cls(*arguments.get(cls.__name__, ("x",)))


def test_every_error_class_of_the_package_is_defined_in_errors() -> None:
    """No module but errors.py defines an exception class (the tree has one home)."""
    elsewhere = []
    for module_info in pkgutil.walk_packages(cnm_policy.__path__, "cnm_policy."):
        if module_info.name.startswith("cnm_policy.v1.") or module_info.name.endswith("__main__"):
            continue
        module = importlib.import_module(module_info.name)
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, BaseException)
                and cls.__module__ == module.__name__
                and module.__name__ != errors.__name__
            ):
                elsewhere.append(f"{module.__name__}.{name}")
    assert elsewhere == []


def test_every_class_has_its_stable_code_and_is_exported() -> None:
    """Each class keeps its code, and `__all__` lists every one of them."""
    classes = error_classes()
    assert {name: getattr(cls, "code", None) for name, cls in classes.items()} == STABLE_CODES
    assert set(classes) <= set(errors.__all__)


def test_the_docstring_draws_the_tree_as_it_is() -> None:
    """Each class is drawn once with its code, under the class it derives from."""
    drawn: list[tuple[int, str, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        found = re.fullmatch(r"(\s*(?:[│ ]   )*(?:[├└]── )?)(\w+Error)\s+(\w+).*", line)
        if found:
            drawn.append((len(found.group(1)), found.group(2), found.group(3)))
    classes = error_classes()
    assert sorted(name for _, name, _ in drawn) == sorted(classes)
    for index, (depth, name, code) in enumerate(drawn):
        assert code == STABLE_CODES[name]
        parents = [n for d, n, _ in drawn[:index] if d < depth]
        base = next(b for b in classes[name].__mro__[1:] if b.__name__ in classes or b is Exception)
        assert (name, parents[-1] if parents else "Exception") == (name, base.__name__)


@pytest.mark.parametrize("name", sorted(STATUS))
def test_every_class_has_a_deliberate_status(name: str) -> None:
    """The status table places each class: client error, retry later, or internal."""
    status = status_for(instance(error_classes()[name]), new_incident_id=lambda: "inc")
    assert grpc.StatusCode[STATUS[name]] == status.code
