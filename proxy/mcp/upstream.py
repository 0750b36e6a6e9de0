"""The I/O boundary towards one MCP server: a pooled session, the proxy's credentials injected, and
allow-lists for the headers that cross in either direction (a client's credentials never go up, the
server's cookies and auth challenges never come down)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import aiohttp

from proxy.errors import UpstreamError, UpstreamTimeout

from .config import McpServerConfig

# Client headers the transport defines; with the proxy's own (credentials, trace context, request id),
# the only ones an upstream sees. Mcp-Param-* (protocol 2026-07-28) mirror arguments: see forward_headers.
REQUEST_HEADERS = ("accept", "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id",
                   "mcp-method", "mcp-name")
PARAM_HEADER_PREFIX = "mcp-param-"
RESPONSE_HEADERS = ("content-type", "mcp-session-id", "mcp-protocol-version", "cache-control", "x-accel-buffering",
                    "allow")
DEFAULT_ACCEPT = "application/json, text/event-stream"


def forward_headers(client: Mapping[str, str], *, params: bool) -> dict[str, str]:
    """The client's transport headers, and its Mcp-Param-* ones only when `params` (arguments unchanged:
    after redaction they would carry the original values past it)."""
    headers = {name: client[name] for name in REQUEST_HEADERS if name in client}
    if params:
        headers.update({name: value for name, value in client.items() if name.lower().startswith(PARAM_HEADER_PREFIX)})
    headers.setdefault("accept", DEFAULT_ACCEPT)
    return headers


def relayed_headers(upstream: Mapping[str, str], seal_session: Callable[[str], str]) -> dict[str, str]:
    """The server's transport headers for the client, its session id sealed to the caller."""
    headers = {name: upstream[name] for name in RESPONSE_HEADERS if name in upstream}
    if "mcp-session-id" in headers:
        headers["mcp-session-id"] = seal_session(headers["mcp-session-id"])
    return headers


class McpUpstream:
    def __init__(self, name: str, config: McpServerConfig, credentials: Mapping[str, str]) -> None:
        self.name = name
        self.config = config
        self._credentials = dict(credentials)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.config.max_connections, keepalive_timeout=30,
                                         enable_cleanup_closed=True)
        connect = self.config.timeouts.connect_s
        timeout = aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                              skip_auto_headers=("User-Agent",), auto_decompress=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(self, method: str, headers: Mapping[str, str], body: bytes | None = None) \
            -> aiohttp.ClientResponse:
        """Send and wait for the response headers within `timeouts.response_s`. Redirects are not
        followed: they would carry the injected credentials wherever the server points."""
        assert self._session is not None, "McpUpstream.start() was not awaited"
        timeout = self.config.timeouts.response_s
        try:
            async with asyncio.timeout(timeout):
                return await self._session.request(method, self.config.url, data=body, allow_redirects=False,
                                                   headers={**headers, **self._credentials})
        except TimeoutError:
            raise UpstreamTimeout(f"MCP server {self.name!r} did not answer within {timeout:g}s.") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"MCP server {self.name!r} is unreachable ({type(exc).__name__}).") from None

    async def read_body(self, response: aiohttp.ClientResponse) -> bytes:
        limit, timeout = self.config.max_body_bytes, self.config.timeouts.response_s
        if response.content_length is not None and response.content_length > limit:
            raise UpstreamError(f"MCP server {self.name!r} sent a body larger than {limit} bytes.")
        chunks: list[bytes] = []
        size = 0
        while chunk := await self.read_chunk(response, timeout):
            size += len(chunk)
            if size > limit:
                raise UpstreamError(f"MCP server {self.name!r} sent a body larger than {limit} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_chunk(self, response: aiohttp.ClientResponse, idle_s: float) -> bytes:
        """The next piece of a body; b'' at its end. Raises on idle timeout or a broken connection."""
        try:
            async with asyncio.timeout(idle_s):
                return await response.content.readany()
        except TimeoutError:
            raise UpstreamTimeout(f"MCP server {self.name!r} sent nothing for {idle_s:g}s.") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"MCP server {self.name!r} broke off its response ({type(exc).__name__}).") \
                from None
