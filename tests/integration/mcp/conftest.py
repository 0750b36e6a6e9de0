"""An MCP server built with the official SDK on loopback, the proxy in front of it, and SDK client sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import ProxyFactory, ProxyHandle
from tests.support.config import KEYS
from tests.support.mcp_server import UPSTREAM_TOKEN, McpServerThread


@pytest.fixture(scope="session")
def _mcp_upstream() -> Iterator[McpServerThread]:
    server = McpServerThread()
    yield server
    server.close()


@pytest.fixture
def mcp_upstream(_mcp_upstream: McpServerThread) -> McpServerThread:
    _mcp_upstream.seen.reset()
    return _mcp_upstream


def mcp_settings(url: str, **server: Any) -> dict[str, Any]:
    return {"servers": {"crm": {"url": url, "bearer": UPSTREAM_TOKEN, "tools": ["lookup", "send_mail"],
                                "timeouts": {"connect_s": 2, "response_s": 3}, **server}}}


@pytest.fixture
def mcp_proxy(make_proxy: ProxyFactory, mcp_upstream: McpServerThread) -> ProxyHandle:
    return make_proxy(mcp=mcp_settings(mcp_upstream.url))


@asynccontextmanager
async def mcp_session(proxy: ProxyHandle, key: str = KEYS["payments"], server: str = "crm",
                      **session: Any) -> AsyncIterator[ClientSession]:
    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=10) as http,
                streamable_http_client(f"{proxy.root}/mcp/{server}", http_client=http) as (read, write),
                ClientSession(read, write, **session) as client):
        await client.initialize()
        yield client
