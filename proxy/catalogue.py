"""The model catalogue: public model names and aliases mapped to an upstream and its prices."""

from __future__ import annotations

from dataclasses import dataclass

from .budget.pricing import Prices as MicroPrices
from .config import DEFAULT_ENDPOINTS, Config, Endpoint, ModelConfig, Prices


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    name: str
    upstream: str
    upstream_model: str
    prices: Prices
    micro_prices: MicroPrices
    context_window: int
    max_output_tokens: int
    encoding: str
    endpoints: frozenset[Endpoint]
    owned_by: str
    provider: str


class Catalogue:
    def __init__(self, entries: dict[str, CatalogueEntry], aliases: dict[str, str]) -> None:
        self._entries = entries
        self._lookup = {**{name: name for name in entries}, **aliases}

    @classmethod
    def from_config(cls, config: Config) -> Catalogue:
        entries = {name: _entry(name, model, config) for name, model in config.models.items()}
        aliases = {alias: name for name, model in config.models.items() for alias in model.aliases}
        return cls(entries, aliases)

    def resolve(self, public_name: str) -> CatalogueEntry | None:
        name = self._lookup.get(public_name)
        return self._entries[name] if name is not None else None

    def names(self) -> list[str]:
        return list(self._entries)


def _entry(name: str, model: ModelConfig, config: Config) -> CatalogueEntry:
    upstream = config.upstreams[model.upstream]
    provider = {"openai": "openai", "azure": "azure.ai.openai", "anthropic": "anthropic"}.get(upstream.kind,
                                                                                              model.upstream)
    endpoints = model.endpoints or DEFAULT_ENDPOINTS["anthropic" if upstream.kind == "anthropic" else "openai"]
    return CatalogueEntry(
        name=name,
        upstream=model.upstream,
        upstream_model=model.upstream_model or name,
        prices=model.prices,
        micro_prices=MicroPrices.from_usd(model.prices.input, model.prices.output, model.prices.cached_input,
                                          model.prices.cache_write_input),
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        encoding=model.encoding,
        endpoints=frozenset(endpoints),
        owned_by=model.owned_by,
        provider=provider,
    )
