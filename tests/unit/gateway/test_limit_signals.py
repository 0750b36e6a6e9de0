"""A 403 for a used-up budget says when to come back: Retry-After until the fullest budget's window resets."""

from __future__ import annotations

from proxy.budget import BudgetState
from proxy.gateway.limit_signals import denial_headers
from proxy.policy.decision import Decision, Reason


def state(scope: str, spent: int, limit: int | None, resets_at: float | None) -> BudgetState:
    return BudgetState(scope, "day", "b", spent, 0, limit, 0, 0, None, resets_at)


def test_budget_denial_waits_for_the_fullest_budgets_reset() -> None:
    decision = Decision(allow=False, reasons=(Reason("budget_exhausted", "budget team:a is exhausted"),))
    states = [state("team:a", 120, 100, 1_000.0 + 90.5), state("app:b", 10, 100, 1_000.0 + 5)]
    assert denial_headers(decision, states, now=1_000.0) == {"Retry-After": "91", "x-ratelimit-reset-budget": "1m30.5s"}


def test_other_denials_carry_no_retry_after() -> None:
    decision = Decision(allow=False, reasons=(Reason("pii_blocked", "no"),))
    assert denial_headers(decision, [state("team:a", 120, 100, 1_090.0)], now=1_000.0) == {}
