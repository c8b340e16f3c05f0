"""Clients in other languages against a real HTTP listener: README's curl line, Node's fetch."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import DEFAULT_BUNDLE, REPO_ROOT
from tests.e2e.front_doors import Doors, serve_doors

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def doors() -> Iterator[Doors]:
    """The default bundle with its HTTP listener."""
    with serve_doors(DEFAULT_BUNDLE) as served:
        yield served


def readme_curl_line() -> str:
    """The one `curl` line in README.md."""
    lines = [
        line
        for line in (REPO_ROOT / "README.md").read_text().splitlines()
        if line.startswith("curl ")
    ]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readme_curl_line_gets_a_decision(doors: Doors) -> None:
    """README's AuthZEN call, pointed at this listener, answers `decision: true`."""
    line = re.sub(r"http://127\.0\.0\.1:8181", f"http://{doors.http_address}", readme_curl_line())
    result = subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, timeout=30, check=False
    )
    answer = json.loads(result.stdout)
    assert (result.returncode, answer["decision"]) == (0, True)
    assert answer["context"]["reason_user"]["en"].startswith("allowed by rule")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_fetch_client_gets_decisions(doors: Doors) -> None:
    """examples/node/authzen-client.mjs: an evaluation and an action search."""
    script = REPO_ROOT / "examples" / "node" / "authzen-client.mjs"
    result = subprocess.run(
        ["node", str(script), f"http://{doors.http_address}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "configure dev-9: ALLOW (allowed by rule `customer-admin-change-network`)",
        "actions on dev-9: read, configure",
    ]
