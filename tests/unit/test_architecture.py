"""Architecture rules that code review alone would let slip."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "cnm_policy"
PURE_PACKAGES = ("engine", "policy", "testing")
PURE_MODULES = ("model.py", "errors.py")
FORBIDDEN_IN_CORE = ("grpc", "cnm_policy.v1", "cnm_policy.server", "structlog", "logging")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, by dotted name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def core_files() -> list[Path]:
    """The source files of the pure core."""
    files = [SRC / name for name in PURE_MODULES]
    for package in PURE_PACKAGES:
        files.extend(sorted((SRC / package).rglob("*.py")))
    return files


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_core_imports_no_transport_or_logging_setup(path: Path) -> None:
    """The decision core knows nothing of gRPC, generated stubs or logging setup."""
    bad = {
        module
        for module in imported_modules(path)
        if any(module == f or module.startswith(f + ".") for f in FORBIDDEN_IN_CORE)
    }
    assert bad == set()


def importers_of(package: str) -> list[str]:
    """The modules under src/cnm_policy that import `package` or one of its submodules."""
    return sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(m == package or m.startswith(package + ".") for m in imported_modules(path))
    )


def test_only_one_module_imports_casbin() -> None:
    """casbin is wrapped in exactly one module."""
    assert importers_of("casbin") == ["engine/casbin_backend.py"]


def test_only_one_module_imports_marshal() -> None:
    """The cache key encoding is the one user of marshal: its exactness rules live there."""
    assert importers_of("marshal") == ["cache/keys.py"]


MAX_MODULE_LINES = 300


def test_no_source_module_is_over_300_lines() -> None:
    """Small modules with one concern each: none over 300 lines (generated stubs excepted)."""
    long = {
        str(path.relative_to(SRC)): count
        for path in SRC.rglob("*.py")
        if "v1" not in path.relative_to(SRC).parts
        and (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
