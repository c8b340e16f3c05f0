"""Shared fixtures: where the default bundle lives, and a bundle builder for broken variants."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cnm_policy import Engine

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUNDLE = REPO_ROOT / "policies" / "cnm"
FIXED_NOW = 1_768_478_400.0  # 2026-01-15T12:00:00Z, the default `now` of bundle tests


@pytest.fixture
def default_bundle() -> Path:
    """Path of the bundled default policy."""
    return DEFAULT_BUNDLE


@pytest.fixture
def engine() -> Engine:
    """An engine on the default bundle with a frozen clock."""
    return Engine.from_path(DEFAULT_BUNDLE, clock=lambda: FIXED_NOW)


BundleFactory = Callable[..., Path]


@pytest.fixture
def make_bundle(tmp_path: Path) -> BundleFactory:
    """Copy the default bundle to a temp dir, then overwrite or delete files in the copy.

    ``make_bundle({"rules/extra.yaml": "..."}, remove=("tests/internal_test.yaml",))``
    """

    counter = iter(range(1_000_000))

    def build(files: dict[str, str] | None = None, remove: tuple[str, ...] = ()) -> Path:
        target = tmp_path / f"bundle-{next(counter)}"
        shutil.copytree(DEFAULT_BUNDLE, target)
        for name in remove:
            (target / name).unlink()
        for name, text in (files or {}).items():
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return target

    return build
