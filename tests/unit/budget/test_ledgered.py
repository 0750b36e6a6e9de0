"""LedgeredStore's optional state cache: reads within the max age come from memory, others from the store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import cast

import pytest

from proxy.budget.ledger import Ledger
from proxy.budget.ledgered import LedgeredStore
from proxy.budget.store import Backend, BudgetState, ScopeLimit

TEAM = ScopeLimit("team:payments", limit_micros=1_000_000)
USER = ScopeLimit("user:u-42", limit_micros=1_000_000)


class CountingStore:
    def __init__(self) -> None:
        self.reads = 0

    async def state(self, limits: Sequence[ScopeLimit], now: float | None = None) -> dict[str, BudgetState]:
        self.reads += 1
        return {
            limit.scope: BudgetState(limit.scope, "month", "2026-11", self.reads, 0, None, 0, 0, None, None)
            for limit in limits
        }

    async def close(self) -> None:
        pass


Opener = Callable[[float], tuple[LedgeredStore, CountingStore]]


@pytest.fixture
async def ledgered(tmp_path: Path) -> AsyncIterator[Opener]:
    opened: list[LedgeredStore] = []

    def open_store(max_age: float) -> tuple[LedgeredStore, CountingStore]:
        inner = CountingStore()
        store = LedgeredStore(cast(Backend, inner), Ledger(tmp_path / "ledger.jsonl"), state_max_age_s=max_age)
        opened.append(store)
        return store, inner

    yield open_store
    for store in opened:
        await store.close()


async def test_without_a_max_age_every_state_reads_the_store(ledgered: Opener) -> None:
    store, inner = ledgered(0.0)
    for _ in range(3):
        await store.state([TEAM], now=1000.0)
    assert inner.reads == 3


async def test_state_within_the_max_age_comes_from_the_last_read_of_the_same_limits(ledgered: Opener) -> None:
    store, inner = ledgered(1.0)
    first = await store.state([TEAM], now=1000.0)
    assert await store.state([TEAM], now=1000.9) == first and inner.reads == 1
    await store.state([TEAM, USER], now=1000.9)
    assert inner.reads == 2
    later = await store.state([TEAM], now=1001.5)
    assert inner.reads == 3 and later["team:payments"].spent_micros == 3
