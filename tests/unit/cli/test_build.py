"""`cnm-policy build`: validate, write the lock; `--check` verifies it for CI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnm_policy.cli import main
from cnm_policy.cli.build import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from cnm_policy.engine import load_snapshot
from cnm_policy.policy.lock import LOCK_FILE

BUNDLES = Path(__file__).resolve().parents[2] / "e2e" / "bundles"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A private copy of the small fixture bundle."""
    return Path(shutil.copytree(BUNDLES / "v1", tmp_path / "bundle"))


def test_build_writes_a_lock_whose_digest_is_the_served_one(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lock lists every YAML file; its digest is the digest the sidecar will report."""
    assert main(["build", str(bundle)]) == EXIT_OK
    lock = json.loads((bundle / LOCK_FILE).read_text())
    digest = load_snapshot(bundle).digest
    assert (lock["cnm_policy_bundle_lock"], lock["digest"], sorted(lock["files"])) == (
        1,
        digest,
        [
            "bundle.yaml",
            "resources.yaml",
            "roles.yaml",
            "rules/rules.yaml",
            "tests/sidecar_test.yaml",
        ],
    )
    assert capsys.readouterr().out == f"wrote {bundle / LOCK_FILE}: 5 files, {digest}\n"
    assert [p.name for p in bundle.iterdir() if p.name.startswith(".")] == []


def test_check_passes_for_a_fresh_lock_and_fails_for_a_stale_or_missing_one(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--check` never writes; it names what changed since the lock was built."""
    assert main(["build", "--check", str(bundle)]) == EXIT_FINDINGS
    assert main(["build", str(bundle)]) == EXIT_OK
    assert main(["build", "--check", str(bundle)]) == EXIT_OK
    with (bundle / "roles.yaml").open("a") as roles:
        roles.write("# edited\n")
    capsys.readouterr()
    assert main(["build", "--check", str(bundle)]) == EXIT_FINDINGS
    err = capsys.readouterr().err
    assert err == (
        f"{bundle / LOCK_FILE}: changed `roles.yaml`\n"
        "cnm-policy build: bundle.lock.json is stale; run `cnm-policy build`\n"
    )


def test_an_invalid_bundle_gets_no_lock(bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A lock is only written for a bundle that validates; the problems are listed, located."""
    shutil.copytree(BUNDLES / "broken-overlay", bundle, dirs_exist_ok=True)
    assert main(["build", str(bundle)]) == EXIT_FINDINGS
    assert not (bundle / LOCK_FILE).exists()
    assert "rules/broken.yaml:" in capsys.readouterr().err


def test_an_unreadable_bundle_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing directory exits 2 with a message, not a traceback."""
    assert main(["build", str(tmp_path / "missing")]) == EXIT_USAGE
    assert "is not a directory" in capsys.readouterr().err
