"""Freshness and readiness: stale past the max age, ready only while started, fresh, running."""

from __future__ import annotations

from cnm_policy.ops.health import Freshness, Readiness


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_without_a_max_age_nothing_is_ever_stale() -> None:
    """No --max-policy-age: never stale, however old the last confirmation."""
    freshness = Freshness(None, lambda: 0.0, clock=Clock())
    assert (freshness.refresh(), freshness.stale) == (False, False)


def test_stale_past_the_max_age_and_fresh_again_after_a_confirmation() -> None:
    """Older than the max age is stale; a new confirmation makes it fresh again."""
    clock, confirmed = Clock(), [1000.0]
    freshness = Freshness(60.0, lambda: confirmed[0], clock=clock)
    clock.now = 1060.0
    assert freshness.refresh() is False
    clock.now = 1060.5
    assert (freshness.refresh(), freshness.age()) == (True, 60.5)
    confirmed[0] = 1060.0
    assert freshness.refresh() is False


def test_never_confirmed_is_stale() -> None:
    """No confirmation at all is as stale as it gets."""
    assert Freshness(1.0, lambda: None, clock=Clock()).refresh() is True


def test_the_stale_error_says_how_old_and_which_limit() -> None:
    """The caller learns the age and the flag, with the stable code policy_stale."""
    clock = Clock()
    freshness = Freshness(600.0, lambda: 100.0, clock=clock)
    error = freshness.error()
    assert (error.code, str(error)) == (
        "policy_stale",
        "the serving policy was last confirmed by its source 900s ago, longer than "
        "--max-policy-age (600s) ago: refusing to decide",
    )


def test_readiness_reports_each_change_once() -> None:
    """starting -> ok -> policy_stale -> ok -> stopping, each change reported once."""
    clock, confirmed = Clock(), [1000.0]
    changes: list[bool] = []
    readiness = Readiness(Freshness(10.0, lambda: confirmed[0], clock=clock), changes.append)
    assert readiness.check() == (False, "starting")
    readiness.started()
    assert readiness.check() == (True, "ok")
    clock.now = 1011.0
    assert readiness.check() == (False, "policy_stale")
    confirmed[0] = 1011.0
    assert readiness.check() == (True, "ok")
    readiness.stopping()
    confirmed[0] = 2000.0
    assert readiness.check() == (False, "stopping")
    assert changes == [True, False, True, False]


def test_a_sidecar_stale_from_its_start_reports_not_ready_at_once() -> None:
    """Stale when started: the listeners' own SERVING is overturned by one report of False."""
    clock = Clock()
    changes: list[bool] = []
    readiness = Readiness(Freshness(10.0, lambda: 900.0, clock=clock), changes.append)
    assert readiness.check() == (False, "starting")
    readiness.started()
    assert (readiness.check(), changes) == ((False, "policy_stale"), [False])


def test_started_reports_ready_once_even_after_a_probe_while_starting() -> None:
    """A probe while starting reports nothing; started() reports True once, later checks none."""
    changes: list[bool] = []
    readiness = Readiness(Freshness(10.0, lambda: 1000.0, clock=Clock()), changes.append)
    readiness.check()
    readiness.started()
    readiness.check()
    assert changes == [True]
