"""The proxy's own host and listeners as destinations: an address of this host is internal, and one of
its listening ports there is a loop that no allow-list entry opens.

Whether an address belongs to this host is asked of the kernel (can a socket bind to it?), so it stays
true as interfaces change. Hosts that allow binding foreign addresses (`ip_nonlocal_bind`) make that
test meaningless; it is then replaced by the listeners' own addresses and loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from proxy.egress.host import IPAddress
from proxy.egress.internal import InternalRule
from proxy.telemetry.logging import get_logger

# Documentation addresses (RFC 5737, 3849): never assigned to a host, so binding them must fail.
_PROBES = {4: ipaddress.ip_address("192.0.2.1"), 6: ipaddress.ip_address("2001:db8::1")}
_WILDCARDS = {"", "0.0.0.0", "::"}

log = get_logger("proxy.egress")


class OwnAddresses:
    def __init__(self, listeners: Iterable[tuple[str, int]]) -> None:
        """`listeners`: every (host, port) this process listens on: the API and the egress listener."""
        listening = [(host.strip("[]"), port) for host, port in listeners]
        self._ports = frozenset(port for _, port in listening if port)
        self._bound = frozenset(ipaddress.ip_address(host) for host, _ in listening if host not in _WILDCARDS
                                and _is_address(host))
        self._kernel_knows = {version: not _bindable(probe) for version, probe in _PROBES.items()}
        if not all(self._kernel_knows.values()):
            log.warning("egress_own_addresses_unknown",
                        detail="this host binds non-local addresses, so only listener addresses and loopback "
                        "are known to be the proxy's own")

    @property
    def ports(self) -> frozenset[int]:
        return self._ports

    def rule(self, address: IPAddress, port: int) -> InternalRule | None:
        """Why connecting to address:port would reach this host (or this very proxy), or None."""
        if not self.is_local(address):
            return None
        if port in self._ports:
            return InternalRule("proxy_listener", f"this proxy listens on port {port}")
        return InternalRule("proxy_host", f"{address} is an address of the proxy's host")

    def is_local(self, address: IPAddress) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address in self._bound or address.is_loopback or address.is_unspecified:
            return True
        return self._kernel_knows[address.version] and _bindable(address)


def _bindable(address: IPAddress) -> bool:
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError:
        return False
    with sock:
        try:
            sock.bind((str(address), 0))
        except OSError:
            return False
    return True


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
