"""The examples in examples/ run and say what the README says they say."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_library_example_runs() -> None:
    """examples/library_example.py prints allowed and denied decisions with reasons."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "library_example.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("policy cnm 1.0.0 (sha256:")
    assert lines[1].startswith("ALLOW read      device/dev-9@acme/emea/paris: allowed by rule")
    assert lines[2].startswith("DENY  configure")
    assert lines[3].startswith("DENY  read      device/dev-1@globex")
    assert "visible devices: dev-0, dev-2" in lines
    assert any(line.startswith("rejected: resource.tenant:") for line in lines)
