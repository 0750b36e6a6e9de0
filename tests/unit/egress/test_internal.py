"""Address and name rules: every internal class, the IPv6 forms that embed an IPv4 address, and what stays
external."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from proxy.egress.internal import METADATA, address_rule, embedded_ipv4, name_rule


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("168.63.129.16", "metadata"),
    ("100.100.100.200", "metadata"),
    ("169.254.1.1", "link_local"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "cgnat"),
    ("100.127.255.255", "cgnat"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "reserved"),
    ("198.18.0.1", "reserved"),
    ("192.0.0.8", "reserved"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link_local"),
    ("febf::1", "link_local"),
    ("fd00:ec2::254", "metadata"),
    ("fd20:ce::254", "metadata"),
    ("fc00::1", "ula"),
    ("fd12:3456::1", "ula"),
    ("fec0::1", "private"),
    ("ff02::1", "multicast"),
    ("ff05::2", "multicast"),
    # IPv4-mapped, -translated, NAT64 and 6to4 forms decide by the IPv4 address inside
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:0.0.0.0", "unspecified"),
    ("::ffff:0:127.0.0.1", "loopback"),
    ("64:ff9b::127.0.0.1", "loopback"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b::10.1.2.3", "private"),
    ("2002:7f00:1::", "loopback"),
    ("2002:a9fe:a9fe::1", "metadata"),
    ("2002:c0a8:101::", "private"),
    # deprecated or special-purpose IPv6 that a workload never needs
    ("::127.0.0.1", "reserved"),
    ("::8.8.8.8", "reserved"),
    ("64:ff9b:1::a00:1", "private"),
    ("100::1", "reserved"),
    ("2001::1", "reserved"),
    ("2001:db8::1", "reserved"),
    ("3fff::1", "reserved"),
    ("4000::1", "reserved"),
    ("e000::1", "reserved"),
])
def test_internal_addresses_are_named_by_their_rule(address: str, kind: str) -> None:
    rule = address_rule(ip_address(address))
    assert rule is not None and rule.kind == kind, rule


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "104.18.6.192", "100.128.0.1", "172.32.0.1", "192.169.0.1", "11.0.0.1",
    "2606:4700::6810:6c0", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1",
])
def test_public_addresses_are_external(address: str) -> None:
    assert address_rule(ip_address(address)) is None


def test_embedded_forms_name_the_outer_range_too() -> None:
    rule = address_rule(ip_address("64:ff9b::7f00:1"))
    assert rule is not None and rule.describe() == "loopback (127.0.0.0/8, in NAT64 64:ff9b::/96)"


def test_every_metadata_address_is_metadata_in_every_ipv4_embedding() -> None:
    for address in METADATA:
        if address.version == 4:
            for embedded in (f"::ffff:{address}", f"64:ff9b::{address}", f"::ffff:0:{address}"):
                rule = address_rule(ip_address(embedded))
                assert rule is not None and rule.kind == "metadata", embedded
            packed = int(address)
            six_to_four = ip_address((0x2002 << 112) | (packed << 80))
            assert embedded_ipv4(six_to_four) == address


@pytest.mark.parametrize(("name", "kind"), [
    ("metadata.google.internal", "metadata"),
    ("metadata", "metadata"),
    ("metadata.azure.com", "metadata"),
    ("instance-data.ec2.internal", "metadata"),
    ("localhost", "internal_name"),
    ("app.localhost", "internal_name"),
    ("kubernetes.default.svc", "internal_name"),
    ("kubernetes.default.svc.cluster.local", "internal_name"),
    ("printer.local", "internal_name"),
    ("router.home.arpa", "internal_name"),
    ("db.corp", "internal_name"),
    ("redis", "internal_name"),
    ("1.0.0.127.in-addr.arpa", "internal_name"),
])
def test_internal_names_are_internal_whatever_they_resolve_to(name: str, kind: str) -> None:
    rule = name_rule(name)
    assert rule is not None and rule.kind == kind


def test_configured_domains_are_internal_and_lookalikes_are_not() -> None:
    assert name_rule("git.corp.example.com", ["corp.example.com"]) is not None
    assert name_rule("corp.example.com", ["corp.example.com"]) is not None
    assert name_rule("notcorp.example.com", ["corp.example.com"]) is None
    assert name_rule("api.openai.com") is None
    assert name_rule("localhost.example.com") is None
    assert name_rule("svc.example.com") is None
