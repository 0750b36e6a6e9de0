"""SqliteStore keeps spend across a restart, checkpoints its WAL off the event loop, and reports a lock held past
busy_timeout as an outage."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from proxy.budget.errors import StoreUnavailable
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import ScopeLimit

TEAM = ScopeLimit("team:payments", limit_micros=1_000_000)


async def test_spend_and_holds_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite3"
    store = SqliteStore(path)
    done = await store.reserve("r1", [TEAM], 300_000, 10)
    await store.settle(done, 250_000, 10)
    held = await store.reserve("r2", [TEAM], 100_000, 10)
    await store.close()

    reopened = SqliteStore(path)
    team = (await reopened.state([TEAM]))["team:payments"]
    assert (team.spent_micros, team.reserved_micros) == (250_000, 100_000)
    await reopened.settle(held, 50_000, 5)
    await reopened.settle(done, 250_000, 10)  # settled before the restart: still counted once
    team = (await reopened.state([TEAM]))["team:payments"]
    assert (team.spent_micros, team.reserved_micros) == (300_000, 0)
    await reopened.close()


async def test_a_lock_held_past_busy_timeout_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite3"
    store = SqliteStore(path, busy_timeout_s=0.1)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.reserve("r1", [TEAM], 1, 1)
    assert time.monotonic() - started < 1
    blocker.execute("ROLLBACK")
    await store.reserve("r2", [TEAM], 1, 1)
    blocker.close()
    await store.close()


def wal_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


async def test_the_wal_is_checkpointed_by_the_thread_so_it_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite3"
    store = SqliteStore(path)
    for i in range(1500):
        await store.settle(await store.reserve(f"r{i}", [TEAM], 1, 1), 0, 0)
    wal = wal_size(path)
    await store.close()
    # ~11 pages of 1 KiB per pair: 1500 pairs without a checkpoint leave a WAL of ~17 MiB.
    assert wal < 4 * 2**20
