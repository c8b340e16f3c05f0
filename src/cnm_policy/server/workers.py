"""The sidecar's worker threads: the little that grpc's synchronous server needs from a pool.

grpc only calls ``submit(behaviour, ...)`` and adds one done callback to what it gets back; a
fixed set of daemon threads on one C-level queue serves that, and never holds up the exit.
Why it is kept over the standard executor (measured; pinned by a test): docs/design/
sidecar-wire.md.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import structlog

__all__ = ["Job", "WorkerPool"]

_log = structlog.get_logger(__name__)
_STOP: Final = None  # one per thread, queued by `shutdown`
_REFUSED: Final = "cannot submit to a worker pool that was shut down"


class Job:
    """One submitted call; its done callbacks run once it has finished, each exactly once.

    Lock-free under the GIL: the worker marks the job finished and then drains the callback
    list, and `add_done_callback` appends and then drains if the job has finished. Every
    callback is taken off the list by exactly one atomic ``list.pop``, by whichever thread gets
    to it first, so none runs twice; and one appended before the job was marked finished is
    drained by the worker, one appended after by `add_done_callback` itself, so none is left
    behind. Callbacks run newest first (grpc registers one per job).
    """

    __slots__ = ("_callbacks", "_finished", "args", "exception", "function")

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.function = function
        self.args = args
        self.exception: BaseException | None = None  # what the function raised, if anything
        self._callbacks: list[Callable[[Job], Any]] = []
        self._finished = False

    def add_done_callback(self, callback: Callable[[Job], Any]) -> None:
        """Call ``callback(job)`` once the job has finished (now, if it already has)."""
        self._callbacks.append(callback)
        if self._finished:
            self._run_callbacks()

    def done(self) -> bool:
        """Whether the function has returned or raised."""
        return self._finished

    def run(self) -> None:
        """Run the function, then the done callbacks (a pool thread calls this, once).

        Whatever the function raises, the job is marked finished and its callbacks run:
        grpc counts its calls in flight by them.
        """
        try:
            self.function(*self.args)
        except BaseException as exc:  # a worker thread outlives any job
            # grpc's own call wrapper catches and reports everything a handler raises, so this
            # is grpc itself failing: say so, and keep serving.
            self.exception = exc
            _report("worker_job_failed", exc)
        finally:
            self._finished = True
            self._run_callbacks()

    def _run_callbacks(self) -> None:
        callbacks = self._callbacks
        while True:
            try:
                callback = callbacks.pop()
            except IndexError:
                return
            try:
                callback(self)
            except BaseException as exc:  # one failing callback skips no other
                _report("worker_callback_failed", exc)


def _report(event: str, error: BaseException) -> None:
    """Log a failure on a worker thread; a log that fails too must not take the thread down."""
    with contextlib.suppress(Exception):  # nowhere left to report to
        _log.error(event, error=repr(error))


class WorkerPool:
    """`workers` threads running submitted jobs in order of submission.

    Threads start with the first job (a pool that never serves starts none) and are daemons,
    so a process that exits without `shutdown`, or with a job stuck, does not hang on them;
    `Sidecar.stop` shuts the pool down once the server has stopped its calls.
    """

    def __init__(self, workers: int, *, name: str = "worker") -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one thread")
        self._workers = workers
        self._name = name
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()  # starting and stopping; never taken per job
        self._closed = False
        # Jobs accepted so far (grpc submits from its one polling thread; the drain reads it).
        self.submitted = 0

    def submit(self, function: Callable[..., Any], *args: Any) -> Job:
        """Queue ``function(*args)``; raises RuntimeError once the pool is shut down."""
        if self._closed:
            raise RuntimeError(_REFUSED)
        if not self._threads:
            self._start()
        job = Job(function, args)
        self._queue.put(job)
        self.submitted += 1
        return job

    def shutdown(self, timeout: float | None = None) -> bool:
        """Refuse new jobs, let the threads finish what is queued, and stop them.

        Waits at most `timeout` seconds (``None``: for as long as it takes) and returns whether
        every thread stopped. When they all did, a job that raced past the refusal is run here,
        so that none is left without its callbacks; threads still busy after `timeout` (a
        stuck job) are daemons and never hold up the process's exit.
        """
        with self._lock:
            first = not self._closed
            self._closed = True
            threads = list(self._threads)
        if first:  # a later call only waits again
            for _ in threads:
                self._queue.put(_STOP)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in threads):
            return False
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return True
            if job is not _STOP:
                job.run()

    def _start(self) -> None:
        with self._lock:
            if self._closed:  # shut down between submit's check and here
                raise RuntimeError(_REFUSED)
            if self._threads:
                return
            for index in range(self._workers):
                thread = threading.Thread(
                    target=self._serve, name=f"{self._name}-{index}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        get = self._queue.get
        while True:
            job = get()
            if job is _STOP:
                return
            try:
                job.run()
            except BaseException as exc:  # run() reports its own failures; this is a last guard
                _report("worker_job_failed", exc)
