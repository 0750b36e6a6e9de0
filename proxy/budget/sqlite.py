"""Embedded budget store: one SQLite file in WAL mode, shared by every worker process on the host.

Every write (reserve, settle, record, cancel, renew) is a body that `sqlite_batch.GroupCommit` runs with the
others of its event-loop iteration in one `BEGIN IMMEDIATE` transaction: the write lock is taken before
anything is read, so two processes cannot both see room for the last request. `state` reads one snapshot in
a plain `BEGIN` and takes no lock. Reads are two statements for any number of scopes (spend, holds).
This module says what each operation does; `sqlite_sql` holds the schema and statements, `sqlite_batch`
schedules the transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from proxy.budget import sqlite_sql as sql
from proxy.budget import windows
from proxy.budget.errors import StoreUnavailable, refusal
from proxy.budget.ratelimit import RateLimitStatus, refund_us
from proxy.budget.sqlite_batch import GroupCommit
from proxy.budget.store import (
    DEFAULT_RESERVATION_TTL_S,
    SETTLED_MARKER_TTL_S,
    BudgetState,
    Reservation,
    ScopeLimit,
    ScopeUsage,
    check_limits,
    make_reservation,
    tightest_states,
)
from proxy.budget.windows import Window
from proxy.ids import new_id

T = TypeVar("T")
_SWEEP_EVERY = 1000


class SqliteStore:
    # A call that fails wrote nothing: its batch's transaction was rolled back (sqlite_batch.run_batch).
    failures_may_apply = False

    def __init__(
        self,
        path: str | Path,
        *,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        busy_timeout_s: float = 2.0,
        admit: Callable[[], bool] | None = None,
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._ttl = reservation_ttl_s
        self._busy_timeout = busy_timeout_s
        self._ops = 0
        self._periods = windows.PeriodCache()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="budget-sqlite")
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; the module's implicit BEGIN is DEFERRED.
        self._db = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        sql.prepare(self._db, sql.SCHEMA, busy_timeout_s)
        # A second connection, used only on the event loop, that never waits for a lock (timeout 0): an
        # uncontended transaction takes microseconds inline against ~40 us for a hop to the thread; when the
        # file is locked it gives up at once and the thread waits instead.
        self._inline = sqlite3.connect(str(path), timeout=0, isolation_level=None, check_same_thread=False)
        self._inline.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints run on the thread (sqlite_batch), never inside a commit on the loop.
        self._inline.execute("PRAGMA wal_autocheckpoint=0")
        self._writes = GroupCommit(self._inline, self._db, self._pool, admit)
        # (scope, window) pairs whose `scopes` row a committed transaction of ours wrote or found: rows are
        # never deleted, so a record need not list them again (half of a record's SQL).
        self._listed: set[tuple[str, str]] = set()

    async def _write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writes.submit(body)

    async def _read(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """`body` on one snapshot, without the write lock: inline, or on the thread if SQLite says busy."""
        try:
            return _snapshot(self._inline, body)
        except sqlite3.OperationalError:
            pass  # a WAL restart in another process: rare, and the thread may wait for it
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, _snapshot, self._db, body)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"budget store failed: {exc}") from exc

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
        check_limits(limits)
        rid = reservation_id or new_id()

        def body(db: sqlite3.Connection) -> Reservation:
            at = time.time() if now is None else now
            if sql.is_done(db, rid):
                raise StoreUnavailable(f"reservation {rid} was cancelled before it reached the store")
            sql.reap(db, at)
            again = sql.is_held(db, rid)  # a retry whose first reply was lost: it holds nothing more
            periods: list[tuple[str, int]] = []
            rates: list[RateLimitStatus | None] = []
            tats: list[tuple[str, int, int]] = []
            scopes: dict[str, None] = {}  # ordered set
            spent, held = sql.read_usage(db, limits, at, self._periods)
            for limit, window in zip(limits, spent, strict=True):
                periods.append((window.period.bucket, window.period.expires_at))
                scopes[limit.scope] = None
                if again:
                    rates.append(None)
                    continue
                hm, ht = held.get(limit.scope, (0, 0))
                for cap, total, buckets, dim in (
                    (limit.limit_micros, window.micros + hm + cost_micros, window.micros_by_bucket, "usd"),
                    (limit.limit_tokens, window.tokens + ht + tokens, window.tokens_by_bucket, "tokens"),
                ):
                    if cap is not None and total > cap:
                        retry = sql.retry_after(limit, buckets, window.period, at, total - cap)
                        raise refusal("budget", limit.scope, retry, dim, cap, str(limit.window))
                status, tat = sql.take_rate(db, limit, tokens, at)
                rates.append(status)
                if tat is not None:
                    tats.append((limit.scope, *tat))
            if not again:
                sql.hold(db, rid, limits, list(scopes), cost_micros, tokens, tats, at + self._ttl)
            return make_reservation(rid, request_id, limits, cost_micros, tokens, at, self._ttl, periods, rates)

        return await self._write(body)

    async def settle(self, reservation: Reservation, cost_micros: int, tokens: int) -> None:
        def body(db: sqlite3.Connection) -> None:
            now = time.time()
            if not sql.mark_done(db, reservation.id, now + SETTLED_MARKER_TTL_S):
                return  # settled before
            sql.release(db, reservation.id)
            sql.add_spend(
                db, [(t.scope, t.window, t.bucket, t.expires_at) for t in reservation.targets], cost_micros, tokens
            )
            unused = reservation.tokens - tokens
            if unused > 0:
                now_us = int(now * 1_000_000)
                # gcra_refund in SQL: max(now, tat - unused's share of a minute), only while tat > now.
                db.executemany(
                    "UPDATE rates SET tokens_tat = max(?, tokens_tat - ?) WHERE scope = ? AND tokens_tat > ?",
                    [(now_us, refund_us(tpm, unused), scope, now_us) for scope, tpm in reservation.token_rates],
                )
            self._sweep(db, now)

        await self._write(body)

    async def record(
        self,
        scopes: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None = None,
        *,
        record_id: str | None = None,
    ) -> None:
        check_limits(scopes)

        def body(db: sqlite3.Connection) -> None:
            at = time.time() if now is None else now
            if record_id is not None and not sql.mark_done(db, record_id, at + SETTLED_MARKER_TTL_S):
                return  # recorded before
            targets = []
            for limit in scopes:
                period = self._periods(limit.window, at)
                targets.append((limit.scope, str(limit.window), period.bucket, period.expires_at))
            sql.add_spend(db, targets, cost_micros, tokens)
            if unlisted:
                sql.register(db, unlisted, replace=False)
            self._sweep(db, at)

        unlisted = [limit for limit in scopes if (limit.scope, str(limit.window)) not in self._listed]
        await self._write(body)
        self._listed.update((limit.scope, str(limit.window)) for limit in unlisted)

    async def cancel(self, reservation_ids: Sequence[str]) -> None:
        def body(db: sqlite3.Connection) -> None:
            expires = time.time() + SETTLED_MARKER_TTL_S
            for rid in reservation_ids:
                sql.mark_done(db, rid, expires)
                sql.release(db, rid)

        await self._write(body)

    async def renew(self, reservation_ids: Sequence[str]) -> None:
        if reservation_ids:
            await self._write(lambda db: sql.renew(db, reservation_ids, time.time() + self._ttl))

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        self._ops += 1
        if self._ops % _SWEEP_EVERY == 0:
            db.execute("DELETE FROM spent WHERE expires_at < ?", (now,))
            db.execute("DELETE FROM settled WHERE expires_at < ?", (now,))

    async def state(self, limits: Sequence[ScopeLimit], now: float | None = None) -> dict[str, BudgetState]:
        # A read: one snapshot, no write lock, so it does not queue behind other processes' writes. Only
        # when some hold is past its TTL (a process died) does it take the write lock to reap, so the
        # state never reports a hold that no longer counts.
        at = time.time() if now is None else now
        states = await self._read(lambda db: None if sql.any_expired(db, at) else self._states(db, limits, at))
        if states is None:
            states = await self._write(lambda db: self._states(db, limits, at, reap=True))
        return tightest_states(states)

    def _states(
        self, db: sqlite3.Connection, limits: Sequence[ScopeLimit], now: float | None, *, reap: bool = False
    ) -> list[BudgetState]:
        at = time.time() if now is None else now
        if reap:
            sql.reap(db, at)
        if not limits:
            return []
        spent, held = sql.read_usage(db, limits, at, self._periods)
        out = []
        for limit, window in zip(limits, spent, strict=True):
            hm, ht = held.get(limit.scope, (0, 0))
            resets_at = window.period.resets_at
            if limit.window.kind == "rolling":
                resets_at = windows.rolling_next_release(limit.window, window.micros_by_bucket, at)
            out.append(
                BudgetState(
                    limit.scope,
                    str(limit.window),
                    window.period.bucket,
                    window.micros,
                    hm,
                    limit.limit_micros,
                    window.tokens,
                    ht,
                    limit.limit_tokens,
                    resets_at,
                )
            )
        return out

    async def usage(self, scope_prefix: str | None = None) -> list[ScopeUsage]:
        def body(db: sqlite3.Connection) -> list[ScopeUsage]:
            rows = db.execute(
                "SELECT * FROM scopes WHERE scope LIKE ? || '%' ESCAPE '\\' ORDER BY scope, window",
                (_like_escape(scope_prefix or ""),),
            ).fetchall()
            limits = [ScopeLimit(s, Window.parse(w), m, t, rpm, tpm) for s, w, m, t, rpm, tpm in rows]
            states = self._states(db, limits, None, reap=True)
            return [ScopeUsage(lim, st) for lim, st in zip(limits, states, strict=True)]

        return await self._write(body)

    async def reset(self, scope: str) -> None:
        def body(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM spent WHERE scope = ?", (scope,))
            db.execute("DELETE FROM rates WHERE scope = ?", (scope,))

        await self._write(body)

    async def ping(self) -> None:
        """Whether the write lock can be had within busy_timeout: a read would succeed on a locked file."""

        def probe() -> None:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"budget store busy: {exc}") from exc
            self._db.execute("ROLLBACK")

        await asyncio.get_running_loop().run_in_executor(self._pool, probe)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._db.close)
        self._pool.shutdown(wait=True)
        self._inline.close()


def _snapshot(db: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    db.execute("BEGIN")
    try:
        return body(db)
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute("COMMIT")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
