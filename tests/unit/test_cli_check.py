"""`cnm-policy check`: JSON request in, decision JSON out, exit code says allow/deny/error."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from cnm_policy.cli import main
from cnm_policy.cli.check import (
    EXIT_ALLOWED,
    EXIT_DENIED,
    EXIT_POLICY_ERROR,
    EXIT_USAGE,
    default_policy_dir,
)

BUNDLE = Path(__file__).resolve().parents[1] / "e2e" / "bundles" / "v1"
WINDOW = {"start": "2026-01-15T11:00:00Z", "end": "2026-01-15T13:00:00Z"}


def _request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "principal": {"id": "u-2", "tenant": "acme", "roles": ["customer-admin"]},
        "action": "read",
        "resource": {"kind": "device", "id": "dev-1", "tenant": "acme/emea"},
    }
    request.update(changes)
    return request


def _check(
    tmp_path: Path, request: dict[str, Any] | str, *extra: str, bundle: Path = BUNDLE
) -> tuple[int, str, str]:
    path = tmp_path / "request.json"
    path.write_text(request if isinstance(request, str) else json.dumps(request))
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", stdout)
        patch.setattr("sys.stderr", stderr)
        code = main(["check", "--policies", str(bundle), str(path), *extra])
    return code, stdout.getvalue(), stderr.getvalue()


def test_allowed_request_exits_0_with_the_decision(tmp_path: Path) -> None:
    """An allowed request prints the decision with its rule ids and policy identity."""
    code, out, _ = _check(tmp_path, _request())
    decision = json.loads(out)
    assert code == EXIT_ALLOWED
    assert (decision["allowed"], decision["rule_ids"]) == (True, ["customer-read"])
    assert (
        decision["policy"]["name"],
        decision["policy"]["version"],
    ) == ("sidecar-fixture", "1.0.0")
    assert decision["policy"]["digest"].startswith("sha256:")
    assert "decision_id" not in decision


def test_denied_request_exits_3_and_still_prints_the_decision(tmp_path: Path) -> None:
    """A deny is an answer (exit 3), printed like an allow."""
    code, out, _ = _check(tmp_path, _request(action="reboot"))
    assert code == EXIT_DENIED
    assert (json.loads(out)["allowed"], json.loads(out)["rule_ids"]) == (False, [])


def test_at_pins_the_clock_for_time_conditions(tmp_path: Path) -> None:
    """--at decides as of a given instant, and the answer says until when it holds."""
    request = _request(action="reboot", context={"maintenance_window": WINDOW})
    inside, out, _ = _check(tmp_path, request, "--at", "2026-01-15T12:00:00Z")
    outside, _, _ = _check(tmp_path, request, "--at", "2026-01-15T14:00:00+00:00")
    assert (inside, outside) == (EXIT_ALLOWED, EXIT_DENIED)
    assert json.loads(out)["valid_until"] == "2026-01-15T13:00:00Z"


def test_explain_adds_the_rule_trace(tmp_path: Path) -> None:
    """--explain reports how every rule fared."""
    _, out, _ = _check(tmp_path, _request(), "--explain")
    trace = {entry["rule_id"]: entry for entry in json.loads(out)["trace"]}
    assert {"customer-read", "customer-reboot-in-window", "noc-operate"} == set(trace)
    assert trace["customer-read"]["applied"]
    assert not trace["noc-operate"]["role_matched"]


def test_request_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-` (the default) reads the request from standard input."""
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(_request())))
    assert main(["check", "--policies", str(BUNDLE)]) == EXIT_ALLOWED
    assert json.loads(capsys.readouterr().out)["allowed"]


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps(_request(principle={})), "principle"),
        (json.dumps(_request(resource={"kind": "device", "id": "d"})), "resource.tenant"),
        (
            json.dumps(
                _request(context={"n": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}})
            ),
            "context.n",
        ),
    ],
)
def test_invalid_input_exits_2_naming_the_problem(
    tmp_path: Path, request_text: str, message: str
) -> None:
    """Malformed requests are usage errors (exit 2) with a message naming what is wrong."""
    code, out, err = _check(tmp_path, request_text)
    assert code == EXIT_USAGE
    assert out == ""
    assert message in err


def test_unreadable_request_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing request file is a usage error."""
    assert main(["check", "--policies", str(BUNDLE), str(tmp_path / "nope.json")]) == EXIT_USAGE
    assert "cannot read" in capsys.readouterr().err


def test_invalid_bundle_exits_4(tmp_path: Path) -> None:
    """A bundle that does not validate is exit 4, with its problems listed."""
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    shutil.copytree(BUNDLE.parent / "broken-overlay", bundle, dirs_exist_ok=True)
    code, out, err = _check(tmp_path, _request(), bundle=bundle)
    assert (code, out) == (EXIT_POLICY_ERROR, "")
    assert "ghost-role" in err


def test_default_bundle_is_found_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --policies, the bundled policies/cnm is used, also outside the repository root."""
    repo_bundle = Path(__file__).resolve().parents[2] / "policies" / "cnm"
    monkeypatch.chdir(tmp_path)
    assert default_policy_dir() == repo_bundle
    (tmp_path / "policies" / "cnm").mkdir(parents=True)
    assert default_policy_dir() == tmp_path / "policies" / "cnm"


def test_bad_at_value_is_an_argparse_error(tmp_path: Path) -> None:
    """--at without a UTC offset is ambiguous and refused by the parser (exit 2)."""
    with pytest.raises(SystemExit) as raised:
        _check(tmp_path, _request(), "--at", "2026-01-15T12:00:00")
    assert raised.value.code == EXIT_USAGE
