"""The shadow runner's backlog: a deque shared by serving threads and one worker loses nothing."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from cnm_policy.insights.shadow import ShadowEvaluator, ShadowRunner, ShadowTask
from cnm_policy.model import Decision, Principal, Resource


def test_deque_appends_from_threads_and_poplefts_lose_nothing() -> None:
    """The library behaviour the runner relies on: concurrent append/popleft, exactly once."""
    shared: deque[int] = deque()
    taken: list[int] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or shared:
            while shared:
                taken.append(shared.popleft())

    consumer = threading.Thread(target=consume)
    consumer.start()

    def produce(base: int) -> None:
        for i in range(5000):
            shared.append(base + i)

    bases = range(0, 40_000, 10_000)
    producers = [threading.Thread(target=produce, args=(base,)) for base in bases]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    done.set()
    consumer.join()
    assert sorted(taken) == sorted(
        base + i for base in range(0, 40_000, 10_000) for i in range(5000)
    )


class _Counting:
    """A candidate that answers deny and counts its checks."""

    def __init__(self) -> None:
        self.calls = 0

    def check(
        self, principal: Any, action: Any, resource: Any, context: Any = None, **_: Any
    ) -> Decision:
        self.calls += 1
        return Decision(False, (), "no", "b", "2", "d2")


def test_every_submitted_task_is_compared_once_by_drain_and_close() -> None:
    """Tasks from several threads are each compared once; `drain` waits for them."""
    candidate = _Counting()
    events: list[dict[str, Any]] = []
    runner = ShadowRunner(ShadowEvaluator(lambda: candidate), events.append, linger=10.0)
    live = Decision(True, ("r",), "yes", "b", "1", "d1")
    task = ShadowTask(
        Principal("u", "acme"), "read", Resource("device", "d", "acme"), {}, live, "i"
    )
    threads = [
        threading.Thread(target=lambda: [runner.submit(task) for _ in range(250)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runner.drain()  # wakes the worker at once despite the long linger
    assert (candidate.calls, len(events), runner.compared) == (1000, 1000, 1000)
    runner.close()
