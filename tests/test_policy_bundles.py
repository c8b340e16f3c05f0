"""Every bundle under policies/ passes its own test cases and exercises every rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnm_policy import load_snapshot
from cnm_policy.cli import main
from cnm_policy.testing import run_suite
from tests.conftest import REPO_ROOT

BUNDLES = sorted(p.parent for p in (REPO_ROOT / "policies").glob("*/bundle.yaml"))


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_bundle_suite_passes(bundle: Path) -> None:
    """All cases pass; failures are listed with expected vs actual."""
    result = run_suite(load_snapshot(bundle))
    assert result.problems == ()
    assert [str(f) for f in result.failures] == []
    assert result.total > 0


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_bundle_suite_covers_every_rule(bundle: Path) -> None:
    """No rule is left without a test that it decides."""
    assert run_suite(load_snapshot(bundle)).uncovered_rules == ()


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_bundle_passes_strict_validation(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`cnm-policy validate --strict` passes: no errors and no warnings (a starting point)."""
    code = main(["validate", "--strict", str(bundle)])
    *problems, summary = capsys.readouterr().out.splitlines()
    assert (code, problems) == (0, [])
    assert "valid (0 errors, 0 warnings)" in summary


def test_default_bundle_is_found() -> None:
    """The parametrisation above is not vacuous."""
    assert [b.name for b in BUNDLES] == ["cnm"]
