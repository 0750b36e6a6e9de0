from __future__ import annotations

import pytest

from proxy.budget.pricing import Prices, cost_micros, usd_to_micros, worst_case_micros

GPT4O = Prices.from_usd(input=2.5, cached_input=1.25, output=10)


def test_prices_convert_usd_per_million_exactly() -> None:
    assert Prices(2_500_000, 1_250_000, 10_000_000) == GPT4O
    assert usd_to_micros(0.1) == 100_000 and usd_to_micros("0.0000005") == 1


def test_cost_is_exact_when_it_divides() -> None:
    assert cost_micros(1_000_000, 0, 0, GPT4O) == 2_500_000
    assert cost_micros(1000, 0, 500, GPT4O) == 2_500 + 5_000


def test_cost_rounds_up_once_on_the_sum() -> None:
    # 1 input token = 2.5 µ$, 1 output token = 10 µ$: 12.5 -> 13, not ceil(2.5) + 10 = 13 by luck.
    assert cost_micros(1, 0, 1, GPT4O) == 13
    assert cost_micros(1, 0, 0, Prices(1, 1, 1)) == 1
    assert cost_micros(3, 0, 0, Prices.from_usd(0.15, 0.6)) == 1


def test_cached_tokens_are_billed_at_the_cached_price() -> None:
    assert cost_micros(1000, 400, 0, GPT4O) == 600 * 2.5 + 400 * 1.25


def test_zero_tokens_cost_nothing() -> None:
    assert cost_micros(0, 0, 0, GPT4O) == 0


def test_worst_case_ignores_the_cache_and_counts_all_output() -> None:
    assert worst_case_micros(812, 512, GPT4O) == cost_micros(812, 0, 512, GPT4O) == 7_150


@pytest.mark.parametrize(("prompt", "cached", "output"), [(-1, 0, 0), (10, 11, 0), (0, 0, -5)])
def test_impossible_token_counts_are_rejected(prompt: int, cached: int, output: int) -> None:
    with pytest.raises(ValueError):
        cost_micros(prompt, cached, output, GPT4O)


def test_cache_writes_are_billed_at_their_own_price() -> None:
    # Anthropic's usage: 100 fresh, 1000 written to the cache, 2000 read from it, 50 out.
    claude = Prices.from_usd(3.0, 15.0, cached_input=0.3, cache_write=3.75)
    assert cost_micros(3100, 2000, 50, claude, cache_write_tokens=1000) == 100 * 3 + 1000 * 3.75 + 2000 * 0.3 + 50 * 15
    # Without a cache-write price, writes cost what input does.
    assert cost_micros(1100, 0, 0, Prices.from_usd(3.0, 15.0), cache_write_tokens=1000) == 1100 * 3


def test_cached_and_written_tokens_cannot_exceed_the_prompt() -> None:
    with pytest.raises(ValueError):
        cost_micros(10, 6, 0, GPT4O, cache_write_tokens=5)
