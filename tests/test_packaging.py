"""How cnm-policy is installed: `make run` needs only the runtime, the wheel ships its data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cnm_policy.cli._args import shipped_policy_dir
from tests.conftest import DEFAULT_BUNDLE, REPO_ROOT


def _make_dry_run(target: str, venv: Path) -> list[str]:
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return [line for line in done.stdout.splitlines() if "pip install" in line]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_the_runtime_only_and_make_test_the_dev_tools(tmp_path: Path) -> None:
    """On a fresh machine `make run` installs the package alone; `make test` adds the dev extra."""
    venv = tmp_path / "venv"
    pip = f"{venv}/bin/python -m pip install --quiet"
    fix = f"{pip} --force-reinstall --no-deps"  # opentelemetry-proto over xds-protos' copies
    run, test = _make_dry_run("run", venv), _make_dry_run("test", venv)
    assert run[:2] == [f"{pip} --upgrade pip", f"{pip} -e ."]
    assert test[:2] == [f"{pip} --upgrade pip", f"{pip} -e '.[dev]'"]
    assert [line.startswith(fix) for line in run[2:] + test[2:]] == [True, True]


def test_the_shipped_bundle_is_the_repository_bundle() -> None:
    """In a checkout the package's default bundle is `policies/cnm` itself: one copy only."""
    assert shipped_policy_dir() == DEFAULT_BUNDLE.resolve()
    proto = Path(shipped_policy_dir()).parents[1] / "proto" / "cnm_policy" / "v1" / "policy.proto"
    assert proto.resolve() == (REPO_ROOT / "proto" / "cnm_policy" / "v1" / "policy.proto")
