"""The sidecar's worker pool: every job runs once, every done callback runs exactly once."""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from cnm_policy.server import workers as workers_module
from cnm_policy.server.workers import Job, WorkerPool

WAIT_S = 10.0  # an upper bound for a thread hand-off, never a pause


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    """A two-thread pool, shut down after the test."""
    workers = WorkerPool(2, name="test-worker")
    yield workers
    workers.shutdown()


def test_jobs_run_on_the_pool_threads_and_callbacks_see_the_job(pool: WorkerPool) -> None:
    """A job runs on a named pool thread with its arguments; its callback gets the job."""
    threads: list[str] = []
    finished: list[Job] = []
    done = threading.Event()
    job = pool.submit(lambda value: threads.append(f"{threading.current_thread().name}:{value}"), 7)

    def record(it: Job) -> None:
        finished.append(it)
        done.set()

    job.add_done_callback(record)
    assert done.wait(WAIT_S)
    assert job.done()
    assert job.exception is None
    assert len(threads) == 1
    assert threads[0].startswith("test-worker-")
    assert threads[0].endswith(":7")
    assert finished == [job]


def test_a_callback_added_after_the_job_finished_runs_at_once(pool: WorkerPool) -> None:
    """A callback added to a finished job runs in the caller's thread before returning."""
    finished = threading.Event()
    job = pool.submit(finished.set)
    assert finished.wait(WAIT_S)
    deadline = time.monotonic() + WAIT_S
    while not job.done():  # the worker marks it done right after the function returns
        assert time.monotonic() < deadline
        threading.Event().wait(0.001)
    calls: list[Job] = []
    job.add_done_callback(calls.append)
    assert calls == [job]  # ran in this thread, before add_done_callback returned


def test_a_failing_job_is_reported_and_the_worker_keeps_serving(pool: WorkerPool) -> None:
    """A job's exception is kept and logged once; every worker thread keeps serving."""
    failed = threading.Event()
    with capture_logs() as logs:
        bad = pool.submit(_raise, ValueError("boom"))
        bad.add_done_callback(lambda _job: failed.set())
        assert failed.wait(WAIT_S)
    assert isinstance(bad.exception, ValueError)
    assert [entry["event"] for entry in logs] == ["worker_job_failed"]
    assert "boom" in logs[0]["error"]
    survived = threading.Event()
    for _ in range(4):  # more jobs than threads: each thread is still alive
        pool.submit(survived.set)
    assert survived.wait(WAIT_S)


def test_a_job_raising_base_exception_still_finishes_and_the_thread_survives() -> None:
    """A job raising SystemExit finishes with it recorded; the thread survives."""
    workers = WorkerPool(1)
    try:
        failed = threading.Event()
        with capture_logs():
            job = workers.submit(_raise, SystemExit(3))
            job.add_done_callback(lambda _job: failed.set())
            assert failed.wait(WAIT_S)
        assert isinstance(job.exception, SystemExit)
        survived = threading.Event()
        workers.submit(survived.set)  # the one thread is still serving
        assert survived.wait(WAIT_S)
    finally:
        workers.shutdown()


def test_a_failing_log_does_not_leave_the_job_unfinished(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job whose failure cannot be logged is still done and runs its callbacks."""

    class BrokenLog:
        def error(self, *args: Any, **kwargs: Any) -> None:
            raise OSError("log stream closed")

    monkeypatch.setattr(workers_module, "_log", BrokenLog())
    job = Job(_raise, (ValueError("boom"),))
    calls: list[Job] = []
    job.add_done_callback(calls.append)
    job.run()
    assert job.done()
    assert calls == [job]


def test_a_failing_callback_does_not_keep_the_others_from_running(pool: WorkerPool) -> None:
    """A raising callback is logged; the callbacks after it still run."""
    gate = threading.Event()
    later: list[Job] = []
    done = threading.Event()
    with capture_logs() as logs:
        job = pool.submit(gate.wait, WAIT_S)
        job.add_done_callback(later.append)
        job.add_done_callback(lambda _job: _raise(RuntimeError("callback broke")))
        job.add_done_callback(lambda _job: done.set())
        gate.set()
        assert done.wait(WAIT_S)
    assert later == [job]
    assert [entry["event"] for entry in logs] == ["worker_callback_failed"]


@settings(max_examples=60, deadline=None)
@given(jobs=st.integers(1, 40), callbacks=st.integers(1, 4), switch=st.sampled_from([1e-6, 5e-3]))
def test_every_callback_runs_exactly_once_whenever_it_is_added(
    jobs: int, callbacks: int, switch: float
) -> None:
    """Callbacks added while, before or after their job finishes all run, none of them twice."""
    counts: Counter[tuple[int, int]] = Counter()
    lock = threading.Lock()
    all_done = threading.Semaphore(0)

    def count_job(key: tuple[int, int], _job: Job) -> None:
        with lock:
            counts[key] += 1
        all_done.release()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(switch)  # a tiny interval switches threads mid-callback-list
    workers = WorkerPool(2)
    try:
        for index in range(jobs):
            job = workers.submit(_spin, index % 7)
            for number in range(callbacks):
                job.add_done_callback(functools.partial(count_job, (index, number)))
        for _ in range(jobs * callbacks):
            assert all_done.acquire(timeout=WAIT_S)
    finally:
        workers.shutdown()
        sys.setswitchinterval(previous)
    assert counts == Counter({(i, n): 1 for i in range(jobs) for n in range(callbacks)})


class _FinishesDuringAppend(list[Any]):
    """A callback list on which the job finishes while `add_done_callback` appends: the worker
    thread winning one of the two races with it (just before the append, or just after it and
    before `add_done_callback` looks at the job)."""

    def __init__(self, job: Job, *, before: bool) -> None:
        super().__init__()
        self.job = job
        self.before = before

    def append(self, item: Any) -> None:
        if self.before:
            self.job.run()
        super().append(item)
        if not self.before:
            self.job.run()


@pytest.mark.parametrize("before", [True, False], ids=["before-append", "after-append"])
def test_a_job_finishing_while_a_callback_is_added_runs_it_exactly_once(before: bool) -> None:
    """A job finishing while a callback is appended runs that callback exactly once."""
    job = Job(int, ())
    job._callbacks = _FinishesDuringAppend(job, before=before)
    calls: list[Job] = []
    job.add_done_callback(calls.append)
    assert calls == [job]


def test_shutdown_finishes_queued_jobs_then_refuses_new_ones() -> None:
    """Shutdown runs the queued jobs in order, then submit raises; a second shutdown waits."""
    workers = WorkerPool(1)
    gate = threading.Event()
    order: list[int] = []
    workers.submit(gate.wait, WAIT_S)
    for index in range(5):
        workers.submit(order.append, index)
    gate.set()
    workers.shutdown()
    assert order == [0, 1, 2, 3, 4]  # in submission order, all before shutdown returned
    with pytest.raises(RuntimeError, match="shut down"):
        workers.submit(order.append, 5)
    assert workers.shutdown()  # a second shutdown only waits again


def test_a_pool_that_never_served_starts_no_threads_and_shuts_down() -> None:
    """An unused pool starts no thread, shuts down at once and refuses jobs after."""
    workers = WorkerPool(3, name="idle")
    assert not [t for t in threading.enumerate() if t.name.startswith("idle-")]
    assert workers.shutdown(timeout=0)
    assert not [t for t in threading.enumerate() if t.name.startswith("idle-")]
    with pytest.raises(RuntimeError, match="shut down"):
        workers.submit(print)


def test_threads_stop_on_shutdown_and_are_daemons() -> None:
    """The pool's threads are daemons and have stopped when shutdown returns."""
    workers = WorkerPool(2, name="stopping")
    started = threading.Event()
    workers.submit(started.set)
    assert started.wait(WAIT_S)
    threads = [t for t in threading.enumerate() if t.name.startswith("stopping-")]
    assert len(threads) == 2
    assert all(t.daemon for t in threads)  # an exit without shutdown does not hang on them
    workers.shutdown()
    assert not any(t.is_alive() for t in threads)


def test_a_pool_needs_a_thread() -> None:
    """A pool of zero threads is refused."""
    with pytest.raises(ValueError, match="at least one"):
        WorkerPool(0)


def _raise(error: BaseException) -> None:
    raise error


def _spin(rounds: int) -> int:
    total = 0
    for value in range(rounds * 50):
        total += value
    return total


def test_shutdown_with_a_stuck_job_returns_after_its_timeout() -> None:
    """A job that never finishes (a log write stuck on a full pipe) cannot hang a shutdown."""
    workers = WorkerPool(1, name="stuck")
    gate = threading.Event()
    started = threading.Event()

    def stuck() -> None:
        started.set()
        gate.wait(WAIT_S * 3)

    workers.submit(stuck)
    assert started.wait(WAIT_S)
    try:
        assert workers.shutdown(timeout=0.05) is False
        with pytest.raises(RuntimeError, match="shut down"):
            workers.submit(print)
    finally:
        gate.set()
    assert workers.shutdown(timeout=WAIT_S)  # once released, the thread stops


class _Recorder:
    """Wraps an object and records which of its attributes are asked for."""

    def __init__(self, target: Any, asked: list[str]) -> None:
        self._target = target
        self._asked = asked

    def __getattr__(self, name: str) -> Any:
        self._asked.append(name)
        attribute = getattr(self._target, name)
        if name == "submit":
            return lambda *args: _Recorder(attribute(*args), self._asked)
        return attribute


def test_grpcs_sync_server_asks_the_pool_only_for_submit_and_add_done_callback() -> None:
    """The grpcio behaviour `WorkerPool` relies on: a call is `submit(behaviour, ...)` and one
    done callback on what it returns; nothing else of the executor interface is used."""
    asked: list[str] = []
    workers = WorkerPool(1, name="pinned")
    server = grpc.server(_Recorder(workers, asked))  # type: ignore[arg-type]
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.S", {"M": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary("/t.S/M", None, None)
            assert [echo(b"x", timeout=WAIT_S) for _ in range(3)] == [b"x"] * 3
    finally:
        server.stop(None).wait(WAIT_S)
        workers.shutdown(timeout=WAIT_S)
    assert set(asked) == {"submit", "add_done_callback"}
    assert workers.submitted == asked.count("submit") >= 3
