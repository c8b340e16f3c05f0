"""`cnm-policy healthcheck` over TLS: gRPC health behind (m)TLS with `check --server`'s flags, and
the ops listener served over TLS (`serve --ops-tls`) with the decision listener's certificate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog

from cnm_policy.cli import build_parser, main
from cnm_policy.cli._serve_flags import runtime_options
from cnm_policy.ops import config as config_layers
from cnm_policy.server.app import ServerConfig, TlsConfig
from cnm_policy.server.runtime import Runtime, open_runtime
from tests.e2e.harness import serve
from tests.e2e.test_sidecar_tls import Pki, pki

__all__ = ["pki"]  # the module-scoped certificate fixture, shared with the TLS tests

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    """`serve` configures logging onto the captured stderr: put the defaults back after."""
    yield
    structlog.reset_defaults()


def _codes(capsys: pytest.CaptureFixture[str], *probes: list[str]) -> tuple[list[int], list[str]]:
    """Each probe's exit code, and its one line on standard error."""
    codes = [main(["healthcheck", "--timeout", "2", *probe]) for probe in probes]
    return codes, capsys.readouterr().err.splitlines()


def test_grpc_health_through_mtls(
    pki: Pki, bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--tls-ca with the client certificate is healthy; plaintext, no certificate or the wrong
    name are not; a half-given key pair is refused before probing."""
    tls = TlsConfig.from_files(pki.server_cert, pki.server_key, pki.ca)
    with serve(bundle, tls=tls) as served:
        target = f"localhost:{served.address.rsplit(':', 1)[1]}"
        trusted = ["--grpc", target, "--tls-ca", str(pki.ca)]
        client = ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
        codes, lines = _codes(
            capsys,
            [*trusted, *client],
            ["--grpc", target],
            trusted,
            [*trusted, *client, "--server-name", "not-the-server"],
            [*trusted, "--tls-cert", str(pki.client_cert)],
        )
    assert codes == [0, 1, 1, 1, 1]
    assert lines[0] == "cnm-policy healthcheck: ok: grpc health SERVING"
    assert lines[4] == "cnm-policy healthcheck: --tls-cert and --tls-key go together"


@contextmanager
def _tls_ops_sidecar(bundle: Path, pki: Pki) -> Iterator[Runtime]:
    """A sidecar from real `serve` flags: --ops-listen on a free port with --ops-tls."""
    args = build_parser().parse_args(
        ["serve", "--policies", str(bundle), "--ops-listen", "127.0.0.1:0", "--ops-tls",
         "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
         "--tls-client-ca", str(pki.ca), "--watch-interval", "0"]
    )  # fmt: skip
    config_layers.resolve(args, {})  # the defaults, as `serve` fills them
    runtime = open_runtime(
        runtime_options(args), ServerConfig(listen="127.0.0.1:0", grace_seconds=1.0)
    )
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop(grace=1.0)


def test_the_ops_listener_over_tls(
    pki: Pki, bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--ops-tls: verified HTTPS probes pass without a client certificate (the client CA is
    the decision listener's only); plain HTTP and a wrong name fail."""
    with _tls_ops_sidecar(bundle, pki) as runtime:
        assert runtime.ops is not None and runtime.ops.address is not None
        ops = runtime.ops.address
        trusted = ["--ops", ops, "--tls-ca", str(pki.ca)]
        codes, lines = _codes(
            capsys,
            trusted,
            [*trusted, "--live"],
            ["--ops", ops],
            [*trusted, "--server-name", "not-the-server"],
        )
    assert codes == [0, 0, 1, 1]
    assert lines[0].startswith("cnm-policy healthcheck: ok: /readyz 200")
    assert lines[3].startswith("cnm-policy healthcheck: unhealthy: unreachable:")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ops-tls", "--tls-cert", "c", "--tls-key", "k"], "--ops-tls needs --ops-listen"),
        (["--ops-tls", "--ops-listen", "127.0.0.1:0"], "--ops-tls needs --tls-cert and --tls-key"),
        (["--ops-tls", "--ops-listen", "127.0.0.1:0", "--tls-cert", "c", "--tls-key", "k",
          "--processes", "2"], "--ops-tls does not go with --processes"),
    ],
)  # fmt: skip
def test_ops_tls_misuse_is_named(
    flags: list[str],
    message: str,
    pki: Pki,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each misuse of --ops-tls is one error naming it, exit 2, nothing served."""
    real = {"c": str(pki.server_cert), "k": str(pki.server_key)}
    code = main(["serve", "--policies", str(tmp_path), *(real.get(f, f) for f in flags)])
    assert (code, capsys.readouterr().err.strip()) == (2, f"cnm-policy serve: {message}")
