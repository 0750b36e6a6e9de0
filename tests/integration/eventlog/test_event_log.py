"""The event log on SQLite and on Redis: events appended per kind, read back since a time as strings, capped
by retention, and an unreachable log reported as EventLogUnavailable."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from proxy.eventlog import EventLog, EventLogUnavailable, open_event_log
from proxy.eventlog.redis import RedisEventLog
from proxy.eventlog.sqlite import SqliteEventLog
from tests.support.config import make_config
from tests.support.redis_server import free_port


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    events: EventLog
    if request.param == "sqlite":
        events = SqliteEventLog(tmp_path / "budget.sqlite3", retention=100)
        yield events
        await events.close()
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"t{uuid.uuid4().hex[:12]}"
    events = RedisEventLog(aioredis.Redis.from_url(url), prefix=prefix, retention=100)
    yield events
    await events.close()
    client = aioredis.Redis.from_url(url)
    keys = [k async for k in client.scan_iter(match="{" + prefix + "}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_events_are_appended_and_read_back_since_a_time(log: EventLog) -> None:
    before = time.time() - 1
    await log.append("egress_refused", {"host": "api.example.com", "port": 443})
    await log.append("egress_refused", {"host": "b.example.com", "port": 443})
    await log.append("other", {"x": 1})
    events = await log.events("egress_refused", before)
    assert [(e["host"], e["port"]) for e in events] == [("api.example.com", "443"), ("b.example.com", "443")]
    assert all(before <= e["ts"] <= time.time() + 1 for e in events)
    assert await log.events("egress_refused", time.time() + 60) == []


async def test_retention_keeps_about_the_newest_events_of_a_kind(log: EventLog) -> None:
    for i in range(400):
        await log.append("many", {"i": i})
    await log.append("few", {"i": 0})
    kept = [int(e["i"]) for e in await log.events("many", 0)]
    # Both trim in steps (a Redis stream's MAXLEN ~, SQLite every 1%): about the retention, never the oldest.
    assert 100 <= len(kept) <= 200 and kept[-1] == 399 and kept[0] > 0
    assert len(await log.events("few", 0)) == 1


async def test_an_unreachable_redis_is_reported_as_unavailable() -> None:
    events = RedisEventLog.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    with pytest.raises(EventLogUnavailable):
        await events.append("egress_refused", {"host": "x"})
    with pytest.raises(EventLogUnavailable):
        await events.events("egress_refused", 0)
    await events.close()


async def test_the_log_is_opened_where_the_budget_store_is_configured(tmp_path: Path) -> None:
    config = make_config("http://127.0.0.1:9/v1", tmp_path)
    events = open_event_log(config)
    assert isinstance(events, SqliteEventLog)
    await events.append("egress_refused", {"host": "x"})
    await events.close()
    reopened = SqliteEventLog(tmp_path / "budget.sqlite3")
    assert [e["host"] for e in await reopened.events("egress_refused", 0)] == ["x"]
    await reopened.close()
