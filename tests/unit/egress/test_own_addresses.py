"""The proxy's own host and listeners: loopback, bound and kernel-known addresses; listener ports are loops."""

from __future__ import annotations

from ipaddress import ip_address

from proxy.egress.own_addresses import OwnAddresses


def test_loopback_and_unspecified_are_this_host() -> None:
    own = OwnAddresses([])
    for text in ("127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::", "::ffff:127.0.0.1"):
        assert own.is_local(ip_address(text)), text


def test_addresses_of_other_hosts_are_not_local() -> None:
    own = OwnAddresses([])
    for text in ("192.0.2.1", "198.51.100.7", "2001:db8::1", "::ffff:192.0.2.1"):
        assert not own.is_local(ip_address(text)), text


def test_a_listener_port_on_a_local_address_is_a_proxy_loop() -> None:
    own = OwnAddresses([("0.0.0.0", 3128), ("[::1]", 8080), ("localhost", 9000)])
    assert own.ports == {3128, 8080, 9000}
    loop = own.rule(ip_address("127.0.0.5"), 8080)
    assert loop is not None and loop.kind == "proxy_listener" and "8080" in loop.detail
    host = own.rule(ip_address("127.0.0.5"), 22)
    assert host is not None and host.kind == "proxy_host"
    assert own.rule(ip_address("192.0.2.1"), 3128) is None


def test_a_listener_bound_to_a_specific_address_makes_it_local() -> None:
    # Bound addresses count even where the kernel would not confirm them (ip_nonlocal_bind hosts).
    own = OwnAddresses([("192.0.2.10", 3128)])
    assert own.is_local(ip_address("192.0.2.10"))
    rule = own.rule(ip_address("192.0.2.10"), 3128)
    assert rule is not None and rule.kind == "proxy_listener"
