"""The allow-list for internal destinations: `CIDR:port` entries (`10.2.0.0/16:8000`, `[fd00::/8]:443`,
`10.0.0.5:8000-8010`, `10.0.0.0/8:*`), parsed once and matched per address. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from proxy.egress.host import IPAddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PORTS = re.compile(r"\*|([0-9]{1,5})(?:-([0-9]{1,5}))?")


@dataclass(frozen=True, slots=True)
class InternalTarget:
    text: str
    network: Network
    first_port: int
    last_port: int

    def admits(self, address: IPAddress, port: int, *, metadata: bool = False) -> bool:
        """A metadata endpoint is only ever opened by an entry for exactly its address, never by a range."""
        if metadata and self.network.num_addresses != 1:
            return False
        return address.version == self.network.version and address in self.network \
            and self.first_port <= port <= self.last_port


def parse_internal_target(text: str) -> InternalTarget:
    """Raises ValueError naming what is wrong with the entry."""
    spec = text.strip()
    if spec.startswith("["):
        network_text, bracket, rest = spec[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ValueError(f"{text!r}: write IPv6 entries as [network]:port")
        ports = rest[1:]
    else:
        network_text, colon, ports = spec.rpartition(":")
        if not colon or ":" in network_text:
            raise ValueError(f"{text!r}: expected CIDR:port, e.g. 10.2.0.0/16:8000 or [fd00::/8]:443")
    try:
        network = ipaddress.ip_network(network_text, strict=True)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
    first, last = _ports(ports, text)
    port_text = "*" if (first, last) == (1, 65535) else str(first) if first == last else f"{first}-{last}"
    host_text = f"[{network}]" if network.version == 6 else str(network)
    return InternalTarget(f"{host_text}:{port_text}", network, first, last)


def _ports(text: str, entry: str) -> tuple[int, int]:
    match = _PORTS.fullmatch(text)
    if match is None:
        raise ValueError(f"{entry!r}: port must be a number, a range like 8000-8010, or *")
    if text == "*":
        return 1, 65535
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 0 < first <= last < 65536:
        raise ValueError(f"{entry!r}: ports must be 1-65535, the first not above the last")
    return first, last
