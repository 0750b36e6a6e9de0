"""The behaviour every store (Backend) promises, run against SqliteStore and RedisStore alike."""

from __future__ import annotations

import time

import pytest

from proxy.budget.errors import BudgetExceeded, RateLimited
from proxy.budget.ratelimit import rate_limit_headers
from proxy.budget.store import Backend, ScopeLimit
from proxy.budget.windows import DAY, MONTH, Window, period

NOW = time.time()
TEAM = ScopeLimit("team:payments", MONTH, limit_micros=1_000_000)
USER = ScopeLimit("user:u-42", DAY, limit_micros=5_000_000, limit_tokens=10_000)
KEY = ScopeLimit("key:k-7", Window("rolling", 3600), limit_micros=2_000_000)


async def test_reserve_within_limits_holds_cost_on_every_scope(store: Backend) -> None:
    reservation = await store.reserve("r1", [TEAM, USER, KEY], 300_000, 500, now=NOW)
    state = await store.state([TEAM, USER, KEY], now=NOW)
    assert {s: (v.reserved_micros, v.reserved_tokens, v.spent_micros) for s, v in state.items()} == {
        "team:payments": (300_000, 500, 0),
        "user:u-42": (300_000, 500, 0),
        "key:k-7": (300_000, 500, 0),
    }
    assert [t.bucket for t in reservation.targets] == [
        period(MONTH, NOW).bucket,
        period(DAY, NOW).bucket,
        period(KEY.window, NOW).bucket,
    ]


async def test_reserve_over_one_scope_raises_naming_it_and_holds_nothing_anywhere(store: Backend) -> None:
    await store.reserve("r1", [TEAM, USER], 700_000, 10, now=NOW)
    with pytest.raises(BudgetExceeded) as refused:
        await store.reserve("r2", [USER, KEY, TEAM], 400_000, 10, now=NOW)
    assert refused.value.scope == "team:payments"
    assert refused.value.code == "budget_exceeded" and refused.value.status == 429
    assert "team:payments" in refused.value.message
    resets_at = period(MONTH, NOW).resets_at
    assert resets_at is not None
    assert refused.value.retry_after_s == pytest.approx(resets_at - NOW, abs=1)
    assert int(refused.value.headers["Retry-After"]) == int(resets_at - NOW + 0.999)
    state = await store.state([TEAM, USER, KEY], now=NOW)
    assert [state[s].reserved_micros for s in ("team:payments", "user:u-42", "key:k-7")] == [700_000, 700_000, 0]


async def test_request_that_fits_exactly_is_accepted(store: Backend) -> None:
    await store.reserve("r1", [TEAM], 999_999, 0, now=NOW)
    await store.reserve("r2", [TEAM], 1, 0, now=NOW)
    with pytest.raises(BudgetExceeded):
        await store.reserve("r3", [TEAM], 1, 0, now=NOW)


async def test_token_limit_is_checked_like_the_usd_limit(store: Backend) -> None:
    await store.reserve("r1", [USER], 1, 9_000, now=NOW)
    with pytest.raises(BudgetExceeded) as refused:
        await store.reserve("r2", [USER], 1, 1_001, now=NOW)
    assert "10000 tokens" in refused.value.message


async def test_settle_commits_actual_cost_and_releases_the_rest(store: Backend) -> None:
    reservation = await store.reserve("r1", [TEAM, USER], 600_000, 800, now=NOW)
    await store.settle(reservation, 250_000, 300)
    state = await store.state([TEAM, USER], now=NOW)
    team = state["team:payments"]
    assert (team.spent_micros, team.reserved_micros, team.tokens, team.reserved_tokens) == (250_000, 0, 300, 0)
    assert team.remaining_micros == 750_000 and team.percent == pytest.approx(25.0)
    await store.reserve("r2", [TEAM], 750_000, 0, now=NOW)


async def test_second_settle_of_one_reservation_counts_once(store: Backend) -> None:
    reservation = await store.reserve("r1", [TEAM], 600_000, 800, now=NOW)
    await store.settle(reservation, 100_000, 10)
    await store.settle(reservation, 100_000, 10)
    assert (await store.state([TEAM], now=NOW))["team:payments"].spent_micros == 100_000


async def test_settle_with_zero_after_upstream_error_releases_everything(store: Backend) -> None:
    reservation = await store.reserve("r1", [TEAM], 900_000, 800, now=NOW)
    await store.settle(reservation, 0, 0)
    team = (await store.state([TEAM], now=NOW))["team:payments"]
    assert (team.spent_micros, team.reserved_micros) == (0, 0)


async def test_unsettled_reservation_stops_holding_budget_after_its_ttl(store: Backend) -> None:
    await store.reserve("crashed", [TEAM], 900_000, 10, now=NOW)
    with pytest.raises(BudgetExceeded):
        await store.reserve("r2", [TEAM], 200_000, 10, now=NOW + 599)
    await store.reserve("r3", [TEAM], 200_000, 10, now=NOW + 601)
    assert (await store.state([TEAM], now=NOW + 601))["team:payments"].reserved_micros == 200_000


async def test_state_stops_reporting_a_hold_once_its_ttl_has_passed(store: Backend) -> None:
    await store.reserve("crashed", [TEAM], 900_000, 10, now=NOW)
    assert (await store.state([TEAM], now=NOW + 599))["team:payments"].reserved_micros == 900_000
    assert (await store.state([TEAM], now=NOW + 601))["team:payments"].reserved_micros == 0


async def test_settle_after_expiry_still_commits_the_spend(store: Backend) -> None:
    reservation = await store.reserve("slow", [TEAM], 500_000, 10, now=NOW - 700)
    await store.state([TEAM], now=NOW)
    await store.settle(reservation, 400_000, 10)
    team = (await store.state([TEAM], now=NOW))["team:payments"]
    assert (team.spent_micros, team.reserved_micros) == (400_000, 0)


async def test_rolling_window_forgets_spend_and_retry_after_says_when(store: Backend) -> None:
    start = NOW - NOW % 60
    first = await store.reserve("r1", [KEY], 1_500_000, 0, now=start)
    await store.settle(first, 1_500_000, 0)
    with pytest.raises(BudgetExceeded) as refused:
        await store.reserve("r2", [KEY], 1_000_000, 0, now=start + 100)
    # The 60 s bucket holding the first spend leaves the 3600 s window at start + 60 + 3600.
    assert refused.value.retry_after_s == pytest.approx(3560, abs=0.01)
    await store.reserve("r3", [KEY], 1_000_000, 0, now=start + 3660)
    key = (await store.state([KEY], now=start + 3660))["key:k-7"]
    assert key.spent_micros == 0 and key.reserved_micros == 1_000_000


async def test_state_of_a_rolling_window_resets_when_its_oldest_spend_leaves(store: Backend) -> None:
    start = NOW - NOW % 60
    for offset in (0, 120):
        await store.settle(await store.reserve(f"r{offset}", [KEY], 100_000, 0, now=start + offset), 100_000, 0)
    key = (await store.state([KEY], now=start + 200))["key:k-7"]
    assert key.spent_micros == 200_000 and key.resets_at == pytest.approx(start + 60 + 3600)


async def test_state_reports_limits_window_and_reset(store: Backend) -> None:
    reservation = await store.reserve("r1", [TEAM], 100_000, 10, now=NOW)
    await store.settle(reservation, 100_000, 10)
    team = (await store.state([TEAM], now=NOW))["team:payments"]
    assert team.to_policy() == {
        "window": "month",
        "period": period(MONTH, NOW).bucket,
        "limit_usd": 1.0,
        "spent_usd": 0.1,
        "reserved_usd": 0.0,
        "remaining_usd": 0.9,
        "percent": pytest.approx(10.0),
        "tokens": 10,
        "limit_tokens": None,
        "resets_at": period(MONTH, NOW).resets_at,
    }


async def test_state_of_a_scope_with_two_windows_reports_the_tighter(store: Backend) -> None:
    daily = ScopeLimit("team:payments", DAY, limit_micros=200_000)
    reservation = await store.reserve("r1", [TEAM, daily], 100_000, 10, now=NOW)
    await store.settle(reservation, 100_000, 10)
    assert (await store.state([TEAM, daily], now=NOW))["team:payments"].window == "day"


async def test_reset_forgets_a_scopes_spend_only(store: Backend) -> None:
    other = ScopeLimit("team:payments-eu", MONTH, limit_micros=1_000_000)
    reservation = await store.reserve("r1", [TEAM, other, KEY], 500_000, 10, now=NOW)
    await store.settle(reservation, 500_000, 10)
    await store.reset("team:payments")
    state = await store.state([TEAM, other, KEY], now=NOW)
    assert [state[s].spent_micros for s in ("team:payments", "team:payments-eu", "key:k-7")] == [0, 500_000, 500_000]


async def test_usage_lists_scopes_seen_with_their_last_limits(store: Backend) -> None:
    reservation = await store.reserve("r1", [TEAM, USER], 100_000, 10, now=NOW)
    await store.settle(reservation, 100_000, 10)
    usage = await store.usage("team:")
    assert [(u.limit, u.state.spent_micros) for u in usage] == [(TEAM, 100_000)]
    assert {u.limit.scope for u in await store.usage()} == {"team:payments", "user:u-42"}


async def test_usage_follows_a_scopes_limits_when_they_change(store: Backend) -> None:
    await store.reserve("r1", [TEAM], 1, 1, now=NOW)
    changed = ScopeLimit("team:payments", MONTH, limit_micros=None, requests_per_minute=7)
    await store.reserve("r2", [changed], 1, 1, now=NOW)
    await store.reserve("r3", [changed], 1, 1, now=NOW)
    assert [u.limit for u in await store.usage("team:")] == [changed]


async def test_requests_per_minute_refuses_with_retry_after_and_headers(store: Backend) -> None:
    limit = ScopeLimit("key:k-7", MONTH, requests_per_minute=3)
    grants = [await store.reserve(f"r{i}", [limit], 1, 1, now=NOW + i) for i in range(3)]
    assert [g.rate.remaining_requests for g in grants if g.rate] == [2, 1, 0]
    with pytest.raises(RateLimited) as refused:
        await store.reserve("r4", [limit], 1, 1, now=NOW + 3)
    assert refused.value.code == "rate_limit_exceeded" and refused.value.scope == "key:k-7"
    # One request's worth (20 s) refills 20 s after the first one.
    assert refused.value.retry_after_s == pytest.approx(17, abs=0.01)
    await store.reserve("r5", [limit], 1, 1, now=NOW + 20)
    headers = rate_limit_headers(grants[0].rate) if grants[0].rate else {}
    assert headers == {
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "20s",
    }


async def test_tokens_per_minute_refuses_and_unused_tokens_come_back_at_settle(store: Backend) -> None:
    limit = ScopeLimit("user:u-42", MONTH, tokens_per_minute=1_000)
    now = time.time()
    reservation = await store.reserve("r1", [limit], 1, 900, now=now)
    with pytest.raises(RateLimited) as refused:
        await store.reserve("r2", [limit], 1, 500, now=now)
    assert refused.value.retry_after_s == pytest.approx(24, abs=0.01)
    await store.settle(reservation, 1, 100)
    granted = await store.reserve("r3", [limit], 1, 500, now=now + 0.5)
    assert granted.rate is not None and granted.rate.remaining_tokens is not None
    assert 390 <= granted.rate.remaining_tokens <= 410


async def test_refused_rate_limit_holds_nothing(store: Backend) -> None:
    limited = ScopeLimit("key:k-7", MONTH, requests_per_minute=1)
    await store.reserve("r1", [limited], 1, 1, now=NOW)
    with pytest.raises(RateLimited):
        await store.reserve("r2", [TEAM, limited], 1, 1, now=NOW)
    assert (await store.state([TEAM], now=NOW))["team:payments"].reserved_micros == 0


async def test_ping_answers_when_the_store_is_up(store: Backend) -> None:
    await store.ping()


async def test_same_window_twice_for_one_scope_is_a_caller_error(store: Backend) -> None:
    with pytest.raises(ValueError, match="twice"):
        await store.reserve("r1", [TEAM, TEAM], 1, 1, now=NOW)
