"""Events in a table of the SQLite budget file, written on a thread of their own (they are rare, and a
lock held by a budget write must not stall the event loop)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from proxy.budget.sqlite_sql import prepare
from proxy.eventlog import EVENT_RETENTION, EventLogUnavailable, Fields

T = TypeVar("T")
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
    ts REAL NOT NULL, fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_kind_ts ON events (kind, ts);
"""


class SqliteEventLog:
    def __init__(self, path: str | Path, *, retention: int = EVENT_RETENTION, busy_timeout_s: float = 2.0) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._retention = retention
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-log")
        self._db = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        # The budget store's settings, in case this log creates the file: the page size is fixed then.
        prepare(self._db, SCHEMA, busy_timeout_s)

    async def _run(self, body: Callable[[sqlite3.Connection], T], begin: str) -> T:
        def transaction() -> T:
            db = self._db
            try:
                db.execute(begin)
                try:
                    result = body(db)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as exc:
                raise EventLogUnavailable(f"event log unavailable: {exc}") from exc
            return result

        return await asyncio.get_running_loop().run_in_executor(self._pool, transaction)

    async def append(self, kind: str, fields: Fields) -> None:
        def body(db: sqlite3.Connection) -> None:
            cur = db.execute(
                "INSERT INTO events (kind, ts, fields) VALUES (?, ?, ?)",
                (kind, time.time(), orjson.dumps(dict(fields))),
            )
            # Trim in steps of 1% so the retention cap costs one DELETE per hundred events, not per event.
            if cur.lastrowid is not None and cur.lastrowid % max(1, self._retention // 100) == 0:
                db.execute(
                    "DELETE FROM events WHERE kind = ? AND id <= (SELECT id FROM events WHERE kind = ?"
                    " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (kind, kind, self._retention),
                )

        await self._run(body, "BEGIN IMMEDIATE")

    async def events(self, kind: str, since: float) -> list[dict[str, Any]]:
        def body(db: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = db.execute(
                "SELECT ts, fields FROM events WHERE kind = ? AND ts >= ? ORDER BY id", (kind, since)
            ).fetchall()
            # Strings, as Redis streams return them, so callers see one shape whichever log is used.
            return [{**{k: str(v) for k, v in orjson.loads(fields).items()}, "ts": ts} for ts, fields in rows]

        return await self._run(body, "BEGIN")

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._db.close)
        self._pool.shutdown(wait=True)
