"""End-to-end fixtures: a private copy of the fixture bundle, and a sidecar serving it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Served, copy_bundle, serve


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A private, writable copy of the v1 fixture bundle."""
    return copy_bundle(tmp_path / "bundle")


@pytest.fixture(params=["tcp", "unix"])
def sidecar(request: pytest.FixtureRequest, bundle: Path, tmp_path: Path) -> Iterator[Served]:
    """The sidecar on 127.0.0.1:<ephemeral> and on a unix socket in tmp_path."""
    listen = "127.0.0.1:0" if request.param == "tcp" else f"unix:{tmp_path / 'sidecar.sock'}"
    with serve(bundle, listen=listen) as served:
        yield served
