"""The Lua scripts' calendar (from the Redis clock) agrees with windows.py at every awkward boundary."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proxy.budget.redis import RedisStore
from proxy.budget.store import ScopeLimit
from proxy.budget.windows import DAY, MONTH, Window, period

pytestmark = pytest.mark.redis

MOMENTS = [
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2000, 2, 29, 23, 59, 59, tzinfo=UTC),
    datetime(2024, 2, 29, 12, tzinfo=UTC),
    datetime(2024, 3, 1, tzinfo=UTC),
    datetime(2026, 11, 30, 23, 59, 59, 999000, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 1, 1, tzinfo=UTC),
    datetime(2100, 2, 28, 23, tzinfo=UTC),
    datetime(2400, 2, 29, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=[m.isoformat() for m in MOMENTS])
async def test_day_and_month_buckets_and_resets_match_python(redis_store: RedisStore, moment: datetime) -> None:
    now = moment.timestamp()
    limits = [ScopeLimit("a", DAY), ScopeLimit("b", MONTH)]
    state = await redis_store.state(limits, now=now)
    for limit in limits:
        expected = period(limit.window, now)
        assert (state[limit.scope].bucket, state[limit.scope].resets_at) == (expected.bucket, expected.resets_at)


async def test_rolling_bucket_matches_python(redis_store: RedisStore) -> None:
    window = Window("rolling", 5400)
    now = 1_795_000_123.25
    reservation = await redis_store.reserve("r", [ScopeLimit("a", window)], 1, 1, now=now)
    assert reservation.targets[0].bucket == period(window, now).bucket
    assert reservation.targets[0].expires_at == period(window, now).expires_at
