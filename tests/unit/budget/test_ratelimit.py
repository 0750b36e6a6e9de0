from __future__ import annotations

import pytest

from proxy.budget.ratelimit import (
    RateLimitStatus,
    format_reset,
    gcra_refund,
    gcra_take,
    rate_limit_headers,
    tightest,
)

S = 1_000_000


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.02, "20ms"),
        (0.0004, "0s"),
        (1, "1s"),
        (1.5, "1.5s"),
        (59.999, "59.999s"),
        (360, "6m0s"),
        (90.25, "1m30.25s"),
        (3600, "1h0m0s"),
        (3723.5, "1h2m3.5s"),
    ],
)
def test_reset_is_formatted_like_openai(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_a_full_minute_of_single_requests_fits_and_the_next_does_not() -> None:
    tat, now = 0, 100 * S
    for i in range(7):
        taken = gcra_take(tat, now, 7, 1)
        assert taken.allowed and taken.remaining == 6 - i
        tat = taken.tat_us
    refused = gcra_take(tat, now, 7, 1)
    assert not refused.allowed and refused.remaining == 0
    assert refused.retry_after_s == pytest.approx(60 / 7, abs=1e-5)


def test_quota_refills_continuously() -> None:
    taken = gcra_take(0, 0, 60, 60)
    assert taken.allowed and taken.reset_s == 60
    assert not gcra_take(taken.tat_us, 500_000, 60, 1).allowed
    assert gcra_take(taken.tat_us, 1 * S, 60, 1).allowed


def test_more_units_than_the_limit_never_fit() -> None:
    refused = gcra_take(0, 0, 100, 101)
    assert not refused.allowed and refused.retry_after_s == 60


def test_refund_gives_back_unused_units_but_not_beyond_now() -> None:
    tat = gcra_take(0, 0, 1000, 900).tat_us
    assert gcra_refund(tat, 0, 1000, 400) == 30 * S
    assert gcra_refund(tat, 0, 1000, 5000) == 0


def test_headers_cover_the_dimensions_that_have_limits() -> None:
    status = RateLimitStatus(60, 59, 1.0, 150_000, 149_000, 0.4)
    assert rate_limit_headers(status) == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149000",
        "x-ratelimit-reset-tokens": "400ms",
    }
    assert rate_limit_headers(RateLimitStatus(limit_tokens=10, remaining_tokens=0, reset_tokens_s=6)) == {
        "x-ratelimit-limit-tokens": "10",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6s",
    }


def test_tightest_picks_the_scope_with_least_quota_left_per_dimension() -> None:
    key = RateLimitStatus(100, 90, 6.0, 10_000, 1_000, 54.0)
    team = RateLimitStatus(1000, 500, 30.0, None, None, None)
    assert tightest([key, team]) == RateLimitStatus(1000, 500, 30.0, 10_000, 1_000, 54.0)
    assert tightest([]) is None
