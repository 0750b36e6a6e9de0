"""Latency of one reserve + settle pair on each budget store, and of a whole request's budget calls
(state + reserve + settle, as the pipeline makes them when a scope has a USD or token limit), sequential,
p50/p99.

    .venv/bin/python bench/budget_bench.py [--redis-url redis://127.0.0.1:6379/0] [--n 5000] [--scopes 4]
        [--uvloop]

A Redis PING over the same client is printed first: two of those are the floor under a pair.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from proxy.budget.redis import RedisStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import BudgetStore, ScopeLimit
from proxy.budget.windows import DAY, MONTH, Window

SCOPES = ["key:k-7", "user:u-42", "app:billing-api", "team:payments", "global"]
WINDOWS = [DAY, MONTH, Window("rolling", 3600), MONTH, MONTH]


def limits(count: int) -> list[ScopeLimit]:
    out = [ScopeLimit(s, w, limit_micros=10**15) for s, w in zip(SCOPES[:count], WINDOWS, strict=False)]
    # The key also carries per-minute limits, as a real deployment would.
    out[0] = ScopeLimit(SCOPES[0], DAY, 10**15, None, 10**9, 10**12)
    return out


def report(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"{name:<44} p50 {p50 * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms   n={len(ordered)}")


async def pairs(store: BudgetStore, scope_limits: list[ScopeLimit], n: int, with_state: bool = False) -> list[float]:
    samples = []
    for i in range(n + n // 10):
        started = time.perf_counter()
        if with_state:
            await store.state(scope_limits)
        reservation = await store.reserve(f"bench-{i}", scope_limits, 7_150, 1_324)
        await store.settle(reservation, 3_000, 600)
        if i >= n // 10:  # the first tenth warms pools, caches and script loading
            samples.append(time.perf_counter() - started)
    return samples


def sqlite_inline(store: SqliteStore, n: int) -> list[float]:
    """One bare transaction on the calling thread, to weigh the executor hop against it."""
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        store._tx(lambda db: db.execute("UPDATE held SET micros = micros WHERE scope = 'x'") and None)
        samples.append(time.perf_counter() - started)
    return samples


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--scopes", type=int, default=4, choices=range(1, 6))
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as the server does")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    scope_limits = limits(args.scopes)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    redis_store = RedisStore.from_url(args.redis_url, prefix=prefix)
    samples = []
    for _ in range(args.n):
        started = time.perf_counter()
        await redis_store.ping()
        samples.append(time.perf_counter() - started)
    report("redis PING (one round trip)", samples)
    report(f"redis reserve+settle, {args.scopes} scopes", await pairs(redis_store, scope_limits, args.n))
    report(f"redis state+reserve+settle, {args.scopes} scopes", await pairs(redis_store, scope_limits, args.n, True))
    keys = [k async for k in redis_store._redis.scan_iter(match="{" + prefix + "}:*")]
    if keys:
        await redis_store._redis.delete(*keys)
    await redis_store.close()

    with tempfile.TemporaryDirectory() as tmp:
        sqlite_store = SqliteStore(Path(tmp) / "bench.sqlite3")
        report(f"sqlite reserve+settle, {args.scopes} scopes", await pairs(sqlite_store, scope_limits, args.n))
        report(
            f"sqlite state+reserve+settle, {args.scopes} scopes", await pairs(sqlite_store, scope_limits, args.n, True)
        )
        report("sqlite bare transaction, inline", sqlite_inline(sqlite_store, args.n))
        samples = []
        loop = asyncio.get_running_loop()
        for _ in range(args.n):
            started = time.perf_counter()
            await loop.run_in_executor(sqlite_store._pool, lambda: None)
            samples.append(time.perf_counter() - started)
        report("sqlite executor hop alone", samples)
        await sqlite_store.close()


if __name__ == "__main__":
    options = parse_args()
    if options.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(options))
