"""Store faults under load, through a real `serve` process over HTTP: a Redis frozen (SIGSTOP) or killed and a
SQLite file locked by another process, failing open and failing closed. Once the store is back, no hold is
left, the spend recorded is exactly what the upstream reported, and while the circuit is open no request
waits on the store."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
import yaml

from proxy.budget.pricing import Prices, cost_micros
from proxy.budget.redis import RedisStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import Backend, ScopeLimit
from proxy.budget.windows import MONTH
from tests.conftest import UpstreamHandle
from tests.support.config import KEYS, REPO, config_document
from tests.support.processes import start_proxy, stop_proxy
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.slow
TIMEOUT_S = 0.2  # the store timeout: redis_timeout_s, sqlite_busy_timeout_s
COOLDOWN_S = 0.5
WORKERS = 12
GPT_4O = Prices.from_usd(2.5, 10.0, 1.25)
TEAM = ScopeLimit("team:payments", MONTH)
AUTH = {"Authorization": f"Bearer {KEYS['payments']}"}


@dataclass(frozen=True)
class Outcome:
    started: float
    seconds: float
    status: int
    cost_micros: int  # at catalogue prices, from the usage the upstream reported (0 unless 200)


def policies(tmp_path: Path) -> Path:
    """The shipped policies with one monthly budget for the team: no downgrade, no per-minute limit."""
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    path = target / "data" / "budgets.json"
    data = json.loads(path.read_text())
    data["budgets"]["scopes"] = {"team": {"payments": [{"limit_usd": 500, "window": "month"}]}}
    data["budgets"]["downgrade"] = {}
    path.write_text(json.dumps(data))
    return target


def usage_cost(usage: dict[str, Any]) -> int:
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return cost_micros(usage["prompt_tokens"], cached, usage["completion_tokens"], GPT_4O)


async def one_request(session: aiohttp.ClientSession, root: str, stream: bool) -> tuple[int, int]:
    body: dict[str, Any] = {"model": "gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    async with session.post(root + "/v1/chat/completions", json=body, headers=AUTH) as response:
        if response.status != 200:
            await response.read()
            return response.status, 0
        if not stream:
            return 200, usage_cost((await response.json())["usage"])
        cost = 0
        async for line in response.content:
            if line.startswith(b"data: {") and b'"usage":{' in line:
                usage = json.loads(line[6:]).get("usage")
                cost = usage_cost(usage) if usage else cost
        return 200, cost


async def load(root: str, stop: asyncio.Event) -> list[Outcome]:
    outcomes: list[Outcome] = []

    async def worker(n: int, session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            started = time.monotonic()
            status, cost = await one_request(session, root, stream=n % 2 == 1)
            outcomes.append(Outcome(started, time.monotonic() - started, status, cost))

    connector = aiohttp.TCPConnector(limit=WORKERS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(worker(n, session) for n in range(WORKERS)))
    return outcomes


@dataclass
class Store:
    """A backend under test: how to break it, mend it, and read what it holds past the proxy's breaker."""

    budget: dict[str, Any]
    fault: Callable[[], Awaitable[None]]
    mend: Callable[[], Awaitable[None]]
    observer: Callable[[], Backend]
    holds: Callable[[], Awaitable[int]]


def redis_store(server: RedisServer, fault: str) -> Store:
    prefix = f"f{uuid.uuid4().hex[:8]}"

    async def holds() -> int:
        client = aioredis.Redis.from_url(server.url)
        try:
            return int(await client.hlen(f"{{{prefix}}}:rsv")) + int(await client.hlen(f"{{{prefix}}}:held"))
        finally:
            await client.aclose()

    async def mend() -> None:  # idempotent: the test's cleanup mends again
        if fault == "freeze":
            server.thaw()
        elif server.process is None:
            await asyncio.to_thread(server.start)

    return Store(
        {"store": "redis", "redis_url": server.url, "key_prefix": prefix, "redis_timeout_s": TIMEOUT_S},
        fault=lambda: asyncio.to_thread(server.freeze if fault == "freeze" else server.kill),
        mend=mend,
        observer=lambda: RedisStore.from_url(server.url, prefix=prefix),
        holds=holds,
    )


def sqlite_store(path: Path) -> Store:
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)

    async def lock() -> None:
        locker.execute("BEGIN IMMEDIATE")  # another process holding the write lock

    async def unlock() -> None:
        if locker.in_transaction:
            locker.execute("ROLLBACK")

    async def holds() -> int:
        db = sqlite3.connect(path)
        try:
            (rows,) = db.execute("SELECT count(*) FROM reservations").fetchone()
            (held,) = db.execute("SELECT count(*) FROM held WHERE micros > 0 OR tokens > 0").fetchone()
            return int(rows) + int(held)
        finally:
            db.close()

    SqliteStore(path)  # the schema, before the proxy and the locker open it
    return Store({"store": "sqlite", "sqlite_path": str(path), "sqlite_busy_timeout_s": TIMEOUT_S},
                 fault=lock, mend=unlock, observer=lambda: SqliteStore(path), holds=holds)


async def circuit(session: aiohttp.ClientSession, root: str) -> str:
    async with session.get(root + "/readyz") as response:
        return str((await response.json())["store_circuit"])


def ledger_busy(ledger: Path) -> bool:
    """Entries in the ledger, or a replay under way (its claim file)."""
    return (ledger.exists() and ledger.stat().st_size > 0) or any(ledger.parent.glob(ledger.name + ".replay-*"))


async def recovered(root: str, ledger: Path) -> None:
    """Until the circuit is closed and the ledger replayed: with no traffic, the proxy gets there on its own."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if await circuit(session, root) == "closed" and not await asyncio.to_thread(ledger_busy, ledger):
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the proxy did not recover from the store fault within 15 s")


async def run_fault(store: Store, root: str, ledger: Path) -> tuple[list[Outcome], float, float, float]:
    """Load; the fault for 1.5 s; load; then wait, without traffic, until the proxy says it recovered.
    Returns the outcomes, when the fault began and ended, and how long recovery took after it ended."""
    stop = asyncio.Event()
    running = asyncio.create_task(load(root, stop))
    await asyncio.sleep(0.6)
    began = time.monotonic()
    await store.fault()
    await asyncio.sleep(1.5)
    ended = time.monotonic()
    await store.mend()
    await asyncio.sleep(1.0)
    stop.set()
    outcomes = await running
    await recovered(root, ledger)
    return outcomes, began, ended, time.monotonic() - ended


def check(outcomes: list[Outcome], began: float, ended: float, *, fail_open: bool) -> None:
    statuses = {o.status for o in outcomes}
    assert statuses <= ({200} if fail_open else {200, 503}), statuses
    during = [o for o in outcomes if began <= o.started < ended]
    assert during and len([o for o in outcomes if o.started >= ended]) > WORKERS
    if not fail_open:
        assert any(o.status == 503 for o in during)
    # Started once the breaker had surely opened (every worker's first call to the dead store has failed):
    # none waits on the store.
    open_phase = sorted(o.seconds for o in during if o.started >= began + 2 * TIMEOUT_S)
    assert len(open_phase) > 50
    # p95, not p99: a one-off stall of the whole process by the machine (twice in seven full runs, 0.3-0.4 s
    # once within the phase) holds every request in flight at that moment, ~1% of the ~1,000 here; waiting
    # on the store would hold nearly all of them (on a quiet run the open phase's p99 is 3-25 ms).
    p95 = percentile(open_phase, 0.95)
    # What the machine itself adds (a loaded CI box queues every request) is measured before the fault and
    # allowed on top: on a quiet machine it is a few ms, and the bound is the timeout + 50 ms.
    healthy = percentile(sorted(o.seconds for o in outcomes if o.started < began), 0.95)
    assert p95 <= TIMEOUT_S + 0.05 + healthy, (p95, statistics.median(open_phase), healthy)
    # Caught by the fault in flight: a request waits out at most a few store timeouts (state, reserve, settle).
    assert max(o.seconds for o in during) <= 3 * TIMEOUT_S + 0.5


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def assert_exact_and_released(store: Store, outcomes: list[Outcome]) -> None:
    assert await store.holds() == 0
    observer = store.observer()
    try:
        team = (await observer.state([TEAM]))["team:payments"]
    finally:
        await observer.close()
    assert team.reserved_micros == 0
    assert team.spent_micros == sum(o.cost_micros for o in outcomes)


async def fault_through_the_proxy(store: Store, upstream: UpstreamHandle, tmp_path: Path, fail_open: bool) -> None:
    ledger = tmp_path / "ledger.jsonl"
    budget = {**store.budget, "fail_open": fail_open, "ledger_path": str(ledger),
              "breaker": {"failures": 3, "cooldown_s": COOLDOWN_S}}
    document = config_document(upstream.url, tmp_path, budget=budget, telemetry={"log_level": "warning"},
                               policy={"dir": str(policies(tmp_path)), "reload_interval_s": 0, "timeout_ms": 5000})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    log = tmp_path / "proxy.log"  # its warnings (breaker transitions, ledgered settles) show if it fails
    with log.open("wb") as output:
        proc, root = await asyncio.to_thread(start_proxy, config, stdout=output)
        try:
            outcomes, began, ended, recovery = await run_fault(store, root, ledger)
            check(outcomes, began, ended, fail_open=fail_open)
            # Back within a cool-down and a probe or two of the store answering again ("a few seconds").
            assert recovery <= 5
            await assert_exact_and_released(store, outcomes)
        finally:
            await store.mend()
            await asyncio.to_thread(stop_proxy, proc, log=log)


@pytest.mark.redis
@pytest.mark.parametrize("fault", ["freeze", "kill"])
@pytest.mark.parametrize("fail_open", [True, False], ids=["fail_open", "fail_closed"])
async def test_redis_fault_under_load(fault: str, fail_open: bool, private_redis: RedisServer,
                                      upstream: UpstreamHandle, tmp_path: Path) -> None:
    await fault_through_the_proxy(redis_store(private_redis, fault), upstream, tmp_path, fail_open)


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail_open", "fail_closed"])
async def test_sqlite_locked_by_another_process_under_load(fail_open: bool, upstream: UpstreamHandle,
                                                           tmp_path: Path) -> None:
    await fault_through_the_proxy(sqlite_store(tmp_path / "budget.sqlite3"), upstream, tmp_path, fail_open)
