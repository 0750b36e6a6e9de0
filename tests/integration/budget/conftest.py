"""Real stores for the budget tests: a SQLite file per test, and Redis under a prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from proxy.budget.redis import RedisStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import Backend


async def wipe_prefix(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    keys = [k async for k in client.scan_iter(match="{" + prefix + "}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisStore]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    store = RedisStore.from_url(redis_url, prefix=prefix, reservation_ttl_s=600, timeout_s=5)
    yield store
    await store.close()
    await wipe_prefix(redis_url, prefix)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "budget.sqlite3", reservation_ttl_s=600)
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest) -> Backend:
    fixture = "sqlite_store" if request.param == "sqlite" else "redis_store"
    result: Backend = request.getfixturevalue(fixture)
    return result
