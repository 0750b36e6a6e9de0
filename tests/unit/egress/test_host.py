"""Host normalisation: every way a client can write a host ends in one canonical form, or is refused."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from proxy.egress.host import Host, HostError, normalise_host


@pytest.mark.parametrize(("raw", "canonical"), [
    # IPv4, every form inet_aton accepts
    ("127.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0X7F000001", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0177.0x0.00.01", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("0x0", "0.0.0.0"),
    ("0.0.0.0", "0.0.0.0"),
    ("2852039166", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"),
    ("169.254.43518", "169.254.169.254"),
    ("169.16689662", "169.254.169.254"),
    ("10.1", "10.0.0.1"),
    ("%31%32%37.0.0.1", "127.0.0.1"),
    ("%32130706433", "127.0.0.1"),
    # IDNA (UTS #46) maps width, so fullwidth digits and ideographic dots are an address again
    ("１２７．０．０．１", "127.0.0.1"),
    ("127。0。0。1", "127.0.0.1"),
    ("%EF%BC%91%EF%BC%92%EF%BC%97.0.0.1", "127.0.0.1"),
    # IPv6, bracketed, zone ids, embedded IPv4, case, leading zeros
    ("[::1]", "::1"),
    ("[0:0:0:0:0:0:0:1]", "::1"),
    ("[0000::0001]", "::1"),
    ("[::]", "::"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("[::FFFF:7F00:1]", "::ffff:7f00:1"),
    ("[::127.0.0.1]", "::7f00:1"),
    ("[64:ff9b::169.254.169.254]", "64:ff9b::a9fe:a9fe"),
    ("[2002:7f00:1::]", "2002:7f00:1::"),
    ("[FD00:EC2::254]", "fd00:ec2::254"),
    ("[fe80::1%25eth0]", "fe80::1%eth0"),
    ("[fe80::1%eth0]", "fe80::1%eth0"),
    ("[fe80::1%25en%30]", "fe80::1%en0"),
    # names: case, trailing dot, percent-encoding, IDNA
    ("API.OpenAI.com.", "api.openai.com"),
    ("%61pi.openai.com", "api.openai.com"),
    ("Bücher.example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example"),
    ("ｌｏｃａｌｈｏｓｔ", "localhost"),
    ("ⓛocalhost", "localhost"),
    ("local\u00adhost", "localhost"),
    ("meta\u200bdata.google.internal", "metadata.google.internal"),
    ("METADATA.GOOGLE.INTERNAL.", "metadata.google.internal"),
    ("_srv.example.com", "_srv.example.com"),
    ("1.2.3.4.nip.io", "1.2.3.4.nip.io"),
])
def test_every_form_normalises_to_one_canonical_host(raw: str, canonical: str) -> None:
    assert normalise_host(raw).name == canonical


def test_ip_literals_carry_their_address_and_zone() -> None:
    assert normalise_host("0x7f.1") == Host("127.0.0.1", ip_address("127.0.0.1"))
    assert normalise_host("[fe80::1%25lo]") == Host("fe80::1%lo", ip_address("fe80::1"), "lo")
    assert normalise_host("example.com") == Host("example.com")


@pytest.mark.parametrize(("raw", "message"), [
    ("256.0.0.1", "not a valid IPv4"),
    ("1.2.3.4.5", "not a valid IPv4"),
    ("4294967296", "not a valid IPv4"),
    ("0x100000000", "not a valid IPv4"),
    ("08", "not a valid IPv4"),
    ("0x", "not a valid IPv4"),
    ("1.2.3.0x", "not a valid IPv4"),
    ("127.0.0.1..", "malformed host"),
    ("", "malformed host"),
    (".", "malformed host"),
    ("a..b", "malformed host"),
    ("-a.example", "malformed host"),
    ("a b.example", "malformed host"),
    ("a%20b.example", "malformed host"),
    ("%2531%2532%2537.0.0.1", "not a valid IPv4"),
    ("a%2Fb.example", "malformed host"),
    ("evil.example%00.openai.com", "malformed host"),
    ("%ff.example", "not valid UTF-8"),
    ("a" * 64 + ".example", "malformed host"),
    (("a" * 63 + ".") * 4 + "com", "malformed host"),
    ("ex\u0000ample.com", "malformed host"),
    ("ex\u0000ämple.com", "internationalised"),
    ("[::1", "malformed IPv6"),
    ("[127.0.0.1]", "malformed IPv6"),
    ("[::ffff:127.1]", "malformed IPv6"),
    ("[v1.fe80::1]", "malformed IPv6"),
    ("[fe80::1%]", "zone id"),
    ("[fe80::1%25]", "zone id"),
    ("[fe80::1%25a/b]", "zone id"),
])
def test_hosts_that_cannot_be_understood_are_refused(raw: str, message: str) -> None:
    with pytest.raises(HostError, match=message):
        normalise_host(raw)
