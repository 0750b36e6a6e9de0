"""Through real clients: provider hosts refused and recorded, other hosts tunnelled, policy data honoured."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
import openai
import orjson
import pytest
from structlog.testing import capture_logs

from proxy.demo import DemoModel
from proxy.egress.report import format_report, shadow_ai_report
from tests.integration.egress.conftest import EVAL_KEY, KEY, PROXY_V1, StartEgress, hello_app, policy, raw_exchange

# A socket closed only by the garbage collector is a leak, even if the fd count recovers.
pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

Serve = Callable[..., Awaitable[int]]


async def test_provider_host_refused_with_403_pointing_at_the_proxy_and_recorded(start: StartEgress) -> None:
    egress = await start()
    request = f"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n" \
              f"Proxy-Authorization: Bearer {KEY}\r\n\r\n"
    with capture_logs() as logs:
        reply = await raw_exchange(egress.port, request.encode())

    [audit] = [entry for entry in logs if entry["event"] == "shadow_ai_refused"]
    assert {k: audit[k] for k in ("app", "team", "host", "provider")} == {
        "app": "billing-api", "team": "payments", "host": "api.openai.com", "provider": "openai"}
    assert KEY not in repr(logs)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Content-Type: application/json" in head and b"Connection: close" in head
    error = orjson.loads(body)["error"]
    assert error["code"] == "ai_provider_blocked" and error["provider"] == "openai"
    assert PROXY_V1 in error["message"]

    [event] = await egress.store.events("shadow_ai", 0)
    assert {k: event[k] for k in ("app", "team", "host", "provider", "method", "port")} == {
        "app": "billing-api", "team": "payments", "host": "api.openai.com", "provider": "openai",
        "method": "CONNECT", "port": "443"}
    assert egress.attempts("billing-api", "openai") == 1
    [row] = await shadow_ai_report(egress.store, 3600)
    assert (row["app"], row["provider"], row["attempts"], row["hosts"]) == ("billing-api", "openai", 1,
                                                                          ["api.openai.com"])
    assert "billing-api" in format_report([row]) and "api.openai.com" in format_report([row])


async def test_unknown_caller_is_refused_and_recorded_as_unknown(start: StartEgress) -> None:
    egress = await start()
    reply = await raw_exchange(egress.port, b"CONNECT api.anthropic.com:443 HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 403 ")
    [event] = await egress.store.events("shadow_ai", 0)
    assert (event["app"], event["team"], event["provider"]) == ("unknown", "unknown", "anthropic")
    assert egress.attempts("unknown", "anthropic") == 1


async def test_source_address_names_the_app_without_credentials(start: StartEgress) -> None:
    egress = await start(source_apps={"127.0.0.0/8": {"app": "cron", "team": "ops"},
                                      "127.0.0.1": {"app": "batch", "team": "data"}})
    await raw_exchange(egress.port, b"CONNECT api.openai.com:443 HTTP/1.1\r\n\r\n")
    [event] = await egress.store.events("shadow_ai", 0)
    assert (event["app"], event["team"]) == ("batch", "data")


async def test_non_provider_host_is_tunnelled_end_to_end_with_tls_by_httpx(
    start: StartEgress, serve: Serve, client_tls: ssl.SSLContext
) -> None:
    egress = await start()
    port = await serve(hello_app(), tls_names=("internal.example.test",))
    async with httpx.AsyncClient(proxy=egress.url(KEY), verify=client_tls) as client:
        response = await client.get(f"https://internal.example.test:{port}/hello")
    assert response.status_code == 200
    assert response.json()["host"] == f"internal.example.test:{port}"
    assert await egress.store.events("shadow_ai", 0) == []


async def test_aiohttp_client_is_tunnelled_to_other_hosts_and_refused_for_providers(
    start: StartEgress, serve: Serve, client_tls: ssl.SSLContext
) -> None:
    egress = await start()
    port = await serve(hello_app(), tls_names=("internal.example.test",))
    proxy = egress.url(f"ignored:{KEY}")
    async with aiohttp.ClientSession() as session:
        async with session.post(f"https://internal.example.test:{port}/echo", data=b"x" * 300_000,
                                proxy=proxy, ssl=client_tls) as response:
            assert response.status == 200
            assert len((await response.json())["body"]) == 300_000
        with pytest.raises(aiohttp.ClientHttpProxyError) as raised:
            await session.get("https://api.anthropic.com/v1/messages", proxy=proxy, ssl=client_tls)
    assert raised.value.status == 403
    [event] = await egress.store.events("shadow_ai", 0)
    assert (event["app"], event["provider"]) == ("billing-api", "anthropic")


async def test_openai_sdk_through_the_egress_proxy_is_refused_and_recorded(
    start: StartEgress, client_tls: ssl.SSLContext
) -> None:
    egress = await start()

    def call() -> None:
        with httpx.Client(proxy=egress.url(KEY), verify=client_tls) as http_client:
            # The SDK is typed for httpx2 clients but accepts httpx ones, which is what applications pass.
            client = openai.OpenAI(api_key="sk-direct", http_client=http_client, max_retries=0)  # type: ignore[arg-type]
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])

    # httpx turns a refused CONNECT into httpx.ProxyError, which the SDK surfaces as a connection error.
    with pytest.raises(openai.APIConnectionError) as raised:
        await asyncio.to_thread(call)
    assert isinstance(raised.value.__cause__, httpx.ProxyError)
    assert "403" in str(raised.value.__cause__)
    [event] = await egress.store.events("shadow_ai", 0)
    assert (event["app"], event["provider"], event["host"]) == ("billing-api", "openai", "api.openai.com")


async def test_app_exception_lets_that_app_reach_the_provider(
    start: StartEgress, serve: Serve, client_tls: ssl.SSLContext
) -> None:
    egress = await start(policy(exceptions={"apps": {"eval-harness": ["api.openai.com"]}}))
    port = await serve(DemoModel().build_app(), tls_names=("api.openai.com",))

    def call(key: str) -> str:
        with httpx.Client(proxy=egress.url(key), verify=client_tls) as http_client:
            client = openai.OpenAI(api_key="sk-direct", base_url=f"https://api.openai.com:{port}/v1",
                                   http_client=http_client, max_retries=0)  # type: ignore[arg-type]
            reply = client.chat.completions.create(model="demo-model", messages=[{"role": "user", "content": "hi"}])
            return reply.choices[0].message.content or ""

    assert "Hello from the demo model" in await asyncio.to_thread(call, EVAL_KEY)
    with pytest.raises(openai.APIConnectionError):
        await asyncio.to_thread(call, KEY)
    [event] = await egress.store.events("shadow_ai", 0)
    assert event["app"] == "billing-api"


async def test_allow_list_mode_refuses_unlisted_hosts_and_passes_listed_ones(
    start: StartEgress, serve: Serve, client_tls: ssl.SSLContext
) -> None:
    egress = await start(policy(mode="allow_list", allow_hosts=["internal.example.test"]))
    port = await serve(hello_app(), tls_names=("internal.example.test", "echo.example.test"))
    async with httpx.AsyncClient(proxy=egress.url(KEY), verify=client_tls) as client:
        assert (await client.get(f"https://internal.example.test:{port}/hello")).status_code == 200
        with pytest.raises(httpx.ProxyError):
            await client.get(f"https://echo.example.test:{port}/hello")
    [event] = await egress.store.events("shadow_ai", 0)
    assert (event["host"], event["provider"], event["reason"]) == ("echo.example.test", "none", "host_not_allowed")
    # Stored for the report, but not counted as an AI-provider attempt (the shadow-AI alert must not fire).
    assert egress.attempts("billing-api", "none") == 0


async def test_plain_http_is_forwarded_to_allowed_hosts(start: StartEgress, serve: Serve) -> None:
    egress = await start()
    port = await serve(hello_app())
    async with httpx.AsyncClient(proxy=egress.url(KEY)) as client:
        response = await client.post(f"http://plain.example.test:{port}/echo?x=1", content=b"payload",
                                     headers={"Proxy-Connection": "keep-alive", "X-Kept": "yes"})
    assert response.status_code == 200
    seen = {name.lower(): value for name, value in response.json()["headers"].items()}
    assert response.json()["body"] == "payload"
    assert seen["host"] == f"plain.example.test:{port}" and seen["x-kept"] == "yes"
    assert "proxy-authorization" not in seen and "proxy-connection" not in seen
    assert seen["connection"] == "close"


async def test_plain_http_to_a_provider_is_refused(start: StartEgress) -> None:
    egress = await start()
    async with httpx.AsyncClient(proxy=egress.url(KEY)) as client:
        response = await client.get("http://api.openai.com/v1/models")
    assert response.status_code == 403
    assert PROXY_V1 in response.json()["error"]["message"]
    [event] = await egress.store.events("shadow_ai", 0)
    assert (event["method"], event["port"], event["app"]) == ("GET", "80", "billing-api")


async def test_policy_engine_error_refuses_with_503(start: StartEgress) -> None:
    class Broken:
        async def evaluate_egress(self, _: object) -> None:
            raise RuntimeError("engine down")

    egress = await start()
    egress.server._engine_getter = lambda: Broken()  # type: ignore[assignment,return-value]
    reply = await raw_exchange(egress.port, b"CONNECT internal.example.test:443 HTTP/1.1\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 503 ")
    assert b"policy_unavailable" in reply
