"""Shadow mode and input capture in a real `cnm-policy serve` process."""

from __future__ import annotations

import json
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import policy_stub

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e

VIEWER = pb.Principal(id="u-100", tenant="acme/emea", roles=["customer-viewer"])


def _candidate(tmp_path: Path) -> Path:
    """The default bundle plus a guardrail against customer reads of devices at site `par-1`."""
    target = tmp_path / "candidate"
    shutil.copytree(ROOT / "policies" / "cnm", target)
    guardrails = target / "rules" / "guardrails.yaml"
    guardrails.write_text(
        guardrails.read_text()
        + "\n  - id: deny-reads-at-par-1\n    description: Customers stop seeing site par-1.\n"
        "    effect: deny\n    side: customer\n    resources: [device]\n    actions: [read]\n"
        "    scope: any\n"
        '    when: has(resource.attributes.site) and resource.attributes.site == "par-1"\n'
    )
    return target


def _check(stub: object, kind: str, resource_id: str) -> pb.CheckResponse:
    """One viewer read of a resource in the viewer's own organisation."""
    request = pb.CheckRequest(
        principal=VIEWER,
        action="read",
        resource=pb.Resource(kind=kind, id=resource_id, tenant="acme/emea/paris"),
    )
    request.resource.attributes.update({"site": "par-1"})
    return stub.Check(request, timeout=10)  # type: ignore[attr-defined, no-any-return]


def test_a_diverging_candidate_logs_one_event_per_decision_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """Two device reads diverge (two events, ids matching), a circuit read does not; the live
    answers stay allows; the capture file holds every request whole, readable by its owner only."""
    socket = Path("/tmp") / f"cnm-shadow-{time.monotonic_ns()}.sock"
    capture = tmp_path / "inputs.jsonl"
    command = [
        sys.executable, "-m", "cnm_policy", "serve", "--log-format", "json",
        "--policies", str(ROOT / "policies" / "cnm"), "--listen", f"unix:{socket}",
        "--shadow-policies", str(_candidate(tmp_path)), "--log-inputs", str(capture),
        "--watch-interval", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = policy_stub(channel)
            answers = [
                _check(stub, "device", "dev-1"),
                _check(stub, "circuit", "c-1"),
                _check(stub, "device", "dev-2"),
            ]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
        socket.unlink(missing_ok=True)
    assert process.returncode == 0, err
    assert [answer.allowed for answer in answers] == [True, True, True]
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    divergences = [event for event in events if event["event"] == "shadow_divergence"]
    ids = {answers[0].decision_id, answers[2].decision_id}
    assert {event["decision_id"] for event in divergences} == ids
    assert len(divergences) == 2
    assert {event["direction"] for event in divergences} == {"allow_to_deny"}
    lines = [json.loads(line) for line in capture.read_text().splitlines()]
    assert [line["decision_id"] for line in lines] == [a.decision_id for a in answers]
    assert lines[0]["resource_attributes"] == {"site": "par-1"}
    assert stat.S_IMODE(capture.stat().st_mode) == 0o600
