"""Any order of reserves, retried reserves, cancels and settles over a few ids, on each store, against a model:
a retried reserve never holds twice, a reserve after its cancel or settle holds nothing, a settle counts once,
and once every id is cancelled or settled nothing is held."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.budget.errors import BudgetExceeded, StoreUnavailable
from proxy.budget.redis import RedisStore
from proxy.budget.sqlite import SqliteStore
from proxy.budget.store import Backend, Reservation, ScopeLimit
from tests.integration.budget.conftest import wipe_prefix

LIMIT = 10_000
TEAM = ScopeLimit("team:payments", limit_micros=LIMIT)
COSTS = (3_000, 4_000, 5_000, 6_000)
Op = tuple[str, int, int]  # (kind, id index, settle amount in thousandths of the cost)
OPS = st.lists(
    st.tuples(st.sampled_from(["reserve", "reserve", "cancel", "settle"]), st.integers(0, len(COSTS) - 1),
              st.integers(0, 1000)),
    max_size=25,
)


@dataclass
class Model:
    held: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)
    spent: int = 0

    def reserve(self, i: int) -> str:
        if i in self.done:
            return "void"
        if i in self.held:
            return "ok"
        if self.spent + sum(COSTS[j] for j in self.held) + COSTS[i] > LIMIT:
            return "refused"
        self.held.add(i)
        return "ok"

    def cancel(self, i: int) -> None:
        self.held.discard(i)
        self.done.add(i)

    def settle(self, i: int, amount: int) -> None:
        if i not in self.done:
            self.spent += amount
        self.cancel(i)


async def play(store: Backend, ops: list[Op]) -> None:
    model, prefix = Model(), uuid.uuid4().hex[:8]
    grants: dict[int, Reservation] = {}
    rid = [f"{prefix}-{i}" for i in range(len(COSTS))]
    for kind, i, share in ops:
        if kind == "reserve":
            expected = model.reserve(i)
            try:
                grants[i] = await store.reserve("q", [TEAM], COSTS[i], 1, reservation_id=rid[i])
                outcome = "ok"
            except BudgetExceeded:
                outcome = "refused"
            except StoreUnavailable:
                outcome = "void"
            assert outcome == expected, (kind, i)
        elif kind == "cancel":
            model.cancel(i)
            await store.cancel([rid[i]])
        elif i in grants:  # a settle needs the reservation its reserve returned
            amount = COSTS[i] * share // 1000
            model.settle(i, amount)
            await store.settle(grants[i], amount, 1)
        team = (await store.state([TEAM]))["team:payments"]
        assert (team.reserved_micros, team.spent_micros) == (sum(COSTS[j] for j in model.held), model.spent)
    await store.cancel(rid)
    team = (await store.state([TEAM]))["team:payments"]
    assert (team.reserved_micros, team.spent_micros) == (0, model.spent)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_sqlite_store_matches_the_model_in_any_order(ops: list[Op]) -> None:
    async def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteStore(Path(tmp) / "budget.sqlite3")
            try:
                await play(store, ops)
            finally:
                await store.close()

    asyncio.run(run())


@pytest.mark.redis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_redis_store_matches_the_model_in_any_order(redis_url: str, ops: list[Op]) -> None:
    async def run() -> None:
        prefix = f"t{uuid.uuid4().hex[:12]}"
        store = RedisStore.from_url(redis_url, prefix=prefix, timeout_s=5)
        try:
            await play(store, ops)
        finally:
            await store.close()
            await wipe_prefix(redis_url, prefix)

    asyncio.run(run())
