"""Name resolution for the egress proxy: one lookup per request, every address it returns.

`Resolver` is the seam: the system resolver in production, a fixed table in tests (no test asks real DNS).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from typing import Protocol

from proxy.egress.host import IPAddress


class ResolutionError(Exception):
    """The name has no usable address; the message is safe to send back to the caller."""


class Resolver(Protocol):
    async def resolve(self, name: str) -> tuple[IPAddress, ...]:
        """Every address of `name`, in the resolver's order, without duplicates; ResolutionError if none."""
        ...


class SystemResolver:
    """getaddrinfo (on the loop's thread pool), as any client on this host would resolve the name."""

    async def resolve(self, name: str) -> tuple[IPAddress, ...]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise ResolutionError(f"cannot resolve {name}: {exc.strerror}") from None
        addresses: dict[IPAddress, None] = {}
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                # A scope id (`%eth0`) only comes with link-local answers, which are refused anyway.
                addresses[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
        if not addresses:
            raise ResolutionError(f"cannot resolve {name}: no IPv4 or IPv6 address")
        return tuple(addresses)


class StaticResolver:
    """Names from a table (`egress.resolve`); other names go to `fallback`, or fail when there is none."""

    def __init__(self, table: Mapping[str, str | Sequence[str]], fallback: Resolver | None = None) -> None:
        """`table`: normalised name -> one address or a list of them."""
        self._table = {name: tuple(ipaddress.ip_address(a) for a in ([found] if isinstance(found, str) else found))
                       for name, found in table.items()}
        self._fallback = fallback

    async def resolve(self, name: str) -> tuple[IPAddress, ...]:
        found = self._table.get(name)
        if found is not None:
            return found
        if self._fallback is None:
            raise ResolutionError(f"cannot resolve {name}: not in the resolver's table")
        return await self._fallback.resolve(name)
