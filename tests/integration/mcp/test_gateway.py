"""The official MCP SDK client through the proxy to a real SDK MCP server: decisions, filtering, PII."""

from __future__ import annotations

import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.conftest import ProxyHandle
from tests.integration.mcp.conftest import mcp_session
from tests.support.config import KEYS
from tests.support.mcp_server import SECRET_IN_RESULT, UPSTREAM_TOKEN, McpServerThread


async def test_initialize_list_call_and_read_through_the_proxy(mcp_proxy: ProxyHandle,
                                                              mcp_upstream: McpServerThread) -> None:
    async with mcp_session(mcp_proxy, KEYS["admin"]) as client:
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} == {"lookup", "send_mail", "slow", "broken"}
        result = await client.call_tool("send_mail", {"to": "ops", "body": "hi"})
        assert not result.is_error and result.content[0].text == "sent to ops"
        resource = await client.read_resource("crm://customers/7")
        assert resource.contents[0].text.startswith("customer 7")
        prompt = await client.get_prompt("greet", {"name": "Ann"})
        assert "Ann" in prompt.messages[0].content.text


async def test_read_only_tools_for_everyone_destructive_ones_denied_with_the_reason(
        mcp_proxy: ProxyHandle, mcp_upstream: McpServerThread) -> None:
    async with mcp_session(mcp_proxy, KEYS["payments"]) as client:
        listed = await client.list_tools()
        assert {t.name for t in listed.tools} == {"lookup", "slow", "broken"}
        with pytest.raises(MCPError) as denied:
            await client.call_tool("send_mail", {"to": "ops", "body": "hi"})
        assert "not read-only" in str(denied.value)
        assert denied.value.error.data["code"] == "mcp_tool_not_allowed"
    assert mcp_upstream.seen.arguments == []


async def test_pii_in_arguments_is_redacted_before_the_server_and_restored_for_the_caller(
        mcp_proxy: ProxyHandle, mcp_upstream: McpServerThread) -> None:
    async with mcp_session(mcp_proxy) as client:
        result = await client.call_tool("lookup", {"email": "jo@example.com"})
    assert mcp_upstream.seen.arguments == [{"email": "[EMAIL_1]"}]
    text = result.content[0].text
    assert "customer for jo@example.com" in text  # the placeholder came back and was restored
    assert SECRET_IN_RESULT not in text and "[AWS_ACCESS_KEY_1]" in text
    assert SECRET_IN_RESULT not in str(result.structured_content)


async def test_a_secret_in_arguments_is_refused_and_never_reaches_the_server(
        mcp_proxy: ProxyHandle, mcp_upstream: McpServerThread) -> None:
    async with mcp_session(mcp_proxy, KEYS["admin"]) as client:
        with pytest.raises(MCPError) as denied:
            await client.call_tool("send_mail", {"to": "ops", "body": "token ghp_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8"})
    assert denied.value.error.data["code"] == "mcp_secret_in_arguments"
    assert "ghp_" not in str(denied.value.error)
    assert mcp_upstream.seen.arguments == []


async def test_a_secret_in_a_resource_is_redacted_before_the_client(mcp_proxy: ProxyHandle,
                                                                    mcp_upstream: McpServerThread) -> None:
    async with mcp_session(mcp_proxy) as client:
        resource = await client.read_resource("crm://customers/9")
    text = resource.contents[0].text
    assert "ghp_" not in text and "[GITHUB_TOKEN_1]" in text
    assert "jo@example.com" in text  # the shipped policy redacts only secrets in results


async def test_session_id_is_carried_and_credentials_never_cross(mcp_proxy: ProxyHandle,
                                                                 mcp_upstream: McpServerThread) -> None:
    seen_by_client: list[str] = []

    async def record(response: httpx2.Response) -> None:
        await response.aread()
        seen_by_client.append(str(response.headers) + response.text)

    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEYS['payments']}"}, timeout=10,
                                   event_hooks={"response": [record]}) as http,
                streamable_http_client(f"{mcp_proxy.root}/mcp/crm", http_client=http) as (read, write),
                ClientSession(read, write) as client):
        await client.initialize()
        await client.call_tool("lookup", {"email": "a@b.example"})
    headers = mcp_upstream.seen.headers
    sessions = {h.get("mcp-session-id") for h in headers[1:]}
    assert len(sessions) == 1 and None not in sessions  # every request after initialize, one session
    assert all(h["authorization"] == f"Bearer {UPSTREAM_TOKEN}" for h in headers)
    assert not any(KEYS["payments"] in str(h) for h in headers)
    assert all(h.get("mcp-protocol-version") == "2025-11-25" for h in headers[1:])
    assert not any(UPSTREAM_TOKEN in text for text in seen_by_client)


async def test_unknown_tool_annotations_are_learned_by_listing_when_a_client_never_listed(
        mcp_proxy: ProxyHandle, mcp_upstream: McpServerThread) -> None:
    # The payments team may call only read-only tools, and a tool without known annotations is not
    # read-only: the call is allowed only because the gateway listed the tools itself.
    async with mcp_session(mcp_proxy) as client:
        result = await client.call_tool("lookup", {"email": "x"})
    assert not result.is_error


async def test_a_tool_error_is_relayed_as_the_tools_result(mcp_proxy: ProxyHandle,
                                                           mcp_upstream: McpServerThread) -> None:
    async with mcp_session(mcp_proxy) as client:
        result = await client.call_tool("broken", {})
    assert result.is_error and "broken" in result.content[0].text


async def test_a_session_id_works_only_for_the_caller_it_was_issued_to(mcp_proxy: ProxyHandle,
                                                                      mcp_upstream: McpServerThread) -> None:
    issued: list[str] = []

    async def record(response: httpx2.Response) -> None:
        if "mcp-session-id" in response.headers:
            issued.append(response.headers["mcp-session-id"])

    async with (httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEYS['payments']}"}, timeout=10,
                                   event_hooks={"response": [record]}) as http,
                streamable_http_client(f"{mcp_proxy.root}/mcp/crm", http_client=http) as (read, write),
                ClientSession(read, write) as client):
        await client.initialize()
        await client.call_tool("lookup", {"email": "x"})
        upstream_id = mcp_upstream.seen.headers[-1]["mcp-session-id"]
        sealed = issued[0]
        assert sealed != upstream_id and sealed.startswith(upstream_id + ".")  # the client never sees the raw id
        forwarded = len(mcp_upstream.seen.headers)
        call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "lookup",
                                                                            "arguments": {"email": "y"}}}
        common = {"content-type": "application/json", "accept": "application/json, text/event-stream",
                  "mcp-protocol-version": "2025-11-25"}
        async with httpx2.AsyncClient(timeout=10) as other:
            for key, session in ((KEYS["admin"], sealed), (KEYS["payments"], upstream_id),
                                 (KEYS["payments"], sealed[:-4] + "0000")):
                answer = await other.post(f"{mcp_proxy.root}/mcp/crm", json=call, headers={
                    **common, "Authorization": f"Bearer {key}", "mcp-session-id": session})
                assert answer.status_code == 404
                assert answer.json()["error"]["data"]["code"] == "unknown_session"
        assert len(mcp_upstream.seen.headers) == forwarded  # none of them reached the server
        assert (await client.call_tool("lookup", {"email": "z"})).is_error is False  # the owner still can
