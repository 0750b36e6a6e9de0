"""The store the request path uses: it never waits on a store known to be failing, never loses a settle, and
leaves no hold behind a store fault for longer than it takes the store to answer again.

- A circuit breaker (`breaker.py`): after N failures in a row nothing is sent to the store until a probe
  succeeds. Meanwhile a reserve is granted locally at once (`fail_open`) or refused at once (503), and a
  settle or record goes straight to the ledger.
- A reserve carries an id of ours. When its outcome is unknown (a timeout, a lost connection, the caller
  cancelled), a compensating cancel of that id goes to the ledger: replayed, it releases the hold if the
  reserve landed, and makes a reserve that lands even later hold nothing.
- What the store does not take (settles, records, cancels) goes to the local `Ledger`, replayed after the
  probe that closes the circuit, and within a second of any later successful call.
- The holds of requests still running are renewed every third of the TTL, so a hold outlives its request
  only when its process dies, and then by at most the TTL: the store reaps it.
With `state_max_age_s`, `state` answers from a read at most that old for the same limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import structlog

from proxy.budget import windows
from proxy.budget.breaker import Breaker
from proxy.budget.errors import BudgetExceeded, RateLimited, StoreUnavailable
from proxy.budget.ledger import Cancel, Entry, Ledger, Record, Settle
from proxy.budget.store import (
    DEFAULT_RESERVATION_TTL_S,
    Backend,
    BudgetState,
    Readiness,
    Reservation,
    ScopeLimit,
    ScopeUsage,
    check_limits,
    make_reservation,
    needs_reservation,
)
from proxy.ids import new_id

log = structlog.get_logger(__name__)
# How often the ledger file is checked for entries (this worker's or another's) to replay.
_PENDING_CHECK_S = 1.0
_MAX_CACHED_STATES = 10_000


class LedgeredStore:
    def __init__(
        self,
        inner: Backend,
        ledger: Ledger,
        *,
        fail_open: bool = False,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        state_max_age_s: float = 0.0,
        on_error: Callable[[str], None] | None = None,
        breaker: Breaker | None = None,
    ) -> None:
        self.inner = inner
        self.ledger = ledger
        self.fail_open = fail_open
        self.breaker = breaker or Breaker("store")
        # Told the operation each time the store fails, whether the failure is raised (fail closed) or
        # absorbed (fail open, ledger): the one place to count them. Calls the open circuit saved are not.
        self._on_error = on_error
        self.fail_open_reserves = 0
        self.ledgered_settles = 0
        self.compensations = 0
        self._ttl = reservation_ttl_s
        self._live: dict[str, None] = {}  # ids of the holds this process made and has not settled
        self._tasks: set[asyncio.Task[Any]] = set()
        self._upkeep: asyncio.Task[None] | None = None
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
        self._start()
        if not needs_reservation(limits):
            return _record_on_settle(request_id, limits, cost_micros, tokens, now)
        if not self.breaker.closed:
            return self._unavailable(request_id, limits, cost_micros, tokens, now, _circuit_open())
        rid = new_id()
        try:
            reservation = await self.inner.reserve(request_id, limits, cost_micros, tokens, now, reservation_id=rid)
        except (BudgetExceeded, RateLimited):
            self._succeeded()
            raise
        except StoreUnavailable as exc:
            self._failed("reserve")
            if exc.maybe_applied:
                self._compensate(rid)
            return self._unavailable(request_id, limits, cost_micros, tokens, now, exc)
        except asyncio.CancelledError:
            self._compensate(rid)  # the client left mid-call: the reserve may have landed all the same
            raise
        self._succeeded()
        self._live[rid] = None
        return reservation

    def _unavailable(
        self,
        request_id: str,
        limits: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None,
        exc: StoreUnavailable,
    ) -> Reservation:
        if not self.fail_open:
            raise exc
        self.fail_open_reserves += 1
        log.warning(
            "budget_reserve_failed_open", request_id=request_id, cost_micros=cost_micros, circuit=self.breaker.state
        )
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
        # Nothing is held in the store, and no per-minute tokens taken there to refund at settle.
        return dataclasses.replace(reservation, token_rates=(), local=True)

    def _compensate(self, reservation_id: str) -> None:
        self.compensations += 1
        log.warning("budget_reserve_compensated", reservation=reservation_id)
        self._spawn(self._to_ledger(Cancel(reservation_id)))

    async def settle(self, reservation: Reservation, cost_micros: int, tokens: int) -> None:
        """Never raises: what the store does not take goes to the ledger."""
        if reservation.record_on_settle is not None:
            if reservation.record_on_settle:
                await self.record(reservation.record_on_settle, cost_micros, tokens, reservation.reserved_at)
            return
        self._live.pop(reservation.id, None)
        if await self._attempt("settle", lambda: self.inner.settle(reservation, cost_micros, tokens)):
            return
        self.ledgered_settles += 1
        await self._to_ledger(Settle(reservation, cost_micros, tokens))

    async def record(
        self, scopes: Sequence[ScopeLimit], cost_micros: int, tokens: int, now: float | None = None
    ) -> None:
        """Never raises: what the store does not take goes to the ledger, with an id that makes it count once."""
        self._start()
        entry = Record(new_id(), tuple(scopes), cost_micros, tokens, time.time() if now is None else now)
        # The id keeps a replayed record from counting twice. The first attempt needs it only where a failure
        # may have applied: a store that fails cleanly leaves nothing for the ledger's copy to repeat, and the
        # once-only mark is a third of a tracking record's writes.
        first_id = entry.record_id if self.inner.failures_may_apply else None
        call = lambda: self.inner.record(scopes, cost_micros, tokens, now, record_id=first_id)  # noqa: E731
        if not await self._attempt("record", call):
            await self._to_ledger(entry)

    async def _attempt(self, operation: str, call: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        if not self.breaker.closed:
            return False
        try:
            await call()
        except StoreUnavailable:
            self._failed(operation)
            return False
        except Exception:
            self._failed(operation)
            log.exception(f"budget_{operation}_failed")
            return False
        self._succeeded()
        return True

    async def _to_ledger(self, entry: Entry) -> None:
        try:
            await self.ledger.write(entry)
        except OSError:
            # Neither store nor disk took it: the one case a record is lost, so say so loudly.
            log.exception("budget_spend_lost", entry=type(entry).__name__.lower())
            return
        self._next_check = 0.0
        if isinstance(entry, Settle):
            log.warning("budget_settle_ledgered", reservation=entry.reservation.id, cost_micros=entry.cost_micros)

    async def state(self, limits: Sequence[ScopeLimit], now: float | None = None) -> dict[str, BudgetState]:
        self._start()
        at = time.time() if now is None else now
        key = tuple(limits)
        cached = self._states.get(key) if self._state_max_age > 0 else None
        if cached is not None and 0 <= at - cached[0] <= self._state_max_age:
            return dict(cached[1])
        try:
            if not self.breaker.closed:
                raise _circuit_open()
            try:
                states = await self.inner.state(limits, now)
            except StoreUnavailable:
                self._failed("state")
                raise
        except StoreUnavailable:
            if not self.fail_open:
                raise
            return {}
        self._succeeded()
        if self._state_max_age > 0:
            if len(self._states) >= _MAX_CACHED_STATES:
                self._states.clear()
            self._states[key] = (at, states)
        return dict(states)

    def _failed(self, operation: str) -> None:
        self.breaker.failed()
        if self._on_error is not None:
            self._on_error(operation)

    def _succeeded(self) -> None:
        self.breaker.succeeded()
        now = time.monotonic()
        if now < self._next_check or (self._replay_task is not None and not self._replay_task.done()):
            return
        self._next_check = now + _PENDING_CHECK_S
        if self.ledger.pending():
            self._replay_task = self._spawn(self._replay_quietly())

    async def replay(self) -> int:
        """Replay the ledger into the store now; returns how many entries it replayed."""
        replayed = await self.ledger.replay(self._apply)
        if replayed:
            log.info("budget_ledger_replayed", entries=replayed)
        return replayed

    async def _replay_quietly(self) -> int:
        try:
            return await self.replay()
        except StoreUnavailable:
            self._failed("replay")
            return 0

    async def _apply(self, entry: Entry) -> None:
        if isinstance(entry, Settle):
            await self.inner.settle(entry.reservation, entry.cost_micros, entry.tokens)
        elif isinstance(entry, Cancel):
            await self.inner.cancel([entry.reservation_id])
        else:
            await self.inner.record(entry.scopes, entry.cost_micros, entry.tokens, entry.at, record_id=entry.record_id)

    def _start(self) -> None:
        if self._upkeep is None:
            # A context of its own: it outlives the request that started it, whose id its logs must not carry.
            self._upkeep = asyncio.create_task(self._upkeep_loop(), context=contextvars.Context())

    async def _upkeep_loop(self) -> None:
        """Probe an open circuit when its cool-down ends; while closed, renew live holds and replay the ledger."""
        renew_every = max(0.5, self._ttl / 3)
        next_renew = time.monotonic() + renew_every
        while True:
            if self.breaker.state == "open":
                await asyncio.sleep(self.breaker.seconds_to_probe())
                if self.breaker.probe_due():
                    await self._probe()
                continue
            await asyncio.sleep(min(_PENDING_CHECK_S, max(0.0, next_renew - time.monotonic())))
            if not self.breaker.closed:
                continue
            if time.monotonic() >= next_renew:
                next_renew = time.monotonic() + renew_every
                with contextlib.suppress(StoreUnavailable):
                    await self._renew()
            if self.ledger.pending() and (self._replay_task is None or self._replay_task.done()):
                self._replay_task = self._spawn(self._replay_quietly())

    async def _probe(self) -> None:
        """The one call a half-open circuit lets through: it closes only once the store has taken the ledger
        (the cancels first of all), so new requests are not refused by holds the outage left behind."""
        self.breaker.probing()
        try:
            if self._replay_task is not None:
                await asyncio.gather(self._replay_task, return_exceptions=True)
            await self.inner.ping()
            await self.inner.renew(list(self._live))
            await self.replay()
        except Exception as exc:
            if not isinstance(exc, StoreUnavailable):
                log.exception("budget_store_probe_failed")
            self.breaker.probe_failed()
            if self._on_error is not None:
                self._on_error("probe")  # so an outage keeps showing in the error rate while the circuit is open
            return
        self.breaker.probe_succeeded()

    async def _renew(self) -> None:
        if not self._live:
            return
        try:
            await self.inner.renew(list(self._live))
        except StoreUnavailable:
            self._failed("renew")
            raise
        self.breaker.succeeded()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def readiness(self) -> Readiness:
        """Ready when the store takes writes (asked only while the circuit is closed), or when failing open."""
        # The probes that close an open circuit must run even when no traffic comes: a pod taken out of
        # rotation for not being ready gets none.
        self._start()
        healthy = False
        if self.breaker.closed:
            try:
                await self.inner.ping()
                healthy = True
                self.breaker.succeeded()
            except Exception as exc:
                self._failed("ping")
                if not isinstance(exc, StoreUnavailable):
                    log.exception("budget_store_ping_failed")
        return Readiness(healthy or self.fail_open, self.breaker.state)

    async def usage(self, scope_prefix: str | None = None) -> list[ScopeUsage]:
        return await self.inner.usage(scope_prefix)

    async def reset(self, scope: str) -> None:
        await self.inner.reset(scope)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            await asyncio.gather(self._upkeep, return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.ledger.flushed()
        await self.inner.close()


def _circuit_open() -> StoreUnavailable:
    return StoreUnavailable("The budget store is not answering; requests are refused until it does.")


def _record_on_settle(request_id: str, limits: Sequence[ScopeLimit], cost_micros: int, tokens: int,
                      now: float | None) -> Reservation:
    """Scopes with no limit and no rate only track spend: nothing to check or hold before the call, so
    the store is not touched until the settle records the actual spend, in the windows current now."""
    check_limits(limits)
    at = time.time() if now is None else now
    return Reservation(new_id(), request_id, cost_micros, tokens, at, at, (), record_on_settle=tuple(limits))
