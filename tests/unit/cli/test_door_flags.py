"""serve's front-door flags: what they configure, and each refusal naming its flag."""

from __future__ import annotations

import argparse

import pytest

from cnm_policy.cli._door_flags import door_options
from cnm_policy.cli._serve_flags import add_serve_arguments


def parse(*argv: str) -> argparse.Namespace:
    """`serve`'s arguments as the CLI parses them."""
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(argv)


def test_nothing_is_open_by_default() -> None:
    """No HTTP listener, no directory, no tokens, no trusted gateway."""
    options = door_options(parse())
    assert (options.http, options.directory, options.jwt, options.trusted_gateway) == (
        None,
        None,
        None,
        None,
    )


def test_the_flags_configure_the_doors() -> None:
    """Each flag lands where it belongs; header names are lowercased."""
    options = door_options(
        parse(
            "--http-listen", "127.0.0.1:8181", "--directory", "people.yaml",
            "--jwt-jwks", "jwks.json", "--jwt-issuer", "https://idp", "--jwt-audience", "cnm",
            "--jwt-algorithms", "ES256", "--default-tenant", "todo", "--trust-request-roles",
            "--trusted-gateway-principal-header", "X-User",
        )
    )  # fmt: skip
    assert options.http is not None and options.jwt is not None
    assert options.trusted_gateway is not None
    assert (options.http.listen, str(options.directory), options.jwt.algorithms) == (
        "127.0.0.1:8181",
        "people.yaml",
        ("ES256",),
    )
    assert (options.default_tenant, options.trust_request_roles) == ("todo", True)
    assert options.trusted_gateway.principal_header == "x-user"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (("--http-listen", "0.0.0.0:8181"), "--http-listen"),
        (("--jwt-issuer", "https://idp"), "--jwt-jwks"),
        (
            (
                "--jwt-jwks",
                "j",
                "--jwt-issuer",
                "i",
                "--jwt-audience",
                "a",
                "--jwt-algorithms",
                "none",
            ),
            "--jwt-algorithms",
        ),
        (("--default-tenant", "acme/"), "--default-tenant"),
        (("--trusted-gateway-roles-header", "x-roles"), "--trusted-gateway-principal-header"),
    ],
)
def test_a_flag_that_cannot_work_is_refused_by_name(argv: tuple[str, ...], flag: str) -> None:
    """ValueError naming the flag (serve prints it and exits 2)."""
    with pytest.raises(ValueError, match=flag):
        door_options(parse(*argv))
