"""The budget store protocol and the typed values that cross it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from proxy.budget.pricing import micros_to_usd
from proxy.budget.ratelimit import RateLimitStatus, tightest
from proxy.budget.windows import MONTH, Window

# The default upstream connect + first-byte timeouts: how long a request may wait before anything comes back.
DEFAULT_RESERVATION_TTL_S = 125.0
# A settle marker must outlive any ledger replay, which can follow a long outage.
SETTLED_MARKER_TTL_S = 7 * 86400
EVENT_RETENTION = 10_000


@dataclass(frozen=True, slots=True)
class ScopeLimit:
    """One scope's limits for one request, from the policy decision or config; None means unlimited."""

    scope: str
    window: Window = MONTH
    limit_micros: int | None = None
    limit_tokens: int | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        # Space, newline and `|` separate fields in store keys and records; glob characters would turn
        # an admin reset's key pattern into a wildcard.
        if not self.scope or any(c in self.scope for c in "\n\r |*?[]\\"):
            raise ValueError(f"bad scope name {self.scope!r}")
        for name in ("limit_micros", "limit_tokens", "requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("requests_per_minute", "tokens_per_minute"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be positive or None")

    @property
    def has_rate(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None


def needs_reservation(limits: Sequence[ScopeLimit]) -> bool:
    """Whether any limit (USD, tokens or a per-minute rate) must be checked before forwarding; if none,
    `record` the spend afterwards instead of reserving and settling."""
    return any(
        limit.limit_micros is not None
        or limit.limit_tokens is not None
        or limit.requests_per_minute is not None
        or limit.tokens_per_minute is not None
        for limit in limits
    )


def check_limits(limits: Sequence[ScopeLimit]) -> None:
    """A scope may carry several windows, but only one entry may carry its per-minute rate limits."""
    if len({limit.scope for limit in limits}) == len(limits):
        return  # the usual case, checked on every call: each scope once, so nothing can be there twice
    windows: set[tuple[str, Window]] = set()
    rated: set[str] = set()
    for limit in limits:
        if (limit.scope, limit.window) in windows:
            raise ValueError(f"scope {limit.scope} has window {limit.window} twice")
        windows.add((limit.scope, limit.window))
        if limit.has_rate:
            if limit.scope in rated:
                raise ValueError(f"scope {limit.scope} has rate limits twice")
            rated.add(limit.scope)


@dataclass(frozen=True, slots=True)
class Target:
    """A counter a settle commits into: the window bucket current when the reservation was made."""

    scope: str
    window: str
    bucket: str
    expires_at: int


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    request_id: str
    cost_micros: int
    tokens: int
    reserved_at: float
    expires_at: float
    targets: tuple[Target, ...]
    # (scope, tokens_per_minute) pairs, so a settle can give back tokens reserved but not used.
    token_rates: tuple[tuple[str, int], ...] = ()
    rate: RateLimitStatus | None = None
    # Made without the store (fail-open during an outage): nothing is held for it in the store.
    local: bool = False
    # No limit or rate applied, so nothing was held: the settle records the spend on these scopes instead
    # (one store write per request, not two). None for a reservation held in the store.
    record_on_settle: tuple[ScopeLimit, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reservation:
        rate = data.get("rate")
        return cls(
            id=data["id"],
            request_id=data["request_id"],
            cost_micros=int(data["cost_micros"]),
            tokens=int(data["tokens"]),
            reserved_at=float(data["reserved_at"]),
            expires_at=float(data["expires_at"]),
            targets=tuple(Target(**t) for t in data["targets"]),
            token_rates=tuple((s, int(n)) for s, n in data.get("token_rates", ())),
            rate=RateLimitStatus(**rate) if rate else None,
            local=bool(data.get("local", False)),
        )


@dataclass(frozen=True, slots=True)
class BudgetState:
    scope: str
    window: str
    bucket: str
    spent_micros: int
    reserved_micros: int
    limit_micros: int | None
    tokens: int
    reserved_tokens: int
    limit_tokens: int | None
    resets_at: float | None

    @property
    def remaining_micros(self) -> int | None:
        if self.limit_micros is None:
            return None
        return max(0, self.limit_micros - self.spent_micros - self.reserved_micros)

    @property
    def percent(self) -> float | None:
        """Share of the USD limit (or, with none, the token limit) spent or held, 0-100+."""
        if self.limit_micros:
            return 100.0 * (self.spent_micros + self.reserved_micros) / self.limit_micros
        if self.limit_tokens:
            return 100.0 * (self.tokens + self.reserved_tokens) / self.limit_tokens
        return None

    def to_policy(self) -> dict[str, Any]:
        """The shape the policy input's `budget` object carries per scope."""
        remaining = self.remaining_micros
        return {
            "window": self.window,
            "period": self.bucket,
            "limit_usd": None if self.limit_micros is None else micros_to_usd(self.limit_micros),
            "spent_usd": micros_to_usd(self.spent_micros),
            "reserved_usd": micros_to_usd(self.reserved_micros),
            "remaining_usd": None if remaining is None else micros_to_usd(remaining),
            "percent": self.percent,
            "tokens": self.tokens,
            "limit_tokens": self.limit_tokens,
            "resets_at": self.resets_at,
        }


@dataclass(frozen=True, slots=True)
class ScopeUsage:
    """A scope the store has seen, with the limits it was last reserved under and its current state."""

    limit: ScopeLimit
    state: BudgetState = field(compare=False)


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether requests can be served with budgets as configured, and the store's circuit state."""

    ready: bool
    circuit: str  # closed | half_open | open


class BudgetStore(Protocol):
    """What the request path and the admin routes use (`LedgeredStore`): never waits on a store known to fail."""

    async def state(self, limits: Sequence[ScopeLimit], now: float | None = None) -> dict[str, BudgetState]:
        """Per scope name, the window closest to its limit; one round trip."""
        ...

    async def reserve(
        self,
        request_id: str,
        limits: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None = None,
    ) -> Reservation:
        """Hold `cost_micros` and `tokens` on every scope at once, or raise and hold nothing."""
        ...

    async def settle(self, reservation: Reservation, cost_micros: int, tokens: int) -> None:
        """Commit the actual cost and release the hold; a second settle of one id is a no-op."""
        ...

    async def record(
        self, scopes: Sequence[ScopeLimit], cost_micros: int, tokens: int, now: float | None = None
    ) -> None:
        """Add spend to scopes without a reservation: for scopes with no limit, which need no hold."""
        ...

    async def usage(self, scope_prefix: str | None = None) -> list[ScopeUsage]: ...

    async def reset(self, scope: str) -> None: ...

    async def readiness(self) -> Readiness: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    """A store itself (`SqliteStore`, `RedisStore`): every call goes to it; ids make retries harmless."""

    # Whether a call that raised may still have taken effect (a timeout on a network store): then a record
    # that may be replayed from the ledger later must carry its id on the first attempt too.
    failures_may_apply: bool

    async def state(self, limits: Sequence[ScopeLimit], now: float | None = None) -> dict[str, BudgetState]: ...

    async def reserve(
        self,
        request_id: str,
        limits: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None = None,
        *,
        reservation_id: str | None = None,
    ) -> Reservation:
        """As `BudgetStore.reserve`; a second reserve of one id holds nothing more, and one whose id was
        cancelled or settled holds nothing at all (StoreUnavailable)."""
        ...

    async def settle(self, reservation: Reservation, cost_micros: int, tokens: int) -> None: ...

    async def record(
        self,
        scopes: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None = None,
        *,
        record_id: str | None = None,
    ) -> None:
        """As `BudgetStore.record`; with an id, a second record of it counts once."""
        ...

    async def cancel(self, reservation_ids: Sequence[str]) -> None:
        """Release these holds and mark the ids done, so a reserve of one that lands later holds nothing."""
        ...

    async def renew(self, reservation_ids: Sequence[str]) -> None:
        """Push the expiry of these holds (those still held) to a full TTL from now."""
        ...

    async def usage(self, scope_prefix: str | None = None) -> list[ScopeUsage]: ...

    async def reset(self, scope: str) -> None: ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store would take a write now."""
        ...

    async def close(self) -> None: ...


def tightest_states(states: Sequence[BudgetState]) -> dict[str, BudgetState]:
    """One state per scope name: the window with the highest percent used."""
    out: dict[str, BudgetState] = {}
    for s in states:
        held = out.get(s.scope)
        if held is None or (s.percent or 0.0) > (held.percent or 0.0):
            out[s.scope] = s
    return out


def rate_status(row: Sequence[int]) -> RateLimitStatus | None:
    """A scope's (rpm, left, reset_us, tpm, left, reset_us) row, -1 meaning no limit, as a status."""
    rpm, left_r, reset_r, tpm, left_t, reset_t = row
    if rpm < 0 and tpm < 0:
        return None
    return RateLimitStatus(
        rpm if rpm >= 0 else None,
        left_r if rpm >= 0 else None,
        reset_r / 1e6 if rpm >= 0 else None,
        tpm if tpm >= 0 else None,
        left_t if tpm >= 0 else None,
        reset_t / 1e6 if tpm >= 0 else None,
    )


def make_reservation(
    reservation_id: str,
    request_id: str,
    limits: Sequence[ScopeLimit],
    cost_micros: int,
    tokens: int,
    reserved_at: float,
    ttl_s: float,
    periods: Sequence[tuple[str, int]],
    rates: Sequence[RateLimitStatus | None],
) -> Reservation:
    """Assemble what a store granted: per limit, the (bucket, expires_at) to commit into and rate state."""
    return Reservation(
        id=reservation_id,
        request_id=request_id,
        cost_micros=cost_micros,
        tokens=tokens,
        reserved_at=reserved_at,
        expires_at=reserved_at + ttl_s,
        targets=tuple(
            Target(limit.scope, str(limit.window), bucket, expires_at)
            for limit, (bucket, expires_at) in zip(limits, periods, strict=True)
        ),
        token_rates=tuple(
            (limit.scope, limit.tokens_per_minute) for limit in limits if limit.tokens_per_minute is not None
        ),
        rate=tightest([r for r in rates if r is not None]),
    )
