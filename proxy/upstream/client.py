"""The one I/O boundary towards model providers: a pooled aiohttp session per upstream.

Timeouts cost no object per read: the first-byte bound is aiohttp's socket-read timeout for the request
(armed when the body has been sent, so it covers the wait for the headers), and once the headers are in
the same timer is switched to the idle bound, which aiohttp re-arms as each piece of the body arrives.
Before, each call and each streamed chunk entered an `asyncio.timeout`. URLs are parsed once per path
and model.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from yarl import URL

from ..config import UpstreamConfig
from ..errors import UpstreamError, UpstreamTimeout

# Headers from the provider that are safe and useful to relay; everything else (cookies, the provider's
# own rate-limit state for the organisation's key, server banners) stays behind the proxy.
RELAYED_HEADERS = ("content-type", "openai-processing-ms", "openai-version", "x-request-id", "request-id",
                   "retry-after")


class Upstream:
    def __init__(self, name: str, config: UpstreamConfig, api_key: str | None) -> None:
        self.name = name
        self.config = config
        self._timeouts = config.timeouts
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            if config.kind == "azure":
                self._headers["api-key"] = api_key
            elif config.kind == "anthropic":
                self._headers["x-api-key"] = api_key
            else:
                self._headers["Authorization"] = f"Bearer {api_key}"
        if config.kind == "anthropic":
            # The caller's anthropic-version (passed on by the pipeline) wins over this default.
            self._headers["anthropic-version"] = config.anthropic_version
        self._session: aiohttp.ClientSession | None = None
        # One per call: the session's timeouts plus the first-byte bound on reading.
        self._first_byte = aiohttp.ClientTimeout(total=None, connect=self._timeouts.connect_s,
                                                 sock_connect=self._timeouts.connect_s,
                                                 sock_read=self._timeouts.first_byte_s)
        # (path, upstream model) -> URL; a handful per upstream (endpoints x models), kept for its lifetime.
        self._urls: dict[tuple[str, str], URL] = {}

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.config.max_connections, keepalive_timeout=30,
                                         enable_cleanup_closed=True)
        timeout = aiohttp.ClientTimeout(total=None, connect=self._timeouts.connect_s,
                                        sock_connect=self._timeouts.connect_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                              skip_auto_headers=("User-Agent",), auto_decompress=True)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def url(self, path: str, upstream_model: str) -> URL:
        key = (path, upstream_model)
        url = self._urls.get(key)
        if url is None:
            if self.config.kind == "azure":
                # Azure routes by deployment in the path and versions the API in the query.
                text = (f"{self.config.base_url}/openai/deployments/{upstream_model}/{path}"
                        f"?api-version={self.config.api_version}")
            else:
                text = f"{self.config.base_url}/{path}"
            url = self._urls[key] = URL(text)
        return url

    async def send(self, path: str, upstream_model: str, body: bytes,
                   extra_headers: Mapping[str, str]) -> aiohttp.ClientResponse:
        """POST and wait for the response headers, within the connect and first-byte timeouts."""
        assert self._session is not None, "Upstream.start() was not awaited"
        headers = {**self._headers, **extra_headers}
        try:
            response = await self._session.post(self.url(path, upstream_model), data=body, headers=headers,
                                                timeout=self._first_byte)
        except aiohttp.SocketTimeoutError:
            raise UpstreamTimeout(f"Upstream {self.name!r} did not answer within "
                                  f"{self._timeouts.first_byte_s:g}s.") from None
        except aiohttp.ClientError as exc:  # a connect timeout among them: the upstream is unreachable
            raise UpstreamError(f"Upstream {self.name!r} is unreachable ({type(exc).__name__}).") from None
        connection = response.connection
        if connection is not None and connection.protocol is not None:
            # From here on the bound is the gap between pieces of the body.
            connection.protocol.read_timeout = self._timeouts.idle_s
            connection.protocol.start_timeout()
        return response

    async def read_body(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await response.read()
        except aiohttp.SocketTimeoutError:
            raise UpstreamTimeout(f"Upstream {self.name!r} stalled while sending its response.") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"Upstream {self.name!r} broke off its response ({type(exc).__name__}).") \
                from None

    async def read_chunk(self, response: aiohttp.ClientResponse) -> bytes:
        """The next piece of a streamed body; b'' at its end. Raises on idle timeout or a broken connection."""
        try:
            return await response.content.readany()
        except aiohttp.SocketTimeoutError:
            raise UpstreamTimeout(f"Upstream {self.name!r} sent nothing for {self._timeouts.idle_s:g}s.") \
                from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"Upstream {self.name!r} broke off the stream ({type(exc).__name__}).") \
                from None
