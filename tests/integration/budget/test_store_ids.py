"""What makes a store safe to retry and to compensate, on SqliteStore and RedisStore alike: reserves idempotent
by id, cancels that also void a reserve landing after them, lease renewal, and records that need no hold."""

from __future__ import annotations

import time

import pytest

from proxy.budget.errors import BudgetExceeded, StoreUnavailable
from proxy.budget.store import Backend, ScopeLimit
from proxy.budget.windows import DAY, MONTH, Window, period

NOW = time.time()
TEAM = ScopeLimit("team:payments", MONTH, limit_micros=1_000_000)
USER = ScopeLimit("user:u-42", DAY, limit_micros=5_000_000, limit_tokens=10_000, requests_per_minute=10)


async def held(store: Backend, *limits: ScopeLimit, now: float = NOW) -> dict[str, int]:
    return {scope: state.reserved_micros for scope, state in (await store.state(list(limits), now=now)).items()}


async def test_a_second_reserve_of_one_id_holds_nothing_more(store: Backend) -> None:
    first = await store.reserve("q1", [TEAM, USER], 300_000, 10, now=NOW, reservation_id="r-1")
    again = await store.reserve("q1", [TEAM, USER], 300_000, 10, now=NOW, reservation_id="r-1")
    assert again.id == first.id == "r-1"
    assert [t.bucket for t in again.targets] == [t.bucket for t in first.targets]
    assert await held(store, TEAM, USER) == {"team:payments": 300_000, "user:u-42": 300_000}
    await store.settle(again, 100_000, 5)
    assert await held(store, TEAM, USER) == {"team:payments": 0, "user:u-42": 0}
    assert (await store.state([TEAM], now=NOW))["team:payments"].spent_micros == 100_000


async def test_a_retried_reserve_is_not_refused_by_its_own_hold(store: Backend) -> None:
    await store.reserve("q1", [TEAM], 800_000, 1, now=NOW, reservation_id="r-1")
    await store.reserve("q1", [TEAM], 800_000, 1, now=NOW, reservation_id="r-1")
    with pytest.raises(BudgetExceeded):
        await store.reserve("q2", [TEAM], 800_000, 1, now=NOW, reservation_id="r-2")


async def test_a_retried_reserve_takes_no_second_request_from_the_rate_limit(store: Backend) -> None:
    limited = ScopeLimit("key:k-7", MONTH, requests_per_minute=2)
    await store.reserve("q1", [limited], 1, 1, now=NOW, reservation_id="r-1")
    await store.reserve("q1", [limited], 1, 1, now=NOW, reservation_id="r-1")
    await store.reserve("q2", [limited], 1, 1, now=NOW, reservation_id="r-2")


async def test_cancel_releases_a_hold_and_voids_the_id(store: Backend) -> None:
    await store.reserve("q1", [TEAM, USER], 300_000, 10, now=NOW, reservation_id="r-1")
    await store.cancel(["r-1"])
    assert await held(store, TEAM, USER) == {"team:payments": 0, "user:u-42": 0}
    await store.cancel(["r-1"])  # a cancel replayed twice changes nothing
    with pytest.raises(StoreUnavailable):
        await store.reserve("q1", [TEAM, USER], 300_000, 10, now=NOW, reservation_id="r-1")
    assert await held(store, TEAM, USER) == {"team:payments": 0, "user:u-42": 0}


async def test_a_reserve_landing_after_its_cancel_holds_nothing(store: Backend) -> None:
    # The timed-out reserve sat in a socket buffer while its compensating cancel was applied first.
    await store.cancel(["late"])
    with pytest.raises(StoreUnavailable):
        await store.reserve("q1", [TEAM], 300_000, 10, now=NOW, reservation_id="late")
    assert await held(store, TEAM) == {"team:payments": 0}
    await store.reserve("q2", [TEAM], 1_000_000, 10, now=NOW, reservation_id="other")


async def test_cancel_of_many_ids_releases_each_held_one(store: Backend) -> None:
    for i in range(3):
        await store.reserve(f"q{i}", [TEAM], 100_000, 1, now=NOW, reservation_id=f"r-{i}")
    await store.cancel(["r-0", "never-reserved", "r-2"])
    assert await held(store, TEAM) == {"team:payments": 100_000}


async def test_renew_keeps_a_live_hold_past_its_first_expiry(store: Backend) -> None:
    # Reserved 590 s ago under the fixtures' 600 s TTL: expires 10 s from now unless renewed.
    await store.reserve("q1", [TEAM], 100_000, 1, now=NOW - 590, reservation_id="live")
    await store.reserve("q2", [TEAM], 200_000, 1, now=NOW - 590, reservation_id="dead")
    await store.renew(["live", "settled-meanwhile"])
    assert await held(store, TEAM, now=NOW + 100) == {"team:payments": 100_000}


async def test_record_adds_spend_to_every_window_without_a_hold(store: Backend) -> None:
    rolling = ScopeLimit("key:k-7", Window("rolling", 3600))
    team, app = ScopeLimit("team:payments", MONTH), ScopeLimit("app:billing", DAY)
    await store.record([team, app, rolling], 4_321, 77, now=NOW)
    await store.record([team, app, rolling], 1_000, 3, now=NOW)
    state = await store.state([team, app, rolling], now=NOW)
    assert {s: (v.spent_micros, v.tokens, v.reserved_micros) for s, v in state.items()} == {
        "team:payments": (5_321, 80, 0),
        "app:billing": (5_321, 80, 0),
        "key:k-7": (5_321, 80, 0),
    }
    assert state["team:payments"].bucket == period(MONTH, NOW).bucket


async def test_record_with_an_id_counts_once(store: Backend) -> None:
    team = ScopeLimit("team:payments", MONTH)
    for _ in range(3):
        await store.record([team], 500, 5, now=NOW, record_id="rec-1")
    assert (await store.state([team], now=NOW))["team:payments"].spent_micros == 500


async def test_record_counts_against_the_limits_reserves_check(store: Backend) -> None:
    await store.record([ScopeLimit("team:payments", MONTH)], 900_000, 5, now=NOW)
    with pytest.raises(BudgetExceeded):
        await store.reserve("q1", [TEAM], 200_000, 1, now=NOW)


async def test_record_lists_new_scopes_without_overwriting_known_limits(store: Backend) -> None:
    await store.settle(await store.reserve("q1", [TEAM], 1, 1, now=NOW), 1, 1)
    await store.record([ScopeLimit("team:payments", MONTH), ScopeLimit("app:new", MONTH)], 10, 1, now=NOW)
    assert [(u.limit, u.state.spent_micros) for u in await store.usage()] == [
        (ScopeLimit("app:new", MONTH), 10),
        (TEAM, 11),
    ]


async def test_ping_says_the_store_takes_writes(store: Backend) -> None:
    await store.ping()
