"""Redis killed and restarted under load: fail-closed refuses and holds nothing; fail-open keeps going,
and the ledger replay (settles, and cancels of the reserves the kill cut off) makes the store's totals
match every settle exactly, with no hold left."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.budget.breaker import Breaker, State
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


class Circuit:
    """The breaker's transitions as they happen, to wait on."""

    def __init__(self) -> None:
        self.seen: list[State] = []
        self.closed = asyncio.Event()

    def __call__(self, state: State) -> None:
        self.seen.append(state)
        if state == "closed":
            self.closed.set()


def open_store(server: RedisServer, tmp_path: Path, *, fail_open: bool) -> LedgeredStore:
    breaker = Breaker("redis", failures=3, cooldown_s=0.2, on_change=Circuit())
    # A timeout far past a loaded machine's slowest reply: a kill shows as refused connections at once.
    inner = RedisStore.from_url(server.url, prefix="outage", timeout_s=1.0, admit=breaker.admits)
    return LedgeredStore(inner, Ledger(tmp_path / "ledger.jsonl"), fail_open=fail_open, breaker=breaker)


async def recovered(store: LedgeredStore) -> None:
    """Until the store has closed its circuit, which it does once the probe has replayed the ledger."""
    circuit = store.breaker._on_change
    assert isinstance(circuit, Circuit)
    async with asyncio.timeout(10):
        await circuit.closed.wait()
    assert not store.ledger.pending()


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


async def spent(server: RedisServer) -> tuple[int, int]:
    """Spend and holds as Redis has them, read past the stores under test (whose circuit may be open)."""
    observer = RedisStore.from_url(server.url, prefix="outage")
    state = (await observer.state([TEAM]))["team:payments"]
    await observer.close()
    return state.spent_micros, state.reserved_micros


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

    entries = [line for line in ledger_copy.read_bytes().split(b"\n") if line.strip()]
    assert len(entries) == store.ledgered_settles + store.compensations
    server.start()
    await recovered(store)
    assert await spent(server) == (load.settled, 0)

    # A replay that runs again over entries already replayed (a crash mid-replay) counts nothing twice.
    shutil.copy(ledger_copy, tmp_path / "ledger.jsonl")
    await store.replay()
    assert await spent(server) == (load.settled, 0)
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
    _, held_now = await spent(server)
    await recovered(store)
    # Holds before the replay: the early three (settled into the ledger) and at most one in flight per worker
    # at the kill, whose reserves got a compensating cancel.
    assert 3 * 5_000 <= held_now <= (3 + 8) * 5_000
    assert store.compensations <= 8
    assert await spent(server) == (load.settled, 0)
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
