"""The SQLite budget store's schema and the statements its transactions run, as plain functions of a
connection: what a reserve, a settle and a state read do to the tables, apart from how `SqliteStore`
schedules them (inline or on its thread) and owns the connections.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from proxy.budget import windows
from proxy.budget.errors import refusal
from proxy.budget.ratelimit import RateLimitStatus, gcra_take
from proxy.budget.store import ScopeLimit, rate_status

SCHEMA = """
CREATE TABLE IF NOT EXISTS spent (scope TEXT NOT NULL, window TEXT NOT NULL, bucket TEXT NOT NULL,
    micros INTEGER NOT NULL, tokens INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, window, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS held (scope TEXT PRIMARY KEY, micros INTEGER NOT NULL,
    tokens INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (id TEXT PRIMARY KEY, micros INTEGER NOT NULL,
    tokens INTEGER NOT NULL, scopes TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS reservations_expiry ON reservations (expires_at);
CREATE TABLE IF NOT EXISTS rates (scope TEXT PRIMARY KEY, requests_tat INTEGER NOT NULL,
    tokens_tat INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settled (id TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS scopes (scope TEXT NOT NULL, window TEXT NOT NULL, limit_micros INTEGER,
    limit_tokens INTEGER, rpm INTEGER, tpm INTEGER, PRIMARY KEY (scope, window)) WITHOUT ROWID;
"""


def prepare(db: sqlite3.Connection, schema: str, timeout_s: float) -> None:
    """1 KiB pages (each commit writes every page it dirtied to the WAL: ~12% less CPU per request than
    4 KiB; it applies only when the file is created), WAL, synchronous=NORMAL (survives any process crash;
    only an OS crash can lose the last commits) and `schema`, on a new connection.

    Processes that open a new file together (forked workers start at once) race to switch it to WAL, and
    SQLite answers the loser "database is locked" at once, without its busy timeout: retried for as long."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute("PRAGMA page_size=1024")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(schema)  # every statement IF NOT EXISTS: a retry repeats it harmlessly
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


@dataclass(frozen=True, slots=True)
class Spent:
    """One limit's window: micro-dollars and tokens in it, its live rolling buckets, and its period."""

    micros: int
    tokens: int
    micros_by_bucket: dict[int, int]
    tokens_by_bucket: dict[int, int]
    period: windows.Period


@functools.cache
def _spent_sql(rolling: tuple[bool, ...]) -> str:
    # One statement for every window (SQLite runs each OR term as a primary-key search); the text
    # depends only on which limits are rolling, so the connection's statement cache keeps it prepared.
    terms = ["(scope = ? AND window = ?)" if r else "(scope = ? AND window = ? AND bucket = ?)" for r in rolling]
    return "SELECT scope, window, bucket, micros, tokens FROM spent WHERE " + " OR ".join(terms)


@functools.cache
def _held_sql(n: int) -> str:
    return f"SELECT scope, micros, tokens FROM held WHERE scope IN ({', '.join('?' * n)})"


@functools.cache
def _release_sql(n: int) -> str:
    return (
        "UPDATE held SET micros = max(0, micros - ?), tokens = max(0, tokens - ?)"
        f" WHERE scope IN ({', '.join('?' * n)})"
    )


def read_usage(
    db: sqlite3.Connection, limits: Sequence[ScopeLimit], now: float, periods: windows.PeriodCache
) -> tuple[list[Spent], dict[str, tuple[int, int]]]:
    """Spend in every limit's window, and (micros, tokens) held per scope: two statements in all."""
    found: dict[tuple[str, str], list[tuple[str, int, int]]] = {}
    params: list[str] = []
    for limit in limits:
        params += (limit.scope, str(limit.window))
        if limit.window.kind != "rolling":
            params.append(periods(limit.window, now).bucket)
    sql = _spent_sql(tuple(limit.window.kind == "rolling" for limit in limits))
    for scope, window, bucket, m, t in db.execute(sql, params):
        found.setdefault((scope, window), []).append((bucket, m, t))
    spent = []
    for limit in limits:
        period = periods(limit.window, now)
        rows = found.get((limit.scope, str(limit.window)), ())
        if limit.window.kind != "rolling":
            m, t = (rows[0][1], rows[0][2]) if rows else (0, 0)
            spent.append(Spent(m, t, {}, {}, period))
            continue
        micros: dict[int, int] = {}
        tokens: dict[int, int] = {}
        for bucket, m, t in rows:
            if windows.in_window(limit.window, int(bucket), now):
                micros[int(bucket)], tokens[int(bucket)] = m, t
        spent.append(Spent(sum(micros.values()), sum(tokens.values()), micros, tokens, period))
    scopes = list(dict.fromkeys(limit.scope for limit in limits))
    held = {scope: (m, t) for scope, m, t in db.execute(_held_sql(len(scopes)), scopes)}
    return spent, held


def is_done(db: sqlite3.Connection, reservation_id: str) -> bool:
    """Settled, recorded or cancelled: the once-only mark."""
    return db.execute("SELECT 1 FROM settled WHERE id = ?", (reservation_id,)).fetchone() is not None


def mark_done(db: sqlite3.Connection, reservation_id: str, expires_at: float) -> bool:
    """Set the once-only mark; False if it was set before."""
    cursor = db.execute("INSERT OR IGNORE INTO settled VALUES (?, ?)", (reservation_id, expires_at))
    return cursor.rowcount > 0


def is_held(db: sqlite3.Connection, reservation_id: str) -> bool:
    return db.execute("SELECT 1 FROM reservations WHERE id = ?", (reservation_id,)).fetchone() is not None


def hold(
    db: sqlite3.Connection,
    reservation_id: str,
    limits: Sequence[ScopeLimit],
    scopes: Sequence[str],
    cost_micros: int,
    tokens: int,
    tats: Sequence[tuple[str, int, int]],
    expires_at: float,
) -> None:
    """A granted reserve's writes: rate state, holds per scope, the reservation and the scopes' limits."""
    db.executemany("INSERT OR REPLACE INTO rates VALUES (?, ?, ?)", tats)
    db.executemany(
        "INSERT INTO held VALUES (?, ?, ?) ON CONFLICT (scope) DO UPDATE"
        " SET micros = micros + excluded.micros, tokens = tokens + excluded.tokens",
        [(scope, cost_micros, tokens) for scope in scopes],
    )
    db.execute(
        "INSERT INTO reservations VALUES (?, ?, ?, ?, ?)",
        (reservation_id, cost_micros, tokens, "\n".join(scopes), expires_at),
    )
    register(db, limits, replace=True)


def register(db: sqlite3.Connection, limits: Sequence[ScopeLimit], *, replace: bool) -> None:
    """Remember each scope's limits for `budget show`; `replace=False` only lists a scope not seen yet."""
    rows = [
        (lim.scope, str(lim.window), lim.limit_micros, lim.limit_tokens, lim.requests_per_minute, lim.tokens_per_minute)
        for lim in limits
    ]
    if not replace:
        db.executemany("INSERT OR IGNORE INTO scopes VALUES (?, ?, ?, ?, ?, ?)", rows)
        return
    # Unchanged limits are left alone: rewriting them would dirty a page (a WAL write) per reserve.
    db.executemany(
        "INSERT INTO scopes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, window) DO UPDATE"
        " SET limit_micros = excluded.limit_micros, limit_tokens = excluded.limit_tokens,"
        " rpm = excluded.rpm, tpm = excluded.tpm"
        " WHERE (limit_micros, limit_tokens, rpm, tpm)"
        " IS NOT (excluded.limit_micros, excluded.limit_tokens, excluded.rpm, excluded.tpm)",
        rows,
    )


def add_spend(db: sqlite3.Connection, targets: Sequence[tuple[str, str, str, int]], micros: int, tokens: int) -> None:
    """Commit spend into each (scope, window, bucket, expires_at) counter."""
    db.executemany(
        "INSERT INTO spent VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, window, bucket) DO UPDATE"
        " SET micros = micros + excluded.micros, tokens = tokens + excluded.tokens,"
        " expires_at = max(expires_at, excluded.expires_at)",
        [(scope, window, bucket, micros, tokens, expires_at) for scope, window, bucket, expires_at in targets],
    )


def renew(db: sqlite3.Connection, reservation_ids: Sequence[str], expires_at: float) -> None:
    for i in range(0, len(reservation_ids), 500):
        ids = reservation_ids[i : i + 500]
        db.execute(
            f"UPDATE reservations SET expires_at = ? WHERE id IN ({', '.join('?' * len(ids))})", (expires_at, *ids)
        )


def release(db: sqlite3.Connection, reservation_id: str) -> None:
    row = db.execute(
        "DELETE FROM reservations WHERE id = ? RETURNING micros, tokens, scopes", (reservation_id,)
    ).fetchall()
    if row:
        micros, tokens, scopes = row[0]
        names = scopes.split("\n")
        db.execute(_release_sql(len(names)), (micros, tokens, *names))


def any_expired(db: sqlite3.Connection, now: float) -> bool:
    return db.execute("SELECT 1 FROM reservations WHERE expires_at <= ? LIMIT 1", (now,)).fetchone() is not None


def reap(db: sqlite3.Connection, now: float) -> None:
    # Reservations never settled (the process died) stop holding budget once their TTL passes.
    for (rid,) in db.execute("SELECT id FROM reservations WHERE expires_at <= ? LIMIT 100", (now,)).fetchall():
        release(db, rid)


def retry_after(limit: ScopeLimit, buckets: dict[int, int], period: windows.Period, now: float, excess: int) -> float:
    if limit.window.kind == "rolling":
        return windows.rolling_retry_after(limit.window, buckets, now, excess)
    assert period.resets_at is not None
    return period.resets_at - now


def take_rate(
    db: sqlite3.Connection, limit: ScopeLimit, tokens: int, now: float
) -> tuple[RateLimitStatus | None, tuple[int, int] | None]:
    """Per-minute limits: the status for headers and the new (requests, tokens) TATs, or raise."""
    if not limit.has_rate:
        return None, None
    row = db.execute("SELECT requests_tat, tokens_tat FROM rates WHERE scope = ?", (limit.scope,)).fetchone()
    tats = [row[0], row[1]] if row else [0, 0]
    now_us = int(now * 1_000_000)
    status = [-1] * 6
    for i, (per_minute, units, dim) in enumerate(
        ((limit.requests_per_minute, 1, "requests"), (limit.tokens_per_minute, tokens, "tokens_per_min"))
    ):
        if per_minute is None:
            continue
        taken = gcra_take(tats[i], now_us, per_minute, units)
        if not taken.allowed:
            raise refusal("rate", limit.scope, taken.retry_after_s, dim, per_minute, "minute")
        tats[i] = taken.tat_us
        status[3 * i : 3 * i + 3] = [per_minute, taken.remaining, int(taken.reset_s * 1_000_000)]
    return rate_status(status), (tats[0], tats[1])
