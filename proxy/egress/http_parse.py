"""HTTP/1.x proxy request heads: read one within a byte limit, parse it strictly, name its target.

Only the head is ever parsed: after CONNECT the bytes are opaque, and a plain-HTTP body is relayed as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from proxy.egress.host import Host, HostError, IPAddress, normalise_host

READ_CHUNK = 4096
MAX_HEADERS = 100

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION = re.compile(r"HTTP/1\.[01]")
_PORT = re.compile(r"[0-9]{1,5}")
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
# Header values may hold visible ASCII, obs-text, spaces and tabs; no other control characters.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection", "proxy-authorization",
     "proxy-authenticate"}
)


class HeadError(Exception):
    """The request cannot be served: the message is safe to send back to the caller."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ChunkReader(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class Target:
    # Normalised (proxy.egress.host): an A-label name, or an IP literal's canonical form.
    host: str
    port: int
    # Origin-form path and query for plain HTTP; None for a CONNECT tunnel.
    path: str | None = None
    # Set when the host is an IP literal (with its zone id, for a scoped IPv6 one).
    address: IPAddress | None = None
    zone: str | None = None

    @property
    def authority(self) -> str:
        return f"{self.bracketed_host}:{self.port}"

    @property
    def bracketed_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host


async def read_head(reader: ChunkReader, max_bytes: int) -> tuple[bytes, bytes]:
    """The head up to its blank line, and whatever the client already sent after it.

    Raises HeadError for an oversized head or bytes that cannot start an HTTP request (a TLS hello sent
    straight at the proxy is refused at once, not after the header timeout), EOFError if the client leaves.
    """
    buffer = bytearray()
    while True:
        end = _END_OF_HEAD.search(buffer, max(0, len(buffer) - READ_CHUNK - 3))
        if end is not None:
            if end.start() > max_bytes:
                raise HeadError(f"request head is larger than {max_bytes} bytes")
            return bytes(buffer[: end.start()]), bytes(buffer[end.end() :])
        if len(buffer) > max_bytes:
            raise HeadError(f"request head is larger than {max_bytes} bytes")
        check_start(bytes(buffer))
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            raise EOFError("client closed the connection before sending a request")
        buffer += chunk


def check_start(data: bytes) -> None:
    """Fail fast when the bytes so far cannot begin a request line (`METHOD SP`)."""
    method = data.split(b" ", 1)[0]
    if method and not _TOKEN.fullmatch(method.decode("latin-1")):
        raise HeadError("not an HTTP request")
    if len(method) > 32:
        raise HeadError("not an HTTP request")


def parse_head(data: bytes) -> RequestHead:
    lines = data.decode("latin-1").replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise HeadError("malformed request line: expected 'METHOD target HTTP/1.1'")
    method, target, version = parts
    if not _VERSION.fullmatch(version):
        raise HeadError(f"unsupported protocol {version[:20]!r}: this proxy speaks HTTP/1.0 and HTTP/1.1")
    if len(lines) - 1 > MAX_HEADERS:
        raise HeadError(f"more than {MAX_HEADERS} header fields")
    headers = tuple(_header(line) for line in lines[1:])
    return RequestHead(method, target, version, headers)


def _header(line: str) -> tuple[str, str]:
    # Folded lines and whitespace before the colon are request-smuggling vectors (RFC 9112 §5), so refused.
    if line[:1] in (" ", "\t"):
        raise HeadError("folded header lines are not accepted")
    name, colon, value = line.partition(":")
    if not colon or not _TOKEN.fullmatch(name):
        raise HeadError(f"malformed header line {line[:40]!r}")
    value = value.strip(" \t")
    if _BAD_VALUE.search(value):
        raise HeadError(f"control character in header {name}")
    return name, value


def parse_target(head: RequestHead) -> Target:
    """Authority-form for CONNECT, absolute `http://` URI for everything else; the host normalised."""
    if head.method == "CONNECT":
        host, port = _authority(head.target, default_port=None)
        return Target(host.name, port, None, host.address, host.zone)
    scheme, sep, rest = head.target.partition("://")
    if not sep:
        raise HeadError("this is a forward proxy: send CONNECT host:port or an absolute http:// URI")
    if scheme.lower() != "http":
        raise HeadError(f"{scheme}:// URIs are not forwarded: use CONNECT for HTTPS")
    cut = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    host, port = _authority(rest[:cut], default_port=80)
    path = rest[cut:].split("#", 1)[0]
    if not path.startswith("/"):
        path = "/" + path
    return Target(host.name, port, path, host.address, host.zone)


def _authority(text: str, default_port: int | None) -> tuple[Host, int]:
    if "@" in text:
        raise HeadError("credentials in the URI are not accepted")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise HeadError(f"malformed IPv6 address in {text[:80]!r}")
        host_text, rest = text[: end + 1], text[end + 1 :]
    else:
        host_text, colon, port_part = text.partition(":")
        rest = colon + port_part
    try:
        # The head was read as latin-1; a host's bytes are UTF-8 (IDNA), percent-encoded or not.
        host = normalise_host(host_text.encode("latin-1").decode("utf-8"))
    except UnicodeDecodeError:
        raise HeadError(f"host in {text[:80]!r} is not valid UTF-8") from None
    except HostError as exc:
        raise HeadError(str(exc)) from None
    return host, _port(rest, default_port, text)


def _port(rest: str, default_port: int | None, text: str) -> int:
    if not rest:
        if default_port is None:
            raise HeadError(f"CONNECT target {text[:80]!r} has no port: expected host:port")
        return default_port
    digits = rest[1:] if rest.startswith(":") else ""
    if not _PORT.fullmatch(digits) or not 0 < int(digits) < 65536:
        raise HeadError(f"bad port in {text[:80]!r}")
    return int(digits)


def origin_request(head: RequestHead, target: Target) -> bytes:
    """The head to send the origin: origin-form request line, the URI's Host, no hop-by-hop or Proxy-*
    fields, and `Connection: close` so the origin ends the exchange after one response."""
    assert target.path is not None
    named = {token.strip().lower() for value in _values(head, "connection") for token in value.split(",")}
    # The client's version, so an HTTP/1.0 client is never sent a chunked response it cannot read.
    lines = [f"{head.method} {target.path} {head.version}"]
    lines.append(f"Host: {target.bracketed_host if target.port == 80 else target.authority}")
    for name, value in head.headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in named or lower.startswith("proxy-") or lower == "host":
            continue
        lines.append(f"{name}: {value}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _values(head: RequestHead, name: str) -> list[str]:
    return [value for key, value in head.headers if key.lower() == name]
