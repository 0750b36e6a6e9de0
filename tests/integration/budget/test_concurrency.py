"""Two processes race 200 reserves against one team budget that fits exactly 50: exactly 50 win."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from proxy.budget.redis import RedisStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import Backend
from tests.integration.budget.conftest import wipe_prefix
from tests.integration.budget.contend import COST, LIMIT

ROOT = Path(__file__).resolve().parents[3]


def race(kind: str, where: str, prefix: str) -> list[dict[str, int]]:
    start_at = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.budget.contend", kind, where, prefix, "100", str(start_at)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    return [orjson.loads(out) for out in outputs]


async def assert_exactly_the_limit_was_spent(store: Backend, results: list[dict[str, int]]) -> None:
    assert sum(r["accepted"] for r in results) == 50
    assert sum(r["refused"] for r in results) == 150
    team = (await store.state([LIMIT]))["team:payments"]
    assert (team.spent_micros, team.reserved_micros) == (50 * COST, 0)
    assert team.limit_micros is not None and team.spent_micros <= team.limit_micros


@pytest.mark.redis
@pytest.mark.slow
async def test_two_processes_on_one_redis_never_overspend(redis_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    results = race("redis", redis_url, prefix)
    store = RedisStore.from_url(redis_url, prefix=prefix)
    try:
        await assert_exactly_the_limit_was_spent(store, results)
    finally:
        await store.close()
        await wipe_prefix(redis_url, prefix)


@pytest.mark.slow
async def test_two_processes_on_one_sqlite_file_never_overspend(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite3"
    SqliteStore(path)  # create the schema before the race
    results = race("sqlite", str(path), "unused")
    store = SqliteStore(path)
    try:
        await assert_exactly_the_limit_was_spent(store, results)
    finally:
        await store.close()
