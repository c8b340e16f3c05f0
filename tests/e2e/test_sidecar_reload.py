"""Hot reload on a live sidecar: new versions go live whole, broken ones never, none fail calls."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from cnm_policy.errors import BundleLockMismatchError
from cnm_policy.policy import read_bundle_dir
from cnm_policy.policy.lock import LOCK_FILE, lock_for, render_lock
from cnm_policy.reload import ReloadOutcome
from cnm_policy.server.app import ServerConfig
from cnm_policy.server.runtime import RuntimeOptions, open_runtime
from cnm_policy.v1 import policy_pb2 as pb
from tests.e2e.harness import BUNDLES, Served, copy_bundle, health_status, principal, serve

pytestmark = pytest.mark.e2e

ADMIN = principal(("customer-admin",))
TICKET = pb.Resource(kind="ticket", id="t-1", tenant="acme")
# Version 2 adds `customer-admin-create-ticket`: the one answer that tells the versions apart.
CREATE_TICKET = pb.CheckRequest(principal=ADMIN, action="create", resource=TICKET)
V2_RULE = "customer-admin-create-ticket"


def _to_v2(bundle: Path) -> None:
    copy_bundle(bundle, "v2-overlay")


def _to_v1(bundle: Path) -> None:
    for extra in ("rules/tickets.yaml", "tests/tickets_test.yaml"):
        (bundle / extra).unlink()
    shutil.copy(BUNDLES / "v1" / "bundle.yaml", bundle / "bundle.yaml")


def _info(served: Served) -> Any:
    return served.stub.GetPolicyInfo(pb.GetPolicyInfoRequest(), timeout=5)


def _lock(directory: Path) -> str:
    """Write the directory's lock as `cnm-policy build` does; returns the locked digest."""
    lock = lock_for(read_bundle_dir(directory).files)
    (directory / LOCK_FILE).write_text(render_lock(lock))
    return lock.digest


def test_a_locked_version_is_picked_up_by_the_first_poll_that_sees_it_whole(bundle: Path) -> None:
    """With a lock, matching it is the commit point: no settle wait, answers change at once."""
    with serve(bundle) as served:
        before = served.stub.Check(CREATE_TICKET, timeout=5)
        _to_v2(bundle)
        digest = _lock(bundle)
        assert served.runtime.reloader.poll() == ReloadOutcome.SWAPPED
        after = served.stub.Check(CREATE_TICKET, timeout=5)
        info = _info(served)
    assert (before.allowed, before.policy.version) == (False, "1.0.0")
    assert (after.allowed, list(after.rule_ids), after.cached) == (True, [V2_RULE], False)
    assert (info.policy.version, info.policy.digest, after.policy.digest) == (
        "2.0.0",
        digest,
        digest,
    )
    assert info.reload.successes == 1
    assert info.reload.HasField("last_success_at")


def test_issue_17_item_5_a_half_copied_version_never_goes_live(bundle: Path) -> None:
    """Bump `version`, poll past the old one-poll settle, break a rule: v1 keeps serving as v1."""
    with serve(bundle) as served:
        digest = _info(served).policy.digest
        shutil.copy(BUNDLES / "v2-overlay" / "bundle.yaml", bundle / "bundle.yaml")
        polled = [served.runtime.reloader.poll(), served.runtime.reloader.poll()]
        copy_bundle(bundle, "broken-overlay")
        polled.append(served.runtime.reloader.poll())
        response = served.stub.Check(CREATE_TICKET, timeout=5)
        info = _info(served)
    assert ReloadOutcome.SWAPPED not in polled
    assert (response.policy.version, response.policy.digest) == ("1.0.0", digest)
    assert (info.policy.version, info.policy.digest) == ("1.0.0", digest)


@pytest.mark.parametrize(
    ("overlay", "error"),
    [
        ("broken-overlay", "unknown role `ghost-role`"),
        ("failing-tests-overlay", "a viewer reboots"),
    ],
)
def test_broken_version_never_goes_live(bundle: Path, overlay: str, error: str) -> None:
    """An invalid or test-failing version is rejected: v1 keeps serving, the error is visible."""
    with serve(bundle) as served:
        digest = _info(served).policy.digest
        copy_bundle(bundle, overlay)
        assert served.runtime.reloader.reload_now() == ReloadOutcome.REJECTED
        response = served.stub.Check(CREATE_TICKET, timeout=5)
        info = _info(served)
        status = health_status(served.channel)
    assert (response.policy.version, response.policy.digest) == ("1.0.0", digest)
    assert (info.policy.version, info.reload.failures) == ("1.0.0", 1)
    assert error in info.reload.last_error
    assert status == health_pb2.HealthCheckResponse.SERVING


class _Load:
    """Client threads hammering the sidecar; every answer is checked for version consistency."""

    def __init__(self, served: Served, threads: int) -> None:
        self.served = served
        self.stop = threading.Event()
        self.lock = threading.Condition()
        self.calls = 0
        self.failures: list[str] = []
        self.versions: Counter[str] = Counter()
        self.threads = [
            threading.Thread(target=self._run, args=(index % 2 == 0,)) for index in range(threads)
        ]

    def _run(self, batch: bool) -> None:
        while not self.stop.is_set():
            try:
                results = self._call(batch)
            except grpc.RpcError as exc:
                results, failure = [], f"{exc.code()}: {exc.details()}"
                self.failures.append(failure)
            with self.lock:
                for result in results:
                    self.versions[result.policy.version] += 1
                    if result.allowed != (result.policy.version == "2.0.0"):
                        self.failures.append(f"inconsistent: {result}")
                if batch and len({r.policy.digest for r in results}) > 1:
                    self.failures.append("one batch answered by two versions")
                self.calls += 1
                self.lock.notify_all()

    def _call(self, batch: bool) -> list[Any]:
        stub = self.served.stub
        if not batch:
            return [stub.Check(CREATE_TICKET, timeout=10)]
        items = [pb.CheckBatchItem(action="create", resource=TICKET)] * 20
        request = pb.CheckBatchRequest(principal=ADMIN, items=items)
        return list(stub.CheckBatch(request, timeout=10).results)

    def wait_for_calls(self, count: int) -> None:
        """Block until `count` more calls completed (bounded: fails instead of hanging)."""
        with self.lock:
            target = self.calls + count
            assert self.lock.wait_for(lambda: self.calls >= target, timeout=30), "load stalled"


def test_reload_under_sustained_load_fails_no_call(bundle: Path) -> None:
    """Swapping versions back and forth under load: zero failed calls, never a mixed answer."""
    with serve(bundle) as served:
        load = _Load(served, threads=4)
        for thread in load.threads:
            thread.start()
        try:
            load.wait_for_calls(20)
            for switch in (_to_v2, _to_v1, _to_v2, _to_v1, _to_v2):
                switch(bundle)
                assert served.runtime.reloader.reload_now() == ReloadOutcome.SWAPPED
                load.wait_for_calls(20)
        finally:
            load.stop.set()
            for thread in load.threads:
                thread.join(timeout=30)
    assert load.failures == []
    assert load.versions["1.0.0"] > 0
    assert load.versions["2.0.0"] > 0


def test_the_sidecar_refuses_to_start_on_a_tree_that_does_not_match_its_lock(
    bundle: Path,
) -> None:
    """The first version passes the same commit point: a stale lock never starts serving."""
    _lock(bundle)
    _to_v2(bundle)
    with pytest.raises(BundleLockMismatchError) as raised:
        open_runtime(RuntimeOptions(policies=bundle), ServerConfig(listen="127.0.0.1:0"))
    assert str(raised.value) == (
        "bundle does not match `bundle.lock.json`: changed `bundle.yaml`; "
        "extra `rules/tickets.yaml`; extra `tests/tickets_test.yaml`"
    )
