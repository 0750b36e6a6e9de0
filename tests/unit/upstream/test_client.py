"""Upstream: URLs per kind, headers, and the first-byte and idle bounds against a real loopback server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest
from aiohttp import web

from proxy.config import Timeouts, UpstreamConfig
from proxy.errors import UpstreamError, UpstreamTimeout
from proxy.upstream.client import Upstream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Scripted:
    """A loopback server whose handler each test sets, recording what arrived."""

    def __init__(self) -> None:
        self.handler: Handler = self.ok
        self.seen: list[tuple[str, Mapping[str, str], bytes]] = []
        self.release = asyncio.Event()

    async def ok(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((str(request.rel_url), request.headers.copy(), await request.read()))
        return await self.handler(request)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Scripted, str]]:
    scripted = Scripted()
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", scripted.dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield scripted, f"http://127.0.0.1:{port}/v1"
    scripted.release.set()
    await runner.cleanup()


async def started(base_url: str, kind: str = "openai_compatible", api_key: str | None = "sk-test",
                  **timeouts: float) -> Upstream:
    config = UpstreamConfig(kind=kind, base_url=base_url, api_version="2024-10-21" if kind == "azure" else None,
                            timeouts=Timeouts(**timeouts))
    upstream = Upstream("test", config, api_key)
    await upstream.start()
    return upstream


@pytest.mark.parametrize(("kind", "expected", "header"), [
    ("openai_compatible", "/v1/chat/completions", ("Authorization", "Bearer sk-test")),
    ("azure", "/v1/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21", ("api-key", "sk-test")),
    ("anthropic", "/v1/chat/completions", ("x-api-key", "sk-test")),
])
async def test_each_kind_gets_its_url_and_key_header(server: tuple[Scripted, str], kind: str, expected: str,
                                                     header: tuple[str, str]) -> None:
    scripted, base = server
    upstream = await started(base, kind)
    try:
        for _ in range(2):  # the second call uses the URL parsed by the first
            response = await upstream.send("chat/completions", "gpt-4o-prod", b'{"a":1}', {"x-request-id": "r-1"})
            assert await upstream.read_body(response) == b'{"ok": true}'
    finally:
        await upstream.close()
    assert [path for path, _, _ in scripted.seen] == [expected, expected]
    _, headers, body = scripted.seen[0]
    assert headers[header[0]] == header[1] and headers["x-request-id"] == "r-1" and body == b'{"a":1}'
    assert "User-Agent" not in headers
    assert upstream.url("chat/completions", "gpt-4o-prod") is upstream.url("chat/completions", "gpt-4o-prod")


async def test_no_headers_within_the_first_byte_bound_is_a_timeout(server: tuple[Scripted, str]) -> None:
    scripted, base = server

    async def silent(request: web.Request) -> web.StreamResponse:
        await scripted.release.wait()
        return web.json_response({})

    scripted.handler = silent
    upstream = await started(base, first_byte_s=0.2, idle_s=30)
    try:
        with pytest.raises(UpstreamTimeout, match=r"did not answer within 0\.2s"):
            await asyncio.wait_for(upstream.send("chat/completions", "m", b"{}", {}), 10)
    finally:
        await upstream.close()


async def test_slow_headers_within_the_first_byte_bound_pass_though_longer_than_the_idle_bound(
        server: tuple[Scripted, str]) -> None:
    scripted, base = server

    async def thinking(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(0.4)  # the model thinking before its first byte: longer than idle_s
        return web.json_response({"done": True})

    scripted.handler = thinking
    upstream = await started(base, first_byte_s=10, idle_s=0.1)
    try:
        response = await upstream.send("chat/completions", "m", b"{}", {})
        assert await upstream.read_body(response) == b'{"done": true}'
    finally:
        await upstream.close()


async def stalling_stream(scripted: Scripted, request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b"data: first\n\n")
    await scripted.release.wait()
    return response


@pytest.mark.parametrize("whole", [False, True], ids=["streamed", "whole_body"])
async def test_a_body_that_goes_quiet_for_the_idle_bound_is_a_timeout(server: tuple[Scripted, str],
                                                                     whole: bool) -> None:
    scripted, base = server
    scripted.handler = lambda request: stalling_stream(scripted, request)
    upstream = await started(base, first_byte_s=30, idle_s=0.2)
    try:
        response = await upstream.send("chat/completions", "m", b"{}", {})
        if whole:
            with pytest.raises(UpstreamTimeout, match="stalled"):
                await asyncio.wait_for(upstream.read_body(response), 10)
        else:
            assert await upstream.read_chunk(response) == b"data: first\n\n"
            with pytest.raises(UpstreamTimeout, match=r"sent nothing for 0\.2s"):
                await asyncio.wait_for(upstream.read_chunk(response), 10)
    finally:
        await upstream.close()


async def test_a_closed_port_is_unreachable_not_a_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    upstream = await started(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(UpstreamError, match="unreachable") as caught:
            await upstream.send("chat/completions", "m", b"{}", {})
        assert not isinstance(caught.value, UpstreamTimeout)
    finally:
        await upstream.close()


@pytest.mark.parametrize(("kind", "calls", "paths"), [
    ("openai_compatible", [("chat/completions", "a"), ("embeddings", "a"), ("chat/completions", "b")],
     ["/v1/chat/completions", "/v1/embeddings", "/v1/chat/completions"]),
    # Azure names the deployment in the path: a cached URL must not carry one model's to another.
    ("azure", [("chat/completions", "a"), ("chat/completions", "b"), ("embeddings", "a")],
     ["/v1/openai/deployments/a/chat/completions?api-version=2024-10-21",
      "/v1/openai/deployments/b/chat/completions?api-version=2024-10-21",
      "/v1/openai/deployments/a/embeddings?api-version=2024-10-21"]),
])
async def test_each_path_and_model_keeps_its_own_url(server: tuple[Scripted, str], kind: str,
                                                     calls: list[tuple[str, str]], paths: list[str]) -> None:
    scripted, base = server
    upstream = await started(base, kind)
    try:
        for path, model in calls:
            await upstream.read_body(await upstream.send(path, model, b"{}", {}))
    finally:
        await upstream.close()
    assert [path for path, _, _ in scripted.seen] == paths


@pytest.mark.parametrize(("kind", "api_key", "extra", "expected"), [
    # Anthropic's version header is a default the caller's own overrides.
    ("anthropic", "sk-a", {}, {"anthropic-version": "2023-06-01", "x-api-key": "sk-a"}),
    ("anthropic", "sk-a", {"anthropic-version": "2024-01-01"}, {"anthropic-version": "2024-01-01"}),
    # No key configured (a local model): no credential header at all.
    ("openai_compatible", None, {}, {"Authorization": None, "api-key": None, "x-api-key": None,
                                     "anthropic-version": None}),
    ("openai_compatible", "sk-o", {"traceparent": "00-ab-cd-01"},
     {"Authorization": "Bearer sk-o", "traceparent": "00-ab-cd-01", "Content-Type": "application/json"}),
])
async def test_request_headers_are_the_defaults_then_the_callers(server: tuple[Scripted, str], kind: str,
                                                                 api_key: str | None, extra: dict[str, str],
                                                                 expected: dict[str, str | None]) -> None:
    scripted, base = server
    upstream = await started(base, kind, api_key=api_key)
    try:
        await upstream.read_body(await upstream.send("messages", "m", b"{}", extra))
    finally:
        await upstream.close()
    _, headers, _ = scripted.seen[0]
    assert {name: headers.get(name) for name in expected} == expected
