"""What counts as an internal destination: address ranges, cloud metadata endpoints and internal names,
each with the rule that names why. Pure; see docs/egress.md for the threat model.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.egress.host import IPAddress


@dataclass(frozen=True, slots=True)
class InternalRule:
    # loopback, unspecified, link_local, metadata, private, cgnat, ula, multicast, broadcast, reserved,
    # internal_name, zone_id, proxy_host, proxy_listener
    kind: str
    detail: str

    def describe(self) -> str:
        return f"{self.kind} ({self.detail})"


# Where instance credentials live. 168.63.129.16 is in public address space, so it must be listed.
METADATA: dict[IPAddress, str] = {
    ipaddress.ip_address(text): owner
    for text, owner in (
        ("169.254.169.254", "cloud instance metadata"),
        ("169.254.170.2", "AWS ECS task metadata"),
        ("169.254.170.23", "AWS EKS Pod Identity"),
        ("169.254.169.253", "AWS VPC DNS"),
        ("169.254.169.123", "AWS time sync"),
        ("169.254.0.23", "Tencent Cloud metadata"),
        ("100.100.100.200", "Alibaba Cloud metadata"),
        ("168.63.129.16", "Azure WireServer"),
        ("192.0.0.192", "Oracle Cloud legacy metadata"),
        ("fd00:ec2::254", "AWS instance metadata (IPv6)"),
        ("fd00:ec2::23", "AWS EKS Pod Identity (IPv6)"),
        ("fd00:ec2::253", "AWS VPC DNS (IPv6)"),
        ("fd00:ec2::123", "AWS time sync (IPv6)"),
        ("fd20:ce::254", "Google Cloud metadata (IPv6)"),
    )
}
METADATA_NAMES = frozenset({
    "metadata", "metadata.google.internal", "metadata.goog", "metadata.azure.com", "instance-data",
    "instance-data.ec2.internal", "metadata.tencentyun.com", "metadata.platformequinix.com", "metadata.packet.net",
})
# Names that only mean something inside an organisation or a cluster (RFC 6761, 6762, 8375; ICANN's
# `.internal`; Kubernetes), plus the reverse-lookup zones.
INTERNAL_SUFFIXES = (
    "localhost", "local", "localdomain", "internal", "intranet", "private", "corp", "home", "lan", "home.arpa",
    "cluster.local", "svc", "in-addr.arpa", "ip6.arpa",
)

# Kind "embedded": the address carries an IPv4 address that decides (the connection, or the gateway
# that translates it, ends up there).
_V4 = tuple((ipaddress.IPv4Network(net), kind) for net, kind in (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link_local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "reserved"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "reserved"),
    ("203.0.113.0/24", "reserved"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
))
_V6 = tuple((ipaddress.IPv6Network(net), kind) for net, kind in (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::ffff:0:0/96", "embedded"),
    ("::/96", "reserved"),
    ("::ffff:0:0:0/96", "embedded"),
    ("64:ff9b::/96", "embedded"),
    ("64:ff9b:1::/48", "private"),
    ("100::/64", "reserved"),
    ("2001::/32", "reserved"),
    ("2001:db8::/32", "reserved"),
    ("2002::/16", "embedded"),
    ("3fff::/20", "reserved"),
    ("5f00::/16", "reserved"),
    ("fc00::/7", "ula"),
    ("fe80::/10", "link_local"),
    ("fec0::/10", "private"),
    ("ff00::/8", "multicast"),
))
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_EMBEDDING = {"::ffff:0:0/96": "IPv4-mapped", "::ffff:0:0:0/96": "IPv4-translated", "64:ff9b::/96": "NAT64",
              "2002::/16": "6to4"}


def address_rule(address: IPAddress) -> InternalRule | None:
    """Why this address is internal, or None for a globally routable one."""
    owner = METADATA.get(address)
    if owner is not None:
        return InternalRule("metadata", f"{address}, {owner}")
    table = _V4 if isinstance(address, ipaddress.IPv4Address) else _V6
    for network, kind in table:
        if address in network:
            if kind != "embedded":
                return InternalRule(kind, str(network))
            inner = embedded_ipv4(address)
            rule = None if inner is None else address_rule(inner)
            if rule is None:
                return None
            return InternalRule(rule.kind, f"{rule.detail}, in {_EMBEDDING[str(network)]} {network}")
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return InternalRule("reserved", f"outside {_GLOBAL_UNICAST}")
    if not address.is_global:
        return InternalRule("reserved", "not globally routable")
    return None


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, IPv4-translated, NAT64 (64:ff9b::/96) or 6to4 address."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.sixtofour is not None:
        return address.sixtofour
    for network, kind in _V6:
        if kind == "embedded" and address in network:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def name_rule(name: str, extra_suffixes: Iterable[str] = ()) -> InternalRule | None:
    """Why this (normalised) name is internal whatever it resolves to, or None."""
    if name in METADATA_NAMES:
        return InternalRule("metadata", f"{name}, cloud instance metadata")
    if "." not in name:
        return InternalRule("internal_name", "single-label name, resolved through the search list")
    for suffix in (*INTERNAL_SUFFIXES, *extra_suffixes):
        if name == suffix or name.endswith("." + suffix):
            return InternalRule("internal_name", f".{suffix}")
    return None
