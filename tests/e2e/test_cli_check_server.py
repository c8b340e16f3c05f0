"""`cnm-policy check --server`: the same request and answer as a local check, asked over gRPC."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from cnm_policy.cli import build_parser, check
from cnm_policy.cli.check import EXIT_ALLOWED, EXIT_DENIED, EXIT_UNAVAILABLE, EXIT_USAGE
from cnm_policy.server.app import TlsConfig
from tests.e2e.harness import Served, serve
from tests.e2e.test_sidecar_tls import Pki, pki

__all__ = ["pki"]  # the module-scoped certificate fixture, shared with the TLS tests

pytestmark = pytest.mark.e2e


def _request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "principal": {"id": "u-1", "tenant": "acme", "roles": ["customer-viewer"]},
        "action": "read",
        "resource": {"kind": "device", "id": "dev-1", "tenant": "acme/emea"},
    }
    return {**request, **changes}


def _check(tmp_path: Path, request: dict[str, Any], *flags: str) -> tuple[int, str, str]:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    stdout, stderr = io.StringIO(), io.StringIO()
    # Own streams, not sys.stdout: the in-process sidecar logs its decisions there.
    args = build_parser().parse_args(["check", str(path), *flags])
    code = check.run(args, stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_the_sidecar_answers_as_a_local_check_does(tmp_path: Path, sidecar: Served) -> None:
    """Allow (0) and deny (3) from the sidecar equal the local answers, plus a decision id."""
    for request, expected in ((_request(), EXIT_ALLOWED), (_request(action="reboot"), EXIT_DENIED)):
        remote_code, remote, _ = _check(tmp_path, request, "--server", sidecar.address)
        local_code, local, _ = _check(tmp_path, request, "--policies", str(sidecar.bundle))
        answer = json.loads(remote)
        assert answer.pop("decision_id")  # the sidecar's log line for this decision
        assert (remote_code, local_code, {**answer, "cached": False}) == (
            expected,
            expected,
            json.loads(local),
        )


def test_a_request_the_sidecar_rejects_exits_2_with_its_reason(
    tmp_path: Path, sidecar: Served
) -> None:
    """INVALID_ARGUMENT from the sidecar is an invalid request (exit 2) naming the field."""
    request = _request(resource={"kind": "device", "id": "d", "tenant": "acme//x"})
    code, out, err = _check(tmp_path, request, "--server", sidecar.address)
    assert (code, out) == (EXIT_USAGE, "")
    assert err.startswith("cnm-policy check: invalid request: resource.tenant: ")


def test_an_unreachable_sidecar_exits_5(tmp_path: Path) -> None:
    """Nothing listening at ADDR: exit 5 with the gRPC status, never an answer."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    code, out, err = _check(tmp_path, _request(), "--server", address, "--timeout", "5")
    assert (code, out) == (EXIT_UNAVAILABLE, "")
    assert err.startswith(f"cnm-policy check: sidecar `{address}` did not answer: unavailable: ")


def test_mtls_with_the_client_certificate(tmp_path: Path, pki: Pki, bundle: Path) -> None:
    """--tls-ca with --tls-cert/--tls-key gets through mTLS; without the certificate it cannot."""
    tls = TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca)
    with serve(bundle, tls=tls) as served:
        port = served.address.rsplit(":", 1)[1]
        address = f"localhost:{port}"
        trusted = ("--server", address, "--tls-ca", str(pki.ca))
        client = ("--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key))
        allowed = _check(tmp_path, _request(), *trusted, *client)[0]
        anonymous = _check(tmp_path, _request(), *trusted)[0]
        renamed = _check(
            tmp_path, _request(), *trusted, *client, "--server-name", "not-the-server"
        )[0]
    assert (allowed, anonymous, renamed) == (EXIT_ALLOWED, EXIT_UNAVAILABLE, EXIT_UNAVAILABLE)
