"""Rate limits per caller and tool through the budget store, batches, and what every tool call reports:
metrics with bounded labels, a GenAI execute_tool span, one audit line without values."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest
from mcp.shared.exceptions import MCPError
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs

from tests.conftest import ProxyFactory, ProxyHandle
from tests.integration.mcp.conftest import mcp_session, mcp_settings
from tests.support.config import KEYS, REPO
from tests.support.mcp_server import McpServerThread


def policies_with(tmp_path: Path, **mcp_data: object) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(REPO / "policies", folder)
    data_file = folder / "data" / "mcp.json"
    data = json.loads(data_file.read_text())
    data["mcp"].update(mcp_data)
    data_file.write_text(json.dumps(data))
    return folder


async def test_calls_per_minute_per_caller_and_tool_are_limited(make_proxy: ProxyFactory, tmp_path: Path,
                                                                mcp_upstream: McpServerThread) -> None:
    proxy = make_proxy(mcp=mcp_settings(mcp_upstream.url),
                       policy={"dir": str(policies_with(tmp_path, calls_per_minute=2)), "reload_interval_s": 0})
    async with mcp_session(proxy) as client:
        for _ in range(2):
            assert not (await client.call_tool("lookup", {"email": "a"})).is_error
        with pytest.raises(MCPError) as limited:
            await client.call_tool("lookup", {"email": "a"})
        assert limited.value.error.data["code"] == "rate_limit_exceeded"
        assert limited.value.error.data["retry_after_s"] > 0
        assert not (await client.call_tool("slow", {"seconds": 0})).is_error  # another tool, its own limit
    async with mcp_session(proxy, KEYS["research"]) as client:
        assert not (await client.call_tool("lookup", {"email": "a"})).is_error  # another caller
    assert len(mcp_upstream.seen.arguments) == 3


def initialize(proxy: ProxyHandle, version: str) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {KEYS['payments']}", "Accept": "application/json, text/event-stream"}
    response = httpx.post(f"{proxy.root}/mcp/crm", headers=headers, timeout=10, json={
        "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    assert response.status_code == 200
    return {**headers, "Mcp-Session-Id": response.headers["mcp-session-id"]}


def test_a_batch_is_decided_message_by_message_and_refusals_are_never_forwarded(
        mcp_proxy: ProxyHandle, mcp_upstream: McpServerThread) -> None:
    headers = initialize(mcp_proxy, "2025-03-26")
    call = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "send_mail", "arguments": {"to": "x"}}}
    response = httpx.post(f"{mcp_proxy.root}/mcp/crm", headers=headers, timeout=10,
                          json=[{**call, "id": 1}, {**call, "id": 2}])
    assert response.status_code == 200
    answers = response.json()
    assert sorted(a["id"] for a in answers) == [1, 2]
    assert {a["error"]["data"]["code"] for a in answers} == {"mcp_tool_not_allowed"}
    assert mcp_upstream.seen.arguments == []


def test_a_batch_under_a_version_without_batches_is_refused(mcp_proxy: ProxyHandle,
                                                            mcp_upstream: McpServerThread) -> None:
    headers = {**initialize(mcp_proxy, "2025-11-25"), "MCP-Protocol-Version": "2025-11-25"}
    response = httpx.post(f"{mcp_proxy.root}/mcp/crm", headers=headers, timeout=10,
                          json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
    assert response.status_code == 400 and response.json()["error"]["code"] == -32600


async def test_tool_calls_are_measured_traced_and_audited_without_values(
        make_proxy: ProxyFactory, mcp_upstream: McpServerThread) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    proxy = make_proxy(mcp=mcp_settings(mcp_upstream.url), tracer_provider=provider)
    with capture_logs() as logs:
        async with mcp_session(proxy) as client:
            await client.list_tools()
            await client.call_tool("lookup", {"email": "jo@example.com"})
            await client.call_tool("slow", {"seconds": 0})
            with pytest.raises(MCPError):
                await client.call_tool("send_mail", {"to": "x", "body": "y"})
        for _ in range(100):
            if sum(entry["event"] == "mcp_tool_call" for entry in logs) == 3:
                break
            await asyncio.sleep(0.02)
    calls = [entry for entry in logs if entry["event"] == "mcp_tool_call"]
    assert [(c["tool"], c["decision"], c["outcome"]) for c in calls] == [
        ("lookup", "allow", "ok"), ("slow", "allow", "ok"), ("send_mail", "deny", "denied")]
    assert calls[0]["argument_pii"] == {"email": 1} and calls[0]["arguments_redacted"] == ["email"]
    assert calls[0]["result_pii"] == {"aws_access_key": 2} and calls[0]["read_only"] is True
    assert calls[2]["reason_codes"] == ["mcp_tool_not_allowed"] and calls[2]["destructive"] is True
    assert "jo@example.com" not in str(logs) and "AKIA" not in str(logs)

    [span] = [s for s in exporter.get_finished_spans() if s.name == "execute_tool lookup"]
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "execute_tool"
    assert attributes["gen_ai.tool.name"] == "lookup" and attributes["gen_ai.tool.call.id"].isdigit()
    server_span = next(s for s in exporter.get_finished_spans() if s.context.span_id == span.parent.span_id)
    assert server_span.name == "POST /mcp/crm"

    metrics = (await asyncio.to_thread(httpx.get, f"{proxy.root}/metrics", timeout=10)).text
    assert 'llm_proxy_mcp_tool_calls_total{decision="allow",outcome="ok",server="crm",tool="lookup"} 1.0' in metrics
    assert 'llm_proxy_mcp_tool_calls_total{decision="allow",outcome="ok",server="crm",tool="other"} 1.0' in metrics
    assert ('llm_proxy_mcp_tool_calls_total{decision="deny",outcome="denied",server="crm",tool="send_mail"} 1.0'
            in metrics)
    assert 'llm_proxy_mcp_messages_total{decision="allow",method="tools/list",server="crm"} 1.0' in metrics
