"""Scopes with no limit and no rate: the reserve touches no store, the settle records the spend once."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.budget.ledger import Ledger
from proxy.budget.ledgered import LedgeredStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import ScopeLimit

TRACKED = (ScopeLimit("team:research"), ScopeLimit("app:notebook"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LedgeredStore]:
    ledgered = LedgeredStore(SqliteStore(tmp_path / "budget.sqlite3"), Ledger(tmp_path / "ledger.jsonl"))
    yield ledgered
    await ledgered.close()


async def spent(store: LedgeredStore) -> dict[str, tuple[int, int, int]]:
    return {u.limit.scope: (u.state.spent_micros, u.state.reserved_micros, u.state.tokens) for u in await store.usage()}


async def test_tracking_scopes_are_not_held_and_the_settle_records_the_actual_spend(store: LedgeredStore) -> None:
    reservation = await store.reserve("req-1", TRACKED, cost_micros=5_000, tokens=900)
    assert reservation.record_on_settle == TRACKED
    assert await spent(store) == {}  # nothing reached the store before the upstream call
    await store.settle(reservation, cost_micros=1_200, tokens=300)
    assert await spent(store) == {"team:research": (1_200, 0, 300), "app:notebook": (1_200, 0, 300)}


async def test_a_limit_on_any_scope_holds_on_all_of_them(store: LedgeredStore) -> None:
    limited = (ScopeLimit("team:research", limit_micros=1_000_000), ScopeLimit("app:notebook"))
    reservation = await store.reserve("req-2", limited, cost_micros=5_000, tokens=900)
    assert reservation.record_on_settle is None
    assert await spent(store) == {"team:research": (0, 5_000, 0), "app:notebook": (0, 5_000, 0)}
    await store.settle(reservation, cost_micros=1_200, tokens=300)
    assert await spent(store) == {"team:research": (1_200, 0, 300), "app:notebook": (1_200, 0, 300)}


async def test_a_rate_alone_still_reserves(store: LedgeredStore) -> None:
    rated = (ScopeLimit("team:research", requests_per_minute=10),)
    reservation = await store.reserve("req-3", rated, cost_micros=5_000, tokens=900)
    assert reservation.record_on_settle is None
    assert reservation.rate is not None and reservation.rate.remaining_requests == 9


async def test_a_scope_is_listed_once_then_records_only_add_spend(tmp_path: Path) -> None:
    sqlite = SqliteStore(tmp_path / "budget.sqlite3")
    statements: list[str] = []
    sqlite._inline.set_trace_callback(statements.append)  # the connection group commits run on
    try:
        await sqlite.record(TRACKED, 1_200, 300, record_id="r-1")
        await sqlite.record(TRACKED, 1_000, 100, record_id="r-2")
        await sqlite.record((*TRACKED, ScopeLimit("key:k-1")), 1, 1, record_id="r-3")
    finally:
        sqlite._inline.set_trace_callback(None)
    listing = [s for s in statements if "INTO scopes" in s]
    assert len(listing) == 3 and "team:research" in listing[0] and "key:k-1" in listing[2]  # one row each
    assert "team:research" not in listing[2]
    assert {u.limit.scope: u.state.spent_micros for u in await sqlite.usage()} == {
        "team:research": 2_201, "app:notebook": 2_201, "key:k-1": 1}
    await sqlite.close()


async def test_a_record_sqlite_took_leaves_no_once_only_mark_and_a_ledgered_one_carries_its_id(
        tmp_path: Path) -> None:
    sqlite = SqliteStore(tmp_path / "budget.sqlite3", busy_timeout_s=0.05)
    store = LedgeredStore(sqlite, Ledger(tmp_path / "ledger.jsonl"))
    statements: list[str] = []
    sqlite._inline.set_trace_callback(statements.append)
    sqlite._db.set_trace_callback(statements.append)
    try:
        await store.settle(await store.reserve("req-4", TRACKED, 5_000, 900), cost_micros=1_200, tokens=300)
        # A failure rolls the whole transaction back, so there is nothing a ledgered copy could repeat.
        assert not [s for s in statements if "settled" in s]
        other = sqlite3.connect(tmp_path / "budget.sqlite3", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock past the busy timeout
        await store.record(TRACKED, 1_000, 100)
        other.execute("ROLLBACK")
        other.close()
        assert store.ledger.pending()
        assert await store.replay() == 1
        # The ledger's copy is applied with its id: a replay cut short after it landed would not add it again.
        assert [s for s in statements if "INTO settled" in s]
    finally:
        sqlite._inline.set_trace_callback(None)
        sqlite._db.set_trace_callback(None)
    assert {u.limit.scope: u.state.spent_micros for u in await store.usage()} == {
        "team:research": 2_200, "app:notebook": 2_200}
    await store.close()
