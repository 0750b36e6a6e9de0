"""200 concurrent requests against one team budget, across processes: never over the limit, and exactly the
requests that fit are served. Redis: two proxy processes sharing it; SQLite: two workers sharing one file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest
import yaml

from proxy.budget.pricing import Prices, worst_case_micros
from proxy.tokens import TokenEstimator, Vocab
from tests.conftest import UpstreamHandle
from tests.support.config import KEYS, REPO, config_document
from tests.support.processes import start_proxy, stop_proxy
from tests.support.redis_server import ensure_redis

BODY = {"model": "gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
FITS = 50
REQUESTS = 200


def worst_case() -> int:
    prompt = TokenEstimator(Vocab()).chat("o200k_base", BODY)
    return worst_case_micros(prompt, BODY["max_tokens"], Prices.from_usd(2.5, 10.0, 1.25))


def policies_with_limit(tmp_path: Path, limit_usd: float) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(REPO / "policies", target)
    path = target / "data" / "budgets.json"
    data = json.loads(path.read_text())
    data["budgets"]["scopes"]["team"]["research"] = [{"limit_usd": limit_usd, "window": "day"}]
    # Only the store's atomic check decides here: no policy downgrade or deny near the limit.
    data["budgets"]["downgrade"] = {}
    data["budgets"]["deny_at_percent"] = 10_000
    path.write_text(json.dumps(data))
    return target


async def burst(roots: list[str], gate: threading.Event) -> list[tuple[int, str | None]]:
    headers = {"Authorization": f"Bearer {KEYS['research']}"}
    connector = aiohttp.TCPConnector(limit=REQUESTS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        async def one(i: int) -> tuple[int, str | None]:
            async with session.post(roots[i % len(roots)] + "/v1/chat/completions", json=BODY,
                                    headers=headers) as response:
                body = await response.json()
                return response.status, (body.get("error") or {}).get("code")
        tasks = [asyncio.ensure_future(one(i)) for i in range(REQUESTS)]
        # The upstream answers nothing until every request that will be refused has been: so every
        # reservation is made before any is settled, and exactly the ones that fit are accepted.
        finished = 0
        with contextlib.suppress(TimeoutError):
            for next_done in asyncio.as_completed(tasks, timeout=30):
                await next_done
                finished += 1
                if finished == REQUESTS - FITS:
                    break
        gate.set()
        return await asyncio.gather(*tasks)


@pytest.fixture(params=["redis", "sqlite"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    if request.param == "redis":
        url, server = ensure_redis(tmp_path / "redis")
        yield "redis", {"store": "redis", "redis_url": url, "key_prefix": f"t{uuid.uuid4().hex[:10]}",
                        "ledger_path": str(tmp_path / "ledger.jsonl")}
        if server is not None:
            server.kill()
    else:
        yield "sqlite", {"store": "sqlite", "sqlite_path": str(tmp_path / "budget.sqlite3"),
                         "ledger_path": str(tmp_path / "ledger.jsonl")}


@pytest.mark.slow
def test_concurrent_requests_across_processes_never_overspend(store_config: tuple[str, dict[str, object]],
                                                              upstream: UpstreamHandle, tmp_path: Path) -> None:
    kind, budget = store_config
    per_request = worst_case()
    limit_micros = FITS * per_request + per_request // 2
    # The generous policy timeout of every test config: a burst on a busy machine queues its evaluations
    # for longer than the default 500 ms, and a 503 there says nothing about the budget.
    document = config_document(upstream.url, tmp_path, budget=budget, telemetry={"log_level": "warning"},
                               policy={"dir": str(policies_with_limit(tmp_path, limit_micros / 1e6)),
                                       "reload_interval_s": 0, "timeout_ms": 5000})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    # Redis: two separate proxy processes; SQLite: one proxy with two worker processes on one file.
    procs = [start_proxy(config), start_proxy(config)] if kind == "redis" else [start_proxy(config, workers=2)]
    try:
        gate = threading.Event()
        upstream.model.faults.hold = gate
        results = asyncio.run(burst([root for _, root in procs], gate))
        statuses = [status for status, _ in results]
        assert statuses.count(200) == FITS, statuses
        assert {code for status, code in results if status != 200} == {"budget_exceeded"}
        assert len(upstream.model.received) == FITS
        rows = httpx.get(procs[0][1] + "/admin/budgets", params={"scope": "team:research"},
                         headers={"Authorization": f"Bearer {KEYS['admin']}"}).json()["data"]
        day = next(row for row in rows if row["window"] == "day")
        assert day["reserved_usd"] == 0
        assert 0 < day["spent_usd"] <= limit_micros / 1e6
    finally:
        with contextlib.ExitStack() as stopping:  # every proxy is stopped, whichever fails first
            for proc, _ in procs:
                stopping.callback(stop_proxy, proc)
