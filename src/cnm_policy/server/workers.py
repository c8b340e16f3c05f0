"""The sidecar's worker threads: the little grpc's synchronous server needs from a thread pool.

grpc's sync server hands every call to ``thread_pool.submit(behaviour, ...)`` and registers one
done callback on what it gets back (to count the calls in flight); that is all it asks of the
pool. The standard `concurrent.futures.ThreadPoolExecutor` does far more on every call: a
`Future` with its own `threading.Condition`, an idle-thread semaphore probed on submit and
released after each task (both through Python-level conditions), two locks on submit. Under
load that is tens of thousands of interpreter instructions per call, all under the GIL that the
calls themselves need.

`WorkerPool` runs a fixed number of threads on one C-level queue; a `Job` runs its function
once and each of its done callbacks exactly once. Nothing else: no results or exceptions to
wait for (grpc never asks), no cancellation (grpc cancels calls, not jobs).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Final

import structlog

__all__ = ["Job", "WorkerPool"]

_log = structlog.get_logger(__name__)
_STOP: Final = None  # one per thread, queued by `shutdown`


class Job:
    """One submitted call; its done callbacks run once it has finished, each exactly once.

    Lock-free under the GIL: the worker marks the job finished and then drains the callback
    list, and `add_done_callback` appends and then drains if the job has finished. Every
    callback is taken off the list by exactly one atomic ``list.pop``, by whichever thread gets
    to it first, so none runs twice and none is left behind.
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
        """Run the function, then the done callbacks (a pool thread calls this, once)."""
        try:
            self.function(*self.args)
        except BaseException as exc:  # a worker thread outlives any job
            # grpc's own call wrapper catches and reports everything a handler raises, so this
            # is grpc itself failing: say so, and keep serving.
            self.exception = exc
            _log.error("worker_job_failed", error=repr(exc))
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
            except Exception as exc:  # one failing callback skips no other
                _log.error("worker_callback_failed", error=repr(exc))


class WorkerPool:
    """`workers` threads running submitted jobs in order of submission.

    Threads start with the first job (a pool that never serves starts none) and are daemons,
    so a process that exits without `shutdown` does not hang on them; `Sidecar.stop` shuts the
    pool down once the server has drained its calls.
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

    def submit(self, function: Callable[..., Any], *args: Any) -> Job:
        """Queue ``function(*args)``; raises RuntimeError once the pool is shut down."""
        if self._closed:
            raise RuntimeError("cannot submit to a worker pool that was shut down")
        if not self._threads:
            self._start()
        job = Job(function, args)
        self._queue.put(job)
        return job

    def shutdown(self, wait: bool = True) -> None:
        """Refuse new jobs, let the threads finish what is queued, and stop them.

        With `wait`, returns once every thread has stopped; a job that raced past the refusal
        is then run here, so no submitted job is left without its callbacks.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(_STOP)
        if not wait:
            return
        for thread in threads:
            thread.join()
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not _STOP:
                job.run()

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._closed:
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
            if job is None:
                return
            job.run()
