"""The store the pipeline uses: settles never raise and never get lost; optionally, reserves fail open.

A settle the store cannot take goes to the local ledger and is replayed once the store answers again.
With `fail_open`, a reserve during an outage is granted locally without any limit check (counted in
`fail_open_reserves`; the caller should log it loudly) and `state` reports nothing instead of raising.
With `state_max_age_s`, `state` answers from a read at most that old for the same limits: the policy
input then lags by up to that long, while reserve still enforces every limit exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from proxy.budget import windows
from proxy.budget.errors import StoreUnavailable
from proxy.budget.ledger import Ledger
from proxy.budget.store import (
    DEFAULT_RESERVATION_TTL_S,
    BudgetState,
    BudgetStore,
    Reservation,
    ScopeLimit,
    ScopeUsage,
    check_limits,
    make_reservation,
)
from proxy.ids import new_id

log = structlog.get_logger(__name__)
# How often a healthy store checks the ledger file for entries (its own or another worker's) to replay.
_PENDING_CHECK_S = 1.0
_MAX_CACHED_STATES = 10_000


class LedgeredStore:
    def __init__(
        self,
        inner: BudgetStore,
        ledger: Ledger,
        *,
        fail_open: bool = False,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        state_max_age_s: float = 0.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.inner = inner
        # Told the operation ("state", "reserve", "settle") each time the store fails, whether the
        # failure is raised (fail closed) or absorbed (fail open, ledger): the one place to count them.
        self._on_error = on_error
        self.ledger = ledger
        self.fail_open = fail_open
        self.fail_open_reserves = 0
        self.ledgered_settles = 0
        self._ttl = reservation_ttl_s
        self._replay_task: asyncio.Task[int] | None = None
        self._next_check = 0.0
        self._state_max_age = state_max_age_s
        self._states: dict[tuple[ScopeLimit, ...], tuple[float, dict[str, BudgetState]]] = {}

    async def reserve(
        self,
        request_id: str,
        limits: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None = None,
    ) -> Reservation:
        try:
            reservation = await self.inner.reserve(request_id, limits, cost_micros, tokens, now)
        except StoreUnavailable:
            self._failed("reserve")
            if not self.fail_open:
                raise
            self.fail_open_reserves += 1
            log.warning("budget_reserve_failed_open", request_id=request_id, cost_micros=cost_micros)
            return self._local_reservation(request_id, limits, cost_micros, tokens, now)
        self._maybe_replay()
        return reservation

    def _local_reservation(
        self, request_id: str, limits: Sequence[ScopeLimit], cost_micros: int, tokens: int, now: float | None
    ) -> Reservation:
        check_limits(limits)
        at = time.time() if now is None else now
        periods = [windows.period(limit.window, at) for limit in limits]
        reservation = make_reservation(
            new_id(),
            request_id,
            limits,
            cost_micros,
            tokens,
            at,
            self._ttl,
            [(p.bucket, p.expires_at) for p in periods],
            [None] * len(limits),
        )
        # No refund of per-minute tokens later: nothing was taken from the store's rate state.
        return dataclasses.replace(reservation, token_rates=(), local=True)

    async def settle(self, reservation: Reservation, cost_micros: int, tokens: int) -> None:
        """Never raises: what the store does not take goes to the ledger."""
        try:
            await self.inner.settle(reservation, cost_micros, tokens)
        except Exception as exc:
            self._failed("settle")
            if not isinstance(exc, StoreUnavailable):
                log.exception("budget_settle_failed", reservation=reservation.id)
            await self._to_ledger(reservation, cost_micros, tokens)
            return
        self._maybe_replay()

    async def _to_ledger(self, reservation: Reservation, cost_micros: int, tokens: int) -> None:
        try:
            await asyncio.to_thread(self.ledger.append, reservation, cost_micros, tokens)
        except OSError:
            # Neither store nor disk took it: the one case a spend record is lost, so say so loudly.
            log.exception("budget_spend_lost", reservation=reservation.id, cost_micros=cost_micros, tokens=tokens)
            return
        self.ledgered_settles += 1
        self._next_check = 0.0
        log.warning("budget_settle_ledgered", reservation=reservation.id, cost_micros=cost_micros)

    def _maybe_replay(self) -> None:
        now = time.monotonic()
        if now < self._next_check or (self._replay_task is not None and not self._replay_task.done()):
            return
        self._next_check = now + _PENDING_CHECK_S
        if self.ledger.pending():
            self._replay_task = asyncio.create_task(self.replay())

    async def replay(self) -> int:
        """Replay the ledger into the store now; returns the number of settles replayed."""
        replayed = await self.ledger.replay(self.inner.settle)
        if replayed:
            log.info("budget_ledger_replayed", settles=replayed)
        return replayed

    async def state(self, limits: Sequence[ScopeLimit], now: float | None = None) -> dict[str, BudgetState]:
        at = time.time() if now is None else now
        key = tuple(limits)
        cached = self._states.get(key) if self._state_max_age > 0 else None
        if cached is not None and 0 <= at - cached[0] <= self._state_max_age:
            return dict(cached[1])
        try:
            states = await self.inner.state(limits, now)
        except StoreUnavailable:
            self._failed("state")
            if not self.fail_open:
                raise
            return {}
        if self._state_max_age > 0:
            if len(self._states) >= _MAX_CACHED_STATES:
                self._states.clear()
            self._states[key] = (at, states)
        return dict(states)

    def _failed(self, operation: str) -> None:
        if self._on_error is not None:
            self._on_error(operation)

    async def usage(self, scope_prefix: str | None = None) -> list[ScopeUsage]:
        return await self.inner.usage(scope_prefix)

    async def reset(self, scope: str) -> None:
        await self.inner.reset(scope)

    async def record_event(self, kind: str, fields: dict[str, str | int]) -> None:
        await self.inner.record_event(kind, fields)

    async def events(self, kind: str, since: float) -> list[dict[str, Any]]:
        return await self.inner.events(kind, since)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        if self._replay_task is not None:
            await asyncio.gather(self._replay_task, return_exceptions=True)
        await self.inner.close()
