"""Allow-list entries: parsing (see test_config for the refusals) and what an entry admits."""

from __future__ import annotations

from ipaddress import ip_address

from proxy.egress.internal_allow import parse_internal_target


def test_an_entry_admits_its_network_and_port_range_only() -> None:
    entry = parse_internal_target("10.2.0.0/16:8000-8010")
    assert entry.admits(ip_address("10.2.255.1"), 8000) and entry.admits(ip_address("10.2.0.1"), 8010)
    assert not entry.admits(ip_address("10.2.0.1"), 7999) and not entry.admits(ip_address("10.2.0.1"), 8011)
    assert not entry.admits(ip_address("10.3.0.1"), 8000)
    assert not entry.admits(ip_address("::ffff:10.2.0.1"), 8000)


def test_ipv6_entries_and_the_any_port_wildcard() -> None:
    entry = parse_internal_target("[fd00::/8]:*")
    assert entry.text == "[fd00::/8]:*"
    assert entry.admits(ip_address("fd12::1"), 1) and entry.admits(ip_address("fd12::1"), 65535)
    assert not entry.admits(ip_address("10.0.0.1"), 443)


def test_metadata_is_admitted_by_a_single_address_entry_only() -> None:
    metadata = ip_address("169.254.169.254")
    assert not parse_internal_target("169.254.0.0/16:80").admits(metadata, 80, metadata=True)
    assert parse_internal_target("169.254.169.254:80").admits(metadata, 80, metadata=True)
    assert parse_internal_target("[fd00:ec2::254]:80").admits(ip_address("fd00:ec2::254"), 80, metadata=True)
