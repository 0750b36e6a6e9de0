from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proxy.budget.windows import (
    DAY,
    MONTH,
    PeriodCache,
    Window,
    period,
    rolling_next_release,
    rolling_retry_after,
    rolling_total,
)


def ts(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(
    ("moment", "bucket", "resets"),
    [
        (ts(2026, 11, 3, 14, 0), "2026-11-03", ts(2026, 11, 4)),
        (ts(2026, 11, 3, 23, 59, 59), "2026-11-03", ts(2026, 11, 4)),
        (ts(2026, 11, 4), "2026-11-04", ts(2026, 11, 5)),
        (ts(2024, 2, 28, 12), "2024-02-28", ts(2024, 2, 29)),
        (ts(2024, 2, 29, 12), "2024-02-29", ts(2024, 3, 1)),
        (ts(2026, 12, 31, 23, 59, 59), "2026-12-31", ts(2027, 1, 1)),
    ],
)
def test_day_window_is_the_utc_date_and_resets_at_midnight(moment: float, bucket: str, resets: float) -> None:
    p = period(DAY, moment)
    assert (p.bucket, p.resets_at) == (bucket, resets)


@pytest.mark.parametrize(
    ("moment", "bucket", "resets"),
    [
        (ts(2026, 11, 15), "2026-11", ts(2026, 12, 1)),
        (ts(2026, 12, 31, 23, 59, 59), "2026-12", ts(2027, 1, 1)),
        (ts(2027, 1, 1), "2027-01", ts(2027, 2, 1)),
        (ts(2024, 2, 29, 23), "2024-02", ts(2024, 3, 1)),
        (ts(2100, 2, 28), "2100-02", ts(2100, 3, 1)),
    ],
)
def test_month_window_is_the_utc_month_and_resets_on_the_first(moment: float, bucket: str, resets: float) -> None:
    p = period(MONTH, moment)
    assert (p.bucket, p.resets_at) == (bucket, resets)


def test_calendar_counters_are_kept_two_days_past_the_reset() -> None:
    p = period(MONTH, ts(2026, 11, 15))
    assert p.expires_at == ts(2026, 12, 3)


def test_rolling_buckets_are_a_sixtieth_of_the_window() -> None:
    assert Window("rolling", 3600).bucket_seconds == 60
    assert Window("rolling", 86400).bucket_seconds == 1440
    assert Window("rolling", 60).bucket_seconds == 1
    assert Window("rolling", 90).bucket_seconds == 2
    assert period(Window("rolling", 3600), 1_000_000_030.5).bucket == "1000000020"


def test_rolling_total_counts_buckets_that_overlap_the_window() -> None:
    hour = Window("rolling", 3600)
    buckets = {0: 5, 60: 7, 3600: 11}
    assert rolling_total(hour, buckets, 3600) == 23
    assert rolling_total(hour, buckets, 3659.9) == 23
    assert rolling_total(hour, buckets, 3660) == 18
    assert rolling_total(hour, buckets, 3720) == 11


def test_rolling_retry_after_is_when_enough_old_buckets_leave() -> None:
    hour = Window("rolling", 3600)
    buckets = {0: 5, 60: 7, 3600: 11}
    assert rolling_retry_after(hour, buckets, 3000, 5) == 660
    assert rolling_retry_after(hour, buckets, 3000, 6) == 720
    assert rolling_retry_after(hour, buckets, 3000, 100) == 3600
    assert rolling_next_release(hour, buckets, 3000) == 3660
    assert rolling_next_release(hour, {}, 3000) is None


@pytest.mark.parametrize("text", ["day", "month", "rolling:3600"])
def test_window_text_round_trips(text: str) -> None:
    assert str(Window.parse(text)) == text


@pytest.mark.parametrize("text", ["week", "rolling", "rolling:x", "day:5", "rolling:0"])
def test_bad_window_text_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        Window.parse(text)


@pytest.mark.parametrize("window", [DAY, MONTH, Window("rolling", 3600), Window("rolling", 90)])
def test_period_cache_agrees_with_period_across_bucket_edges_and_backwards_in_time(window: Window) -> None:
    cache = PeriodCache()
    edge = ts(2026, 12, 1)  # a day, a month and every rolling bucket starts here
    for now in (edge - 0.001, edge, edge + 0.5, edge - 0.001, edge + 86_400 * 31, edge, ts(2024, 2, 29, 23, 59, 59)):
        assert cache(window, now) == period(window, now)
