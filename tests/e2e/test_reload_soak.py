"""Reload soak: slow, half-written, file-by-file copies under concurrent clients never leak.

A live sidecar polls a locked bundle while a copier turns it, file by file, into other locked
versions: files written in two halves with a pause between, the lock landing first, last or in
between, directories deleted and re-created. Client threads on their own real channels check
all the while. Every answer must come from one of the locked trees, and no call may fail.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from structlog.testing import capture_logs

from cnm_policy.policy.lock import LOCK_FILE, lock_for, render_lock
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.runtime import Runtime, RuntimeOptions, open_runtime
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import BUNDLES, policy_stub, principal

pytestmark = pytest.mark.e2e

ADMIN = principal(("customer-admin",))
TICKET = pb.Resource(kind="ticket", id="t-1", tenant="acme")
CREATE_TICKET = pb.CheckRequest(principal=ADMIN, action="create", resource=TICKET)
BATCH = pb.CheckBatchRequest(
    principal=ADMIN, items=[pb.CheckBatchItem(action="create", resource=TICKET)] * 10
)
CLIENTS = 4
ROUNDS = 3  # each round visits v2, v3 and v1 again
DEADLINE = 20.0  # seconds a copied version may take to go live (bounded, not slept)


def _files(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): path.read_text()
        for path in sorted(directory.rglob("*.yaml"))
    }


@dataclass(frozen=True)
class Version:
    """One complete tree: its files (with the lock), its digest, the answer it gives."""

    files: Mapping[str, str]
    digest: str
    creates_tickets: bool


def _version(files: dict[str, str], creates_tickets: bool) -> Version:
    lock = lock_for(files)
    return Version({**files, LOCK_FILE: render_lock(lock)}, lock.digest, creates_tickets)


def _versions() -> dict[str, Version]:
    v1 = _files(BUNDLES / "v1")
    v2 = {**v1, **_files(BUNDLES / "v2-overlay")}
    # v3 moves the ticket rule into a new directory, so going back deletes a directory.
    v3 = {name: text for name, text in v2.items() if name != "rules/tickets.yaml"}
    v3["rules/extra/tickets.yaml"] = v2["rules/tickets.yaml"]
    v3["bundle.yaml"] = v2["bundle.yaml"].replace('"2.0.0"', '"3.0.0"')
    return {"v1": _version(v1, False), "v2": _version(v2, True), "v3": _version(v3, True)}


class Copier:
    """Turns the live tree into another version the slow way a deployment script might."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.random = random.Random(seed)

    def copy(self, version: Version) -> None:
        names = [name for name in version.files if name != LOCK_FILE]
        self.random.shuffle(names)
        names.insert(self.random.randint(0, len(names)), LOCK_FILE)  # lock first, last, between
        stale = [
            path
            for path in self.root.rglob("*")
            if path.is_file() and path.relative_to(self.root).as_posix() not in version.files
        ]
        for path in stale:
            path.unlink()
        for name in names:
            self._write_in_halves(self.root / name, version.files[name])
            time.sleep(self.random.choice((0.0, 0.0, 0.06)))  # a stall longer than two polls
        for directory in sorted(self.root.rglob("*"), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()  # a deleted directory (v3's rules/extra on the way back)

    def delete_and_restore(self, directory: str, version: Version) -> None:
        """`rm -rf rules` then copy it back, file by file."""
        shutil.rmtree(self.root / directory)
        time.sleep(0.02)  # the copier's pace (a slow copy), not a wait for an outcome
        for name, text in version.files.items():
            if name.startswith(directory + "/"):
                self._write_in_halves(self.root / name, text)

    def _write_in_halves(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as stream:  # truncates first: a reader may see an empty file
            stream.write(text[: len(text) // 2])
            stream.flush()
            time.sleep(0.005)  # the copier's pace: readers see the half-written file
            stream.write(text[len(text) // 2 :])


@dataclass
class Clients:
    """Client threads with their own channels; every answer's digest and outcome recorded."""

    address: str
    versions: Mapping[str, Version]
    stop: threading.Event = field(default_factory=threading.Event)
    digests: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, batch: bool) -> None:
        expected = {v.digest: v.creates_tickets for v in self.versions.values()}
        with grpc.insecure_channel(self.address) as channel:
            stub = policy_stub(channel)
            for _ in range(200_000):  # bounded; normally ended by `stop`
                if self.stop.is_set():
                    return
                try:
                    if batch:
                        results = list(stub.CheckBatch(BATCH, timeout=10).results)
                    else:
                        results = [stub.Check(CREATE_TICKET, timeout=10)]
                except grpc.RpcError as exc:
                    with self.lock:
                        self.failures.append(f"{exc.code()}: {exc.details()}")
                    continue
                with self.lock:
                    self.calls += 1
                    for result in results:
                        self.digests[result.policy.digest] += 1
                        if expected.get(result.policy.digest, not result.allowed) != result.allowed:
                            self.failures.append(f"answer not from its version: {result}")
                    if len({result.policy.digest for result in results}) != 1:
                        self.failures.append("one batch answered by two versions")


@contextmanager
def _sidecar(root: Path) -> Iterator[tuple[Runtime, str]]:
    runtime = open_runtime(
        RuntimeOptions(policies=root, cache_size=1000, watch_interval=0.02, settle_seconds=2.0),
        ServerConfig(listen="127.0.0.1:0", grace_seconds=2.0),
    )
    address = runtime.start()
    try:
        yield runtime, address
    finally:
        runtime.stop(grace=2.0)


def _wait_live(runtime: Runtime, digest: str) -> float:
    """Seconds until `digest` serves (polled with a bounded deadline)."""
    started = time.monotonic()
    while runtime.engine.snapshot.digest != digest:
        assert time.monotonic() - started < DEADLINE, f"{digest} never went live"
        time.sleep(0.01)
    return time.monotonic() - started


def test_slow_file_by_file_copies_under_load_serve_only_complete_locked_trees(
    tmp_path: Path,
) -> None:
    """Zero answers from a half-copied tree and zero failed calls, across every copy style."""
    versions = _versions()
    root = tmp_path / "bundle"
    copier = Copier(root, seed=17)
    copier.copy(versions["v1"])
    plan = [name for _ in range(ROUNDS) for name in ("v2", "v3", "v1")]
    went_live: list[float] = []
    with capture_logs() as logs, _sidecar(root) as (runtime, address):
        clients = Clients(address, versions)
        threads = [threading.Thread(target=clients.run, args=(i % 2 == 1,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            for name in plan:
                copier.copy(versions[name])
                went_live.append(_wait_live(runtime, versions[name].digest))
            copier.delete_and_restore("rules", versions["v1"])
            copier.delete_and_restore("tests", versions["v1"])
            went_live.append(_wait_live(runtime, versions["v1"].digest))
        finally:
            clients.stop.set()
            for thread in threads:
                thread.join(timeout=30)
    gated = {version.digest for version in versions.values()}
    leaked = sum(count for digest, count in clients.digests.items() if digest not in gated)
    pending = sum(1 for event in logs if event.get("outcome") == "pending")
    print(
        f"soak: {clients.calls} calls, {sum(clients.digests.values())} answers, {leaked} from "
        f"ungated trees, {pending} pending polls, slowest go-live {max(went_live):.2f} s"
    )
    assert clients.failures == []
    assert (leaked, set(clients.digests)) == (0, gated)
    assert not any(thread.is_alive() for thread in threads)
    assert pending > 0  # the copies really were seen half-way, and held back
