"""The script runner recovers from what a Redis restart does to it: closed connections, a lost script cache."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from proxy.budget.redis import RedisStore
from proxy.budget.store import ScopeLimit

pytestmark = pytest.mark.redis

TEAM = ScopeLimit("team:payments", limit_micros=1_000_000)


async def test_reserve_loads_the_script_again_after_a_script_flush(redis_store: RedisStore, redis_url: str) -> None:
    await redis_store.settle(await redis_store.reserve("r1", [TEAM], 100, 1), 100, 1)
    admin = aioredis.Redis.from_url(redis_url)
    await admin.script_flush()
    await admin.aclose()
    await redis_store.settle(await redis_store.reserve("r2", [TEAM], 100, 1), 100, 1)
    assert (await redis_store.state([TEAM]))["team:payments"].spent_micros == 200


async def test_an_idle_connection_closed_by_the_server_is_replaced(redis_store: RedisStore, redis_url: str) -> None:
    await redis_store.settle(await redis_store.reserve("r1", [TEAM], 100, 1), 100, 1)
    (conn,) = redis_store._scripts._idle
    await conn.send_command("CLIENT", "ID")
    admin = aioredis.Redis.from_url(redis_url)
    assert await admin.client_kill_filter(_id=await conn.read_response()) == 1
    await admin.aclose()
    await redis_store.settle(await redis_store.reserve("r2", [TEAM], 100, 1), 100, 1)
    assert (await redis_store.state([TEAM]))["team:payments"].spent_micros == 200
