"""Budget and rate-limit refusals, and the store outage the pipeline turns into a 503."""

from __future__ import annotations

from proxy.errors import TooManyRequests, Unavailable

from .ratelimit import format_reset


class BudgetExceeded(TooManyRequests):
    default_code = "budget_exceeded"

    def __init__(self, scope: str, message: str, *, retry_after_s: float) -> None:
        # The same signal as a policy's budget_exhausted 403 (gateway/limit_signals.py): when the window resets.
        super().__init__(message, retry_after_s=retry_after_s,
                         headers={"x-ratelimit-reset-budget": format_reset(retry_after_s)})
        self.scope = scope


class RateLimited(TooManyRequests):
    default_code = "rate_limit_exceeded"

    def __init__(self, scope: str, message: str, *, retry_after_s: float,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message, retry_after_s=retry_after_s, headers=headers)
        self.scope = scope


class StoreUnavailable(Unavailable):
    """The store did not answer. `maybe_applied`: the call was sent and may still take effect (a timeout or a
    connection lost mid-call), so a reserve needs a compensating cancel; otherwise it certainly did not."""

    default_code = "budget_store_unavailable"

    def __init__(self, message: str, *, maybe_applied: bool = False) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


def refusal(kind: str, scope: str, retry_after_s: float, dimension: str, limit: int, window: str) -> Exception:
    """The exception for a refused reserve, worded the same whichever store refused it."""
    if kind == "rate":
        unit = "requests" if dimension == "requests" else "tokens"
        # OpenAI's limit headers on the proxy's own 429, as the provider would send them with its own.
        headers = {f"x-ratelimit-limit-{unit}": str(limit), f"x-ratelimit-remaining-{unit}": "0",
                   f"x-ratelimit-reset-{unit}": format_reset(retry_after_s)}
        return RateLimited(
            scope, f"Rate limit reached for {scope}: {limit} {unit} per minute.", retry_after_s=retry_after_s,
            headers=headers,
        )
    amount = f"{_usd(limit)} USD" if dimension == "usd" else f"{limit} tokens"
    return BudgetExceeded(
        scope, f"Budget exceeded for {scope}: limit {amount} per {window} window.", retry_after_s=retry_after_s
    )


def _usd(micros: int) -> str:
    text = f"{micros / 1_000_000:.6f}".rstrip("0")
    return text + "0" * max(0, 2 - len(text.partition(".")[2]))
