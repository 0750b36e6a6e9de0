"""The shipped budget rules through the HTTP path: downgrade to a cheaper model near the limit, deny at it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from proxy.budget import MONTH, ScopeLimit
from proxy.budget.sqlite import SqliteStore
from tests.conftest import ProxyFactory, UpstreamHandle

HELLO = [{"role": "user", "content": "Hi"}]
LIMIT = 500_000_000  # team payments: $500 a month in policies/data/budgets.json


def spend(path: Path, micros: int) -> None:
    async def run() -> None:
        store = SqliteStore(path)
        limit = ScopeLimit("team:payments", MONTH)  # seeding past the limit must not be refused
        reservation = await store.reserve("seed", [limit], micros, 0)
        await store.settle(reservation, micros, 0)
        await store.close()
    asyncio.run(run())


def test_near_the_limit_the_model_is_downgraded_and_at_it_requests_are_denied(
        make_proxy: ProxyFactory, upstream: UpstreamHandle, tmp_path: Path) -> None:
    proxy = make_proxy(budget__state_max_age_s=0)
    client = proxy.client()
    first = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert "x-policy-model-downgrade" not in first.headers

    spend(tmp_path / "budget.sqlite3", LIMIT * 92 // 100)
    downgraded = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert downgraded.headers["x-policy-model-downgrade"] == "gpt-4o -> gpt-4o-mini"

    spend(tmp_path / "budget.sqlite3", LIMIT * 9 // 100)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.code == "budget_exhausted"
    assert "team:payments" in caught.value.message
    assert len(upstream.model.received) == 2
