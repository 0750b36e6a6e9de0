"""Pure cost arithmetic: token counts and per-million-token prices to integer micro-dollars."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MICROS_PER_USD = 1_000_000
_TOKENS_PER_PRICE_UNIT = 1_000_000


def usd_to_micros(usd: float | str | Decimal) -> int:
    # Through Decimal(str(...)) so 0.1 USD is exactly 100000, not 99999 from binary floating point.
    value = Decimal(str(usd)) * MICROS_PER_USD
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def micros_to_usd(micros: int) -> float:
    return micros / MICROS_PER_USD


@dataclass(frozen=True, slots=True)
class Prices:
    """Micro-dollars per 1M tokens; integers so every later sum is exact."""

    input: int
    cached_input: int
    output: int
    # Prompt-cache writes (Anthropic's cache_creation_input_tokens); None: the input price.
    cache_write: int | None = None

    @classmethod
    def from_usd(cls, input: float, output: float, cached_input: float | None = None,
                 cache_write: float | None = None) -> Prices:
        cached = input if cached_input is None else cached_input
        return cls(usd_to_micros(input), usd_to_micros(cached), usd_to_micros(output),
                   None if cache_write is None else usd_to_micros(cache_write))

    def __post_init__(self) -> None:
        if min(self.input, self.cached_input, self.output, self.cache_write or 0) < 0:
            raise ValueError("prices must not be negative")


def cost_micros(prompt_tokens: int, cached_tokens: int, output_tokens: int, prices: Prices,
                cache_write_tokens: int = 0) -> int:
    """Cost rounded up to the next micro-dollar, once, on the exact sum.

    `prompt_tokens` includes `cached_tokens` (as in OpenAI's usage object) and `cache_write_tokens`.
    """
    if min(prompt_tokens, cached_tokens, output_tokens, cache_write_tokens) < 0:
        raise ValueError("token counts must not be negative")
    if cached_tokens + cache_write_tokens > prompt_tokens:
        raise ValueError("cached and cache-write tokens cannot exceed prompt_tokens")
    write_price = prices.input if prices.cache_write is None else prices.cache_write
    scaled = (
        (prompt_tokens - cached_tokens - cache_write_tokens) * prices.input
        + cached_tokens * prices.cached_input
        + cache_write_tokens * write_price
        + output_tokens * prices.output
    )
    return -(-scaled // _TOKENS_PER_PRICE_UNIT)


def worst_case_micros(prompt_tokens: int, max_output_tokens: int, prices: Prices) -> int:
    """What to reserve before forwarding: no cache discount, every allowed output token."""
    return cost_micros(prompt_tokens, 0, max_output_tokens, prices)
