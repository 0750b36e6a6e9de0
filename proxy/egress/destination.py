"""Where a request would really go: the normalised host, resolved once, every address classified, the
internal allow-list applied. The connection is then made to these checked addresses and no others, so
a second lookup (DNS rebinding) cannot switch it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from proxy.egress.host import IPAddress
from proxy.egress.http_parse import Target
from proxy.egress.internal import InternalRule, address_rule, name_rule
from proxy.egress.internal_allow import InternalTarget
from proxy.egress.own_addresses import OwnAddresses
from proxy.egress.resolver import ResolutionError, Resolver

REFUSED = "internal_destination"


@dataclass(frozen=True, slots=True)
class Destination:
    host: str
    port: int
    addresses: tuple[IPAddress, ...]
    # Why the destination is internal (for a refused one: why the first address no entry admits is);
    # None for an external destination.
    rule: InternalRule | None = None
    # The allow_internal entries that admit every internal address; empty means refused.
    allowed_by: tuple[str, ...] = ()
    # Why the name has no address. The policy still decides (a provider refusal is still recorded).
    unresolved: str | None = None

    @property
    def internal(self) -> bool:
        return self.rule is not None

    @property
    def refused(self) -> bool:
        return self.rule is not None and not self.allowed_by

    def policy_input(self) -> dict[str, Any]:
        """`input.destination` of the egress policy."""
        return {
            "host": self.host,
            "port": self.port,
            "addresses": [str(address) for address in self.addresses],
            "internal": self.internal,
            "rule": None if self.rule is None else self.rule.kind,
            "allowed_by": list(self.allowed_by),
            "resolved": self.unresolved is None,
        }

    def refusal_message(self) -> str:
        assert self.rule is not None
        where = f"{self.host}:{self.port}"
        if self.addresses and str(self.addresses[0]) != self.host:
            where += f" ({', '.join(str(a) for a in self.addresses[:4])})"
        if self.rule.kind == "proxy_listener":
            return f"{where} is an internal destination: {self.rule.describe()}; a proxy loop is never opened"
        return f"{where} is an internal destination: {self.rule.describe()}; it is reached only when " \
               "listed in egress.allow_internal"


class DestinationGuard:
    def __init__(self, resolver: Resolver, allow: Sequence[InternalTarget], own: OwnAddresses, *,
                 internal_domains: Iterable[str] = (), resolve_timeout_s: float = 5.0) -> None:
        self._resolver = resolver
        self._allow = tuple(allow)
        self._own = own
        self._domains = tuple(internal_domains)
        self._timeout = resolve_timeout_s

    async def check(self, target: Target) -> Destination:
        if target.address is not None:
            zoned = None if target.zone is None else InternalRule("zone_id", f"scoped to interface {target.zone}")
            return self._classify(target, (target.address,), zoned)
        named = name_rule(target.host, self._domains)
        if named is not None and not self._allow:
            # Nothing could admit it: refused without a lookup.
            return Destination(target.host, target.port, (), named)
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await self._resolver.resolve(target.host)
        except ResolutionError as exc:
            return Destination(target.host, target.port, (), named, unresolved=str(exc))
        except TimeoutError:
            return Destination(target.host, target.port, (), named, unresolved=f"resolving {target.host} timed out")
        return self._classify(target, addresses, named)

    def _classify(self, target: Target, addresses: tuple[IPAddress, ...], named: InternalRule | None) -> Destination:
        host, port = target.host, target.port
        rules: list[InternalRule | None] = []
        for address in addresses:
            own = self._own.rule(address, port)
            if own is not None and own.kind == "proxy_listener":
                return Destination(host, port, addresses, own)
            rules.append(address_rule(address) or own)
        first = next((rule for rule in rules if rule is not None), named)
        if first is None:
            return Destination(host, port, addresses)
        # A name internal by itself needs every address admitted; otherwise only the internal ones do.
        entries: dict[str, None] = {}
        for address, rule in zip(addresses, rules, strict=True):
            if rule is None and named is None:
                continue
            metadata = any(r is not None and r.kind == "metadata" for r in (rule, named))
            entry = next((e for e in self._allow if e.admits(address, port, metadata=metadata)), None)
            if entry is None:
                return Destination(host, port, addresses, rule or named)
            entries[entry.text] = None
        return Destination(host, port, addresses, first, tuple(entries))
