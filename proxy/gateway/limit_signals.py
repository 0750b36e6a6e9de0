"""When the proxy itself refuses for a budget, it says when to come back, as a provider would.

A rate-limit or budget 429 from the reserve stage carries Retry-After (and, for rates, OpenAI's
x-ratelimit-* headers) from the store's refusal. A policy denial because a budget is used up (403
budget_exhausted) gets the same: Retry-After until the fullest budget's window resets, and
x-ratelimit-reset-budget in OpenAI's duration format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from proxy.budget import BudgetState
from proxy.budget.ratelimit import format_reset
from proxy.policy.decision import Decision

BUDGET_CODES = frozenset({"budget_exhausted", "budget_exceeded"})


def denial_headers(decision: Decision, states: Iterable[BudgetState], now: float) -> dict[str, str]:
    if not any(reason.code in BUDGET_CODES for reason in decision.reasons):
        return {}
    limited = [s for s in states if s.limit_micros and s.resets_at is not None]
    if not limited:
        return {}
    fullest = max(limited, key=lambda s: s.spent_micros / s.limit_micros)  # type: ignore[operator]
    seconds = max(0.0, fullest.resets_at - now)  # type: ignore[operator]
    return {"Retry-After": str(max(1, math.ceil(seconds))), "x-ratelimit-reset-budget": format_reset(seconds)}
