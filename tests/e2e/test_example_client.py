"""examples/client.py runs against a real sidecar on the default bundle, so it never rots."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cnm_policy.engine import Engine
from cnm_policy.server.limits import DEFAULT_LIMITS
from cnm_policy.server.wire import convert
from tests.e2e.harness import serve

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "client.py"
DEFAULT_BUNDLE = REPO_ROOT / "policies" / "cnm"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("example_client", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _expected_lines(example: ModuleType) -> list[str]:
    """What the example must print: the engine's own answers to the example's requests."""
    engine = Engine.from_path(DEFAULT_BUNDLE)
    single = convert.access_request_from_proto(example.SINGLE, DEFAULT_LIMITS)
    lines = ["check " + example.describe(
        example.SINGLE.action,
        example.SINGLE.resource,
        convert.decision_to_proto(engine.check_request(single)),
    )]  # fmt: skip
    batch = convert.batch_from_proto(example.BATCH, DEFAULT_LIMITS)
    decisions = engine.check_batch(batch.principal, batch.items, batch.context)
    for item, decision in zip(example.PAGE, decisions, strict=True):
        response = convert.decision_to_proto(decision)
        lines.append("batch " + example.describe(item.action, item.resource, response))
    return lines


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_example_client_prints_the_sidecars_decisions(socket_path: Path, transport: str) -> None:
    """The example exits 0 and prints exactly the decisions the engine makes for its requests."""
    listen = "127.0.0.1:0" if transport == "tcp" else f"unix:{socket_path}"
    with serve(DEFAULT_BUNDLE, listen=listen) as served:
        # A generous deadline: a loaded CI machine is not what the example's 2 s is about.
        result = _run_example(served.address, "--timeout", "30")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:-1] == _expected_lines(_load_example())
    assert lines[-1] == "visible rows: dev-1, dev-2, T-77"


def test_example_client_fails_closed_without_a_sidecar(socket_path: Path) -> None:
    """With no sidecar listening, the example reports no decision and exits 1 (deny)."""
    result = _run_example(f"unix:{socket_path}")
    assert result.returncode == 1
    assert "treating as deny" in result.stderr
