"""Request heads: strict parsing, the byte limit, target forms and the head sent to an origin."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from proxy.egress.http_parse import HeadError, Target, origin_request, parse_head, parse_target, read_head


class Chunks:
    def __init__(self, *chunks: bytes) -> None:
        self._chunks = list(chunks)
        self.reads = 0

    async def read(self, n: int = -1) -> bytes:
        self.reads += 1
        return self._chunks.pop(0) if self._chunks else b""


def target(raw: str) -> Target:
    return parse_target(parse_head(raw.encode()))


async def test_read_head_returns_head_and_the_bytes_after_it() -> None:
    head, rest = await read_head(Chunks(b"CONNECT a:443 HTTP/1.1\r\nHo", b"st: a\r\n\r\n\x16\x03"), 1024)
    assert head == b"CONNECT a:443 HTTP/1.1\r\nHost: a"
    assert rest == b"\x16\x03"


async def test_read_head_accepts_bare_line_feeds() -> None:
    head, rest = await read_head(Chunks(b"CONNECT a:443 HTTP/1.1\n\n"), 1024)
    assert parse_head(head).target == "a:443" and rest == b""


async def test_read_head_refuses_a_head_over_the_limit() -> None:
    with pytest.raises(HeadError, match="larger than 64 bytes"):
        await read_head(Chunks(b"CONNECT a:443 HTTP/1.1\r\nX: " + b"a" * 100 + b"\r\n\r\n"), 64)


async def test_read_head_refuses_an_endless_head_without_reading_past_the_limit() -> None:
    reader = Chunks(*[b"X" * 4096] * 100)
    with pytest.raises(HeadError):
        await read_head(reader, 8192)
    assert reader.reads <= 4


async def test_read_head_refuses_non_http_bytes_at_once() -> None:
    with pytest.raises(HeadError, match="not an HTTP request"):
        await read_head(Chunks(b"\x16\x03\x01\x00\xa5\x01", b"more"), 1024)


async def test_read_head_reports_a_client_that_leaves() -> None:
    with pytest.raises(EOFError):
        await read_head(Chunks(b"CONNECT a:44"), 1024)


def test_parse_head_keeps_header_order_and_looks_up_case_insensitively() -> None:
    head = parse_head(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nproxy-authorization:  Bearer k \r\nX: 1")
    assert (head.method, head.target, head.version) == ("CONNECT", "a:443", "HTTP/1.1")
    assert head.headers == (("Host", "a:443"), ("proxy-authorization", "Bearer k"), ("X", "1"))
    assert head.header("Proxy-Authorization") == "Bearer k"
    assert head.header("missing") is None


@pytest.mark.parametrize("raw", [
    b"CONNECT a:443",
    b"CONNECT  a:443 HTTP/1.1",
    b"CONNECT a:443 HTTP/2.0",
    b"CONNECT a:443 HTTP/1.1 extra",
    b"CONN(ECT a:443 HTTP/1.1",
    b"CONNECT a:443 HTTP/1.1\r\nNo colon",
    b"CONNECT a:443 HTTP/1.1\r\nBad Name: x",
    b"CONNECT a:443 HTTP/1.1\r\nX: 1\r\n continued",
    b"CONNECT a:443 HTTP/1.1\r\nX: a\x00b",
    b"CONNECT a:443 HTTP/1.1\r\n" + b"X: 1\r\n" * 101,
])
def test_parse_head_refuses_malformed_heads(raw: bytes) -> None:
    with pytest.raises(HeadError) as raised:
        parse_head(raw)
    assert raised.value.status == 400


@pytest.mark.parametrize(("raw", "expected"), [
    ("CONNECT api.openai.com:443 HTTP/1.1", Target("api.openai.com", 443)),
    ("CONNECT API.OpenAI.com.:8443 HTTP/1.1", Target("api.openai.com", 8443)),
    ("CONNECT 10.1.2.3:443 HTTP/1.1", Target("10.1.2.3", 443, None, ip_address("10.1.2.3"))),
    ("CONNECT [::1]:443 HTTP/1.1", Target("::1", 443, None, ip_address("::1"))),
    ("GET http://example.test/a/b?c=d#frag HTTP/1.1", Target("example.test", 80, "/a/b?c=d")),
    ("GET http://example.test:8080 HTTP/1.1", Target("example.test", 8080, "/")),
    ("GET http://example.test?q=1 HTTP/1.0", Target("example.test", 80, "/?q=1")),
    ("POST HTTP://[2001:db8::1]:81/x HTTP/1.1", Target("2001:db8::1", 81, "/x", ip_address("2001:db8::1"))),
])
def test_parse_target_reads_authority_and_absolute_forms(raw: str, expected: Target) -> None:
    assert target(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ("CONNECT api.openai.com HTTP/1.1", "has no port"),
    ("CONNECT api.openai.com: HTTP/1.1", "bad port"),
    ("CONNECT api.openai.com:0 HTTP/1.1", "bad port"),
    ("CONNECT api.openai.com:65536 HTTP/1.1", "bad port"),
    ("CONNECT api.openai.com:44x HTTP/1.1", "bad port"),
    ("CONNECT :443 HTTP/1.1", "malformed host"),
    ("CONNECT -a.test:443 HTTP/1.1", "malformed host"),
    ("CONNECT [::1:443 HTTP/1.1", "IPv6"),
    ("CONNECT [nope]:443 HTTP/1.1", "IPv6"),
    ("CONNECT [::1]x HTTP/1.1", "bad port"),
    ("CONNECT u:p@a.test:443 HTTP/1.1", "credentials"),
    ("GET /path HTTP/1.1", "forward proxy"),
    ("GET https://a.test/ HTTP/1.1", "use CONNECT"),
    ("GET http://u@a.test/ HTTP/1.1", "credentials"),
])
def test_parse_target_refuses_bad_targets(raw: str, message: str) -> None:
    with pytest.raises(HeadError, match=message):
        target(raw)


def test_origin_request_rewrites_to_origin_form_and_drops_hop_by_hop_fields() -> None:
    head = parse_head(
        b"POST http://a.test:8080/v?x=1 HTTP/1.1\r\nHost: wrong\r\nProxy-Authorization: Basic eDp5\r\n"
        b"Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n"
        b"TE: trailers\r\nUpgrade: h2c\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nX-Keep: yes"
    )
    sent = origin_request(head, parse_target(head)).decode()
    assert sent == (
        "POST /v?x=1 HTTP/1.1\r\nHost: a.test:8080\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
        "X-Keep: yes\r\nConnection: close\r\n\r\n"
    )


def test_origin_request_keeps_the_version_and_omits_the_default_port_from_host() -> None:
    head = parse_head(b"GET http://[::1]/ HTTP/1.0")
    assert origin_request(head, parse_target(head)).startswith(b"GET / HTTP/1.0\r\nHost: [::1]\r\n")
