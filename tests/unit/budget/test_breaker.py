"""The store's circuit breaker: opens after N failures in a row, one probe after the cool-down, every
transition logged once and reported."""

from __future__ import annotations

from structlog.testing import capture_logs

from proxy.budget.breaker import Breaker, State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(failures: int = 3, cooldown_s: float = 2.0) -> tuple[Breaker, Clock, list[State]]:
    clock, seen = Clock(), []
    return Breaker("redis", failures=failures, cooldown_s=cooldown_s, clock=clock, on_change=seen.append), clock, seen


def test_opens_after_n_failures_in_a_row_only() -> None:
    b, _, seen = breaker(failures=3)
    b.failed()
    b.failed()
    b.succeeded()  # a success in between starts the count again
    b.failed()
    b.failed()
    assert b.closed and seen == []
    b.failed()
    assert b.state == "open" and not b.closed and not b.admits()
    assert seen == ["open"]


def test_failures_while_open_change_nothing() -> None:
    b, _, seen = breaker(failures=1)
    b.failed()
    for _ in range(10):
        b.failed()
    assert seen == ["open"]


def test_one_probe_after_the_cooldown_closes_it_on_success() -> None:
    b, clock, seen = breaker(failures=1, cooldown_s=2.0)
    b.failed()
    assert not b.probe_due() and b.seconds_to_probe() == 2.0
    clock.now += 1.999
    assert not b.probe_due()
    clock.now += 0.001
    assert b.probe_due()
    b.probing()
    # Half-open: callers still take the fast path, but calls already queued may go to the store.
    assert b.state == "half_open" and not b.closed and b.admits() and not b.probe_due()
    b.probe_succeeded()
    assert b.closed and seen == ["open", "half_open", "closed"]


def test_a_failed_probe_reopens_for_a_whole_cooldown() -> None:
    b, clock, seen = breaker(failures=1, cooldown_s=2.0)
    b.failed()
    clock.now += 5
    b.probing()
    clock.now += 1
    b.probe_failed()
    assert b.state == "open" and b.seconds_to_probe() == 2.0
    assert seen == ["open", "half_open", "open"]


def test_after_closing_it_takes_n_new_failures_to_open_again() -> None:
    b, clock, _ = breaker(failures=2)
    b.failed()
    b.failed()
    clock.now += 3
    b.probing()
    b.probe_succeeded()
    b.failed()
    assert b.closed


def test_each_transition_is_one_log_event_naming_the_store() -> None:
    b, clock, _ = breaker(failures=1)
    with capture_logs() as logs:
        b.failed()
        clock.now += 3
        b.probing()
        b.probe_succeeded()
    assert [(e["event"], e["store"], e["previous"], e["state"], e["log_level"]) for e in logs] == [
        ("budget_store_circuit", "redis", "closed", "open", "warning"),
        ("budget_store_circuit", "redis", "open", "half_open", "info"),
        ("budget_store_circuit", "redis", "half_open", "closed", "info"),
    ]
