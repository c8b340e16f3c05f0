"""Client TLS flags: `check --server`'s rules, TLS on only with a CA or a client certificate."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cnm_policy.cli._client_tls import (
    add_client_tls_arguments,
    client_ssl_context,
    client_tls_problem,
    uses_tls,
)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_client_tls_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ((), ""),
        (("--tls-ca", "ca.pem"), ""),
        (("--tls-cert", "c.pem", "--tls-key", "k.pem"), ""),
        (("--tls-cert", "c.pem"), "--tls-cert and --tls-key go together"),
        (("--tls-key", "k.pem"), "--tls-cert and --tls-key go together"),
        (
            ("--server-name", "x"),
            "--server-name needs TLS (--tls-ca, or --tls-cert with --tls-key)",
        ),
        (("--server-name", "x", "--tls-ca", "ca.pem"), ""),
    ],
)
def test_flag_combinations(argv: tuple[str, ...], problem: str) -> None:
    """A half key pair, or a server name without TLS, is named; the rest is fine."""
    assert client_tls_problem(_args(*argv)) == problem


def test_plain_without_a_ca_or_certificate() -> None:
    """No TLS flag: plain HTTP (no context) and an insecure channel."""
    args = _args()
    assert (uses_tls(args), client_ssl_context(args)) == (False, None)


def test_an_unreadable_ca_is_an_os_error(tmp_path: Path) -> None:
    """A missing CA file fails as OSError (the probe reports it, it does not crash)."""
    with pytest.raises(OSError):
        client_ssl_context(_args("--tls-ca", str(tmp_path / "missing.pem")))
