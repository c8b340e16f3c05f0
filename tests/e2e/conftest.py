"""End-to-end fixtures: a private copy of the fixture bundle, and a sidecar serving it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Served, copy_bundle, serve


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A private, writable copy of the v1 fixture bundle."""
    return copy_bundle(tmp_path / "bundle")


@pytest.fixture
def socket_path() -> Iterator[Path]:
    """A path for a unix socket, short enough to bind anywhere.

    A socket path must fit in about 104 bytes; ``tmp_path`` under a long ``$TMPDIR`` (macOS,
    some CI runners) does not, so sockets live in a fresh directory directly under /tmp.
    """
    directory = Path(tempfile.mkdtemp(prefix="cnm-", dir="/tmp"))
    try:
        yield directory / "sidecar.sock"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["tcp", "unix"])
def sidecar(request: pytest.FixtureRequest, bundle: Path, socket_path: Path) -> Iterator[Served]:
    """The sidecar on 127.0.0.1:<ephemeral> and on a unix socket."""
    listen = "127.0.0.1:0" if request.param == "tcp" else f"unix:{socket_path}"
    with serve(bundle, listen=listen) as served:
        yield served
