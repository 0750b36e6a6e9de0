"""Group commit for the SQLite store: the writes submitted during one event-loop iteration run as one
`BEGIN IMMEDIATE ... COMMIT`, so concurrent requests share the COMMIT (its WAL writes are most of a
transaction's cost), and one write lock covers them all, keeping every check exact across processes.

A batch runs inline on the event loop when the file is free, on a connection that never waits for a lock;
when another process holds the lock it runs on the store's one thread, which waits up to busy_timeout, and
the writes submitted meanwhile form the next batch. WAL checkpoints run on that thread too.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from proxy.budget.errors import StoreUnavailable
from proxy.errors import TooManyRequests

T = TypeVar("T")
Body = Callable[[sqlite3.Connection], Any]
Outcome = tuple[bool, Any]  # (True, result) or (False, exception)
# What a body raises on purpose, before it has written anything: the rest of its batch still commits.
EXPECTED = (TooManyRequests, StoreUnavailable, ValueError)
# Commits between two checkpoints: a batch dirties ~5-10 pages of 1 KiB per request in it, so this is
# about SQLite's default of one checkpoint per 1000 pages at one request a batch.
CHECKPOINT_EVERY = 200


class GroupCommit:
    def __init__(
        self,
        inline: sqlite3.Connection,
        locking: sqlite3.Connection,
        pool: ThreadPoolExecutor,
        admit: Callable[[], bool] | None = None,
    ) -> None:
        self._inline = inline  # timeout 0: BEGIN IMMEDIATE fails at once when the file is locked
        self._locking = locking  # busy_timeout: used on the thread only
        self._pool = pool
        # False while the store's circuit is open: a batch that queued behind one stuck on the lock fails
        # at once instead of waiting out busy_timeout again.
        self._admit = admit
        self._pending: list[tuple[Body, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._on_thread = False
        self._commits = 0
        # Set here, cleared by the thread when done: a future's done() would need the loop to run its
        # callback, which a burst of inline batches never lets it do.
        self._checkpointing = False

    def submit(self, body: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """`body` in the next batch; the future has its result, or its exception (then it wrote nothing)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((body, future))
        if not self._scheduled and not self._on_thread:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        batch = [(body, future) for body, future in batch if not future.cancelled()]
        if not batch:
            return
        if self._admit is not None and not self._admit():
            _deliver(batch, _failed(len(batch), "the budget store's circuit is open"))
            return
        if not self._checkpointing and _begin(self._inline):
            _deliver(batch, run_batch(self._inline, [body for body, _ in batch]))
            self._committed()
            return
        # Locked (another process, or our thread checkpointing): wait for the lock off the loop.
        self._on_thread = True
        done = asyncio.get_running_loop().run_in_executor(self._pool, self._locked_batch, [b for b, _ in batch])
        done.add_done_callback(lambda f: self._thread_done(batch, f))

    def _locked_batch(self, bodies: list[Body]) -> list[Outcome]:
        try:
            self._locking.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            return _failed(len(bodies), f"budget store busy: {exc}")
        return run_batch(self._locking, bodies)

    def _thread_done(self, batch: list[tuple[Body, asyncio.Future[Any]]], done: asyncio.Future[list[Outcome]]) -> None:
        self._on_thread = False
        exc = done.exception()
        _deliver(batch, done.result() if exc is None else _failed(len(batch), f"budget store failed: {exc!r}"))
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and not self._checkpointing:
            # A checkpoint copies the WAL into the database and fsyncs it: milliseconds that would stall the
            # loop if the committing connection ran it, as SQLite does by default. While it runs, batches
            # go to the thread behind it: were they to carry on inline, a busy loop would append faster than
            # it copies and the WAL (which restarts only once fully copied) would grow without bound.
            self._checkpointing = True
            self._pool.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        try:
            with contextlib.suppress(sqlite3.Error):  # a later one, or another process's, will do it
                self._locking.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._checkpointing = False


def run_batch(db: sqlite3.Connection, bodies: list[Body]) -> list[Outcome]:
    """Every body in the transaction `db` has begun, then COMMIT; all or nothing if the database fails."""
    outcomes: list[Outcome] = []
    try:
        for body in bodies:
            try:
                outcomes.append((True, body(db)))
            except EXPECTED as exc:
                outcomes.append((False, exc))
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(db)
        return _failed(len(bodies), f"budget store failed: {exc}")
    except Exception as exc:
        # A bug in one body, which may have written half its work: nothing of the batch is kept.
        _rollback(db)
        failed = _failed(len(bodies), f"budget store transaction failed: {exc!r}")
        if len(outcomes) < len(bodies):
            failed[len(outcomes)] = (False, exc)
        return failed
    return outcomes


def _failed(n: int, message: str) -> list[Outcome]:
    # One exception each: a shared one would collect every raiser's traceback.
    return [(False, StoreUnavailable(message)) for _ in range(n)]


def _begin(db: sqlite3.Connection) -> bool:
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    return True


def _rollback(db: sqlite3.Connection) -> None:
    with contextlib.suppress(sqlite3.Error):  # an I/O error may have ended the transaction already
        db.execute("ROLLBACK")


def _deliver(batch: list[tuple[Body, asyncio.Future[Any]]], outcomes: list[Outcome]) -> None:
    for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
        if future.cancelled():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
