"""A throwaway PostgreSQL server for tests: its own data directory, a private unix socket.

The Debian server binaries are found in POSTGRES_BIN; the server runs as an unprivileged user
(`postgres` when the tests run as root, as CI does), listens on no TCP port, and is stopped and
deleted at the end of the session. Missing binaries fail the tests (`make system-deps`
installs them) unless CNM_SKIP_POSTGRES=1.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

POSTGRES_BIN = Path(os.environ.get("CNM_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
START_DEADLINE_SECONDS = 30.0
_PORT = 54329  # names the socket file only: the server listens on no TCP address


def _unprivileged() -> dict[str, Any]:
    """Popen arguments that run a child as `postgres` when we are root (the server refuses root)."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid}


def _wait_until_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    engine = sa.create_engine(url)
    try:
        while True:
            try:
                with engine.connect():
                    return
            except sa.exc.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)  # polling a starting server, bounded by the deadline above
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh PostgreSQL server, running for the whole session."""
    if os.environ.get("CNM_SKIP_POSTGRES") == "1":
        pytest.skip("CNM_SKIP_POSTGRES=1")
    if not (POSTGRES_BIN / "postgres").exists():
        pytest.fail(f"no PostgreSQL server in `{POSTGRES_BIN}`: run `make system-deps`")
    as_user = _unprivileged()
    root = Path(tempfile.mkdtemp(prefix="cnm-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if as_user:
        for path in (root, sockets):
            os.chown(path, as_user["user"], as_user["group"])
    initdb = [str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "cnm", "--auth=trust"]
    initdb += ["--encoding=UTF8", "--locale=C.UTF-8"]
    subprocess.run(initdb, check=True, capture_output=True, **as_user)
    settings = ["-c", "listen_addresses=", "-c", f"unix_socket_directories={sockets}"]
    settings += ["-c", "fsync=off", "-c", "full_page_writes=off", "-p", str(_PORT)]
    server = subprocess.Popen(
        [str(POSTGRES_BIN / "postgres"), "-D", str(data), *settings],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        **as_user,
    )
    url = f"postgresql+psycopg://cnm@/postgres?host={sockets}&port={_PORT}"
    try:
        _wait_until_ready(url, server)
        yield url
    finally:
        server.send_signal(signal.SIGINT)  # fast shutdown: roll back, stop now
        try:
            server.wait(timeout=START_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)
