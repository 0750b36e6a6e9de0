from __future__ import annotations

import pytest

from proxy.budget.ratelimit import RateLimitStatus
from proxy.budget.store import (
    BudgetState,
    Reservation,
    ScopeLimit,
    Target,
    check_limits,
    needs_reservation,
    tightest_states,
)
from proxy.budget.windows import DAY, MONTH


def test_reservation_round_trips_through_its_ledger_form() -> None:
    original = Reservation(
        "id1",
        "req",
        100,
        10,
        1.5,
        601.5,
        (Target("team:a", "month", "2026-11", 9),),
        (("team:a", 1000),),
        RateLimitStatus(10, 9, 6.0),
        local=True,
    )
    assert Reservation.from_dict(original.to_dict()) == original


@pytest.mark.parametrize("scope", ["", "a b", "a|b", "a*", "a?", "x\ny"])
def test_scope_names_that_would_break_store_keys_are_rejected(scope: str) -> None:
    with pytest.raises(ValueError):
        ScopeLimit(scope)


def test_negative_or_zero_rate_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        ScopeLimit("a", limit_micros=-1)
    with pytest.raises(ValueError):
        ScopeLimit("a", requests_per_minute=0)


def test_one_scope_may_have_several_windows_but_rate_limits_once() -> None:
    check_limits([ScopeLimit("a", DAY, 1), ScopeLimit("a", MONTH, 2)])
    with pytest.raises(ValueError, match="rate limits twice"):
        check_limits([ScopeLimit("a", DAY, requests_per_minute=1), ScopeLimit("a", MONTH, requests_per_minute=2)])


def state(window: str, spent: int, limit: int | None) -> BudgetState:
    return BudgetState("a", window, "p", spent, 0, limit, 0, 0, None, None)


def test_state_percent_and_remaining() -> None:
    s = BudgetState("a", "month", "2026-11", 900, 200, 1000, 0, 0, None, None)
    assert s.percent == pytest.approx(110.0) and s.remaining_micros == 0
    assert state("month", 5, None).percent is None and state("month", 5, None).remaining_micros is None


def test_tightest_state_per_scope_is_the_fullest_window() -> None:
    assert tightest_states([state("month", 10, 100), state("day", 9, 10)])["a"].window == "day"


@pytest.mark.parametrize(
    ("limits", "needed"),
    [
        ([], False),
        ([ScopeLimit("team:a"), ScopeLimit("key:k")], False),
        ([ScopeLimit("team:a"), ScopeLimit("app:b", limit_micros=0)], True),
        ([ScopeLimit("team:a", limit_tokens=10)], True),
        ([ScopeLimit("team:a", requests_per_minute=1)], True),
        ([ScopeLimit("team:a", tokens_per_minute=1)], True),
    ],
)
def test_only_a_limit_or_a_rate_needs_a_reservation(limits: list[ScopeLimit], needed: bool) -> None:
    assert needs_reservation(limits) is needed
