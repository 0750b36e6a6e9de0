"""Spend accounting, budgets and per-minute rate limits that hold across worker processes and replicas.

The flow, as the pipeline drives it:

1. Before forwarding, the pipeline prices the worst case (`pricing.worst_case_micros`: prompt estimate
   plus max output tokens) and calls `store.state(limits)` for the policy input; the policy decision or
   config gives the `ScopeLimit`s (key, user, app, team, global; day, month or rolling windows).
2. `store.reserve(request_id, limits, cost, tokens)` holds the cost on every scope in ONE atomic step
   (one Lua script on Redis, one BEGIN IMMEDIATE transaction on SQLite, shared with the other writes of
   the same loop iteration), checking spent + held + cost against each limit and the per-minute request
   and token rates. If anything does not fit, nothing is held anywhere and it raises `BudgetExceeded` or
   `RateLimited` (429 with Retry-After). A decision that names no limit needs no hold: `store.record`
   adds the spend afterwards instead (step 4).
3. The response is forwarded; `reservation.rate` renders as OpenAI's x-ratelimit-* headers.
4. `store.settle(reservation, actual_cost, actual_tokens)` (in a `finally`, shielded from cancellation;
   zero after an upstream error) commits the actual cost into the windows current at reserve time and
   releases the hold. Settling one reservation twice counts once.
5. A live request's hold is renewed every third of its TTL; a hold whose process died is reaped after it.
6. Store faults (`ledgered.LedgeredStore`): a circuit breaker stops calls to a failing store; reserves
   then fail closed (503) or open (granted locally); settles, records and the cancels that compensate
   reserves with an unknown outcome go to the local `Ledger` and are replayed when the store is back.
"""

from __future__ import annotations

from proxy.budget.errors import BudgetExceeded, RateLimited, StoreUnavailable
from proxy.budget.ledger import Ledger
from proxy.budget.ledgered import LedgeredStore
from proxy.budget.pricing import Prices, cost_micros, usd_to_micros, worst_case_micros
from proxy.budget.ratelimit import RateLimitStatus, format_reset, rate_limit_headers
from proxy.budget.store import (
    Backend,
    BudgetState,
    BudgetStore,
    Readiness,
    Reservation,
    ScopeLimit,
    ScopeUsage,
    needs_reservation,
)
from proxy.budget.windows import DAY, MONTH, Window

__all__ = [
    "DAY",
    "MONTH",
    "Backend",
    "BudgetExceeded",
    "BudgetState",
    "BudgetStore",
    "Ledger",
    "LedgeredStore",
    "Prices",
    "RateLimitStatus",
    "RateLimited",
    "Readiness",
    "Reservation",
    "ScopeLimit",
    "ScopeUsage",
    "StoreUnavailable",
    "Window",
    "cost_micros",
    "format_reset",
    "needs_reservation",
    "rate_limit_headers",
    "usd_to_micros",
    "worst_case_micros",
]
