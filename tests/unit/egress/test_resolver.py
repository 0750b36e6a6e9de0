"""Resolvers: a fixed table for tests and pinned names (no real DNS), the system resolver for the rest."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from proxy.egress.resolver import ResolutionError, StaticResolver, SystemResolver


async def test_the_table_answers_every_address_in_order() -> None:
    resolver = StaticResolver({"a.test": ["10.0.0.1", "::1"], "b.test": "127.0.0.1"})
    assert await resolver.resolve("a.test") == (ip_address("10.0.0.1"), ip_address("::1"))
    assert await resolver.resolve("b.test") == (ip_address("127.0.0.1"),)


async def test_a_name_missing_from_the_table_fails_without_a_fallback() -> None:
    with pytest.raises(ResolutionError, match=r"cannot resolve c\.test: not in the resolver's table"):
        await StaticResolver({}).resolve("c.test")


async def test_a_name_missing_from_the_table_goes_to_the_fallback() -> None:
    fallback = StaticResolver({"c.test": "10.9.9.9"})
    assert await StaticResolver({}, fallback).resolve("c.test") == (ip_address("10.9.9.9"),)


async def test_the_system_resolver_returns_unique_addresses_from_the_hosts_file() -> None:
    # /etc/hosts answers localhost: no DNS query leaves the machine.
    addresses = await SystemResolver().resolve("localhost")
    assert ip_address("127.0.0.1") in addresses
    assert len(addresses) == len(set(addresses))
