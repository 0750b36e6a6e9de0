"""Property: no spelling of a loopback, unspecified or metadata address (or name) is classified external,
whether it arrives as CONNECT or as an absolute-form URI. A spelling the parser refuses is refused too."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.egress.destination import DestinationGuard
from proxy.egress.http_parse import HeadError, parse_head, parse_target
from proxy.egress.internal import METADATA, METADATA_NAMES
from proxy.egress.own_addresses import OwnAddresses
from proxy.egress.resolver import StaticResolver

IPV4_TARGETS = [int(a) for a in METADATA if a.version == 4] + [0]
IPV6_TARGETS = [a for a in METADATA if a.version == 6] + [ipaddress.IPv6Address("::1"), ipaddress.IPv6Address("::")]
NAMES = sorted(METADATA_NAMES | {"localhost", "kubernetes.default.svc"})
# What UTS #46 folds back to ASCII: fullwidth digits, letters and dots, ideographic full stop.
WIDE = {**{c: chr(ord(c) - 0x21 + 0xFF01) for c in "0123456789abcdefx"}, ".": "．"}
IGNORED = ["\u00ad", "\u200b", "\u2060", "\ufeff"]


@st.composite
def loopback_ipv4(draw: st.DrawFn) -> int:
    return int(draw(st.integers(0x7F000000, 0x7FFFFFFF)))


def _part(draw: st.DrawFn, value: int) -> str:
    style = draw(st.sampled_from(["dec", "oct", "hex"]))
    if style == "dec" or (value == 0 and style == "oct"):
        return str(value)
    if style == "oct":
        return "0" * draw(st.integers(1, 3)) + format(value, "o")
    digits = format(value, "x")
    digits = "".join(c.upper() if draw(st.booleans()) else c for c in digits)
    return draw(st.sampled_from(["0x", "0X"])) + "0" * draw(st.integers(0, 3)) + digits


@st.composite
def ipv4_spelling(draw: st.DrawFn) -> str:
    """Any inet_aton form: 1 to 4 parts, each decimal, octal or hex; maybe a trailing dot."""
    value = draw(st.one_of(loopback_ipv4(), st.sampled_from(IPV4_TARGETS)))
    parts_count = draw(st.integers(1, 4))
    octets = list(value.to_bytes(4, "big"))
    head = octets[: parts_count - 1]
    rest = int.from_bytes(bytes(octets[parts_count - 1 :]), "big")
    text = ".".join(_part(draw, part) for part in [*head, rest])
    return text + ("." if draw(st.booleans()) else "")


def _groups(address: ipaddress.IPv6Address, draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        text = address.exploded if draw(st.booleans()) else str(address)
    else:
        text = ":".join(format(int(g, 16), "x") for g in address.exploded.split(":"))
    return "".join(c.upper() if draw(st.booleans()) else c for c in text)


@st.composite
def ipv6_spelling(draw: st.DrawFn) -> str:
    """Bracketed IPv6: loopback, unspecified, metadata, or an internal IPv4 address mapped, translated,
    NAT64'd or 6to4'd into IPv6; any case, compressed or not, maybe with a zone id."""
    kind = draw(st.sampled_from(["plain", "mapped", "mapped_dotted", "translated", "nat64", "6to4"]))
    if kind == "plain":
        address = draw(st.sampled_from(IPV6_TARGETS))
        text = _groups(address, draw)
    else:
        v4 = ipaddress.IPv4Address(draw(st.one_of(loopback_ipv4(), st.sampled_from(IPV4_TARGETS))))
        if kind == "mapped_dotted":
            text = draw(st.sampled_from(["::ffff:", "0:0:0:0:0:ffff:", "::FFFF:"])) + str(v4)
        else:
            base = {"mapped": 0xFFFF << 32, "translated": 0xFFFF << 48, "nat64": 0x64FF9B << 96,
                    "6to4": 0x2002 << 112}[kind]
            packed = int(v4) << 80 if kind == "6to4" else int(v4)
            text = _groups(ipaddress.IPv6Address(base | packed), draw)
    zone = draw(st.sampled_from(["", "", "%25eth0", "%eth0", "%251"]))
    return f"[{text}{zone}]"


@st.composite
def name_spelling(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    name = "".join(c.upper() if draw(st.booleans()) else c for c in name)
    return name + ("." if draw(st.booleans()) else "")


@st.composite
def disguised(draw: st.DrawFn) -> str:
    """A spelling, then maybe widened (UTS #46 folds it back), sprinkled with ignorables, percent-encoded."""
    text = draw(st.one_of(ipv4_spelling(), ipv6_spelling(), name_spelling()))
    if text.startswith("["):
        return text
    chars = list(text)
    if draw(st.booleans()):
        chars = [WIDE.get(c.lower(), c) if draw(st.booleans()) else c for c in chars]
    if draw(st.booleans()) and len(chars) > 1:
        chars.insert(draw(st.integers(1, len(chars) - 1)), draw(st.sampled_from(IGNORED)))
    if draw(st.booleans()):
        chars = ["".join(f"%{b:02X}" for b in c.encode()) if draw(st.booleans()) else c for c in chars]
    return "".join(chars)


@pytest.fixture(scope="module")
def guard_loop() -> Iterator[tuple[DestinationGuard, asyncio.AbstractEventLoop]]:
    loop = asyncio.new_event_loop()
    # Names must not be admitted by resolving them: nothing is in the table, nothing is allowed.
    guard = DestinationGuard(StaticResolver({}), [], OwnAddresses([("127.0.0.1", 3128)]))
    yield guard, loop
    loop.close()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(host=disguised(), port=st.integers(1, 65535), absolute=st.booleans())
def test_no_spelling_of_loopback_or_metadata_is_external(
    guard_loop: tuple[DestinationGuard, asyncio.AbstractEventLoop], host: str, port: int, absolute: bool
) -> None:
    guard, loop = guard_loop
    line = f"GET http://{host}:{port}/ HTTP/1.1" if absolute else f"CONNECT {host}:{port} HTTP/1.1"
    try:
        target = parse_target(parse_head(line.encode("utf-8")))
    except HeadError:
        return  # refused as a bad request: never connected to
    destination = loop.run_until_complete(guard.check(target))
    assert destination.internal and destination.refused, (host, target, destination)


@given(host=ipv4_spelling())
def test_every_ipv4_spelling_parses_to_an_address_not_a_name(host: str) -> None:
    target = parse_target(parse_head(f"CONNECT {host}:443 HTTP/1.1".encode()))
    assert target.address is not None
