"""One contending worker process: fire N reserves at once against one team budget, settle the winners.

Run as `python -m tests.integration.budget.contend <sqlite|redis> <path-or-url> <prefix> <n> <start_at>`;
prints {"accepted": k, "refused": m} as JSON.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson

from proxy.budget.errors import BudgetExceeded
from proxy.budget.redis import RedisStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import Backend, ScopeLimit

COST = 1_000
LIMIT = ScopeLimit("team:payments", limit_micros=50 * COST)
GLOBAL = ScopeLimit("global", limit_micros=1_000_000 * COST)


async def one(store: Backend, i: int) -> bool:
    try:
        reservation = await store.reserve(f"req-{i}", [GLOBAL, LIMIT], COST, 10)
    except BudgetExceeded:
        return False
    await store.settle(reservation, COST, 10)
    return True


async def main(kind: str, where: str, prefix: str, n: int, start_at: float) -> None:
    # Exactness is under test, not latency: a loaded machine (and a shared Redis) may answer slowly.
    store: Backend
    if kind == "sqlite":
        store = SqliteStore(where, busy_timeout_s=30)
    else:
        store = RedisStore.from_url(where, prefix=prefix, timeout_s=30)
    await store.ping()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    results = await asyncio.gather(*(one(store, i) for i in range(n)))
    await store.close()
    sys.stdout.write(orjson.dumps({"accepted": sum(results), "refused": n - sum(results)}).decode())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])))
