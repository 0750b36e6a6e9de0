"""Redis killed and restarted under load: fail-closed refuses and holds nothing; fail-open keeps going,
and the ledger replay makes the store's totals match every settle exactly."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.budget.errors import StoreUnavailable
from proxy.budget.ledger import Ledger
from proxy.budget.ledgered import LedgeredStore
from proxy.budget.redis import RedisStore
from proxy.budget.store import ScopeLimit
from tests.support.redis_server import RedisServer, binary

pytestmark = [
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.skipif(binary() is None, reason="needs redis-server on PATH to kill and restart its own"),
]

TEAM = ScopeLimit("team:payments", limit_micros=10**12)
USER = ScopeLimit("user:u-42", limit_micros=10**12)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


def open_store(server: RedisServer, tmp_path: Path, *, fail_open: bool) -> LedgeredStore:
    inner = RedisStore.from_url(server.url, prefix="outage", timeout_s=0.2)
    return LedgeredStore(inner, Ledger(tmp_path / "ledger.jsonl"), fail_open=fail_open)


class Load:
    """Workers reserving and settling in a loop; `settled` is what the store must end up with."""

    def __init__(self, store: LedgeredStore) -> None:
        self.store = store
        self.settled = 0
        self.refused = 0
        self.running = True

    async def worker(self, n: int) -> None:
        i = 0
        while self.running:
            i += 1
            cost = 1_000 + n * 7 + i
            try:
                reservation = await self.store.reserve(f"w{n}-{i}", [TEAM, USER], 5_000, 100)
            except StoreUnavailable:
                self.refused += 1
                await asyncio.sleep(0.005)
                continue
            await asyncio.sleep(0.002)
            await self.store.settle(reservation, cost, 50)
            self.settled += cost

    async def run_while(self, during: asyncio.Future[None] | asyncio.Task[None]) -> None:
        workers = [asyncio.create_task(self.worker(n)) for n in range(8)]
        await during
        self.running = False
        await asyncio.gather(*workers)


async def spent(store: LedgeredStore) -> tuple[int, int]:
    # Look past the reservation TTL: holds whose reply was lost in the crash are reaped by then.
    state = await store.state([TEAM], now=time.time() + 3600)
    return state["team:payments"].spent_micros, state["team:payments"].reserved_micros


async def test_fail_open_keeps_serving_and_replay_restores_exact_totals(server: RedisServer, tmp_path: Path) -> None:
    store = open_store(server, tmp_path, fail_open=True)
    load = Load(store)

    async def outage() -> None:
        await asyncio.sleep(0.3)
        server.kill()
        await asyncio.sleep(0.5)

    await load.run_while(asyncio.create_task(outage()))
    assert load.refused == 0
    assert store.fail_open_reserves > 0 and store.ledgered_settles > 0
    ledger_copy = tmp_path / "ledger-copy.jsonl"
    shutil.copy(tmp_path / "ledger.jsonl", ledger_copy)

    server.start()
    assert await store.replay() == store.ledgered_settles
    assert await spent(store) == (load.settled, 0)

    # A replay that runs again over entries already replayed (a crash mid-replay) counts nothing twice.
    shutil.copy(ledger_copy, tmp_path / "ledger.jsonl")
    await store.replay()
    assert await spent(store) == (load.settled, 0)
    await store.close()


async def test_fail_closed_refuses_holds_nothing_and_keeps_the_settles(server: RedisServer, tmp_path: Path) -> None:
    store = open_store(server, tmp_path, fail_open=False)
    load = Load(store)
    before = [await store.reserve(f"early-{i}", [TEAM, USER], 5_000, 100) for i in range(3)]

    async def outage() -> None:
        await asyncio.sleep(0.3)
        server.kill()
        with pytest.raises(StoreUnavailable):
            await store.reserve("during", [TEAM, USER], 5_000, 100)
        with pytest.raises(StoreUnavailable):
            await store.state([TEAM])
        for reservation in before:
            await store.settle(reservation, 2_000, 10)  # never raises: goes to the ledger
        load.settled += 3 * 2_000
        await asyncio.sleep(0.3)

    await load.run_while(asyncio.create_task(outage()))
    assert load.refused > 0 and store.fail_open_reserves == 0

    server.start()
    held_now = (await store.state([TEAM]))["team:payments"].reserved_micros
    await store.replay()
    # Holds now: the early three (settled into the ledger) and at most one in flight per worker at the kill.
    assert 3 * 5_000 <= held_now <= (3 + 8) * 5_000
    assert await spent(store) == (load.settled, 0)
    await store.close()


async def test_healthy_store_replays_the_ledger_on_its_own(server: RedisServer, tmp_path: Path) -> None:
    store = open_store(server, tmp_path, fail_open=True)
    reservation = await store.reserve("r1", [TEAM], 5_000, 100)
    server.kill()
    await store.settle(reservation, 4_321, 10)
    server.start()
    await store.reserve("r2", [TEAM], 1, 1)  # a healthy call notices the ledger and replays it
    for _ in range(100):
        if not store.ledger.pending():
            break
        await asyncio.sleep(0.02)
    assert not store.ledger.pending()
    state = await store.state([TEAM])
    assert state["team:payments"].spent_micros == 4_321
    await store.close()
