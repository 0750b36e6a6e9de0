"""LedgeredStore against stores that hang, lock or lose their caller: compensating cancels leave no hold,
live holds are renewed, a dead process's hold is reaped, and an open circuit answers at once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from proxy.budget.breaker import Breaker, State
from proxy.budget.errors import StoreUnavailable
from proxy.budget.ledger import Ledger
from proxy.budget.ledgered import LedgeredStore
from proxy.budget.redis import RedisStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import Backend, ScopeLimit
from tests.support.redis_server import RedisServer

TEAM = ScopeLimit("team:payments", limit_micros=10**9)


class Transitions:
    def __init__(self) -> None:
        self.events: dict[State, asyncio.Event] = {}

    def __call__(self, state: State) -> None:
        self.event(state).set()

    def event(self, state: State) -> asyncio.Event:
        return self.events.setdefault(state, asyncio.Event())

    async def reached(self, state: State) -> None:
        async with asyncio.timeout(10):
            await self.event(state).wait()


def wrap(inner_of: type[RedisStore] | type[SqliteStore], where: str | Path, tmp_path: Path, *, ttl: float = 600,
         fail_open: bool = False, failures: int = 2) -> tuple[LedgeredStore, Transitions]:
    transitions = Transitions()
    breaker = Breaker("test", failures=failures, cooldown_s=0.2, on_change=transitions)
    inner: Backend
    if inner_of is RedisStore:
        inner = RedisStore.from_url(str(where), prefix="faults", timeout_s=1.0, reservation_ttl_s=ttl,
                                    admit=breaker.admits)
    else:
        inner = SqliteStore(where, busy_timeout_s=0.2, reservation_ttl_s=ttl, admit=breaker.admits)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    return LedgeredStore(inner, ledger, fail_open=fail_open, reservation_ttl_s=ttl, breaker=breaker), transitions


async def redis_holds(server: RedisServer) -> tuple[int, int]:
    client = aioredis.Redis.from_url(server.url)
    try:
        return int(await client.hlen("{faults}:rsv")), int(await client.hlen("{faults}:held"))
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_reserve_cut_off_by_a_frozen_redis_lands_late_and_its_cancel_releases_it(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    store, transitions = wrap(RedisStore, private_redis.url, tmp_path, failures=1)
    await store.reserve("warm", [TEAM], 1, 1)  # a connection open before the freeze, as in production
    private_redis.freeze()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.reserve("cut-off", [TEAM], 5_000, 10)
    assert time.monotonic() - started < 2.0
    assert store.compensations == 1
    private_redis.thaw()  # Redis now runs the reserve that sat in its socket buffer
    await transitions.reached("closed")
    assert await redis_holds(private_redis) == (1, 2)  # only "warm" holds: m: and t: of its one scope
    await store.close()


async def test_a_caller_cancelled_mid_reserve_leaves_no_hold(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite3"
    store, _ = wrap(SqliteStore, path, tmp_path)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # the reserve queues on the store's thread, behind the lock
    reserve = asyncio.create_task(store.reserve("gone", [TEAM], 5_000, 10))
    await asyncio.sleep(0.05)
    reserve.cancel()  # the client went away; the reserve still runs once the lock is free
    locker.execute("ROLLBACK")
    with pytest.raises(asyncio.CancelledError):
        await reserve
    await store.ledger.flushed()
    await store.replay()
    assert (await store.state([TEAM]))["team:payments"].reserved_micros == 0
    assert store.compensations == 1
    await store.close()
    locker.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[type, str | Path]]:
    if request.param == "sqlite":
        yield SqliteStore, tmp_path / "budget.sqlite3"
        return
    server: RedisServer = request.getfixturevalue("private_redis")
    yield RedisStore, server.url


@pytest.mark.slow
async def test_a_live_hold_is_renewed_and_a_dead_processes_hold_is_reaped(
    backend: tuple[type[RedisStore] | type[SqliteStore], str | Path], tmp_path: Path
) -> None:
    kind, where = backend
    live, _ = wrap(kind, where, tmp_path / "live", ttl=1.5)
    dead, _ = wrap(kind, where, tmp_path / "dead", ttl=1.5)
    running = await live.reserve("streaming", [TEAM], 7_000, 10)
    await dead.reserve("crashed", [TEAM], 5_000, 10)
    await dead.close()  # its process is gone: nobody renews or settles its hold
    await asyncio.sleep(3.0)  # two TTLs: the live hold has been renewed, the dead one has expired
    assert (await live.state([TEAM]))["team:payments"].reserved_micros == 7_000
    await live.settle(running, 6_000, 8)
    team = (await live.state([TEAM]))["team:payments"]
    assert (team.reserved_micros, team.spent_micros) == (0, 6_000)
    await live.close()


async def test_an_open_circuit_answers_at_once_and_closes_when_the_lock_is_gone(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite3"
    store, transitions = wrap(SqliteStore, path, tmp_path, failures=2)
    assert (await store.readiness()).ready
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            await store.reserve("r", [TEAM], 1, 1)
    await transitions.reached("open")
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(StoreUnavailable):
            await store.reserve("r", [TEAM], 1, 1)
    assert time.monotonic() - started < 0.05
    readiness = await store.readiness()
    assert not readiness.ready and readiness.circuit in ("open", "half_open")
    locker.execute("ROLLBACK")
    await transitions.reached("closed")
    assert (await store.readiness()).ready
    await store.reserve("r", [TEAM], 1, 1)
    await store.close()
    locker.close()


async def test_failing_open_an_open_circuit_grants_locally_and_settles_into_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite3"
    store, transitions = wrap(SqliteStore, path, tmp_path, failures=1, fail_open=True)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    first = await store.reserve("r1", [TEAM], 1_000, 1)  # waits out busy_timeout, then granted locally
    await transitions.reached("open")
    started = time.monotonic()
    second = await store.reserve("r2", [TEAM], 1_000, 1)
    assert time.monotonic() - started < 0.05
    assert first.local and second.local and (await store.readiness()).ready
    await store.settle(first, 900, 1)
    await store.settle(second, 800, 1)
    await store.record([ScopeLimit("app:billing")], 100, 1)
    locker.execute("ROLLBACK")
    await transitions.reached("closed")
    assert (await store.state([TEAM]))["team:payments"].spent_micros == 1_700
    assert (await store.state([ScopeLimit("app:billing")]))["app:billing"].spent_micros == 100
    await store.close()
    locker.close()


async def test_a_store_asked_only_for_readiness_still_closes_its_circuit_when_the_store_is_back(
    tmp_path: Path,
) -> None:
    # A pod out of rotation (not ready) gets no traffic: its readiness checks alone must lead to recovery.
    path = tmp_path / "budget.sqlite3"
    store, transitions = wrap(SqliteStore, path, tmp_path, failures=2)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    for _ in range(2):
        assert not (await store.readiness()).ready
    await transitions.reached("open")
    locker.execute("ROLLBACK")
    await transitions.reached("closed")
    assert (await store.readiness()).ready
    await store.close()
    locker.close()
