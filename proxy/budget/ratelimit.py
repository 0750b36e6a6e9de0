"""Pure per-minute rate limits (GCRA, a token bucket holding one minute of quota) and their headers.

A scope with a limit of L per minute may burst up to L at once and then refills continuously at L/60
per second; unlike a fixed window there is no double burst at a window edge. The only state is one
timestamp (the theoretical arrival time, TAT) per scope and dimension, kept in integer microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

PERIOD_US = 60_000_000


@dataclass(frozen=True, slots=True)
class Gcra:
    allowed: bool
    tat_us: int
    remaining: int
    reset_s: float
    retry_after_s: float


def gcra_take(tat_us: int, now_us: int, limit: int, units: int) -> Gcra:
    """Try to take `units` out of a per-minute `limit`; `tat_us` is the stored state (0 when new)."""
    # Floor per unit so a full minute of single units fits exactly; the caller gains < 1 µs per unit.
    base = max(tat_us, now_us)
    new_tat = base + units * PERIOD_US // limit
    if new_tat - now_us <= PERIOD_US:
        left = (PERIOD_US - (new_tat - now_us)) * limit // PERIOD_US
        return Gcra(True, new_tat, left, (new_tat - now_us) / 1e6, 0.0)
    retry = (new_tat - now_us - PERIOD_US) / 1e6 if units <= limit else PERIOD_US / 1e6
    left = (PERIOD_US - (base - now_us)) * limit // PERIOD_US
    return Gcra(False, tat_us, left, (base - now_us) / 1e6, retry)


def gcra_refund(tat_us: int, now_us: int, limit: int, units: int) -> int:
    """Give back units taken but not used (tokens reserved above the actual count)."""
    return max(now_us, tat_us - refund_us(limit, units))


def refund_us(limit: int, units: int) -> int:
    """How far back giving back `units` of a per-minute `limit` moves the TAT."""
    return units * PERIOD_US // limit


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The tightest scope's per-minute state, per dimension, for OpenAI-style headers."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None


def format_reset(seconds: float) -> str:
    """Go's duration format, as OpenAI sends it: `20ms`, `1s`, `6m0s`, `1h2m3.5s`."""
    ms = max(0, round(seconds * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, frac = divmod(rest, 1000)
    secs = f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)
    text = f"{secs}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def rate_limit_headers(status: RateLimitStatus) -> dict[str, str]:
    headers: dict[str, str] = {}
    for dim, limit, remaining, reset in (
        ("requests", status.limit_requests, status.remaining_requests, status.reset_requests_s),
        ("tokens", status.limit_tokens, status.remaining_tokens, status.reset_tokens_s),
    ):
        if limit is None or remaining is None or reset is None:
            continue
        headers[f"x-ratelimit-limit-{dim}"] = str(limit)
        headers[f"x-ratelimit-remaining-{dim}"] = str(max(0, remaining))
        headers[f"x-ratelimit-reset-{dim}"] = format_reset(reset)
    return headers


def tightest(statuses: list[RateLimitStatus]) -> RateLimitStatus | None:
    """Merge per-scope statuses: for requests and for tokens, the scope with the least quota left."""
    if len(statuses) <= 1:
        return statuses[0] if statuses else None  # the usual case, one rate-limited scope or none

    def pick(dim: str) -> tuple[int | None, int | None, float | None]:
        best: tuple[float, int, int, float] | None = None
        for s in statuses:
            limit, remaining, reset = (
                getattr(s, f"limit_{dim}"),
                getattr(s, f"remaining_{dim}"),
                getattr(s, f"reset_{dim}_s"),
            )
            if limit is None:
                continue
            key = (remaining / limit, remaining, limit, reset)
            if best is None or key[:2] < best[:2]:
                best = key
        return (best[2], best[1], best[3]) if best else (None, None, None)

    requests, tokens = pick("requests"), pick("tokens")
    if requests[0] is None and tokens[0] is None:
        return None
    return RateLimitStatus(*requests, *tokens)
