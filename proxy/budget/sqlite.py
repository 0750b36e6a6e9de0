"""Embedded budget store: one SQLite file in WAL mode, shared by every worker process on the host.

Each reserve and settle is one `BEGIN IMMEDIATE` transaction, so the write lock is taken before anything
is read and two processes cannot both see room for the last request; `state` reads one snapshot in a
plain `BEGIN` and takes no lock. A transaction runs inline on the event loop when the file is free and
on one dedicated thread when it is locked, so a lock wait (up to `busy_timeout_s`) never stalls the loop.
Reads are two statements for any number of scopes (spend, holds): most of a transaction's cost is the
COMMIT writing its dirty pages to the WAL, then Python's per-statement overhead.
This module owns the connections and schedules the transactions; `sqlite_sql` holds the schema and
the statements they run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from proxy.budget import sqlite_sql as sql
from proxy.budget import windows
from proxy.budget.errors import StoreUnavailable, refusal
from proxy.budget.ratelimit import RateLimitStatus, refund_us
from proxy.budget.store import (
    DEFAULT_RESERVATION_TTL_S,
    EVENT_RETENTION,
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
# Write transactions on the event loop between two checkpoints: ~5 WAL pages each, so about SQLite's
# default of one checkpoint per 1000 pages.
_CHECKPOINT_EVERY = 200


class SqliteStore:
    def __init__(
        self,
        path: str | Path,
        *,
        reservation_ttl_s: float = DEFAULT_RESERVATION_TTL_S,
        busy_timeout_s: float = 2.0,
        event_retention: int = EVENT_RETENTION,
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._ttl = reservation_ttl_s
        self._event_retention = event_retention
        self._ops = 0
        self._periods = windows.PeriodCache()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="budget-sqlite")
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; the module's implicit BEGIN is DEFERRED.
        self._db = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        # Each commit writes every page it dirtied to the WAL (about ten per request), and the copying,
        # checksumming and checkpointing scale with the page size: 1 KiB pages cost ~12% less CPU per
        # request than the default 4 KiB. It applies when the file is created; an existing file keeps its own.
        self._db.execute("PRAGMA page_size=1024")
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives any process crash; only an OS crash can lose the last commits.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(sql.SCHEMA)
        # A second connection, used only on the event loop, that never waits for a lock (timeout 0). An
        # uncontended transaction takes ~6 us inline against ~40 us for a hop to the thread (plus GIL
        # hand-offs under load); when the file is locked it gives up at once and the thread waits instead.
        self._inline = sqlite3.connect(str(path), timeout=0, isolation_level=None, check_same_thread=False)
        self._inline.execute("PRAGMA synchronous=NORMAL")
        # A checkpoint copies the WAL into the database and fsyncs it: milliseconds that, run by the
        # committing connection as SQLite does by default, would stall the event loop every ~90 requests
        # (bench p99). The thread runs them instead, and our writes queue on the thread behind one while
        # it runs: were they to carry on inline, a busy loop would append faster than it copies and the
        # WAL would never start over (it restarts only once fully copied), growing without bound.
        self._inline.execute("PRAGMA wal_autocheckpoint=0")
        self._writes = 0
        # Set here, cleared by the thread when done: a future's done() would need the loop to run its
        # callback, which a burst of inline transactions never lets it do.
        self._checkpointing = False

    def _tx(self, body: Callable[[sqlite3.Connection], T], begin: str = "BEGIN IMMEDIATE") -> T:
        db = self._db
        try:
            db.execute(begin)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"budget store busy: {exc}") from exc
        return self._complete(db, body)

    def _complete(self, db: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
        try:
            result = body(db)
            db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            db.execute("ROLLBACK")
            raise StoreUnavailable(f"budget store failed: {exc}") from exc
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return result

    async def _run(self, body: Callable[[sqlite3.Connection], T], begin: str = "BEGIN IMMEDIATE") -> T:
        """`body` in one transaction; a plain BEGIN reads one snapshot without taking the write lock."""
        writes = begin != "BEGIN"
        if not (writes and self._checkpointing) and self._begin_inline(begin):
            result = self._complete(self._inline, body)
            if writes:
                self._writes += 1
                if self._writes % _CHECKPOINT_EVERY == 0 and not self._checkpointing:
                    self._checkpointing = True
                    self._pool.submit(self._wal_checkpoint)
            return result
        # Locked (another process, our own thread mid-transaction, or a checkpoint): wait off the loop.
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._tx, body, begin)

    def _begin_inline(self, begin: str) -> bool:
        try:
            self._inline.execute(begin)
        except sqlite3.OperationalError:
            return False
        return True

    def _wal_checkpoint(self) -> None:
        try:
            with contextlib.suppress(sqlite3.Error):  # a later one, or another process's, will do it
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._checkpointing = False

    async def reserve(
        self,
        request_id: str,
        limits: Sequence[ScopeLimit],
        cost_micros: int,
        tokens: int,
        now: float | None = None,
    ) -> Reservation:
        check_limits(limits)
        rid = new_id()

        def body(db: sqlite3.Connection) -> Reservation:
            at = time.time() if now is None else now
            sql.reap(db, at)
            periods: list[tuple[str, int]] = []
            rates: list[RateLimitStatus | None] = []
            tats: list[tuple[str, int, int]] = []
            scopes: dict[str, None] = {}  # ordered set
            spent, held = sql.read_usage(db, limits, at, self._periods)
            for limit, window in zip(limits, spent, strict=True):
                hm, ht = held.get(limit.scope, (0, 0))
                for cap, total, buckets, dim in (
                    (limit.limit_micros, window.micros + hm + cost_micros, window.micros_by_bucket, "usd"),
                    (limit.limit_tokens, window.tokens + ht + tokens, window.tokens_by_bucket, "tokens"),
                ):
                    if cap is not None and total > cap:
                        retry = sql.retry_after(limit, buckets, window.period, at, total - cap)
                        raise refusal("budget", limit.scope, retry, dim, cap, str(limit.window))
                status, tat = sql.take_rate(db, limit, tokens, at)
                periods.append((window.period.bucket, window.period.expires_at))
                rates.append(status)
                if tat is not None:
                    tats.append((limit.scope, *tat))
                scopes[limit.scope] = None
            # Everything fits: only now write.
            db.executemany("INSERT OR REPLACE INTO rates VALUES (?, ?, ?)", tats)
            db.executemany(
                "INSERT INTO held VALUES (?, ?, ?) ON CONFLICT (scope) DO UPDATE"
                " SET micros = micros + excluded.micros, tokens = tokens + excluded.tokens",
                [(scope, cost_micros, tokens) for scope in scopes],
            )
            db.execute(
                "INSERT INTO reservations VALUES (?, ?, ?, ?, ?)",
                (rid, cost_micros, tokens, "\n".join(scopes), at + self._ttl),
            )
            # Unchanged limits are left alone: rewriting them would dirty a page (a WAL write) per reserve.
            db.executemany(
                "INSERT INTO scopes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, window) DO UPDATE"
                " SET limit_micros = excluded.limit_micros, limit_tokens = excluded.limit_tokens,"
                " rpm = excluded.rpm, tpm = excluded.tpm"
                " WHERE (limit_micros, limit_tokens, rpm, tpm)"
                " IS NOT (excluded.limit_micros, excluded.limit_tokens, excluded.rpm, excluded.tpm)",
                [
                    (
                        lim.scope,
                        str(lim.window),
                        lim.limit_micros,
                        lim.limit_tokens,
                        lim.requests_per_minute,
                        lim.tokens_per_minute,
                    )
                    for lim in limits
                ],
            )
            return make_reservation(rid, request_id, limits, cost_micros, tokens, at, self._ttl, periods, rates)

        return await self._run(body)

    async def settle(self, reservation: Reservation, cost_micros: int, tokens: int) -> None:
        def body(db: sqlite3.Connection) -> None:
            now = time.time()
            marked = db.execute(
                "INSERT OR IGNORE INTO settled VALUES (?, ?)", (reservation.id, now + SETTLED_MARKER_TTL_S)
            )
            if marked.rowcount == 0:
                return  # settled before
            sql.release(db, reservation.id)
            db.executemany(
                "INSERT INTO spent VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, window, bucket) DO UPDATE"
                " SET micros = micros + excluded.micros, tokens = tokens + excluded.tokens,"
                " expires_at = max(expires_at, excluded.expires_at)",
                [(t.scope, t.window, t.bucket, cost_micros, tokens, t.expires_at) for t in reservation.targets],
            )
            unused = reservation.tokens - tokens
            if unused > 0:
                now_us = int(now * 1_000_000)
                # gcra_refund in SQL: max(now, tat - unused's share of a minute), only while tat > now.
                db.executemany(
                    "UPDATE rates SET tokens_tat = max(?, tokens_tat - ?) WHERE scope = ? AND tokens_tat > ?",
                    [(now_us, refund_us(tpm, unused), scope, now_us) for scope, tpm in reservation.token_rates],
                )
            self._ops += 1
            if self._ops % _SWEEP_EVERY == 0:
                db.execute("DELETE FROM spent WHERE expires_at < ?", (now,))
                db.execute("DELETE FROM settled WHERE expires_at < ?", (now,))

        await self._run(body)

    async def state(self, limits: Sequence[ScopeLimit], now: float | None = None) -> dict[str, BudgetState]:
        # A read transaction: one snapshot, no write lock, so it does not queue behind other processes'
        # reserves. Only when some hold is past its TTL (a process died) does it take the write lock to
        # reap, so the state never reports a hold that no longer counts.
        at = time.time() if now is None else now
        states = await self._run(lambda db: None if sql.any_expired(db, at) else self._states(db, limits, at), "BEGIN")
        if states is None:
            states = await self._run(lambda db: self._states(db, limits, at, reap=True))
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

        return await self._run(body)

    async def reset(self, scope: str) -> None:
        def body(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM spent WHERE scope = ?", (scope,))
            db.execute("DELETE FROM rates WHERE scope = ?", (scope,))

        await self._run(body)

    async def record_event(self, kind: str, fields: dict[str, str | int]) -> None:
        def body(db: sqlite3.Connection) -> None:
            cur = db.execute(
                "INSERT INTO events (kind, ts, fields) VALUES (?, ?, ?)", (kind, time.time(), orjson.dumps(fields))
            )
            # Trim in steps of 1% so the retention cap costs one DELETE per hundred events, not per event.
            if cur.lastrowid is not None and cur.lastrowid % max(1, self._event_retention // 100) == 0:
                db.execute(
                    "DELETE FROM events WHERE kind = ? AND id <= (SELECT id FROM events WHERE kind = ?"
                    " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (kind, kind, self._event_retention),
                )

        await self._run(body)

    async def events(self, kind: str, since: float) -> list[dict[str, Any]]:
        def body(db: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = db.execute(
                "SELECT ts, fields FROM events WHERE kind = ? AND ts >= ? ORDER BY id", (kind, since)
            ).fetchall()
            # Strings, as Redis streams return them, so callers see one shape whichever store is used.
            return [{**{k: str(v) for k, v in orjson.loads(fields).items()}, "ts": ts} for ts, fields in rows]

        return await self._run(body)

    async def ping(self) -> None:
        await self._run(lambda db: db.execute("SELECT 1").fetchone() and None)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._db.close)
        self._pool.shutdown(wait=True)
        self._inline.close()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
