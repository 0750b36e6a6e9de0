"""A server that fails, hangs or refuses the proxy's credentials, and bodies that are not valid JSON-RPC:
always a clear JSON-RPC error, within the configured timeout, never a 500 or a hang."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import httpx
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from tests.conftest import ProxyFactory, ProxyHandle
from tests.integration.mcp.conftest import mcp_session, mcp_settings
from tests.support.config import KEYS
from tests.support.mcp_server import UPSTREAM_TOKEN, McpServerThread

AUTH = {"Authorization": f"Bearer {KEYS['payments']}", "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_hanging_tool_gets_a_timeout_error_within_the_configured_time(
        make_proxy: ProxyFactory, mcp_upstream: McpServerThread) -> None:
    proxy = make_proxy(mcp=mcp_settings(mcp_upstream.url, timeouts={"connect_s": 1, "response_s": 1}))
    async with mcp_session(proxy) as client:
        started = time.monotonic()
        with pytest.raises(MCPError) as failed:
            await client.call_tool("slow", {"seconds": 8})
        elapsed = time.monotonic() - started
    assert failed.value.error.data["code"] == "upstream_timeout"
    assert "1s" in failed.value.error.message
    assert elapsed < 4


async def test_an_unreachable_server_is_a_json_rpc_error_on_initialize(make_proxy: ProxyFactory) -> None:
    proxy = make_proxy(mcp=mcp_settings(f"http://127.0.0.1:{free_port()}/mcp"))
    # The SDK raises it out of its task group, wrapped.
    with pytest.raises(BaseExceptionGroup) as failed:
        async with mcp_session(proxy):
            pass
    [error] = leaves(failed.value)
    assert isinstance(error, MCPError) and error.error.data["code"] == "upstream_unavailable"


def leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    return [leaf for inner in group.exceptions
            for leaf in (leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])]


async def test_a_server_refusing_the_proxys_credentials_does_not_reach_the_client(
        make_proxy: ProxyFactory, mcp_upstream: McpServerThread) -> None:
    proxy = make_proxy(mcp=mcp_settings(mcp_upstream.url, bearer="not-the-token"))
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(f"{proxy.root}/mcp/crm", headers=AUTH, content=b'{"jsonrpc":"2.0","id":1,'
                                   b'"method":"initialize","params":{"protocolVersion":"2025-11-25",'
                                   b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}')
    body = response.json()
    assert body["error"]["data"]["code"] == "upstream_status_401" and body["id"] == 1
    assert "www-authenticate" not in response.headers and "evil.example" not in response.text
    assert mcp_upstream.seen.headers[-1]["authorization"] == "Bearer not-the-token"


@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    (b"{not json", {}, 400, -32700),
    (b"\xff\xfe", {}, 400, -32700),
    (b"", {}, 400, -32600),
    (b"[]", {}, 400, -32600),
    (b"42", {}, 400, -32600),
    (b'{"jsonrpc":"1.0","id":1,"method":"ping"}', {}, 200, -32600),
    (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', {}, 400, -32600),
    (b'{"jsonrpc":"2.0","id":null,"method":"ping"}', {}, 400, -32600),
    (b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', {}, 400, -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":""}', {}, 200, -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":"ping","result":{}}', {}, 200, -32600),
    (b'{"jsonrpc":"2.0","id":1}', {}, 200, -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[1]}', {}, 200, -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}', {}, 200, -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":"x"}}', {}, 200,
     -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}', {}, 200, -32602),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup","arguments":{"a":'
     + b'[' * 80 + b']' * 80 + b'}}}', {}, 200, -32602),
    (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', {"MCP-Protocol-Version": "2025-11-25"}, 400, -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"lookup"}}', {"Mcp-Name": "send_mail"},
     200, -32600),
    (b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}', {"Mcp-Method": "tools/call"}, 200, -32600),
])
def test_malformed_json_rpc_is_a_json_rpc_error_never_a_500(mcp_proxy: ProxyHandle, mcp_upstream: McpServerThread,
                                                           body: bytes, headers: dict[str, str], status: int,
                                                           code: int) -> None:
    response = httpx.post(f"{mcp_proxy.root}/mcp/crm", content=body, headers={**AUTH, **headers}, timeout=10)
    assert response.status_code == status
    document = response.json()
    assert document["jsonrpc"] == "2.0" and document["error"]["code"] == code
    assert mcp_upstream.seen.headers == []  # nothing invalid was forwarded


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4), max_leaves=20)
METHODS = st.sampled_from(["tools/call", "ping", "x", ""]) | JSON
MESSAGES = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0"])},
    optional={"id": JSON, "method": METHODS, "params": JSON, "result": JSON, "error": JSON})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=MESSAGES | JSON)
def test_any_json_body_is_answered_without_a_server_error(mcp_proxy: ProxyHandle, document: Any) -> None:
    # The standard library writes integers beyond 64 bits too, which the gateway refuses as a parse error.
    body = json.dumps(document).encode()
    response = httpx.post(f"{mcp_proxy.root}/mcp/crm", content=body, headers=AUTH, timeout=10)
    assert response.status_code < 500 or response.json()["error"]["data"]["code"].startswith("upstream")
    if response.headers.get("content-type", "").startswith("application/json") and response.content:
        assert response.json()


def test_an_unknown_server_is_a_404_json_rpc_error(mcp_proxy: ProxyHandle) -> None:
    response = httpx.post(f"{mcp_proxy.root}/mcp/nope", content=b"{}", headers=AUTH, timeout=10)
    assert response.status_code == 404 and response.json()["error"]["data"]["code"] == "unknown_mcp_server"


def test_without_a_proxy_key_nothing_is_forwarded(mcp_proxy: ProxyHandle, mcp_upstream: McpServerThread) -> None:
    response = httpx.post(f"{mcp_proxy.root}/mcp/crm", content=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
                          headers={"Authorization": f"Bearer {UPSTREAM_TOKEN}"}, timeout=10)
    assert response.status_code == 401 and mcp_upstream.seen.headers == []


async def test_a_client_that_closes_its_listen_stream_is_a_disconnect_not_a_500(
        make_proxy: ProxyFactory, mcp_upstream: McpServerThread) -> None:
    # What an SDK does when its session ends: it drops the GET stream it listened on, then sends DELETE,
    # and the server ends that stream: the proxy's next write finds the client gone.
    import aiohttp
    from structlog.testing import capture_logs

    proxy = make_proxy(mcp=mcp_settings(mcp_upstream.url))
    url = f"{proxy.root}/mcp/crm"
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    with capture_logs() as logs:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            async with http.post(url, json=initialize) as started:
                assert started.status == 200
                session = {"mcp-session-id": started.headers["mcp-session-id"], "mcp-protocol-version": "2025-06-18"}
                await started.read()
            async with http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                                 headers=session) as notified:
                assert notified.status == 202
            listen = await http.get(url, headers={**session, "Accept": "text/event-stream"})
            assert listen.status == 200
            ending = asyncio.ensure_future(http.delete(url, headers=session))
            await asyncio.sleep(0)  # the DELETE on its way: the server ends the stream as the client drops it
            listen.close()
            async with await ending as ended:
                assert ended.status == 200
        for _ in range(250):
            if any(e["event"] == "request" and e.get("method") == "GET" for e in logs):
                break
            await asyncio.sleep(0.02)
    [listened] = [e for e in logs if e["event"] == "request" and e.get("method") == "GET"]
    assert listened["status"] == 499 and listened["client_disconnected"] is True  # 499: the client went away
    assert not [e for e in logs if e["event"] == "unhandled_error"]
