"""Server configuration: loopback by default, remote only on request, addresses never shared."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cnm_policy.engine import Engine
from cnm_policy.errors import ServerConfigError
from cnm_policy.server import _channelz
from cnm_policy.server.app import ServerConfig, build_sidecar, is_local_address
from cnm_policy.server.servicer import SERVICE_NAME
from cnm_policy.v1 import policy_pb2 as pb

BUNDLE = Path(__file__).resolve().parents[2] / "e2e" / "bundles" / "v1"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:50051",
        "127.0.0.2:0",
        "localhost:50051",
        "[::1]:50051",
        "unix:/run/cnm/sidecar.sock",
        "unix-abstract:cnm",
    ],
)
def test_loopback_and_unix_addresses_are_local(address: str) -> None:
    """Loopback hosts and unix sockets are reachable only from this machine."""
    assert is_local_address(address)
    assert ServerConfig(listen=address).listen == address


@pytest.mark.parametrize(
    "address", ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "sidecar.internal:50051"]
)
def test_other_addresses_need_allow_remote(address: str) -> None:
    """Anything reachable from other hosts (or a name that may be) needs an explicit opt-in."""
    assert not is_local_address(address)
    with pytest.raises(ServerConfigError, match="--allow-remote"):
        ServerConfig(listen=address)
    assert ServerConfig(listen=address, allow_remote=True).allow_remote


@pytest.mark.parametrize("address", ["50051", "localhost", "127.0.0.1:port"])
def test_malformed_addresses_are_refused(address: str) -> None:
    """An address without a numeric port is a configuration error naming it."""
    with pytest.raises(ServerConfigError, match="is not `HOST:PORT` or `unix:PATH`"):
        ServerConfig(listen=address)


def test_binding_an_address_in_use_is_a_configuration_error() -> None:
    """Two sidecars cannot share a port (SO_REUSEPORT is off): the second fails clearly."""
    engine = Engine.from_path(BUNDLE)
    first = build_sidecar(engine, config=ServerConfig(listen="127.0.0.1:0"))
    address = first.start()
    try:
        second = build_sidecar(engine, config=ServerConfig(listen=address))
        with pytest.raises(ServerConfigError) as raised:
            second.start()
        assert str(raised.value) == f"cannot listen on `{address}`: `{address}` is already in use"
    finally:
        first.stop(grace=0)


def test_localhost_never_shares_a_port_held_on_one_of_its_addresses() -> None:
    """With 127.0.0.1:P taken, `localhost:P` fails whole instead of serving on what is left."""
    engine = Engine.from_path(BUNDLE)
    first = build_sidecar(engine, config=ServerConfig(listen="127.0.0.1:0"))
    port = first.start().rpartition(":")[2]
    try:
        second = build_sidecar(engine, config=ServerConfig(listen=f"localhost:{port}"))
        with pytest.raises(ServerConfigError) as raised:
            second.start()
        assert str(raised.value) == (
            f"cannot listen on `localhost:{port}`: `127.0.0.1:{port}` is already in use"
        )
    finally:
        first.stop(grace=0)


def test_localhost_binds_every_address_it_resolves_to() -> None:
    """`localhost:0` is one port on each of localhost's addresses, each reachable."""
    infos = socket.getaddrinfo("localhost", 0, type=socket.SOCK_STREAM)
    resolved = {(info[0], str(info[4][0])) for info in infos}
    sidecar = build_sidecar(Engine.from_path(BUNDLE), config=ServerConfig(listen="localhost:0"))
    address = sidecar.start()
    try:
        port = int(address.rpartition(":")[2])
        for family, host in resolved:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.connect((host, port))
    finally:
        sidecar.stop(grace=0)
    assert address == f"localhost:{port}"


def test_an_ip_this_host_does_not_have_is_named() -> None:
    """Listening on an address of another host is a clean configuration error."""
    config = ServerConfig(listen="192.0.2.1:0", allow_remote=True)
    sidecar = build_sidecar(Engine.from_path(BUNDLE), config=config)
    with pytest.raises(ServerConfigError) as raised:
        sidecar.start()
    assert str(raised.value) == (
        "cannot listen on `192.0.2.1:0`: `192.0.2.1` is not an address of this host"
    )


def test_a_names_address_this_host_lacks_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving also to an address this host lacks (IPv6 off) serves on the others."""
    real = socket.getaddrinfo

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host != "dual.test":
            return real(host, port, *args, **kwargs)
        absent = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.1", port))
        return [absent, *real("127.0.0.1", port, *args, **kwargs)]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    config = ServerConfig(listen="dual.test:0", allow_remote=True)
    sidecar = build_sidecar(Engine.from_path(BUNDLE), config=config)
    address = sidecar.start()
    try:
        with socket.create_connection(("127.0.0.1", int(address.rpartition(":")[2])), timeout=5):
            pass
    finally:
        sidecar.stop(grace=0)
    assert address.startswith("dual.test:")


@pytest.fixture
def socket_path() -> Iterator[Path]:
    """A unix socket path short enough to bind (tmp_path may be too long on some systems)."""
    directory = Path(tempfile.mkdtemp(prefix="cnm-", dir="/tmp"))
    try:
        yield directory / "sidecar.sock"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_live_unix_socket_is_not_taken_over(socket_path: Path) -> None:
    """A second sidecar on the socket of a running one fails, instead of silently replacing it."""
    engine = Engine.from_path(BUNDLE)
    first = build_sidecar(engine, config=ServerConfig(listen=f"unix:{socket_path}"))
    first.start()
    try:
        second = build_sidecar(engine, config=ServerConfig(listen=f"unix:{socket_path}"))
        with pytest.raises(ServerConfigError, match="another server is listening there"):
            second.start()
    finally:
        first.stop(grace=0)


def test_a_stale_unix_socket_file_is_reused(socket_path: Path) -> None:
    """A socket file left behind by a process that died does not block a restart."""
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(socket_path))
    stale.close()  # the file stays, nobody listens
    sidecar = build_sidecar(
        Engine.from_path(BUNDLE), config=ServerConfig(listen=f"unix:{socket_path}")
    )
    try:
        assert sidecar.start() == f"unix:{socket_path}"
    finally:
        sidecar.stop(grace=0)


def test_calls_run_on_the_sidecar_workers_which_stop_with_it() -> None:
    """Calls are served by `--workers` threads of the sidecar's own pool, gone after stop()."""
    earlier = set(threading.enumerate())
    sidecar = build_sidecar(
        Engine.from_path(BUNDLE), config=ServerConfig(listen="127.0.0.1:0", max_workers=3)
    )
    workers: list[threading.Thread] = []
    address = sidecar.start()
    try:
        with grpc.insecure_channel(address) as channel:
            info = channel.unary_unary(
                f"/{SERVICE_NAME}/GetPolicyInfo",
                request_serializer=pb.GetPolicyInfoRequest.SerializeToString,
                response_deserializer=pb.GetPolicyInfoResponse.FromString,
            )
            for _ in range(6):
                assert info(pb.GetPolicyInfoRequest(), timeout=10).policy.name
        workers = [
            t for t in set(threading.enumerate()) - earlier if t.name.startswith("cnm-policy-rpc-")
        ]
        assert len(workers) == 3  # all started with the first call
    finally:
        sidecar.stop(grace=1)
    assert not any(t.is_alive() for t in workers)


def test_stop_does_not_hang_on_a_stuck_call() -> None:
    """A handler that never returns holds up stop() for one grace period, not forever."""
    sidecar = build_sidecar(Engine.from_path(BUNDLE), config=ServerConfig(listen="127.0.0.1:0"))
    sidecar.start()
    gate = threading.Event()
    stuck = sidecar._workers.submit(gate.wait, 60)
    started = time.monotonic()
    try:
        sidecar.stop(grace=0.1)
        assert time.monotonic() - started < 30  # bounded by the grace periods, not the call
        assert not stuck.done()
    finally:
        gate.set()


def test_a_call_to_an_unknown_method_does_not_hold_up_stop() -> None:
    """Calls grpc answers itself (UNIMPLEMENTED) count as handed over: stop never waits on them."""
    config = ServerConfig(listen="127.0.0.1:0", grace_seconds=30)
    sidecar = build_sidecar(Engine.from_path(BUNDLE), config=config)
    with grpc.insecure_channel(sidecar.start()) as channel:
        unknown = channel.unary_unary("/cnm_policy.v1.PolicyService/Nothing", None, None)
        with pytest.raises(grpc.RpcError) as raised:
            unknown(b"", timeout=5)
    started = time.monotonic()
    sidecar.stop()
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert time.monotonic() - started < 10  # not the 30 s grace


def test_channelz_counts_the_calls_a_server_received() -> None:
    """The drain's source of truth: channelz knows each live server and counts its calls."""
    before = _channelz.server_ids()
    sidecar = build_sidecar(Engine.from_path(BUNDLE), config=ServerConfig(listen="127.0.0.1:0"))
    (server_id,) = _channelz.server_ids() - before
    with grpc.insecure_channel(sidecar.start()) as channel:
        info = channel.unary_unary(f"/{SERVICE_NAME}/GetPolicyInfo", None, None)
        for _ in range(3):
            info(b"", timeout=5)
    try:
        assert (_channelz.calls_started(server_id), _channelz.calls_started(-1)) == (3, None)
    finally:
        sidecar.stop(grace=0)
